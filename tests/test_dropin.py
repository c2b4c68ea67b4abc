"""What a user of sklearn's MLPClassifier expects: the lbfgs solver,
multi-label targets and sklearn's documented semantics (n_iter_, best_loss_,
warm starts, partial_fit, early stopping), each checked against sklearn
itself where sklearn defines the behaviour."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLP

from skdigits import MLPClassifier, SoftmaxRegression
from skdigits._engine._lbfgs import _Objective
from skdigits._engine._team import Team


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400] / 16.0, y[:400]


@pytest.fixture(scope="module")
def multilabel():
    X, Y = make_multilabel_classification(300, 12, n_classes=4, random_state=0)
    return X / X.max(), Y


def quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kw)


# ---------------------------------------------------------------- lbfgs


def numpy_objective(clf, X, y, w, alpha):
    """scikit-learn's lbfgs objective and its gradient for ``clf``'s weights,
    in float64: the weighted mean cross-entropy plus alpha / (2 sum w) times
    the squared weights."""
    Ws = [W.astype(np.float64) for W in clf.coefs_]
    bs = [b.astype(np.float64) for b in clf.intercepts_]
    Hs = [X]
    for l, (W, b) in enumerate(zip(Ws, bs)):
        Z = Hs[-1] @ W + b
        Hs.append(np.maximum(Z, 0) if l < len(Ws) - 1 else Z)
    Z = Hs[-1]
    T = np.eye(Z.shape[1])[np.searchsorted(clf.classes_, y)]
    logp = Z - Z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    total = w.sum()
    loss = -(w * (T * logp).sum(1)).sum() / total
    loss += alpha / (2 * total) * sum((W ** 2).sum() for W in Ws)
    delta = w[:, None] * (np.exp(logp) - T) / total
    gWs, gbs = [None] * len(Ws), [None] * len(Ws)
    for l in range(len(Ws) - 1, -1, -1):
        gWs[l] = Hs[l].T @ delta + alpha / total * Ws[l]
        gbs[l] = delta.sum(0)
        if l:
            delta = (delta @ Ws[l].T) * (Hs[l] > 0)
    return loss, gWs, gbs


@pytest.mark.parametrize("hidden", [(7,), (9, 5)])
def test_lbfgs_objective_is_sklearns(digits, hidden, rng):
    """The objective L-BFGS minimises, and its gradient, are scikit-learn's
    (sample weights and alpha / sum(w) included), computed by the kernels in
    blocks of rows."""
    X, y = digits
    w = rng.uniform(0.2, 3.0, len(y))
    alpha = 0.3
    clf = quiet(MLPClassifier(hidden, solver="lbfgs", max_iter=2, alpha=alpha,
                              standardize=False, label_smoothing=0.0,
                              dtype="float64", random_state=0).fit, X, y,
                sample_weight=w)
    model = clf._model()
    with Team() as team:
        objective = _Objective(clf, model, X, np.searchsorted(clf.classes_, y),
                               (w / w.mean()), np.arange(len(y)), None,
                               clf._l2_full(w.sum()), team, 2)
        loss, grad = objective(clf._theta.astype(np.float64))
    want_loss, gWs, gbs = numpy_objective(clf, X, y, w, alpha)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12)
    # the gradient in the layout of theta: through the model's unpack
    layers = model.unpack(grad)
    for (gW, gb), wW, wb in zip(layers, gWs, gbs):
        np.testing.assert_allclose(gW, wW, rtol=1e-9, atol=1e-13)
        np.testing.assert_allclose(gb, wb, rtol=1e-9, atol=1e-13)


def test_lbfgs_curves_have_one_entry_per_iteration(digits):
    X, y = digits
    clf = quiet(MLPClassifier((16,), solver="lbfgs", max_iter=30, random_state=0).fit,
                X, y)
    assert clf.n_iter_ == 30
    assert len(clf.loss_curve_) == len(clf.accuracy_curve_) == 30
    assert clf.loss_curve_per_class_.shape == (30, 10)
    # L-BFGS accepts a point only when it lowers the objective
    assert np.all(np.diff(clf.loss_curve_) < 0)
    assert clf.best_loss_ == min(clf.loss_curve_)
    assert clf.loss_ == pytest.approx(clf.loss_curve_[-1])
    assert clf.score(X, y) > 0.95


def test_lbfgs_counts_iterations_and_function_calls_like_sklearn(digits):
    X, y = digits
    for est in (MLPClassifier((8,), solver="lbfgs", max_iter=4, random_state=0),
                SkMLP((8,), solver="lbfgs", max_iter=4, random_state=0)):
        with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
            est.fit(X, y)
        assert est.n_iter_ == 4
    calls = []
    clf = MLPClassifier((8,), solver="lbfgs", max_iter=500, max_fun=12,
                        random_state=0)
    real = _Objective.__call__
    _Objective.__call__ = lambda self, x: calls.append(1) or real(self, x)
    try:
        with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
            clf.fit(X, y)
    finally:
        _Objective.__call__ = real
    assert clf.n_iter_ < 500
    assert len(calls) <= 12 + 2  # max_fun, and at most the recorded figures


def test_lbfgs_has_no_partial_fit_and_ignores_early_stopping(digits):
    X, y = digits
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(SkMLP(solver="lbfgs"), "partial_fit")
    assert hasattr(MLPClassifier(), "partial_fit")
    clf = quiet(MLPClassifier((8,), solver="lbfgs", early_stopping=True, max_iter=5,
                              random_state=0).fit, X, y)
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None


def test_lbfgs_gives_the_same_bits_whatever_the_threads(digits):
    X, y = digits
    fits = [quiet(MLPClassifier((16,), solver="lbfgs", max_iter=15, n_jobs=n,
                                random_state=0).fit, X, y) for n in (1, 2, 3)]
    for clf in fits[1:]:
        assert clf.loss_curve_ == fits[0].loss_curve_
        for a, b in zip(clf.coefs_, fits[0].coefs_):
            np.testing.assert_array_equal(a, b)


def test_lbfgs_warm_start_continues_from_the_weights(digits):
    X, y = digits
    clf = MLPClassifier((16,), solver="lbfgs", max_iter=10, warm_start=True,
                        random_state=0)
    quiet(clf.fit, X, y)
    first = clf.loss_curve_[-1]
    quiet(clf.fit, X, y)
    assert clf.n_iter_ == 10 and len(clf.loss_curve_) == 20
    assert clf.loss_curve_[10] < first


def test_softmax_regression_lbfgs_matches_logistic_regression(digits):
    """The convex case: the same optimum as sklearn's LogisticRegression
    (alpha = 1 / (C * n_samples): sklearn's penalty is on the summed loss)."""
    from sklearn.linear_model import LogisticRegression

    X, y = digits
    C = 10.0
    ours = SoftmaxRegression(solver="lbfgs", alpha=1 / (C * len(y)), tol=1e-10,
                             max_iter=5000).fit(X, y)
    ref = LogisticRegression(C=C, tol=1e-10, max_iter=5000).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X),
                               atol=1e-3)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    np.testing.assert_allclose(ours.coef_, ref.coef_,
                               atol=5e-3 * np.abs(ref.coef_).max())


# ---------------------------------------------------------------- multi-label


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_multilabel_outputs_match_sklearns_conventions(multilabel, solver):
    X, Y = multilabel
    ours = quiet(MLPClassifier((32,), solver=solver, random_state=0).fit, X, Y)
    ref = quiet(SkMLP((32,), solver=solver, random_state=0, max_iter=300).fit, X, Y)
    np.testing.assert_array_equal(ours.classes_, ref.classes_)
    assert ours.n_outputs_ == ref.n_outputs_ == 4
    assert ours.out_activation_ == ref.out_activation_ == "logistic"
    pred, want = ours.predict(X[:50]), ref.predict(X[:50])
    assert pred.shape == want.shape == (50, 4)
    assert pred.dtype.kind == want.dtype.kind
    assert set(np.unique(pred)) <= {0, 1}
    proba = ours.predict_proba(X)
    assert proba.shape == (300, 4)
    # each label on its own: the sigmoid of its logit
    np.testing.assert_allclose(proba, 1 / (1 + np.exp(-ours.decision_function(X))),
                               rtol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), (proba > 0.5).astype(int))
    # subset accuracy, as sklearn's score; at least as good as sklearn's
    assert ours.score(X, Y) >= ref.score(X, Y) - 0.05
    assert ours.loss_curve_per_class_.shape == (ours.n_iter_ if solver == "lbfgs"
                                                else len(ours.loss_curve_), 4)


def test_multilabel_per_label_curve_is_each_labels_binary_loss(multilabel):
    """With full-batch L-BFGS the last entry of every curve is measured at the
    final weights, so it can be checked against NumPy: column ``j`` of
    ``loss_curve_per_class_`` is label ``j``'s binary cross-entropy, and
    ``accuracy_curve_`` the subset accuracy."""
    X, Y = multilabel
    clf = quiet(MLPClassifier((16,), solver="lbfgs", max_iter=20, dtype="float64",
                              random_state=0).fit, X, Y)
    Z = clf.decision_function(X)
    bce = (np.logaddexp(0, Z) - Z * Y).mean(axis=0)
    np.testing.assert_allclose(clf.loss_curve_per_class_[-1], bce, rtol=1e-9)
    assert clf.accuracy_curve_[-1] == pytest.approx(clf.score(X, Y), abs=1e-12)


def test_softmax_regression_multilabel_needs_ovr(multilabel):
    X, Y = multilabel
    with pytest.raises(ValueError, match="multi_class='ovr'"):
        SoftmaxRegression().fit(X, Y)
    clf = SoftmaxRegression(multi_class="ovr", random_state=0).fit(X, Y)
    assert clf.predict(X).shape == Y.shape
    assert clf.coef_.shape == (4, X.shape[1])
    assert clf.score(X, Y) > 0.3


def test_multilabel_bad_targets_are_named(multilabel):
    X, Y = multilabel
    for bad in (Y * 2 + 1, Y + Y[:, ::-1] * 2):  # not 0/1; multiclass-multioutput
        with pytest.raises(ValueError, match="not a multi-label indicator"):
            MLPClassifier().fit(X, bad)
    with pytest.raises(ValueError, match="class_weight is not supported"):
        MLPClassifier(class_weight="balanced").fit(X, Y)
    clf = MLPClassifier((8,), warm_start=True, max_iter=5, random_state=0)
    quiet(clf.fit, X, Y)
    with pytest.raises(ValueError, match="label columns"):
        clf.fit(X, Y[:, :3])
    with pytest.raises(ValueError, match="vector of labels"):
        clf.fit(X, Y[:, 0])


def test_multilabel_partial_fit_and_early_stopping(multilabel):
    X, Y = multilabel
    clf = MLPClassifier((16,), random_state=0)
    for _ in range(3):
        clf.partial_fit(X, Y, classes=np.arange(4))
    assert len(clf.loss_curve_) == 3 and clf.predict(X).shape == Y.shape
    es = MLPClassifier((16,), early_stopping=True, random_state=0).fit(X, Y)
    assert len(es.validation_scores_) == len(es.loss_curve_)
    assert es.validation_loss_curve_per_class_.shape[1] == 4


# ---------------------------------------------------------------- semantics


def test_n_iter_no_change_inf_switches_the_rule_off(digits):
    X, y = digits
    kw = dict(max_iter=25, tol=10.0, learning_rate="constant", random_state=0)
    assert quiet(MLPClassifier((8,), n_iter_no_change=2, **kw).fit, X, y).n_iter_ < 25
    for est in (MLPClassifier((8,), n_iter_no_change=np.inf, **kw),
                SoftmaxRegression(n_iter_no_change=np.inf, **kw)):
        assert quiet(est.fit, X, y).n_iter_ == 25


@pytest.mark.parametrize("Est", [MLPClassifier, SkMLP])
def test_warm_start_counts_and_warns_like_sklearn(digits, Est):
    """Each refit runs max_iter more epochs; n_iter_ counts the last call's
    (the curves keep all); reaching max_iter warns on every refit."""
    X, y = digits
    clf = Est((8,), warm_start=True, max_iter=3, learning_rate="constant",
              random_state=0)
    for k in (1, 2, 3):
        with pytest.warns(ConvergenceWarning, match="[Mm]aximum iterations"):
            clf.fit(X, y)
        assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 3 * k


def test_partial_fit_counts_like_sklearn(digits):
    X, y = digits
    ours, ref = MLPClassifier((8,), random_state=0), SkMLP((8,), random_state=0)
    for _ in range(3):
        ours.partial_fit(X, y, classes=np.arange(10))
        ref.partial_fit(X, y, classes=np.arange(10))
    assert ours.n_iter_ == ref.n_iter_
    assert len(ours.loss_curve_) == len(ref.loss_curve_) == 3
    assert ours.t_ == ref.t_


def test_annealed_schedules_do_not_warn_at_max_iter(digits):
    X, y = digits
    for schedule in ("cosine", "onecycle"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            MLPClassifier((8,), max_iter=3, learning_rate=schedule,
                          random_state=0).fit(X, y)


@pytest.mark.parametrize("Est", [MLPClassifier, SkMLP])
def test_best_loss_follows_sklearns_convention(digits, Est):
    X, y = digits
    es = quiet(Est((8,), early_stopping=True, max_iter=5, random_state=0).fit, X, y)
    assert es.best_loss_ is None and es.best_validation_score_ == max(
        es.validation_scores_)
    plain = quiet(Est((8,), max_iter=5, random_state=0).fit, X, y)
    assert plain.best_loss_ == min(plain.loss_curve_)
    assert plain.validation_scores_ is None and plain.best_validation_score_ is None


@pytest.mark.parametrize("Est", [MLPClassifier, SkMLP, SoftmaxRegression])
def test_partial_fit_refusals(digits, Est):
    X, y = digits
    clf = Est(random_state=0)
    clf.partial_fit(X, y, classes=np.arange(10))
    with pytest.raises(ValueError, match="not the same as"):
        clf.partial_fit(X, y, classes=np.arange(11))
    clf.partial_fit(X, y, classes=np.arange(10))  # the same classes again: fine
    with pytest.raises(ValueError, match="does not support early_stopping"):
        Est(early_stopping=True).partial_fit(X, y, classes=np.arange(10))
    fitted = quiet(Est(early_stopping=True, max_iter=3, random_state=0).fit, X, y)
    with pytest.raises(ValueError, match="does not support early_stopping"):
        fitted.partial_fit(X, y)


@settings(max_examples=10, deadline=None)
@given(st.integers(20, 60), st.integers(0, 1000))
def test_unstratifiable_split_warns_and_says_so(n, seed):
    """A class with one sample cannot be split in both parts: sklearn's MLP
    raises (binary problems, the ones it stratifies); skdigits draws the split
    at random and says so."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = np.r_[np.zeros(n - 1), [1]]
    for clf in (SoftmaxRegression(early_stopping=True, max_iter=2, random_state=seed),
                MLPClassifier((4,), early_stopping=True, max_iter=2,
                              random_state=seed)):
        with pytest.warns(UserWarning, match="cannot be stratified.*only 1 sample"):
            quiet(clf.fit, X, y)
        assert len(clf.validation_scores_) == 2
    with pytest.raises(ValueError, match="least populated class"):
        quiet(SkMLP(early_stopping=True, max_iter=2).fit, X, y)


def test_displays_with_a_multilabel_model(multilabel):
    """The per-class displays draw one curve per label; the image grid, which
    titles each image with one label, refuses with a clear message."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skdigits.plotting import DigitGridDisplay, PerClassLossDisplay

    X, Y = multilabel
    clf = MLPClassifier((8,), max_iter=5, random_state=0).fit(X, Y)
    disp = PerClassLossDisplay.from_estimator(clf)
    assert len(disp.lines_) == 4
    np.testing.assert_array_equal(disp.lines_[2].get_ydata(),
                                  clf.loss_curve_per_class_[:, 2])
    with pytest.raises(ValueError, match="one label at a time"):
        DigitGridDisplay.from_estimator(clf, X, Y, image_shape=(3, 4))
    plt.close("all")


# ---------------------------------------------------------------- review


@pytest.mark.parametrize("Est", [MLPClassifier, SoftmaxRegression])
def test_a_model_saved_before_new_parameters_loads_with_their_defaults(digits, Est):
    """A model pickled by an older skdigits lacks the parameters added since
    (``max_fun``...): it still prints, clones and trains."""
    import pickle

    from sklearn.base import clone

    X, y = digits
    clf = quiet(Est(max_iter=2, random_state=0).fit, X, y)
    state = clf.__getstate__()
    del state["max_fun" if Est is MLPClassifier else "warmup_fraction"]
    old = Est.__new__(Est)
    old.__setstate__(state)
    assert "max_iter=2" in repr(old)
    clone(old)
    quiet(old.partial_fit, X, y)
    back = pickle.loads(pickle.dumps(old))
    np.testing.assert_array_equal(back.predict(X), old.predict(X))


def test_lbfgs_without_an_iteration_still_has_its_curves(digits):
    """scipy may stop before the first iteration (here: a gradient already
    within ``tol``); the model is fitted all the same, with empty curves and
    sklearn's ``loss_``. (Inputs of 1e30 stopped it too, with all-zero
    weights; they now train or are refused: see ``test_softmax``.)"""
    X, y = digits
    clf = SoftmaxRegression(solver="lbfgs", tol=10.0).fit(X, y)
    assert clf.n_iter_ == 0 and clf.loss_curve_ == []
    assert clf.loss_curve_per_class_.shape == (0, 10)
    mlp = quiet(MLPClassifier((4,), solver="lbfgs", max_fun=1, random_state=0).fit,
                X, y)
    assert np.isfinite(mlp.loss_)
    assert len(mlp.loss_curve_) == mlp.n_iter_


@pytest.mark.filterwarnings("ignore:The least populated class:UserWarning")
def test_stratification_warning_points_at_the_caller():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    y = np.r_[np.zeros(29), [1]]
    with pytest.warns(UserWarning, match="MLPClassifier raises here") as record:
        quiet(MLPClassifier((4,), early_stopping=True, max_iter=2,
                            random_state=0).fit, X, y)
    assert record[0].filename == __file__
    y3 = np.r_[np.zeros(15), np.ones(14), [2]]  # sklearn does not stratify these
    with pytest.warns(UserWarning, match="cannot be stratified") as record:
        quiet(SoftmaxRegression(early_stopping=True, max_iter=2).fit, X, y3)
    assert "raises here" not in str(record[0].message)
    assert record[0].filename == __file__  # one more frame than the MLP's
    # through scikit-learn's search and joblib's loop: still the user's line
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(SoftmaxRegression(early_stopping=True, max_iter=2),
                          {"alpha": [1e-4]}, cv=2)
    with pytest.warns(UserWarning, match="cannot be stratified") as record:
        quiet(search.fit, X, y3)
    assert {w.filename for w in record
            if "cannot be stratified" in str(w.message)} == {__file__}


def test_pandas_extension_dtypes_as_targets(digits):
    pd = pytest.importorskip("pandas")
    X, y = digits
    for target in (pd.Series(y).astype("category"), pd.Series(y, dtype="Int64")):
        clf = SoftmaxRegression(max_iter=2, random_state=0).fit(X, target)
        np.testing.assert_array_equal(np.sort(np.asarray(clf.classes_)), np.arange(10))
