"""MLPClassifier: behaviour, sklearn integration, curves, memory and bad input."""

import logging
import pickle
import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier as SkMLP
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from skdigits import MLPClassifier
from skdigits._base import TrainingDivergedError
from skdigits.neural_network import MLPClassifier as MLPFromSubpackage


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def quiet_fit(clf, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clf.fit(X, y, **kw)


def numpy_forward(clf, X, activation):
    """Logits from the public coefs_/intercepts_, in float64."""
    f = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh,
         "logistic": lambda z: 1 / (1 + np.exp(-z)), "identity": lambda z: z,
         "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z)}[activation]
    A = np.asarray(X, dtype=np.float64)
    for i, (W, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        A = A @ W.astype(np.float64) + b
        if i < len(clf.coefs_) - 1:
            A = f(A)
    return A


# ---------------------------------------------------------------- fitting


def test_importable_from_top_level_and_subpackage():
    assert MLPClassifier is MLPFromSubpackage


def test_fits_digits_as_well_as_sklearn(digits):
    X_tr, X_te, y_tr, y_te = digits
    clf = MLPClassifier(hidden_layer_sizes=(64,), random_state=0).fit(X_tr, y_tr)
    ref = quiet_fit(SkMLP(hidden_layer_sizes=(64,), random_state=0, max_iter=200),
                    X_tr, y_tr).score(X_te, y_te)
    assert clf.score(X_te, y_te) >= ref - 0.02
    assert clf.score(X_te, y_te) > 0.95


def test_fitted_attributes_match_sklearn_layout(digits):
    X_tr, _, y_tr, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(20, 12), max_iter=3,
                        random_state=0).fit(X_tr, y_tr)
    assert [W.shape for W in clf.coefs_] == [(64, 20), (20, 12), (12, 10)]
    assert [b.shape for b in clf.intercepts_] == [(20,), (12,), (10,)]
    assert clf.n_layers_ == 4 and clf.n_outputs_ == 10
    assert clf.out_activation_ == "softmax"
    assert clf.n_iter_ == 3 and clf.t_ == 3 * len(X_tr)
    assert clf.loss_ == clf.loss_curve_[-1]
    assert clf.best_loss_ == min(clf.loss_curve_)
    assert clf.loss_curve_per_class_.shape == (3, 10)
    assert len(clf.accuracy_curve_) == 3
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None
    # exported weights are copies, never views of the training buffer
    before = clf.predict_proba(X_tr[:5])
    clf.coefs_[0][:] = 0
    np.testing.assert_allclose(clf.predict_proba(X_tr[:5]), before)


@pytest.mark.parametrize("activation",
                         ["relu", "leaky_relu", "tanh", "logistic", "identity"])
def test_every_activation_learns_and_predicts_from_coefs(digits, activation):
    X_tr, X_te, y_tr, y_te = digits
    clf = MLPClassifier(hidden_layer_sizes=(32,), activation=activation,
                        max_iter=40, random_state=0).fit(X_tr, y_tr)
    assert clf.score(X_te, y_te) > 0.9
    logits = numpy_forward(clf, X_te, activation)
    np.testing.assert_allclose(clf.decision_function(X_te), logits,
                               rtol=1e-5, atol=1e-5)
    proba = np.exp(logits - logits.max(1, keepdims=True))
    proba /= proba.sum(1, keepdims=True)
    np.testing.assert_allclose(clf.predict_proba(X_te), proba, atol=1e-6)
    np.testing.assert_array_equal(clf.predict(X_te), clf.classes_[logits.argmax(1)])


def test_binary_problem_has_one_logistic_output():
    X, y = load_digits(n_class=2, return_X_y=True)
    y = np.where(y == 1, "one", "zero")
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20,
                        random_state=0).fit(X / 16, y)
    assert clf.n_outputs_ == 1 and clf.out_activation_ == "logistic"
    assert clf.coefs_[-1].shape == (8, 1)
    proba = clf.predict_proba(X / 16)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(1), 1)
    z = numpy_forward(clf, X / 16, "relu")[:, 0]
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-z)), atol=1e-6)
    assert clf.score(X / 16, y) > 0.98
    # the per-class loss is the loss of each class's samples
    assert clf.loss_curve_per_class_.shape == (20, 2)


def test_per_class_loss_is_the_weighted_mean_of_the_total(digits):
    X_tr, _, y_tr, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(16,), alpha=0.0, max_iter=4,
                        label_smoothing=0.0, random_state=0).fit(X_tr, y_tr)
    counts = np.bincount(y_tr) / len(y_tr)
    np.testing.assert_allclose(clf.loss_curve_per_class_ @ counts, clf.loss_curve_,
                               rtol=1e-6)
    # easy and hard classes differ: the curves are not all the same
    assert np.ptp(clf.loss_curve_per_class_[-1]) > 0


def test_penalty_enters_the_reported_loss(digits):
    X_tr, _, y_tr, _ = digits
    plain = MLPClassifier(hidden_layer_sizes=(16,), alpha=0.0, max_iter=2,
                          random_state=0).fit(X_tr, y_tr)
    heavy = MLPClassifier(hidden_layer_sizes=(16,), alpha=50.0, max_iter=2,
                          random_state=0).fit(X_tr, y_tr)
    # same initial weights: the first epoch's data loss is close, the
    # penalty term makes the difference
    W = [w.astype(np.float64) for w in heavy.coefs_]
    assert heavy.loss_curve_[0] > plain.loss_curve_[0]
    assert sum(float((w ** 2).sum()) for w in W) < sum(
        float((w.astype(np.float64) ** 2).sum()) for w in plain.coefs_)


def test_random_state_reproduces_and_varies(digits):
    X_tr, X_te, y_tr, _ = digits
    a = MLPClassifier(hidden_layer_sizes=(16,), max_iter=5,
                      random_state=3).fit(X_tr, y_tr)
    b = MLPClassifier(hidden_layer_sizes=(16,), max_iter=5,
                      random_state=3).fit(X_tr, y_tr)
    c = MLPClassifier(hidden_layer_sizes=(16,), max_iter=5,
                      random_state=4).fit(X_tr, y_tr)
    for wa, wb in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(wa, wb)
    assert a.loss_curve_ == b.loss_curve_
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


@pytest.mark.parametrize("dtype,in_dtype,out_dtype", [
    ("float32", np.float64, np.float32),
    ("float32", np.float32, np.float32),
    ("float64", np.float32, np.float64),
    (None, np.float32, np.float32),
    (None, np.float64, np.float64),
])
def test_dtype_choice(digits, dtype, in_dtype, out_dtype):
    X_tr, _, y_tr, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, dtype=dtype,
                        random_state=0).fit(X_tr.astype(in_dtype), y_tr)
    assert all(W.dtype == out_dtype for W in clf.coefs_)
    assert clf.predict_proba(X_tr[:3]).dtype == np.float64


@pytest.mark.parametrize("name", ["float32", "float64"])
def test_dtype_takes_numpy_types_as_scikit_learn_does(digits, name):
    # dtype=np.float32 was refused by the parameter check ("must be a str
    # among {'float32', 'float64'} or None"), where scikit-learn's dtype
    # parameters take NumPy types; it now trains the same bits as the name
    X_tr, _, y_tr, _ = digits
    reference = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, dtype=name,
                              random_state=0).fit(X_tr, y_tr)
    for dtype in (getattr(np, name), np.dtype(name)):
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, dtype=dtype,
                            random_state=0).fit(X_tr, y_tr)
        for got, expected in zip(clf.coefs_, reference.coefs_):
            assert got.dtype == name
            np.testing.assert_array_equal(got, expected)
    for bad in (np.int32, np.dtype("float16"), "float16", int):
        with pytest.raises(ValueError, match="dtype"):
            MLPClassifier(dtype=bad).fit(X_tr[:20], y_tr[:20])


def test_float64_input_trains_like_its_float32_cast(digits):
    X_tr, _, y_tr, _ = digits
    a = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0)
    b = clone(a)
    a.fit(X_tr.astype(np.float64), y_tr)  # cast minibatch by minibatch
    b.fit(X_tr.astype(np.float32), y_tr)  # cast up front
    for wa, wb in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(wa, wb)


def test_float32_tracks_float64(digits):
    X_tr, X_te, y_tr, y_te = digits
    a = MLPClassifier(hidden_layer_sizes=(32,), max_iter=10, random_state=0,
                      dtype="float32").fit(X_tr, y_tr)
    b = MLPClassifier(hidden_layer_sizes=(32,), max_iter=10, random_state=0,
                      dtype="float64").fit(X_tr, y_tr)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-2)
    assert abs(a.score(X_te, y_te) - b.score(X_te, y_te)) < 0.02


def test_max_iter_auto_scales_with_data_size():
    clf = MLPClassifier()
    # about 5600 updates
    assert clf._resolve_max_iter(60_000) == 12  # 469 batches of 128
    assert clf._resolve_max_iter(6_000) == 120  # 47 batches
    assert clf._resolve_max_iter(3_000) == 200  # 24 batches: capped
    assert clf._resolve_max_iter(10) == 200
    assert MLPClassifier(max_iter=7)._resolve_max_iter(60_000) == 7


def test_batch_size_auto_is_sklearns_200(digits):
    X_tr, _, y_tr, _ = digits
    seen = []
    clf = MLPClassifier(hidden_layer_sizes=(8,), batch_size="auto", max_iter=1)
    assert clf._batch_size(10_000) == 200 and clf._batch_size(50) == 50
    clf.set_params(callbacks=lambda est, info: seen.append(info["epoch"]))
    clf.fit(X_tr, y_tr)
    assert seen == [1]


# ---------------------------------------------------------------- schedules


def _lrs(clf, X, y):
    lrs = []
    clf.set_params(callbacks=lambda est, info: lrs.append(info["lr"]))
    quiet_fit(clf, X, y)
    return np.array(lrs)


def test_step_schedule_decays_every_lr_step_size_epochs(digits):
    X_tr, _, y_tr, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=7, learning_rate="step",
                        learning_rate_init=0.01, lr_step_size=3, lr_gamma=0.5,
                        tol=0, random_state=0)
    lrs = _lrs(clf, X_tr, y_tr)
    np.testing.assert_allclose(lrs, [0.01] * 3 + [0.005] * 3 + [0.0025])


def test_cosine_schedule_anneals_to_zero_and_invscaling_decays(digits):
    X_tr, _, y_tr, _ = digits
    cos = _lrs(MLPClassifier(hidden_layer_sizes=(8,), max_iter=6, random_state=0),
               X_tr, y_tr)
    assert cos[-1] == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.diff(cos) < 0)
    inv = _lrs(MLPClassifier(hidden_layer_sizes=(8,), max_iter=4, tol=0,
                             learning_rate="invscaling", learning_rate_init=0.1,
                             power_t=0.5, random_state=0), X_tr, y_tr)
    np.testing.assert_allclose(inv, 0.1 / np.sqrt(np.arange(1, 5)))


def test_sgd_with_and_without_nesterov_learns(digits):
    X_tr, X_te, y_tr, y_te = digits
    for nesterov in (True, False):
        clf = MLPClassifier(hidden_layer_sizes=(32,), solver="sgd",
                            learning_rate_init=0.1, nesterovs_momentum=nesterov,
                            max_iter=30, random_state=0).fit(X_tr, y_tr)
        assert clf.score(X_te, y_te) > 0.93


def test_adaptive_sgd_divides_the_rate_when_stuck(digits):
    X_tr, _, y_tr, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", learning_rate="adaptive",
                        learning_rate_init=0.5, tol=10.0, n_iter_no_change=1,
                        max_iter=6, random_state=0)
    lrs = _lrs(clf, X_tr, y_tr)
    assert lrs[-1] < lrs[0]


# ---------------------------------------------------------------- weights


def test_class_weight_raises_that_class_recall(digits):
    X_tr, X_te, y_tr, y_te = digits
    base = MLPClassifier(hidden_layer_sizes=(16,), max_iter=30, random_state=0)
    plain = base.fit(X_tr, y_tr).predict(X_te)
    heavy = clone(base).set_params(class_weight={3: 50.0}).fit(X_tr, y_tr).predict(X_te)
    assert (heavy == 3).sum() > (plain == 3).sum()
    balanced = clone(base).set_params(class_weight="balanced").fit(X_tr, y_tr)
    assert balanced.score(X_te, y_te) > 0.5


def test_zero_sample_weight_removes_a_class(digits):
    X_tr, X_te, y_tr, _ = digits
    w = np.where(y_tr == 7, 0.0, 1.0)
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=20,
                        random_state=0).fit(X_tr, y_tr, sample_weight=w)
    assert (clf.predict(X_te) == 7).mean() < 0.02
    # a class that weighs nothing has no loss history
    assert np.isnan(clf.loss_curve_per_class_[:, 7]).all()


# ---------------------------------------------------------------- stopping


def test_early_stopping_records_validation_and_keeps_best(digits):
    X_tr, X_te, y_tr, _ = digits
    snapshots = []
    clf = MLPClassifier(hidden_layer_sizes=(32,), early_stopping=True,
                        learning_rate="constant", learning_rate_init=0.01,
                        n_iter_no_change=3, max_iter=60, random_state=0,
                        callbacks=lambda est, info: snapshots.append(
                            est.predict_proba(X_te)))
    clf.fit(X_tr, y_tr)
    n = clf.n_iter_
    assert n < 60  # stopped by the validation score
    assert len(clf.validation_scores_) == len(clf.validation_loss_curve_) == n
    assert clf.validation_loss_curve_per_class_.shape == (n, 10)
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    # the kept weights are those of the (first) best epoch, not the last one
    best = int(np.argmax(clf.validation_scores_))
    assert best < n - 1
    np.testing.assert_allclose(clf.predict_proba(X_te), snapshots[best], rtol=1e-12)
    assert not np.allclose(clf.predict_proba(X_te), snapshots[-1], rtol=1e-6)


def test_tol_stops_training(digits):
    X_tr, _, y_tr, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(8,), tol=10.0, n_iter_no_change=2,
                        max_iter=50, random_state=0).fit(X_tr, y_tr)
    # sklearn's rule: stop once more than n_iter_no_change epochs in a row
    # failed to improve (epoch 1 improves on inf, epochs 2-4 do not)
    assert clf.n_iter_ == 4


def test_convergence_warning_for_an_explicit_constant_run(digits):
    X_tr, _, y_tr, _ = digits
    with pytest.warns(ConvergenceWarning, match="maximum iterations"):
        MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, learning_rate="constant",
                      random_state=0).fit(X_tr, y_tr)


def test_callbacks_see_each_epoch_and_can_stop(digits):
    X_tr, _, y_tr, _ = digits
    seen = []

    def record(est, info):
        seen.append(info)
        assert est.n_iter_ == info["epoch"]

    def stop_at_3(est, info):
        return info["epoch"] >= 3

    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=10, early_stopping=True,
                        callbacks=[record, stop_at_3], random_state=0).fit(X_tr, y_tr)
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 3
    assert [i["epoch"] for i in seen] == [1, 2, 3]
    keys = {"epoch", "loss", "accuracy", "lr", "time", "loss_per_class",
            "val_loss", "val_accuracy", "val_loss_per_class"}
    assert keys <= set(seen[0])
    np.testing.assert_allclose(seen[-1]["loss_per_class"],
                               clf.loss_curve_per_class_[-1])
    assert seen[-1]["val_accuracy"] == clf.validation_scores_[-1]
    # the stopped model is fitted and usable
    assert clf.predict(X_tr[:3]).shape == (3,)


def test_a_single_callable_is_accepted_and_bad_ones_refused(digits):
    X_tr, _, y_tr, _ = digits
    calls = []
    MLPClassifier(hidden_layer_sizes=(4,), max_iter=2,
                  callbacks=lambda e, i: calls.append(i["epoch"])).fit(X_tr, y_tr)
    assert calls == [1, 2]
    with pytest.raises(TypeError, match="callables"):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=2,
                      callbacks=[print, "not callable"]).fit(X_tr, y_tr)


def test_keyboard_interrupt_keeps_last_finished_epoch(digits):
    X_tr, _, y_tr, _ = digits

    def interrupt(est, info):
        if info["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.warns(UserWarning, match="interrupted"):
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=10,
                            callbacks=interrupt, random_state=0).fit(X_tr, y_tr)
    assert clf.n_iter_ == 2 and len(clf.loss_curve_) == 2
    assert clf.loss_curve_per_class_.shape == (2, 10)


# ---------------------------------------------------------------- incremental


def test_partial_fit_one_epoch_per_call(digits):
    X_tr, X_te, y_tr, y_te = digits
    clf = MLPClassifier(hidden_layer_sizes=(32,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X_tr, y_tr)
    for _ in range(8):
        clf.partial_fit(X_tr, y_tr, classes=np.arange(10))
    # sklearn's count: n_iter_ is the last call's epochs, the curves keep all
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 8
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert clf.score(X_te, y_te) > 0.9
    # a class never announced in `classes` is refused, by name
    with pytest.raises(ValueError, match=r"\[10\]"):
        clf.partial_fit(X_tr[:5], np.array([10, 1, 2, 3, 4]))


def test_partial_fit_classes_can_be_absent_from_a_batch(digits):
    X_tr, _, y_tr, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    mask = y_tr < 5
    clf.partial_fit(X_tr[mask], y_tr[mask], classes=np.arange(10))
    assert clf.n_outputs_ == 10
    assert np.isnan(clf.loss_curve_per_class_[0, 5:]).all()
    assert np.isfinite(clf.loss_curve_per_class_[0, :5]).all()


def test_warm_start_continues_and_refuses_a_new_architecture(digits):
    X_tr, _, y_tr, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, warm_start=True,
                        random_state=0).fit(X_tr, y_tr)
    first = clf.coefs_[0].copy()
    clf.fit(X_tr, y_tr)
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 6
    assert not np.array_equal(first, clf.coefs_[0])
    clf.set_params(hidden_layer_sizes=(8,))
    with pytest.raises(ValueError, match=r"layer sizes changed from \[16\] to \[8\]"):
        clf.fit(X_tr, y_tr)


# ---------------------------------------------------------------- sklearn tools


def test_pipeline_gridsearch_parallel_and_pickle(digits):
    X_tr, X_te, y_tr, y_te = digits
    pipe = make_pipeline(StandardScaler(),
                         MLPClassifier(max_iter=10, random_state=0))
    grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(8,), (32,)]},
                        cv=2, n_jobs=2).fit(X_tr, y_tr)
    assert grid.best_params_["mlpclassifier__hidden_layer_sizes"] == (32,)
    best = grid.best_estimator_
    assert best[-1].loss_curve_per_class_.shape == (10, 10)
    restored = pickle.loads(pickle.dumps(best))
    np.testing.assert_array_equal(restored.predict_proba(X_te),
                                  best.predict_proba(X_te))
    assert restored.score(X_te, y_te) > 0.9
    # a restored model keeps training
    restored[-1].partial_fit(StandardScaler().fit(X_tr).transform(X_tr), y_tr)
    assert len(restored[-1].loss_curve_) == 11 and restored[-1].n_iter_ == 1


def test_clone_gives_an_unfitted_copy_with_the_same_params(digits):
    X_tr, _, y_tr, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(8, 4), activation="tanh",
                        max_iter=2).fit(X_tr, y_tr)
    twin = clone(clf)
    assert twin.get_params() == clf.get_params()
    assert not hasattr(twin, "coefs_")


def test_predict_in_blocks_matches_one_block(digits, monkeypatch):
    import skdigits._engine._models as models

    X_tr, X_te, y_tr, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3,
                        random_state=0).fit(X_tr, y_tr)
    whole = clf.predict_proba(X_te)
    monkeypatch.setattr(models, "PREDICT_BLOCK", 7)
    # each row on its own: the same bits whatever the blocks
    np.testing.assert_array_equal(clf.predict_proba(X_te), whole)
    np.testing.assert_array_equal(clf.predict_proba(X_te[:1]), whole[:1])


# ---------------------------------------------------------------- memory


@pytest.mark.parametrize("in_dtype,early_stopping", [
    (np.float32, False), (np.float64, False), (np.float32, True)])
def test_fit_does_not_copy_the_training_data(in_dtype, early_stopping):
    rng = np.random.RandomState(0)
    X = rng.rand(40_000, 200).astype(in_dtype)
    y = rng.randint(0, 10, 40_000)
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=1, random_state=0,
                        early_stopping=early_stopping)
    clf.fit(X[:500], y[:500])  # compile outside the measurement
    tracemalloc.start()
    try:
        clf.fit(X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # no copy of X: what fit allocates is a small fraction of the data
    assert peak < 0.25 * X.nbytes, (peak, X.nbytes)


# ---------------------------------------------------------------- logging


def test_verbose_logs_each_epoch(digits, caplog):
    X_tr, _, y_tr, _ = digits
    with caplog.at_level(logging.INFO, logger="skdigits"):
        MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, verbose=1).fit(X_tr, y_tr)
    lines = [r.getMessage() for r in caplog.records
             if r.getMessage().startswith("Epoch")]
    assert len(lines) == 3 and "loss =" in lines[0]


def test_silent_by_default_and_progress_bar_on_request(digits, capsys, monkeypatch):
    X_tr, _, y_tr, _ = digits
    MLPClassifier(hidden_layer_sizes=(8,), max_iter=2).fit(X_tr, y_tr)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    # verbose=2 draws a bar on a terminal only: a pipe or a log file would
    # keep every redraw
    MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, verbose=2).fit(X_tr, y_tr)
    assert "|" not in capsys.readouterr().err
    monkeypatch.setattr("skdigits._logging.on_terminal", lambda stream=None: True)
    MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, verbose=2).fit(X_tr, y_tr)
    err = capsys.readouterr().err
    # the bar, then in its place how the fit ended
    assert "0/2" in err and err.rstrip().endswith("MLPClassifier: 2 epochs")


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("sizes", [(), [], (0,), (-3,), (16, 0), (8.5,), "abc",
                                   (True,), 0, -1])
def test_bad_hidden_layer_sizes_are_named(digits, sizes):
    X_tr, _, y_tr, _ = digits
    with pytest.raises((ValueError, InvalidParameterError), match="hidden_layer_sizes"):
        MLPClassifier(hidden_layer_sizes=sizes).fit(X_tr, y_tr)


def test_an_int_hidden_layer_size_means_one_layer(digits):
    X_tr, _, y_tr, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=12, max_iter=1).fit(X_tr, y_tr)
    assert clf.coefs_[0].shape == (64, 12)


@pytest.mark.parametrize("params,match", [
    ({"activation": "softplus"}, "activation"),
    ({"solver": "newton-cg"}, "solver"),
    ({"max_fun": 0}, "max_fun"),
    ({"n_iter_no_change": 0.5}, "n_iter_no_change"),
    ({"learning_rate": "linear"}, "learning_rate"),
    ({"batch_size": 0}, "batch_size"),
    ({"dtype": "float16"}, "dtype"),
    ({"lr_gamma": 0.0}, "lr_gamma"),
    ({"lr_step_size": 0}, "lr_step_size"),
    ({"alpha": -1.0}, "alpha"),
    ({"momentum": 1.5}, "momentum"),
    ({"label_smoothing": 1.0}, "label_smoothing"),
    ({"label_smoothing": -0.1}, "label_smoothing"),
    ({"warmup_fraction": 1.0}, "warmup_fraction"),
    ({"standardize": "yes"}, "standardize"),
    ({"learning_rate": "one-cycle"}, "learning_rate"),
])
def test_bad_parameters_are_named(digits, params, match):
    X_tr, _, y_tr, _ = digits
    with pytest.raises(InvalidParameterError, match=match):
        MLPClassifier(**params).fit(X_tr, y_tr)


def test_bad_data_gives_clear_errors(digits):
    X_tr, _, y_tr, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=1)
    X_nan = X_tr.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.fit(X_nan, y_tr)
    X_inf = X_tr.copy()
    X_inf[1, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        clf.fit(X_inf, y_tr)
    with pytest.raises(ValueError, match="only one class"):
        clf.fit(X_tr, np.zeros(len(X_tr)))
    with pytest.raises(ValueError, match="2D array"):
        clf.fit(X_tr[0], y_tr[:1])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.fit(X_tr, y_tr[:-1])
    clf.fit(X_tr, y_tr)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X_tr[:, :10])


def test_divergence_raises_and_suggests_a_smaller_learning_rate(digits):
    X_tr, _, y_tr, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(32,), solver="sgd",
                        learning_rate="constant", learning_rate_init=1e6,
                        max_iter=5, random_state=0)
    with pytest.raises(TrainingDivergedError, match="smaller learning_rate_init"):
        clf.fit(X_tr * 100, y_tr)
    # it is a ValueError too; diverging in the first epoch leaves nothing
    # half-fitted behind
    assert issubclass(TrainingDivergedError, ValueError)
    assert not hasattr(clf, "coefs_") and not hasattr(clf, "classes_")
    # a warm refit that diverges keeps the previous model intact
    good = MLPClassifier(hidden_layer_sizes=(32,), max_iter=3, warm_start=True,
                         random_state=0).fit(X_tr, y_tr)
    before = good.predict_proba(X_tr[:20])
    good.set_params(solver="sgd", learning_rate="constant", learning_rate_init=1e6)
    with pytest.raises(TrainingDivergedError):
        good.fit(X_tr * 100, y_tr)
    np.testing.assert_array_equal(good.predict_proba(X_tr[:20]), before)
    assert good.n_iter_ == 3 and len(good.loss_curve_) == 3
    assert all(np.isfinite(W).all() for W in good.coefs_)


def test_unfitted_predict_raises(digits):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        MLPClassifier().predict(digits[1])


# ---------------------------------------------------------------- standardize


def skdigits_standardisation(X, w=None):
    mean = np.average(X, axis=0, weights=w)
    std = np.sqrt(np.average((X - mean) ** 2, axis=0, weights=w))
    return mean, std + 0.25 * std.max()


def test_standardize_trains_as_on_standardised_inputs(digits):
    """In float64, ``standardize=True`` is the same training as
    ``standardize=False`` on ``(X - mean) / scale``, and the exported weights
    act on the raw inputs."""
    X_tr, X_te, y_tr, _ = digits
    mean, scale = skdigits_standardisation(X_tr)
    params = dict(hidden_layer_sizes=(70, 20), dtype="float64", max_iter=3,
                  random_state=0)
    inside = quiet_fit(MLPClassifier(**params), X_tr, y_tr)
    outside = quiet_fit(MLPClassifier(standardize=False, **params),
                        (X_tr - mean) / scale, y_tr)
    np.testing.assert_allclose(inside.input_mean_, mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(inside.input_scale_, scale, rtol=1e-12)
    np.testing.assert_allclose(inside.loss_curve_, outside.loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(inside.predict_proba(X_te),
                               outside.predict_proba((X_te - mean) / scale),
                               rtol=1e-8, atol=1e-12)
    # coefs_ and intercepts_ take X as it is
    np.testing.assert_allclose(numpy_forward(inside, X_te, "relu"),
                               inside.decision_function(X_te), rtol=1e-9, atol=1e-9)
    assert outside.input_mean_ is None and outside.input_scale_ is None


def test_standardisation_uses_the_training_rows_and_their_weights(digits):
    X_tr, _, y_tr, _ = digits
    sw = np.random.default_rng(0).uniform(0, 2, size=len(y_tr))
    sw[:100] = 0.0  # rows with no weight do not count
    clf = quiet_fit(MLPClassifier(max_iter=1, random_state=0), X_tr, y_tr,
                    sample_weight=sw)
    mean, scale = skdigits_standardisation(X_tr, sw)
    # (the training weights are held in the model's dtype, float32)
    np.testing.assert_allclose(clf.input_mean_, mean, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(clf.input_scale_, scale, rtol=1e-6)
    # with early stopping, the validation rows are left out
    es = quiet_fit(MLPClassifier(max_iter=1, early_stopping=True,
                                 validation_fraction=0.5, random_state=0), X_tr, y_tr)
    assert not np.allclose(es.input_mean_, skdigits_standardisation(X_tr)[0])


def test_warm_start_and_partial_fit_keep_the_first_statistics(digits):
    X_tr, _, y_tr, _ = digits
    half = len(y_tr) // 2
    pf = MLPClassifier(random_state=0)
    pf.partial_fit(X_tr[:half], y_tr[:half], classes=np.unique(y_tr))
    first = pf.input_mean_.copy(), pf.input_scale_.copy()
    np.testing.assert_allclose(first[0], X_tr[:half].mean(axis=0), atol=1e-12)
    pf.partial_fit(X_tr[half:] * 2, y_tr[half:])
    np.testing.assert_array_equal(pf.input_mean_, first[0])
    np.testing.assert_array_equal(pf.input_scale_, first[1])
    ws = quiet_fit(MLPClassifier(max_iter=1, warm_start=True, random_state=0),
                   X_tr[:half], y_tr[:half])
    mean = ws.input_mean_.copy()
    quiet_fit(ws, X_tr[half:] * 2, y_tr[half:])
    np.testing.assert_array_equal(ws.input_mean_, mean)
    # a fresh fit learns them again
    fresh = quiet_fit(clone(ws).set_params(warm_start=False), X_tr[half:] * 2,
                      y_tr[half:])
    np.testing.assert_allclose(fresh.input_mean_, 2 * X_tr[half:].mean(axis=0),
                               atol=1e-12)


def test_features_in_different_units_take_a_scaler_in_front(digits):
    """The floor (a quarter of the largest standard deviation) is made for
    inputs in one unit, like pixels; features in different units get a
    StandardScaler first, after which every feature has the same scale."""
    X_tr, X_te, y_tr, y_te = digits
    f = np.logspace(-3, 3, X_tr.shape[1])
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=10, random_state=0))
    assert quiet_fit(pipe, X_tr * f, y_tr).score(X_te * f, y_te) > 0.95
    scale = pipe[-1].input_scale_[X_tr.std(axis=0) > 0]
    np.testing.assert_allclose(scale, 1.25, rtol=1e-6)


# ---------------------------------------------------------------- smoothing


def numpy_losses(clf, X, y, smooth):
    """Per-row smoothed objective and plain cross-entropy of the fitted
    weights (float64)."""
    Z = numpy_forward(clf, X, clf.activation)
    logp = Z - Z.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    k = Z.shape[1]
    T = (1 - smooth) * np.eye(k)[y] + smooth / k
    return -(T * logp).sum(axis=1), -logp[np.arange(len(y)), y]


def test_loss_curve_is_the_smoothed_objective_and_per_class_the_plain_loss(digits):
    """One full-batch epoch at a negligible rate: the loss is measured at
    (almost exactly) the weights that the model keeps."""
    X_tr, _, y_tr, _ = digits
    n = len(y_tr)
    clf = quiet_fit(MLPClassifier(hidden_layer_sizes=(20,), label_smoothing=0.3,
                                  alpha=0.0, batch_size=n, max_iter=1,
                                  learning_rate="constant", learning_rate_init=1e-12,
                                  dtype="float64", random_state=0), X_tr, y_tr)
    objective, plain = numpy_losses(clf, X_tr, y_tr, 0.3)
    np.testing.assert_allclose(clf.loss_curve_[0], objective.mean(), rtol=1e-8)
    np.testing.assert_allclose(clf.loss_curve_per_class_[0],
                               np.bincount(y_tr, plain) / np.bincount(y_tr),
                               rtol=1e-8)
    assert np.abs(objective - plain).mean() > 0.1  # they differ


def test_validation_loss_is_the_plain_cross_entropy():
    """No label smoothing and no penalty in the validation curves: with every
    row of a class the same, each class's validation loss is the plain loss
    of its row under the kept weights."""
    rng = np.random.default_rng(0)
    protos = rng.normal(size=(3, 6))
    y = np.repeat(np.arange(3), 40)
    X = protos[y]
    clf = quiet_fit(MLPClassifier(hidden_layer_sizes=(8,), label_smoothing=0.4,
                                  alpha=5.0, early_stopping=True, max_iter=1,
                                  dtype="float64", random_state=0), X, y)
    _, plain = numpy_losses(clf, protos, np.arange(3), 0.4)
    np.testing.assert_allclose(clf.validation_loss_curve_per_class_[-1], plain,
                               rtol=1e-9)
    assert plain.min() - 1e-9 <= clf.validation_loss_curve_[-1] <= plain.max() + 1e-9


def test_label_smoothing_calibrates_less_confident_probabilities(digits):
    X_tr, X_te, y_tr, y_te = digits
    sharp = quiet_fit(MLPClassifier(label_smoothing=0.0, random_state=0), X_tr, y_tr)
    smooth = quiet_fit(MLPClassifier(label_smoothing=0.2, random_state=0), X_tr, y_tr)
    # the largest probability is capped near 1 - 0.2 + 0.2 / 10
    assert smooth.predict_proba(X_te).max(axis=1).mean() < \
        sharp.predict_proba(X_te).max(axis=1).mean()
    assert smooth.score(X_te, y_te) > 0.95


# ---------------------------------------------------------------- full data


@pytest.mark.full_data
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind,floor", [("digits", 0.980), ("fashion", 0.900)])
def test_full_dataset_accuracy_with_defaults(kind, floor, seed, data_home):
    """The defaults' promise (issue 10): at least 0.980 on MNIST and 0.900 on
    Fashion-MNIST for each of seeds 0-2, pixels / 255 as float32."""
    from skdigits.datasets import load_mnist

    X, y = load_mnist(kind, "train", data_home=data_home, return_X_y=True,
                      download_if_missing=False)
    Xt, yt = load_mnist(kind, "test", data_home=data_home, return_X_y=True,
                        download_if_missing=False)
    X = X.astype(np.float32) / 255
    Xt = Xt.astype(np.float32) / 255
    clf = MLPClassifier(random_state=seed).fit(X, y)
    assert clf.score(Xt, yt) >= floor
    assert clf.loss_curve_per_class_.shape == (clf.n_iter_, 10)
    last = clf.loss_curve_per_class_[-1]
    if kind == "digits":
        # 0 and 1 are learnt best; 8 and 9 stay among the hardest
        assert last[[0, 1]].max() < np.median(last)
        assert last[[8, 9]].min() > last[[0, 1]].max()
    else:
        # Shirt (6) is the hardest Fashion class; Trouser (1) among the easiest
        assert last.argmax() == 6 and last[1] < np.median(last)


def test_a_fit_never_changes_the_blas_limits(digits):
    from threadpoolctl import threadpool_info

    X_tr, X_te, y_tr, _ = digits
    before = [p["num_threads"] for p in threadpool_info()]
    during = []

    def spy(est, info):
        during.append([p["num_threads"] for p in threadpool_info()])

    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, callbacks=spy)
    clf.fit(X_tr, y_tr).predict(X_te)
    assert during == [before, before]
    assert [p["num_threads"] for p in threadpool_info()] == before


# ---------------------------------------------------------------- review fixes


def test_a_failed_refit_keeps_the_previous_model(digits):
    X_tr, X_te, y_tr, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2,
                        random_state=0).fit(X_tr, y_tr)
    before = clf.predict_proba(X_te)
    with pytest.raises(ValueError):
        clf.fit(X_tr[:, :10], y_tr % 3, sample_weight=np.zeros(len(y_tr)))
    with pytest.raises(ValueError, match="only one class"):
        clf.fit(X_tr, np.zeros(len(y_tr)))
    with pytest.raises(TypeError, match="callables"):
        clf.set_params(callbacks=[1]).fit(X_tr, y_tr)
    assert clf.n_features_in_ == 64 and len(clf.classes_) == 10
    np.testing.assert_array_equal(clf.predict_proba(X_te), before)


def test_a_bad_first_fit_leaves_the_estimator_unfitted(digits, monkeypatch):
    from sklearn.exceptions import NotFittedError

    X_tr, X_te, y_tr, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(8,), callbacks=[1])
    with pytest.raises(TypeError):
        clf.fit(X_tr, y_tr)
    with pytest.raises(ValueError, match="n_jobs == 0"):
        clf.set_params(callbacks=None, n_jobs=0).fit(X_tr, y_tr)
    with pytest.raises(NotFittedError):
        clf.predict(X_te)


def test_callbacks_see_a_consistent_model_even_when_they_raise(digits):
    X_tr, X_te, y_tr, _ = digits
    seen = []

    def check(est, info):
        seen.append(est.predict_proba(X_te[:5]))
        assert est.loss_curve_per_class_.shape == (info["epoch"], 10)
        np.testing.assert_allclose(numpy_forward(est, X_te[:5], "relu"),
                                   est.decision_function(X_te[:5]), rtol=1e-5,
                                   atol=1e-6)
        if info["epoch"] == 2:
            raise RuntimeError("stop here")

    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, callbacks=check,
                        random_state=0)
    with pytest.raises(RuntimeError, match="stop here"):
        clf.fit(X_tr, y_tr)
    # two finished epochs are kept, and every attribute says so
    assert clf.n_iter_ == 2 and len(clf.loss_curve_) == 2
    assert clf.loss_curve_per_class_.shape == (2, 10)
    assert clf.loss_ == clf.loss_curve_[-1]
    np.testing.assert_array_equal(clf.predict_proba(X_te[:5]), seen[-1])


def test_class_weight_dict_works_with_partial_fit_batches_missing_classes(digits):
    X_tr, _, y_tr, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(8,), class_weight={0: 2.0})
    clf.partial_fit(X_tr[y_tr != 0], y_tr[y_tr != 0], classes=np.arange(10))
    clf.partial_fit(X_tr, y_tr)
    assert len(clf.loss_curve_) == 2
    with pytest.raises(ValueError, match=r"not classes of the model"):
        MLPClassifier(class_weight={42: 2.0}).fit(X_tr, y_tr)


def test_partial_fit_schedules_count_epochs_across_calls(digits):
    X_tr, _, y_tr, _ = digits
    lrs = []
    clf = MLPClassifier(hidden_layer_sizes=(8,), learning_rate="invscaling",
                        learning_rate_init=0.1, power_t=0.5,
                        callbacks=lambda est, info: lrs.append(info["lr"]))
    for _ in range(4):
        clf.partial_fit(X_tr, y_tr, classes=np.arange(10))
    np.testing.assert_allclose(lrs, 0.1 / np.sqrt(np.arange(1, 5)))


def test_partial_fit_keeps_the_model_dtype(digits):
    X_tr, _, y_tr, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(8,), dtype=None, random_state=0)
    clf.partial_fit(X_tr.astype(np.float64), y_tr, classes=np.arange(10))
    clf.partial_fit(X_tr.astype(np.float32), y_tr)
    assert clf.coefs_[0].dtype == np.float64
    assert clf._opt_t == 2 * int(np.ceil(len(X_tr) / 128))  # Adam kept counting


# a split that trains on the one weighted row warns that standardize has no
# spread (tested on its own); this test looks for the other splits' error
@pytest.mark.filterwarnings("ignore:Every feature is constant:UserWarning")
def test_early_stopping_with_all_weight_in_validation_is_a_clear_error():
    rng = np.random.RandomState(0)
    X = rng.rand(40, 3)
    y = np.arange(40) % 2
    w = np.zeros(40)
    w[0] = 1.0
    clf = MLPClassifier(hidden_layer_sizes=(4,), early_stopping=True,
                        validation_fraction=0.5, random_state=0)
    for seed in range(20):  # find a split that holds the weighted row out
        clf.set_params(random_state=seed)
        try:
            clf.fit(X, y, sample_weight=w)
        except ValueError as exc:
            assert "validation split" in str(exc)
            break
    else:
        pytest.fail("no split put the weighted row in the validation set")


def test_tiny_stratified_validation_falls_back_to_a_plain_split():
    rng = np.random.RandomState(0)
    X = rng.rand(12, 3)
    y = np.arange(12) % 3
    clf = MLPClassifier(hidden_layer_sizes=(4,), early_stopping=True,
                        validation_fraction=0.8, max_iter=3)
    with pytest.warns(UserWarning, match="cannot be stratified"):
        clf.fit(X, y)
    assert clf.n_iter_ >= 1


@pytest.mark.parametrize("first,second", [(True, False), (False, True)])
def test_warm_refit_toggling_early_stopping_keeps_curves_in_step(digits, first, second):
    X_tr, _, y_tr, _ = digits
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, warm_start=True,
                        early_stopping=first, random_state=0).fit(X_tr, y_tr)
    clf.set_params(early_stopping=second, max_iter=2).fit(X_tr, y_tr)
    assert clf.n_iter_ == 2 and len(clf.loss_curve_) == 5
    assert len(clf.validation_scores_) == len(clf.validation_loss_curve_) == 5
    assert clf.validation_loss_curve_per_class_.shape == (5, 10)
    with_val = slice(0, 3) if first else slice(3, 5)
    without = slice(3, 5) if first else slice(0, 3)
    assert np.isfinite(clf.validation_scores_[with_val]).all()
    assert np.isnan(clf.validation_scores_[without]).all()
    assert np.isnan(clf.validation_loss_curve_per_class_[without]).all()
    assert clf.best_validation_score_ == np.nanmax(clf.validation_scores_)
