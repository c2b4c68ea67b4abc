"""Early stopping on any score: the ``scoring`` parameter (issue 23, item 2)."""

import math
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, f1_score
from sklearn.utils._param_validation import InvalidParameterError

from skdigits import MLPClassifier, SoftmaxRegression
from skdigits._logging import kept_epoch
from skdigits.io import dump, load

ESTIMATORS = [
    lambda **kw: MLPClassifier((16,), learning_rate_init=0.01, **kw),
    lambda **kw: SoftmaxRegression(**kw),
]
IDS = ["mlp", "softmax"]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600]


def quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kw)


class EpochWeights:
    """A callback keeping the public weights of every epoch."""

    def __init__(self):
        self.weights = []

    def __call__(self, est, info):
        self.weights.append(_weights(est))


def _weights(est):
    if hasattr(est, "coefs_"):
        return [a.copy() for a in est.coefs_ + est.intercepts_]
    return [est.coef_.copy(), est.intercept_.copy()]


def _assert_same_weights(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def _stop_epoch(scores, tol, n_iter_no_change, max_iter):
    """scikit-learn's rule on a list of validation scores: the epoch after
    which training stops."""
    best, count = -np.inf, 0
    for epoch, score in enumerate(scores, 1):
        count = 0 if score >= best + tol else count + 1
        best = max(best, score)
        if count > n_iter_no_change:
            return epoch
    return max_iter


@pytest.mark.parametrize("make", ESTIMATORS, ids=IDS)
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16), n_iter_no_change=st.integers(1, 4),
       tol=st.sampled_from([0.0, 1e-4, 1e-2]))
def test_loss_keeps_the_epoch_of_the_lowest_validation_loss(
        make, digits, seed, n_iter_no_change, tol):
    X, y = digits
    record = EpochWeights()
    est = quiet(make(early_stopping=True, scoring="loss", max_iter=12,
                     random_state=seed, n_iter_no_change=n_iter_no_change, tol=tol,
                     callbacks=record).fit, X, y)
    val_loss = np.array(est.validation_loss_curve_)
    np.testing.assert_array_equal(est.validation_scores_, -val_loss)
    assert est.best_validation_score_ == -val_loss.min()
    assert est.best_loss_ is None
    # the weights kept are those of the first epoch with the lowest loss
    best = int(np.argmin(val_loss))
    assert kept_epoch(est) == best + 1
    _assert_same_weights(_weights(est), record.weights[best])
    # and training stopped where scikit-learn's rule says, on the loss
    assert est.n_iter_ == _stop_epoch(-val_loss, tol, n_iter_no_change, 12)


@pytest.mark.parametrize("make", ESTIMATORS, ids=IDS)
def test_none_is_the_validation_accuracy(make, digits):
    X, y = digits
    kw = dict(early_stopping=True, max_iter=6, random_state=0)
    default = quiet(make(**kw).fit, X, y)
    none = quiet(make(scoring=None, **kw).fit, X, y)
    named = quiet(make(scoring="accuracy", **kw).fit, X, y)
    _assert_same_weights(_weights(default), _weights(none))
    assert default.validation_scores_ == none.validation_scores_
    # the scorer's accuracy is the engine's, measured again by predicting
    np.testing.assert_allclose(named.validation_scores_, none.validation_scores_,
                               rtol=0, atol=1e-12)
    assert none._validation_scoring == "accuracy"


def test_scorer_gets_the_weights_of_the_fit(digits):
    """A weighted fit's validation accuracy is weighted; a scorer is given
    the same weights (sample times class weights), as sklearn passes them."""
    X, y = digits
    sw = np.random.default_rng(0).uniform(0.1, 3.0, len(y))
    kw = dict(early_stopping=True, max_iter=5, random_state=0,
              class_weight={0: 3.0, 1: 0.5})
    none = quiet(SoftmaxRegression(**kw).fit, X, y, sample_weight=sw)
    named = quiet(SoftmaxRegression(scoring="accuracy", **kw).fit, X, y,
                  sample_weight=sw)
    np.testing.assert_allclose(named.validation_scores_, none.validation_scores_,
                               rtol=0, atol=1e-12)
    seen = []

    def scorer(est, X_val, y_val, sample_weight=None):
        seen.append(sample_weight)
        return accuracy_score(y_val, est.predict(X_val), sample_weight=sample_weight)

    quiet(SoftmaxRegression(scoring=scorer, **kw).fit, X, y, sample_weight=sw)
    assert seen[0] is not None and len(seen[0]) == math.ceil(0.1 * len(y))
    unweighted = []
    quiet(SoftmaxRegression(early_stopping=True, max_iter=2, random_state=0,
                            scoring=lambda e, Xv, yv, **k: unweighted.append(k) or 0.5)
          .fit, X, y)
    assert unweighted == [{}, {}]


@pytest.mark.parametrize("make", ESTIMATORS, ids=IDS)
def test_a_callable_scores_the_model_of_each_epoch(make, digits):
    X, y = digits
    calls = []

    def scorer(est, X_val, y_val):
        calls.append((_weights(est), X_val.shape, y_val.copy()))
        return f1_score(y_val, est.predict(X_val), average="macro")

    record = EpochWeights()
    est = quiet(make(early_stopping=True, max_iter=6, random_state=0,
                     n_iter_no_change=100, scoring=scorer, callbacks=record).fit, X, y)
    assert len(calls) == est.n_iter_ == 6
    n_val = math.ceil(0.1 * len(y))
    for (weights, shape, y_val), kept in zip(calls, record.weights):
        _assert_same_weights(weights, kept)  # the epoch's model, not the last
        assert shape == (n_val, X.shape[1]) and y_val.dtype == y.dtype
    named = quiet(make(early_stopping=True, max_iter=6, random_state=0,
                       n_iter_no_change=100, scoring="f1_macro").fit, X, y)
    assert named.validation_scores_ == est.validation_scores_
    best = int(np.argmax(est.validation_scores_))
    _assert_same_weights(_weights(est), record.weights[best])
    assert est._validation_scoring == "scorer"
    assert named._validation_scoring == "f1_macro"


@pytest.mark.parametrize("make", ESTIMATORS, ids=IDS)
@pytest.mark.parametrize("scoring", ["loss", "balanced_accuracy", "neg_log_loss"])
def test_same_bits_for_the_same_random_state(make, scoring, digits):
    X, y = digits
    fits = [quiet(make(early_stopping=True, max_iter=5, random_state=3,
                       scoring=scoring).fit, X, y) for _ in range(2)]
    _assert_same_weights(_weights(fits[0]), _weights(fits[1]))
    assert fits[0].validation_scores_ == fits[1].validation_scores_


def test_neg_log_loss_scorer_matches_the_loss(digits):
    """sklearn's log loss of the validation split is the engine's validation
    loss: both name the same epochs."""
    X, y = digits
    kw = dict(early_stopping=True, max_iter=6, random_state=1, n_iter_no_change=100)
    loss = quiet(SoftmaxRegression(scoring="loss", **kw).fit, X, y)
    scorer = quiet(SoftmaxRegression(scoring="neg_log_loss", **kw).fit, X, y)
    np.testing.assert_allclose(scorer.validation_scores_, loss.validation_scores_,
                               rtol=1e-9)


def test_multilabel_loss_and_scorer():
    X, Y = make_multilabel_classification(n_samples=300, n_features=12, n_classes=4,
                                          random_state=0)
    kw = dict(early_stopping=True, max_iter=6, random_state=0, n_iter_no_change=100)
    loss = quiet(MLPClassifier((16,), scoring="loss", **kw).fit, X, Y)
    # the mean binary cross-entropy per label, negated
    np.testing.assert_array_equal(loss.validation_scores_,
                                  -np.array(loss.validation_loss_curve_))
    f1 = quiet(SoftmaxRegression("ovr", scoring="f1_micro", **kw).fit, X, Y)
    assert all(0 <= s <= 1 for s in f1.validation_scores_)
    assert f1.best_validation_score_ == max(f1.validation_scores_)


@pytest.mark.parametrize("make", ESTIMATORS, ids=IDS)
def test_bad_scoring_values(make, digits):
    X, y = digits
    with pytest.raises(ValueError, match="Did you mean 'f1_macro'"):
        make(early_stopping=True, scoring="f1macro").fit(X, y)
    with pytest.raises(ValueError, match="neither 'loss' nor the name"):
        make(scoring="nonsense").fit(X, y)  # checked without early stopping too
    with pytest.raises(InvalidParameterError, match="scoring"):
        make(scoring=3).fit(X, y)
    with pytest.raises(TypeError, match="must return a number"):
        make(early_stopping=True, max_iter=2,
             scoring=lambda est, X, y: "good").fit(X, y)
    assert not hasattr(make(early_stopping=True, max_iter=2,
                            scoring=lambda est, X, y: "good"), "classes_")


def test_a_nan_score_never_improves(digits):
    X, y = digits
    scores = iter([0.5, np.nan, np.nan, np.nan, 0.9, 0.1])
    est = quiet(SoftmaxRegression(early_stopping=True, max_iter=6, random_state=0,
                                  n_iter_no_change=2,
                                  scoring=lambda e, X, y: next(scores)).fit, X, y)
    # epochs 2-4 do not improve: more than 2 of them stop training
    assert est.n_iter_ == 4
    assert est.best_validation_score_ == 0.5


def test_interactions(digits):
    X, y = digits
    # lbfgs ignores early stopping, and so its scoring
    lb = quiet(SoftmaxRegression(solver="lbfgs", early_stopping=True, scoring="loss",
                                 max_iter=5).fit, X, y)
    assert lb.validation_scores_ is None
    # partial_fit still refuses early stopping; without it, scoring is unused
    with pytest.raises(ValueError, match="does not support early_stopping"):
        MLPClassifier(early_stopping=True, scoring="loss").partial_fit(
            X, y, classes=np.arange(10))
    pf = SoftmaxRegression(scoring="loss").partial_fit(X, y, classes=np.arange(10))
    assert pf.validation_scores_ is None
    # a warm start with the same scoring continues its best score...
    est = quiet(SoftmaxRegression(early_stopping=True, scoring="loss", max_iter=3,
                                  warm_start=True, random_state=0,
                                  n_iter_no_change=100).fit, X, y)
    first = list(est.validation_scores_)
    quiet(est.fit, X, y)
    assert est.validation_scores_[:3] == first
    assert est.best_validation_score_ == max(est.validation_scores_)
    # ...and with another, the earlier scores measured something else
    est.set_params(scoring="balanced_accuracy")
    quiet(est.fit, X, y)
    assert np.isnan(est.validation_scores_[:6]).all()
    assert est.best_validation_score_ == max(est.validation_scores_[6:])
    assert est._validation_scoring == "balanced_accuracy"


def test_callbacks_and_log_name_the_score(digits, caplog):
    X, y = digits
    infos = []
    quiet(SoftmaxRegression(early_stopping=True, max_iter=2, random_state=0,
                            scoring="loss", callbacks=lambda e, i: infos.append(i))
          .fit, X, y)
    assert infos[0]["val_score"] == -infos[0]["val_loss"]
    infos.clear()
    quiet(SoftmaxRegression(early_stopping=True, max_iter=2, random_state=0,
                            callbacks=lambda e, i: infos.append(i)).fit, X, y)
    assert "val_score" not in infos[0]
    with caplog.at_level("INFO"):
        quiet(SoftmaxRegression(early_stopping=True, max_iter=50, random_state=0,
                                n_iter_no_change=1, tol=1.0, scoring="loss",
                                verbose=1).fit, X, y)
    assert "validation loss did not improve" in caplog.text


@pytest.mark.parametrize("make", ESTIMATORS, ids=IDS)
def test_model_files_keep_the_score(make, digits, tmp_path):
    X, y = digits
    est = quiet(make(early_stopping=True, scoring="f1_macro", max_iter=4,
                     random_state=0, warm_start=True).fit, X, y)
    dump(est, tmp_path / "m.skops")
    blob = pickle.dumps(est)
    for again in (load(tmp_path / "m.skops"), pickle.loads(blob)):
        np.testing.assert_array_equal(again.predict_proba(X), est.predict_proba(X))
        assert again.get_params()["scoring"] == "f1_macro"
        assert again.validation_scores_ == est.validation_scores_
        assert again._validation_scoring == "f1_macro"
        # the loaded model continues (warm start) as the fitted one does
        twin = pickle.loads(blob)
        quiet(again.fit, X, y)
        quiet(twin.fit, X, y)
        _assert_same_weights(_weights(again), _weights(twin))
        assert again.validation_scores_ == twin.validation_scores_


def test_displays_draw_what_early_stopping_watched(pyplot, digits):
    from skdigits.plotting import TrainingCurveDisplay, plot_training_curves

    X, y = digits
    kw = dict(early_stopping=True, max_iter=5, random_state=0)
    loss = quiet(SoftmaxRegression(scoring="loss", **kw).fit, X, y)
    disp = TrainingCurveDisplay.from_estimator(loss, metric="score")
    assert disp.line_ is None and disp.lines_ == [disp.validation_line_]
    # drawn as a loss (lower is better), labelled as what stopping watched
    np.testing.assert_allclose(disp.validation_line_.get_ydata(),
                               loss.validation_loss_curve_)
    assert disp.validation_line_.get_label().startswith("validation loss")
    assert "early stopping" in disp.validation_line_.get_label()
    # the accuracy panel no longer claims the scores are accuracies
    assert TrainingCurveDisplay.from_estimator(
        loss, metric="accuracy").validation_line_ is None
    label = TrainingCurveDisplay.from_estimator(loss).validation_line_.get_label()
    assert "early stopping" in label
    f1 = quiet(SoftmaxRegression(scoring="f1_macro", **kw).fit, X, y)
    disp = TrainingCurveDisplay.from_estimator(f1, metric="score")
    np.testing.assert_allclose(disp.validation_line_.get_ydata(),
                               f1.validation_scores_)
    assert disp.ax_.get_ylabel() == "f1_macro"
    assert "f1_macro" in disp.validation_line_.get_label()
    out = plot_training_curves(f1, zoom_start=-2)
    assert len(out.figure.axes) == 6 and out.score_zoom is not None
    out = plot_training_curves(loss)
    assert len(out.figure.axes) == 2 and out.score is None
    # the default scoring keeps its labels; without validation, no score
    none = quiet(SoftmaxRegression(**kw).fit, X, y)
    disp = TrainingCurveDisplay.from_estimator(none, metric="accuracy")
    assert [ln.get_label() for ln in disp.lines_] == ["train", "validation"]
    plain = quiet(SoftmaxRegression(max_iter=2).fit, X, y)
    with pytest.raises(ValueError, match="early_stopping=True"):
        TrainingCurveDisplay.from_estimator(plain, metric="score")


def test_stopping_target_names_the_scoring(digits):
    from skdigits._logging import stopping_target

    X, y = digits
    kw = dict(max_iter=2, random_state=0)
    assert stopping_target(quiet(SoftmaxRegression(**kw).fit, X, y)) is None
    for scoring, words in [(None, "validation accuracy"), ("loss", "validation loss"),
                           ("f1_macro", "validation f1_macro")]:
        est = quiet(SoftmaxRegression(early_stopping=True, scoring=scoring,
                                      **kw).fit, X, y)
        assert stopping_target(est) == words


def test_cli_takes_scoring_and_refuses_bad_names(capsys):
    from skdigits.cli import main

    assert main(["fit", "--sample", "--model", "softmax", "--param", "scoring=f1macro",
                 "--param", "early_stopping=True"]) == 1
    err = capsys.readouterr().err.strip()
    assert "Did you mean 'f1_macro'" in err and "\n" not in err


@pytest.mark.parametrize("make", ESTIMATORS, ids=IDS)
@pytest.mark.parametrize("fail_at", [1, 3])
def test_a_scorer_raising_leaves_the_last_recorded_epoch(make, fail_at, digits):
    # the scorer runs after the epoch's kernel has updated the weights in
    # place: its exception must not leave those weights beside the counters,
    # curves and optimizer state of the epoch before
    X, y = digits

    def failing_at(n):
        calls = []

        def scorer(est, X_val, y_val):
            calls.append(None)
            if len(calls) == n:
                raise RuntimeError("scorer failed")
            return est.score(X_val, y_val)

        return scorer

    params = dict(early_stopping=True, random_state=0, n_iter_no_change=100,
                  warm_start=True)
    est = make(max_iter=5, scoring=failing_at(fail_at), **params)
    with pytest.raises(RuntimeError, match="scorer failed"):
        quiet(est.fit, X, y)
    if fail_at == 1:
        return  # nothing recorded: the estimator need not be fitted
    ref = quiet(make(max_iter=5, scoring=failing_at(0), **params,
                     callbacks=lambda est, info: info["epoch"] == fail_at - 1).fit,
                X, y)
    assert est.n_iter_ == ref.n_iter_ == fail_at - 1
    assert est.validation_scores_ == ref.validation_scores_
    _assert_same_weights(_weights(est), _weights(ref))
    np.testing.assert_array_equal(est._theta, ref._theta)
    # and it continues as the fit it describes
    est.set_params(scoring=ref.scoring, max_iter=2)
    ref.set_params(max_iter=2)
    quiet(est.fit, X, y)
    quiet(ref.fit, X, y)
    _assert_same_weights(_weights(est), _weights(ref))
