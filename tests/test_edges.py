"""Values at the edges: weights, huge inputs, overflowing schedules, complex
data and models too big for the machine get a clear error or a sane result,
never a silently wrong model or a crash."""

import math
import sys
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

import skdigits._engine._schedules as _schedules
import skdigits._system
from skdigits import MLPClassifier, SoftmaxRegression
from skdigits._engine._train import TrainingDivergedError

X, y = load_digits(return_X_y=True)
X = X[:300] / 16.0
y = y[:300]

ESTIMATORS = [
    lambda **p: SoftmaxRegression(max_iter=3, random_state=0, **p),
    lambda **p: MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0,
                              **p),
]
IDS = ["softmax", "mlp"]


def _fit(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


# ---------------------------------------------------------------- weights


@pytest.mark.parametrize("make", ESTIMATORS, ids=IDS)
@pytest.mark.parametrize("value", [-1, np.nan, np.inf, -np.inf, "heavy"])
def test_bad_class_weight_values_are_refused(make, value):
    est = make(class_weight={0: value})
    with pytest.raises(ValueError, match=r"class_weight\[0\]"):
        est.fit(X, y)
    assert not hasattr(est, "classes_")


@settings(max_examples=60, deadline=None)
@given(n_classes=st.integers(2, 14), as_text=st.booleans(), data=st.data())
def test_class_weight_keys_are_matched_by_equality_at_any_number_of_classes(
        n_classes, as_text, data):
    """A key is a class only when it equals one: "1" is not the class 1, nor 1
    the class "1". From 10 classes on, np.isin compared through a sort that
    cast the classes to strings, so such a key was taken for a class and its
    weight silently dropped (MNIST has 10 classes)."""
    from skdigits._validation import training_weights

    classes = np.arange(n_classes)
    labels = classes.astype(str) if as_text else classes
    label = data.draw(st.sampled_from(classes.tolist()))
    y_idx = np.arange(2 * n_classes) % n_classes
    X_ = np.zeros((len(y_idx), 1))
    wrong_key = str(label) if not as_text else label
    with pytest.raises(ValueError, match="not classes of the model"):
        training_weights(None, {wrong_key: 50.0}, X_, y_idx, labels, labels[y_idx],
                         np.float64)
    right_key = labels[label].item()
    _, raw = training_weights(None, {right_key: 50.0}, X_, y_idx, labels,
                              labels[y_idx], np.float64)
    np.testing.assert_array_equal(raw, np.where(y_idx == label, 50.0, 1.0))


@pytest.mark.parametrize("make", ESTIMATORS, ids=IDS)
@pytest.mark.parametrize("classes,problem", [
    ([0, 1, 2, np.nan], "contains NaN"),
    (np.array([[0, 1], [2, 3]]), "1-d array-like"),
    (5, "1-d array-like"),
    ({0, 1, 2, 3}, "1-d array-like"),
    (np.array([0, "a", 1.5], dtype=object), "cannot be compared"),
    ([0, 1, 1, 2], "duplicates"),
])
def test_malformed_partial_fit_classes_are_refused_by_name(make, classes, problem):
    """A NaN class was accepted and left a model that every later call
    called damaged; a 2-d array was reported as duplicates; a scalar or a set
    gave a bare TypeError."""
    est = make()
    with pytest.raises(ValueError, match=problem):
        est.partial_fit(X, y % 4, classes=classes)
    assert not hasattr(est, "classes_")


@pytest.mark.parametrize("make", ESTIMATORS, ids=IDS)
def test_zero_class_weight_ignores_the_class(make):
    est = _fit(make(class_weight={0: 0.0}), X, y)
    assert np.isfinite(est.loss_curve_).all()


@pytest.mark.parametrize("make", ESTIMATORS, ids=IDS)
@pytest.mark.parametrize("weight", [1e307, 1.7e308, 1e-300])
def test_uniform_weights_of_any_size_train_like_no_weights(make, weight):
    plain = _fit(make(), X, y)
    weighted = _fit(make(), X, y, sample_weight=np.full(len(y), weight))
    np.testing.assert_array_equal(weighted.loss_curve_, plain.loss_curve_)
    np.testing.assert_array_equal(weighted.predict_proba(X), plain.predict_proba(X))


# ---------------------------------------------------------------- huge inputs

MODELS = {
    "mlp float32": MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0),
    "mlp float64 tanh": MLPClassifier(hidden_layer_sizes=(16, 8), activation="tanh",
                                      dtype="float64", max_iter=3, random_state=0),
    "softmax float32": SoftmaxRegression(max_iter=3, random_state=0),
    "softmax ovr": SoftmaxRegression(multi_class="ovr", max_iter=3, random_state=0),
}
FITTED = {}


def _model(name):
    if name not in FITTED:
        X32 = X.astype(np.float32)  # float32 models, float64 input below
        FITTED[name] = _fit(MODELS[name], X32 if "float64" not in name else X, y)
    return FITTED[name]


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(MODELS)),
       exponent=st.integers(0, 308),
       mantissa=st.floats(1.0, 1.79),
       signs=st.lists(st.sampled_from([-1.0, 0.0, 1.0]), min_size=64, max_size=64))
def test_finite_inputs_give_finite_probabilities(name, exponent, mantissa, signs):
    model = _model(name)
    Xb = np.outer(np.ones(3), np.resize(signs, 64)) * (mantissa * 10.0 ** exponent)
    Xb[1] = X[0]  # an ordinary row beside huge ones
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings reach the user
        proba = model.predict_proba(Xb)
        log_proba = model.predict_log_proba(Xb)
        pred = model.predict(Xb)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert not np.isnan(log_proba).any()
    np.testing.assert_array_equal(pred, model.classes_[proba.argmax(axis=1)])
    # the ordinary row is unaffected by its huge neighbours
    np.testing.assert_allclose(proba[1], model.predict_proba(Xb[1:2])[0],
                               rtol=1e-12, atol=1e-15)


def test_float32_model_predicts_float64_input_without_casting_it():
    model = _model("softmax float32")
    Xb = np.full((1, 64), 1e300)
    # float32 would turn 1e300 into inf, and inf - inf into NaN
    assert np.isfinite(model.predict_proba(Xb)).all()
    np.testing.assert_allclose(model.decision_function(Xb),
                               Xb @ model.coef_.T.astype(np.float64)
                               + model.intercept_, rtol=1e-6)


@pytest.mark.parametrize("make", ESTIMATORS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float16, np.longdouble, np.uint8, np.int64, bool])
def test_any_real_dtype_that_fit_takes_predict_takes_too(make, dtype):
    # float16 and long double X crashed inside Numba at predict time
    Xd = np.round(X[:60] * 4).astype(dtype)
    model = _fit(make(), Xd, y[:60])
    ref = model.predict_proba(Xd.astype(np.float64))
    proba = model.predict_proba(Xd)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba, ref, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(model.predict(Xd), model.predict(Xd.astype(float)))


# ---------------------------------------------------------------- standardisation

_ROW = np.random.RandomState(0).uniform(0.1, 3.0, size=8) * 1.37
_ROWS = np.tile(_ROW, (len(y), 1))
_FEATURES = np.random.RandomState(1).uniform(0.1, 3.0, size=(len(y), 8)) * 1.37


@pytest.mark.parametrize("data,weight", [
    (_FEATURES, np.eye(1, len(y), 7).ravel() * 0.3),  # all on one sample
    (_ROWS, None),  # identical rows
    (_ROWS, np.random.RandomState(2).uniform(0.1, 1.0, len(y))),
    (scipy.sparse.csr_matrix(_ROWS), None),
], ids=["one-sample", "identical-rows", "identical-rows-weighted", "sparse"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_constant_features_are_not_divided_by_rounding_noise(data, weight, dtype):
    """Issue 19, finding 7: the weighted variance of a constant feature is
    rounding noise (a scale of about 1e-16); dividing by it gave weights of
    about 1e15. It is now no spread at all, and a warning says so."""
    est = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0,
                        dtype=dtype, standardize=True)
    with pytest.warns(UserWarning, match="Every feature is constant .* only centred"
                      ) as record:
        _fit(est, data, y, sample_weight=weight)
    assert record[0].filename == __file__  # the line that called fit
    np.testing.assert_array_equal(est.input_scale_, 1.0)
    assert np.isfinite(est.loss_curve_).all() and max(est.loss_curve_) < 10
    assert max(np.abs(W).max() for W in est.coefs_) < 10


def test_a_constant_feature_among_others_gets_the_floor(recwarn):
    """One constant feature among varying ones is scaled by the floor (a
    quarter of the largest spread), not by its rounding noise, silently."""
    data = _FEATURES.copy()
    data[:, 3] = _ROW[3]
    weight = np.random.RandomState(2).uniform(0.1, 1.0, len(y))
    est = _fit(MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0),
               data, y, sample_weight=weight)
    assert not [w for w in recwarn if "constant" in str(w.message)]
    scale = est.input_scale_
    assert (np.delete(scale, 3) > scale[3]).all()
    # scale = std + top / 4 with std = 0 for the constant feature
    assert scale[3] == pytest.approx(0.25 * (scale.max() - scale[3]), rel=1e-12)


# ---------------------------------------------------------------- schedules


@pytest.mark.parametrize("make", ESTIMATORS, ids=IDS)
@pytest.mark.parametrize("params,culprit", [
    (dict(learning_rate="invscaling", power_t=1e6), "power_t"),
    (dict(learning_rate="invscaling", power_t=700.0), "epoch 3 .*power_t"),
    # Adam's first step, lr / (1 - beta_1)
    (dict(learning_rate_init=1e308, beta_1=0.999), "learning_rate_init"),
    (dict(solver="sgd", learning_rate="adaptive", learning_rate_init=np.inf),
     "learning_rate_init"),
])
def test_overflowing_schedules_are_refused_before_training(make, params, culprit):
    est = make(**params)
    with pytest.raises(ValueError, match=culprit) as info:
        est.fit(X, y)
    assert "diverged" not in str(info.value)
    assert not hasattr(est, "n_iter_")


class _CountedRates:
    """Counts the calls to every schedule's ``rates`` (and stops a runaway
    loop: the check used to compute every epoch's rates, 15 minutes for
    ``max_iter=10**9``)."""

    def __init__(self, monkeypatch, limit=100):
        self.epochs = []
        for cls in (_schedules.Constant, _schedules.InvScaling, _schedules.Cosine,
                    _schedules.OneCycle, _schedules.Step, _schedules.Adaptive):
            monkeypatch.setattr(cls, "rates", self._wrap(cls.rates, limit))

    def _wrap(self, rates, limit):
        def counted(schedule, epoch, n_epochs):
            self.epochs.append(epoch)
            if len(self.epochs) > limit:
                raise AssertionError(f"more than {limit} calls to rates")
            return rates(schedule, epoch, n_epochs)
        return counted


@pytest.mark.parametrize("make", ESTIMATORS, ids=IDS)
@pytest.mark.parametrize("schedule", _schedules.SCHEDULES)
def test_a_huge_max_iter_starts_training_at_once(make, schedule, monkeypatch):
    """Issue 19, finding 8: the schedule is checked in a few calls, not one
    per epoch of max_iter (10**9 took about 15 minutes)."""
    counted = _CountedRates(monkeypatch)
    est = make(learning_rate=schedule, solver="sgd", callbacks=lambda e, i: True)
    est.set_params(max_iter=10**9)
    est.fit(X, y)  # the callback stops it after the first epoch
    assert est.n_iter_ == 1
    assert len(counted.epochs) <= 4, counted.epochs  # the check, then one epoch


@pytest.mark.parametrize("make", ESTIMATORS, ids=IDS)
def test_a_late_overflow_names_its_first_epoch_in_a_few_calls(make, monkeypatch):
    # (epoch + 1) ** 40 first overflows when epoch + 1 exceeds 1.8e308 ** (1 / 40)
    near = int(sys.float_info.max ** (1 / 40))  # about 5.1e7
    first = next(n for n in range(near - 3, near + 4)
                 if not math.isfinite(_safe_pow(n, 40.0)))
    assert math.isfinite(_safe_pow(first - 1, 40.0))
    counted = _CountedRates(monkeypatch)
    est = make(learning_rate="invscaling", solver="sgd", power_t=40.0)
    est.set_params(max_iter=10**9)
    with pytest.raises(ValueError, match=f"epoch {first} .*power_t"):
        est.fit(X, y)
    assert not hasattr(est, "n_iter_")
    assert len(counted.epochs) <= 40


def _safe_pow(base, exponent):
    try:
        return float(base) ** exponent
    except OverflowError:
        return math.inf


@settings(max_examples=150, deadline=None)
@given(schedule=st.sampled_from(_schedules.SCHEDULES),
       lr=st.sampled_from([1e-3, 1.0, 1e300, 1.7e308, math.inf]),
       power_t=st.sampled_from([0.0, 0.5, 100.0, 300.0, 1e6]),
       gamma=st.sampled_from([1e-300, 0.1, 1.0]),
       step_size=st.integers(1, 5), warmup=st.sampled_from([0.0, 0.3, 0.99]),
       n_epochs=st.integers(1, 40), incremental=st.booleans(),
       done=st.integers(0, 20))
def test_the_schedule_check_agrees_with_checking_every_epoch(
        schedule, lr, power_t, gamma, step_size, warmup, n_epochs, incremental, done):
    est = SoftmaxRegression(learning_rate=schedule, learning_rate_init=lr,
                            power_t=power_t, lr_gamma=gamma, lr_step_size=step_size,
                            warmup_fraction=warmup, solver="sgd")
    est._adaptive_lr = lr
    est._n_epochs_total = done
    if incremental:
        n_epochs = 1
    expected = None
    for epoch in range(n_epochs):  # what the check did before, epoch by epoch
        try:
            est._epoch_rates(est._schedule(), epoch, n_epochs, incremental)
        except ValueError as error:
            expected = str(error)
            break
    if expected is None:
        est._check_schedule(n_epochs, incremental)
    else:
        with pytest.raises(ValueError) as info:
            est._check_schedule(n_epochs, incremental)
        assert str(info.value) == expected


@pytest.mark.parametrize("make", ESTIMATORS, ids=IDS)
def test_a_huge_learning_rate_is_named_when_training_diverges(make):
    with pytest.raises(ValueError, match="smaller learning_rate_init"):
        make(learning_rate_init=1e308).fit(X, y)


def test_standardize_refuses_features_whose_variance_overflows():
    """Features beyond about 1e154 have squares beyond float64: the MLP's
    standardisation took an infinite scale, the fit "succeeded", and every
    prediction then called the model file damaged."""
    with pytest.raises(ValueError, match=r"standardize cannot scale X: the variance "
                                         r"of features \[1, 2, 3, 4, 5\] \.\.\. "
                                         r"overflows float64"):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X * 1e160, y)


def test_lbfgs_that_moves_nothing_on_huge_features_is_an_error():
    """On this data at 1e154 scipy counts one iteration and reports success
    ("relative reduction of f") with the starting weights unchanged: the fit
    returned an all-zero model with no warning."""
    from skdigits.datasets import load_mnist

    Xs, ys = load_mnist(sample=True, return_X_y=True)
    with pytest.raises(TrainingDivergedError, match="could not take a single step"):
        SoftmaxRegression(solver="lbfgs", random_state=0).fit(
            Xs[:1000] / 255.0 * 1e154, ys[:1000])


@pytest.mark.parametrize("model", ["softmax", "mlp"])
def test_an_lbfgs_warm_start_at_an_optimum_is_no_stuck_start(model):
    """Large features and starting weights already within tol (a refit of a
    converged model): scipy returns them unchanged, which is an optimum, not
    a start that could not move."""
    make = (lambda: SoftmaxRegression(solver="lbfgs", warm_start=True, tol=0.1,
                                      random_state=0)) if model == "softmax" else (
        lambda: MLPClassifier((8,), solver="lbfgs", warm_start=True, tol=0.1,
                              random_state=0))
    est = _fit(make(), X * 1e7, y)
    before = [a.copy() for a in (est.coefs_ if model == "mlp" else [est.coef_])]
    _fit(est, X * 1e7, y)
    after = est.coefs_ if model == "mlp" else [est.coef_]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize("method", ["predict_proba", "predict_log_proba", "predict"])
def test_the_uniform_rows_warning_names_the_users_line(method, monkeypatch):
    """Through predict_proba the warning pointed into skdigits' own _base.py
    (a fixed stacklevel=2 from predict_log_proba)."""
    est = _fit(SoftmaxRegression(max_iter=2, random_state=0), X, y)

    def nan_rows(Z):
        out = np.zeros(Z.shape)
        out[0] = np.nan
        return out

    monkeypatch.setattr(est, "_log_proba_rows", nan_rows)
    with pytest.warns(RuntimeWarning, match="even in extended precision") as record:
        getattr(est, method)(X[:3])
    assert record[0].filename == __file__


@pytest.mark.parametrize("make", ESTIMATORS, ids=IDS)
def test_an_overflowing_epoch_stops_without_numpy_warnings(make):
    """The epoch's sums overflow before the divergence check sees them; NumPy
    printed "overflow encountered in reduce" above the error. (The MLP is
    not standardised here: its standardisation refuses such features.)"""
    est = make(solver="sgd")
    if isinstance(est, MLPClassifier):
        est.set_params(standardize=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TrainingDivergedError):
            est.fit(X * 3e154, y)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]


# ---------------------------------------------------------------- complex data


@pytest.mark.parametrize("make", ESTIMATORS, ids=IDS)
def test_complex_input_gets_a_short_message(make):
    Xc = (X + 1j).astype(np.complex128)
    with pytest.raises(ValueError, match="Complex data not supported") as info:
        make().fit(Xc, y)
    assert len(str(info.value)) < 200 and "(300, 64)" in str(info.value)
    with pytest.raises(ValueError, match="Complex data not supported"):
        make().fit(Xc.tolist(), y)
    est = _fit(make(), X, y)
    with pytest.raises(ValueError, match="Complex data not supported") as info:
        est.predict(Xc)
    assert len(str(info.value)) < 200


# ---------------------------------------------------------------- memory


def test_a_model_larger_than_memory_is_refused_before_allocating(monkeypatch):
    monkeypatch.setattr(skdigits._system, "available_memory", lambda: 2**30)
    est = MLPClassifier(hidden_layer_sizes=(1_000_000,), max_iter=1)
    tracemalloc.start()
    try:
        with pytest.raises(MemoryError,
                           match=r"layer sizes \[64, 1000000, 10\]") as info:
            est.fit(X[:20], y[:20])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "1.00 GiB of memory available" in str(info.value)
    assert peak < 2**24
    assert not hasattr(est, "classes_")


def test_weights_are_initialised_in_the_model_dtype():
    est = MLPClassifier(hidden_layer_sizes=(20_000,))
    model = est._model(784, 10, 0)
    tracemalloc.start()
    try:
        theta = est._init_params(model, np.random.RandomState(0), np.float32)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert theta.dtype == np.float32
    assert peak < 1.2 * theta.nbytes  # no float64 temporary of the layer
    # the same draws as one float64 call, cast
    ref = est._init_params(model, np.random.RandomState(0), np.float64)
    np.testing.assert_array_equal(theta, ref.astype(np.float32))
