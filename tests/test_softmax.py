"""SoftmaxRegression: behaviour, sklearn integration, curves and bad input."""

import logging
import pickle
import warnings

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from skdigits import SoftmaxRegression
from skdigits._base import TrainingDivergedError


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


# ---------------------------------------------------------------- fitting


@pytest.mark.parametrize("multi_class", ["multinomial", "ovr"])
def test_fits_digits_like_logistic_regression(digits, multi_class):
    X_tr, X_te, y_tr, y_te = digits
    clf = SoftmaxRegression(multi_class=multi_class, random_state=0).fit(X_tr, y_tr)
    ref = LogisticRegression(max_iter=1000).fit(X_tr, y_tr).score(X_te, y_te)
    assert clf.score(X_te, y_te) >= ref - 0.02
    assert clf.coef_.shape == (10, 64) and clf.intercept_.shape == (10,)
    np.testing.assert_array_equal(clf.classes_, np.arange(10))
    assert clf.n_features_in_ == 64


@pytest.mark.parametrize("multi_class", ["multinomial", "ovr"])
def test_curves_have_one_entry_per_epoch(digits, multi_class):
    X_tr, _, y_tr, _ = digits
    clf = SoftmaxRegression(multi_class=multi_class, max_iter=7,
                            learning_rate="constant", learning_rate_init=0.01,
                            random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_tr, y_tr)
    assert clf.n_iter_ == 7
    assert len(clf.loss_curve_) == len(clf.accuracy_curve_) == 7
    assert clf.loss_curve_per_class_.shape == (7, 10)
    assert np.all(np.isfinite(clf.loss_curve_per_class_))
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert clf.accuracy_curve_[-1] > clf.accuracy_curve_[0]
    assert clf.best_loss_ == pytest.approx(min(clf.loss_curve_))
    assert clf.validation_scores_ is None
    assert not hasattr(clf, "validation_loss_curve_")
    if multi_class == "multinomial":
        # the overall data loss is the sample-weighted mean of the class losses
        counts = np.bincount(y_tr)
        data_loss = clf.loss_curve_per_class_ @ counts / counts.sum()
        penalty = 0.5 * clf.alpha * np.sum(clf.coef_**2)
        assert data_loss[-1] + penalty == pytest.approx(clf.loss_curve_[-1], rel=1e-6)
    else:
        # one-vs-rest: the loss is the sum of the labels' binary losses
        total = clf.loss_curve_per_class_.sum(axis=1)
        assert total[0] == pytest.approx(clf.loss_curve_[0], rel=1e-3)


def test_per_class_loss_shows_hard_and_easy_classes():
    # class 2 overlaps class 1 heavily; class 0 stands apart
    rng = np.random.default_rng(0)
    centers = np.array([[6.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    y = np.repeat([0, 1, 2], 300)
    X = centers[y] + rng.normal(size=(900, 2))
    clf = SoftmaxRegression(random_state=0).fit(X, y)
    last = clf.loss_curve_per_class_[-1]
    assert last[0] < 0.2 < last[1] and last[0] < 0.2 < last[2]


def test_binary_problem_has_one_logistic_model():
    X, y = make_classification(200, 5, random_state=0)
    labels = np.where(y == 1, "yes", "no")
    for mc in ("multinomial", "ovr"):
        clf = SoftmaxRegression(multi_class=mc, random_state=0).fit(X, labels)
        assert clf.coef_.shape == (1, 5)
        dec = clf.decision_function(X)
        assert dec.shape == (200,)
        np.testing.assert_array_equal(clf.predict(X), np.where(dec > 0, "yes", "no"))
        assert clf.loss_curve_per_class_.shape == (clf.n_iter_, 2)
        assert clf.score(X, labels) > 0.85


def test_any_labels_strings_and_odd_integers(digits):
    X_tr, X_te, y_tr, y_te = digits
    names = np.array(["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"])
    clf = SoftmaxRegression(random_state=0).fit(X_tr, names[y_tr])
    assert set(clf.predict(X_te)) <= set(names)
    assert clf.score(X_te, names[y_te]) > 0.9
    odd = np.array([-7, 3, 11, 12, 100, 101, 102, 2000, 5, 8])
    clf2 = SoftmaxRegression(random_state=0).fit(X_tr, odd[y_tr])
    np.testing.assert_array_equal(clf2.classes_, np.sort(odd))
    np.testing.assert_array_equal(clf.classes_, np.sort(names))
    assert clf2.score(X_te, odd[y_te]) > 0.9


def test_predict_proba_and_log_proba(digits):
    X_tr, X_te, y_tr, _ = digits
    for mc in ("multinomial", "ovr"):
        clf = SoftmaxRegression(multi_class=mc, random_state=0).fit(X_tr, y_tr)
        P = clf.predict_proba(X_te)
        assert P.shape == (len(X_te), 10)
        np.testing.assert_allclose(P.sum(axis=1), 1.0)
        np.testing.assert_allclose(np.log(P), clf.predict_log_proba(X_te), atol=1e-10)
        np.testing.assert_array_equal(clf.classes_[P.argmax(1)], clf.predict(X_te))


def test_float32_in_float32_out(digits):
    X_tr, X_te, y_tr, _ = digits
    clf = SoftmaxRegression(random_state=0).fit(X_tr.astype(np.float32), y_tr)
    assert clf.coef_.dtype == np.float32
    clf64 = SoftmaxRegression(random_state=0).fit(X_tr, y_tr)
    assert clf64.coef_.dtype == np.float64
    agree = np.mean(clf.predict(X_te) == clf64.predict(X_te))
    assert agree > 0.98


def test_random_state_reproduces_and_varies(digits):
    X_tr, _, y_tr, _ = digits
    a = SoftmaxRegression(random_state=3).fit(X_tr, y_tr)
    b = SoftmaxRegression(random_state=3).fit(X_tr, y_tr)
    c = SoftmaxRegression(random_state=4).fit(X_tr, y_tr)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert a.loss_curve_ == b.loss_curve_
    assert not np.array_equal(a.coef_, c.coef_)
    # an int seed never touches the global generator ...
    state = np.random.get_state()[1].copy()
    SoftmaxRegression(random_state=5).fit(X_tr, y_tr)
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    # ... and None draws from it, as in scikit-learn, so np.random.seed reproduces
    np.random.seed(11)
    d = SoftmaxRegression(random_state=None).fit(X_tr, y_tr)
    np.random.seed(11)
    e = SoftmaxRegression(random_state=None).fit(X_tr, y_tr)
    np.testing.assert_array_equal(d.coef_, e.coef_)


def test_max_iter_auto_scales_with_data_size():
    est = SoftmaxRegression(batch_size=256)
    assert est._resolve_max_iter(60000) == 2
    assert est._resolve_max_iter(3000) == 40
    assert est._resolve_max_iter(100) == 200
    assert SoftmaxRegression(max_iter=5)._resolve_max_iter(60000) == 5


def test_cosine_schedule_anneals_to_zero():
    est = SoftmaxRegression(learning_rate="cosine", learning_rate_init=0.1)
    rates = [est._epoch_rates(est._schedule(), e, 4, False) for e in range(4)]
    assert rates[0][0] == pytest.approx(0.1)
    assert rates[-1][1] == pytest.approx(0.0, abs=1e-12)
    assert all(r0 >= r1 for r0, r1 in rates)
    est = SoftmaxRegression(learning_rate="invscaling", learning_rate_init=0.1,
                            power_t=0.5)
    assert est._epoch_rates(est._schedule(), 3, 10, False) == (
        pytest.approx(0.05), pytest.approx(0.05))


def test_sample_weight_and_class_weight_are_honoured():
    X, y = make_classification(600, 4, n_informative=3, n_redundant=0,
                               weights=[0.9, 0.1], flip_y=0.05, class_sep=0.5,
                               random_state=0)
    plain = SoftmaxRegression(random_state=0).fit(X, y)
    balanced = SoftmaxRegression(class_weight="balanced", random_state=0).fit(X, y)
    assert (balanced.predict(X) == 1).sum() > (plain.predict(X) == 1).sum()
    # class_weight "balanced" equals the explicit dict and the sample weights
    cw = {0: 600 / (2 * np.sum(y == 0)), 1: 600 / (2 * np.sum(y == 1))}
    explicit = SoftmaxRegression(class_weight=cw, random_state=0).fit(X, y)
    sw = np.where(y == 1, cw[1], cw[0])
    by_sw = SoftmaxRegression(random_state=0).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(balanced.coef_, explicit.coef_, rtol=1e-12)
    np.testing.assert_allclose(balanced.coef_, by_sw.coef_, rtol=1e-12)
    # zero weight removes a sample from the loss and from the class curves
    w = np.ones(len(y))
    w[y == 1] = 0.0
    only0 = SoftmaxRegression(random_state=0).fit(X, y, sample_weight=w)
    assert np.all(np.isnan(only0.loss_curve_per_class_[:, 1]))


def test_early_stopping_records_validation_and_keeps_best(digits):
    X_tr, _, y_tr, _ = digits
    clf = SoftmaxRegression(early_stopping=True, max_iter=60, n_iter_no_change=3,
                            learning_rate="constant", learning_rate_init=0.05,
                            random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_tr, y_tr)
    n = clf.n_iter_
    assert len(clf.validation_scores_) == len(clf.validation_loss_curve_) == n
    assert clf.validation_loss_curve_per_class_.shape == (n, 10)
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    # the kept weights are those of the best validation epoch
    n_val = int(np.ceil(0.1 * len(y_tr)))
    assert n_val == 135
    X_fit, X_val, y_fit, y_val = _replay_split(clf, X_tr, y_tr)
    assert clf.score(X_val, y_val) == pytest.approx(clf.best_validation_score_)


def _replay_split(clf, X, y):
    """The validation split the estimator drew (same seed sequence)."""
    from sklearn.utils import check_random_state

    rng = check_random_state(clf.random_state)
    from skdigits._kernels._rng import new_state

    new_state(rng)
    seed = rng.randint(np.iinfo(np.int32).max)
    return train_test_split(X, y, test_size=int(np.ceil(0.1 * len(y))),
                            random_state=seed, stratify=y)


def test_tol_stops_training_early():
    X, y = make_classification(300, 4, random_state=0, class_sep=3.0)
    clf = SoftmaxRegression(max_iter=500, learning_rate="constant", tol=1e-2,
                            n_iter_no_change=2, random_state=0).fit(X, y)
    assert clf.n_iter_ < 500


def test_convergence_warning_when_max_iter_reached(digits):
    X_tr, _, y_tr, _ = digits
    with pytest.warns(ConvergenceWarning, match="maximum iterations"):
        SoftmaxRegression(max_iter=2, learning_rate="constant").fit(X_tr, y_tr)


def test_partial_fit_and_warm_start(digits):
    X_tr, X_te, y_tr, y_te = digits
    clf = SoftmaxRegression(random_state=0, learning_rate_init=0.01)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X_tr, y_tr)
    for _ in range(5):
        clf.partial_fit(X_tr, y_tr, classes=np.arange(10))
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 5
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert clf.score(X_te, y_te) > 0.85
    # a batch with a subset of classes is fine; an unknown class is not
    clf.partial_fit(X_tr[y_tr < 5], y_tr[y_tr < 5])
    with pytest.raises(ValueError, match=r"not in classes"):
        clf.partial_fit(X_tr[:10], np.full(10, 42))

    warm = SoftmaxRegression(max_iter=3, warm_start=True, random_state=0)
    warm.fit(X_tr, y_tr)
    first = warm.coef_.copy()
    warm.fit(X_tr, y_tr)
    assert warm.n_iter_ == 3 and len(warm.loss_curve_) == 6
    assert not np.array_equal(first, warm.coef_)
    cold = SoftmaxRegression(max_iter=3, random_state=0).fit(X_tr, y_tr)
    np.testing.assert_array_equal(cold.coef_, first)


def test_keyboard_interrupt_keeps_last_finished_epoch(digits, monkeypatch):
    X_tr, _, y_tr, _ = digits
    from skdigits._engine._models import LinearModel

    real = LinearModel.run_epoch
    calls = {"n": 0}

    def flaky(self, team, n_threads, X, y, Y, w, order, theta, *args):
        calls["n"] += 1
        if calls["n"] == 4:
            # corrupt the weights mid-epoch, then be interrupted
            theta[:] = np.nan
            raise KeyboardInterrupt
        return real(self, team, n_threads, X, y, Y, w, order, theta, *args)

    monkeypatch.setattr(LinearModel, "run_epoch", flaky)
    clf = SoftmaxRegression(max_iter=10, random_state=0)
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X_tr, y_tr)
    assert clf.n_iter_ == 3
    assert len(clf.loss_curve_) == 3 and clf.loss_curve_per_class_.shape == (3, 10)
    assert np.all(np.isfinite(clf.coef_))
    assert clf.score(X_tr, y_tr) > 0.8


@pytest.mark.parametrize("scale,lr,needle", [
    (1.0, 1e30, "smaller learning_rate_init"),
    (1e200, 1e-3, "features reach magnitude 4.52e"),  # the inputs, not the rate
])
def test_divergence_raises_and_says_why(scale, lr, needle):
    X, y = make_classification(300, 10, random_state=0)
    X = X * scale
    clf = SoftmaxRegression(solver="sgd", learning_rate="constant",
                            learning_rate_init=lr, momentum=0.0, random_state=0)
    with pytest.raises(TrainingDivergedError, match=needle):
        clf.fit(X, y)
    assert isinstance(TrainingDivergedError("x"), ValueError)


@pytest.mark.parametrize("scale", [1e13, 1e20, 1e25])
def test_lbfgs_trains_on_large_valued_features(scale):
    # issue 19, finding 10: from 1e13 on, L-BFGS ran 0 iterations (its line
    # search gave up after 20 evaluations) and returned all-zero weights
    X, y = make_classification(300, 10, random_state=0)
    X = X * scale
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = LogisticRegression().fit(X, y).score(X, y)
        clf = SoftmaxRegression(solver="lbfgs", random_state=0).fit(X, y)
    assert clf.n_iter_ > 0 and np.any(clf.coef_ != 0)
    assert clf.score(X, y) >= ref - 0.01 and ref > 0.8


def test_lbfgs_refuses_features_too_large_to_step_on():
    X, y = make_classification(300, 10, random_state=0)
    X = X * 1e40
    clf = SoftmaxRegression(solver="lbfgs", random_state=0)
    with pytest.raises(TrainingDivergedError,
                       match="features reach magnitude .*scale them first"):
        clf.fit(X, y)
    assert not hasattr(clf, "coef_")


# ---------------------------------------------------------------- predict


def test_predict_in_blocks_matches_one_block(digits, monkeypatch):
    import skdigits._engine._models as models

    X_tr, X_te, y_tr, _ = digits
    clf = SoftmaxRegression(random_state=0).fit(X_tr, y_tr)
    full = clf.predict_proba(X_te)
    monkeypatch.setattr(models, "PREDICT_BLOCK", 7)
    # each row on its own: the same bits whatever the blocks
    np.testing.assert_array_equal(clf.predict_proba(X_te), full)
    for i in (0, 5, len(X_te) - 1):
        np.testing.assert_array_equal(clf.predict_proba(X_te[i:i + 1])[0], full[i])

def test_predict_keeps_integer_input_unconverted(digits):
    X_tr, _, y_tr, _ = digits
    clf = SoftmaxRegression(random_state=0).fit(X_tr * 16, y_tr)
    X_int = (X_tr * 16).astype(np.uint8)
    np.testing.assert_array_equal(clf.predict(X_int), clf.predict(X_tr * 16))


# ---------------------------------------------------------------- sklearn tools


def test_pipeline_gridsearch_parallel_and_pickle(digits):
    X_tr, X_te, y_tr, y_te = digits
    pipe = make_pipeline(StandardScaler(), PCA(n_components=30),
                         SoftmaxRegression(random_state=0))
    param_grid = {"softmaxregression__alpha": [1e-5, 1e-2],
                  "softmaxregression__multi_class": ["multinomial", "ovr"]}
    grid = GridSearchCV(pipe, param_grid, cv=3, n_jobs=2)
    grid.fit(X_tr, y_tr)
    assert grid.best_score_ > 0.9
    assert grid.score(X_te, y_te) > 0.9
    best = grid.best_estimator_[-1]
    assert best.loss_curve_per_class_.shape[1] == 10
    restored = pickle.loads(pickle.dumps(grid.best_estimator_))
    np.testing.assert_array_equal(restored.predict(X_te), grid.predict(X_te))


def test_clone_cross_val_score_and_joblib(digits, tmp_path):
    X_tr, X_te, y_tr, _ = digits
    est = SoftmaxRegression(alpha=1e-3, random_state=0)
    twin = clone(est)
    assert twin.get_params() == est.get_params() and not hasattr(twin, "coef_")
    scores = cross_val_score(est, X_tr, y_tr, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.9
    est.fit(X_tr, y_tr)
    joblib.dump(est, tmp_path / "model.joblib")
    back = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(back.predict(X_te), est.predict(X_te))
    assert back.loss_curve_ == est.loss_curve_
    # only plain arrays and values are stored: no compiled objects
    for value in vars(est).values():
        assert "numba" not in type(value).__module__
    # a pickled model can be trained further
    back.partial_fit(X_tr, y_tr)
    assert len(back.loss_curve_) == len(est.loss_curve_) + 1


def test_confusion_matrix_display_from_estimator(digits, pyplot):
    X_tr, X_te, y_tr, y_te = digits
    clf = SoftmaxRegression(random_state=0).fit(X_tr, y_tr)
    disp = ConfusionMatrixDisplay.from_estimator(clf, X_te, y_te)
    assert disp.confusion_matrix.shape == (10, 10)
    assert disp.confusion_matrix.trace() == (clf.predict(X_te) == y_te).sum()


def test_dataframe_feature_names(digits):
    pd = pytest.importorskip("pandas")
    X_tr, X_te, y_tr, _ = digits
    cols = [f"px{i}" for i in range(64)]
    clf = SoftmaxRegression(random_state=0).fit(pd.DataFrame(X_tr, columns=cols), y_tr)
    np.testing.assert_array_equal(clf.feature_names_in_, cols)
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X_te)


# ---------------------------------------------------------------- logging


def test_verbose_logs_each_epoch(digits, caplog):
    X_tr, _, y_tr, _ = digits
    with caplog.at_level(logging.INFO, logger="skdigits"):
        SoftmaxRegression(max_iter=3, verbose=1, random_state=0).fit(X_tr, y_tr)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("skdigits")]
    assert len([m for m in lines if m.startswith("Epoch")]) == 3
    assert "loss = " in lines[0] and "accuracy = " in lines[0]


def test_silent_by_default_and_progress_bar_on_request(digits, capsys, monkeypatch):
    X_tr, _, y_tr, _ = digits
    SoftmaxRegression(max_iter=3, random_state=0).fit(X_tr, y_tr)
    out, err = capsys.readouterr()
    assert out == "" and err == ""
    # the bar only on a terminal (a pipe would keep every redraw)
    SoftmaxRegression(max_iter=3, verbose=2, random_state=0).fit(X_tr, y_tr)
    assert "|" not in capsys.readouterr().err
    monkeypatch.setattr("skdigits._logging.on_terminal", lambda stream=None: True)
    SoftmaxRegression(max_iter=3, verbose=2, random_state=0).fit(X_tr, y_tr)
    out, err = capsys.readouterr()
    assert out == ""
    # the bar, then in its place how the fit ended
    assert "0/3" in err and err.rstrip().endswith("SoftmaxRegression: 3 epochs")


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("params,match", [
    ({"batch_size": -1}, "batch_size"),
    ({"batch_size": 0}, "batch_size"),
    ({"multi_class": "auto"}, "multi_class"),
    ({"solver": "newton-cg"}, "solver"),
    ({"learning_rate": "linear"}, "learning_rate"),
    ({"learning_rate_init": 0.0}, "learning_rate_init"),
    ({"alpha": -1.0}, "alpha"),
    ({"max_iter": 0}, "max_iter"),
    ({"validation_fraction": 1.0}, "validation_fraction"),
    ({"class_weight": "even"}, "class_weight"),
])
def test_bad_parameters_are_named(params, match, digits):
    X_tr, _, y_tr, _ = digits
    with pytest.raises(InvalidParameterError, match=match):
        SoftmaxRegression(**params).fit(X_tr, y_tr)


def test_bad_data_gives_clear_errors(digits):
    X_tr, X_te, y_tr, _ = digits
    clf = SoftmaxRegression(max_iter=3)
    X_nan = X_tr.copy()
    X_nan[3, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.fit(X_nan, y_tr)
    X_inf = X_tr.copy()
    X_inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        clf.fit(X_inf, y_tr)
    with pytest.raises(ValueError, match="2D array"):
        clf.fit(X_tr[:, 0], y_tr)
    with pytest.raises(ValueError, match="0 sample"):
        clf.fit(X_tr[:0], y_tr[:0])
    with pytest.raises(ValueError, match="only one class"):
        clf.fit(X_tr, np.zeros(len(y_tr)))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.fit(X_tr, y_tr[:-1])
    with pytest.raises(ValueError, match="Unknown label type"):
        clf.fit(X_tr, np.linspace(0, 1, len(y_tr)))
    with pytest.raises(ValueError, match="(?i)negative"):
        clf.fit(X_tr, y_tr, sample_weight=-np.ones(len(y_tr)))
    with pytest.raises(ValueError, match="non-zero|sum to zero"):
        clf.fit(X_tr, y_tr, sample_weight=np.zeros(len(y_tr)))
    clf.fit(X_tr, y_tr)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X_te[:, :10])
    X_bad = X_te.copy()
    X_bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(X_bad)


def test_unfitted_predict_raises(digits):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        SoftmaxRegression().predict(digits[1])


# ---------------------------------------------------------------- full data


@pytest.mark.full_data
@pytest.mark.parametrize("kind,floor", [("digits", 0.925), ("fashion", 0.845)])
def test_full_dataset_accuracy_with_defaults(kind, floor, data_home):
    """The defaults keep 0.925 on MNIST and 0.845 on Fashion-MNIST: the median
    of seeds 0-2, and every seed within 0.002 of it (on Fashion-MNIST one seed
    gives 0.8439: the floor sits inside the seeds' spread)."""
    from skdigits.datasets import load_mnist

    X, y = load_mnist(kind, "train", data_home=data_home, return_X_y=True,
                      download_if_missing=False)
    Xt, yt = load_mnist(kind, "test", data_home=data_home, return_X_y=True,
                        download_if_missing=False)
    X = X.astype(np.float32) / 255
    Xt = Xt.astype(np.float32) / 255
    scores = []
    for seed in (0, 1, 2):
        clf = SoftmaxRegression(random_state=seed).fit(X, y)
        scores.append(clf.score(Xt, yt))
        assert clf.loss_curve_per_class_.shape == (clf.n_iter_, 10)
        # the per-class curves tell easy classes from hard ones
        last = clf.loss_curve_per_class_[-1]
        if kind == "digits":
            assert last[[0, 1]].max() < last[[8, 9]].min()
        else:
            # Shirt (6) is the hardest Fashion class, Trouser (1) among the easiest
            assert last.argmax() == 6 and last[1] < np.median(last)
    assert np.median(scores) >= floor, scores
    assert min(scores) >= floor - 0.002, scores


# ---------------------------------------------------------------- edge cases


def test_recovers_after_divergence_in_partial_fit():
    rng = np.random.RandomState(0)
    X = rng.randn(300, 5)
    y = np.argmax(X[:, :3], 1)
    clf = SoftmaxRegression(solver="sgd", learning_rate_init=1e30)
    with pytest.raises(TrainingDivergedError):
        clf.partial_fit((X * 1e15).astype(np.float32), y, classes=[0, 1, 2])
    # nothing half-fitted is left: the next call needs classes again
    assert not hasattr(clf, "classes_")
    clf.set_params(learning_rate_init=1e-2)
    clf.partial_fit(X.astype(np.float32), y, classes=[0, 1, 2])
    clf.set_params(learning_rate_init=1e30)
    with pytest.raises(TrainingDivergedError):
        clf.partial_fit((X * 1e15).astype(np.float32), y)
    assert clf.n_iter_ == 1 and np.all(np.isfinite(clf.coef_))
    clf.set_params(learning_rate_init=1e-2)
    for _ in range(5):
        clf.partial_fit(X.astype(np.float32), y)
    assert np.all(np.isfinite(clf.coef_)) and clf.score(X, y) > 0.8


def test_binary_coef_is_a_copy_not_a_view():
    rng = np.random.RandomState(0)
    X = rng.randn(100, 4)
    y = (X[:, 0] > 0).astype(int)
    clf = SoftmaxRegression().partial_fit(X, y, classes=[0, 1])
    saved = clf.coef_
    before = saved.copy()
    clf.partial_fit(X, y)
    np.testing.assert_array_equal(saved, before)
    assert not np.shares_memory(clf.coef_, clf._theta)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_sparse_fits_are_not_padded_and_each_layout_continues(n_classes):
    """Issue 19: a binary model's weights were padded to 16 columns whatever
    its data. Fitted on sparse data, fewer than nine outputs are now stored
    as they are; fitted on dense data they stay padded (the dense products
    run on whole vectors). Either model keeps its layout, and gives the same
    model, when later calls bring the other kind of data."""
    from scipy import sparse

    X, y = make_classification(200, 6, n_informative=4, n_classes=n_classes,
                               random_state=0)
    S = sparse.csr_matrix(X)
    k = 1 if n_classes == 2 else n_classes
    on_sparse = SoftmaxRegression(max_iter=2, random_state=0).fit(S, y)
    on_dense = SoftmaxRegression(max_iter=2, random_state=0).fit(X, y)
    assert on_sparse._theta.shape == (7 * k,)
    assert on_dense._theta.shape == (7 * 16,)
    assert "_new_model_sparse" not in vars(on_sparse)
    np.testing.assert_allclose(on_sparse.coef_, on_dense.coef_, rtol=1e-10)
    np.testing.assert_allclose(on_sparse.predict_proba(X), on_dense.predict_proba(S),
                               rtol=1e-10)
    for clf, other in ((on_sparse, X), (on_dense, S)):
        shape = clf._theta.shape
        clf.set_params(warm_start=True).fit(other, y)
        clf.partial_fit(other, y)
        assert clf._theta.shape == shape
    np.testing.assert_allclose(on_sparse.coef_, on_dense.coef_, rtol=1e-10)
    assert not on_dense._theta.reshape(7, 16)[:, k:].any()  # the padding stays 0
    on_dense.set_params(warm_start=False).fit(S, y)  # a new model: a new layout
    assert on_dense._theta.shape == (7 * k,)


def test_interrupt_during_validation_keeps_curves_in_step(digits, monkeypatch):
    import skdigits._engine._train as train_mod

    X_tr, _, y_tr, _ = digits
    clf = SoftmaxRegression(early_stopping=True, max_iter=10, random_state=0)
    real = train_mod.evaluate
    calls = {"n": 0}

    def flaky(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(train_mod, "evaluate", flaky)
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X_tr, y_tr)
    assert clf.n_iter_ == 2
    assert len(clf.loss_curve_) == len(clf.validation_scores_) == 2
    assert clf.validation_loss_curve_per_class_.shape == (2, 10)


def test_quiet_model_stays_quiet_after_a_verbose_one(digits, capsys):
    X_tr, _, y_tr, _ = digits
    with pytest.warns(ConvergenceWarning, match="maximum iterations"):
        SoftmaxRegression(max_iter=1, verbose=1,
                          learning_rate="constant").fit(X_tr, y_tr)
    capsys.readouterr()
    SoftmaxRegression(max_iter=50, tol=10, n_iter_no_change=1).fit(X_tr, y_tr)
    assert capsys.readouterr().err == ""


def test_partial_fit_validates_parameters_every_call(digits):
    X_tr, _, y_tr, _ = digits
    clf = SoftmaxRegression().partial_fit(X_tr, y_tr, classes=np.arange(10))
    clf.set_params(batch_size=0)
    with pytest.raises(InvalidParameterError, match="batch_size"):
        clf.partial_fit(X_tr, y_tr)


def test_failed_first_call_can_be_corrected():
    rng = np.random.RandomState(0)
    X = rng.randn(300, 5)
    y = np.argmax(X[:, :3], 1)
    clf = SoftmaxRegression()
    with pytest.raises(ValueError, match="not in classes"):
        clf.partial_fit(X, y, classes=[0, 1])
    clf.partial_fit(X, y, classes=[0, 1, 2])
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    warm = SoftmaxRegression(warm_start=True)
    with pytest.raises(ValueError, match="only one class"):
        warm.fit(X, np.zeros(300, int))
    warm.fit(X, y)
    assert warm.score(X, y) > 0.8
