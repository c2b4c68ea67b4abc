"""Ctrl-C anywhere in training leaves one consistent model (issue 19, finding 3).

A KeyboardInterrupt during ``fit`` becomes a warning, as in scikit-learn's
MLP, and the model keeps its last recorded epoch. Everything that says where
training stands (the weights, the optimizer moments and step count, the
shuffle's random state, the counters, every curve, the early-stopping
bookkeeping) must then describe that same epoch: the model equals an
uninterrupted fit with that many epochs, bit for bit, and so does any later
``partial_fit`` or warm-started ``fit``.

The interrupt is injected by a tracing hook at every line, call and return
of the engine's Python code in turn (the epoch loop, the training state, the
curves, the stopping rule, the schedules, the estimator's callback, adopt and
export hooks), so no point of the loop is left out.
"""

import copy
import sys
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification

import skdigits._engine._history as history_mod
import skdigits._engine._lbfgs as lbfgs_mod
import skdigits._engine._schedules as schedules_mod
import skdigits._engine._state as state_mod
import skdigits._engine._stopping as stopping_mod
import skdigits._engine._train as train_mod
from skdigits import MLPClassifier, SoftmaxRegression
from skdigits._base import BaseMinibatchClassifier

X, y = make_classification(n_samples=60, n_features=5, n_informative=4,
                           n_redundant=0, n_classes=3, random_state=0)

_FILES = {m.__file__ for m in (train_mod, lbfgs_mod, history_mod, stopping_mod,
                               schedules_mod, state_mod)}
_CODES = {BaseMinibatchClassifier._epoch_rates.__code__,
          BaseMinibatchClassifier._call_callbacks.__code__,
          BaseMinibatchClassifier._adopt.__code__,
          SoftmaxRegression._export.__code__, MLPClassifier._export.__code__}

#: What says where training stands; all must describe the same epoch.
STATE = ("n_iter_", "_n_epochs_total", "_epochs_this_call", "t_", "_opt_t",
         "_adaptive_lr", "_no_improvement_count", "best_loss_",
         "best_validation_score_", "loss_curve_", "accuracy_curve_",
         "loss_curve_per_class_", "validation_scores_", "validation_loss_curve_",
         "validation_loss_curve_per_class_", "_theta", "_opt_state", "_rng_state",
         "coef_", "intercept_", "coefs_", "intercepts_")


class Interrupter:
    """A trace function that raises KeyboardInterrupt at the ``at``-th event
    (call, line or return) of the engine's code; ``at=None`` only counts."""

    def __init__(self, at=None):
        self.at = at
        self.events = 0

    def __call__(self, frame, event, arg):
        code = frame.f_code
        if code.co_filename in _FILES or code in _CODES:
            return self._local(frame, event, arg)
        return None

    def _local(self, frame, event, arg):
        if event in ("call", "line", "return"):
            self.events += 1
            if self.events == self.at:
                raise KeyboardInterrupt  # Python unsets the trace function
        return self._local


def _run(fit, at=None):
    """``fit()`` under an interrupter; returns (the interrupter, whether
    KeyboardInterrupt escaped)."""
    import signal

    tracer = Interrupter(at)
    previous = sys.gettrace()
    handler = signal.getsignal(signal.SIGINT)
    sys.settrace(tracer)
    try:
        fit()
        escaped = False
    except KeyboardInterrupt:
        escaped = True
    finally:
        sys.settrace(previous)
        # a raise at the line event Python emits when a `with` block ends
        # skips the block's __exit__, so an interrupts_deferred block (see
        # _engine._team) would leave its recording handler installed; a
        # real SIGINT cannot land there, since inside the block it is only
        # recorded
        signal.signal(signal.SIGINT, handler)
    return tracer, escaped


def _state(est):
    """A copy (later training updates arrays in place)."""
    return copy.deepcopy({name: est.__dict__[name] for name in STATE
                          if name in est.__dict__})


def _assert_same_state(got, expected, context):
    assert sorted(got) == sorted(expected), context
    for name, value in expected.items():
        other, where = got[name], f"{context}: {name}"
        if isinstance(value, (list, tuple)) and value \
                and isinstance(value[0], np.ndarray):  # moments, layers
            assert len(other) == len(value), where
            for a, b in zip(other, value):
                np.testing.assert_array_equal(a, b, err_msg=where)
                assert a.dtype == b.dtype, where
        elif isinstance(value, (list, np.ndarray)):
            np.testing.assert_array_equal(other, value, err_msg=where)
        else:  # numbers, None, NaN
            assert other == value or (other != other and value != value), (
                where, other, value)


def _quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


# every configuration runs N_EPOCHS epochs when not interrupted; the
# reference for k epochs is the same fit with max_iter=k, so the rate must
# not depend on max_iter (as the default, cosine, does)
N_EPOCHS = 3
CASES = {
    "adam": lambda **p: SoftmaxRegression(
        learning_rate="constant", batch_size=16, n_iter_no_change=1000,
        random_state=0, callbacks=lambda est, info: None, **p),
    # validation after every epoch, the best epoch's weights kept
    "early-stopping": lambda **p: SoftmaxRegression(
        learning_rate="constant", batch_size=16, early_stopping=True,
        validation_fraction=0.25, n_iter_no_change=1000, random_state=0, **p),
    # the rate falls after every second epoch (the plateau rule)
    "sgd-adaptive": lambda **p: SoftmaxRegression(
        solver="sgd", learning_rate="adaptive", momentum=0.9, tol=1e3,
        n_iter_no_change=1, batch_size=16, random_state=0, **p),
    "mlp": lambda **p: MLPClassifier(
        hidden_layer_sizes=(4,), learning_rate="constant", batch_size=16,
        n_iter_no_change=1000, random_state=0, **p),
    "lbfgs": lambda **p: SoftmaxRegression(
        solver="lbfgs", tol=0.0, random_state=0, **p),
}


def _continue(est, case):
    """One more epoch (iteration) after a fit."""
    if case in ("early-stopping", "lbfgs"):
        est.set_params(warm_start=True, max_iter=1)
        return _quiet(lambda: est.fit(X, y))
    return _quiet(lambda: est.partial_fit(X, y))


@pytest.mark.parametrize("case", list(CASES))
def test_an_interrupt_anywhere_keeps_one_consistent_epoch(case):
    make = CASES[case]
    references, continued = {}, {}
    for k in range(1, N_EPOCHS + 1):
        est = _quiet(lambda: make(max_iter=k).fit(X, y))
        assert est.n_iter_ == k
        references[k] = _state(est)
        continued[k] = _state(_continue(est, case))

    counter, escaped = _run(lambda: _quiet(lambda: make(max_iter=N_EPOCHS).fit(X, y)))
    assert not escaped
    n_events = counter.events
    assert n_events > 50 * N_EPOCHS  # the tracer sees the engine

    kept = set()
    for at in range(1, n_events + 1):
        est = make(max_iter=N_EPOCHS)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _, escaped = _run(lambda: est.fit(X, y), at)
        context = f"{case}: interrupt at event {at} of {n_events}"
        if not hasattr(est, "n_iter_"):
            # nothing finished: the interrupt reaches the caller, the
            # estimator is as it was
            assert escaped, context
            assert not hasattr(est, "classes_") and not hasattr(est, "_theta"), context
            kept.add(0)
            continue
        k = est.n_iter_
        kept.add(k)
        assert 1 <= k <= N_EPOCHS, context
        if not escaped:
            assert any("interrupted" in str(w.message) for w in caught) or \
                k == N_EPOCHS, context
        _assert_same_state(_state(est), references[k], context)
        _assert_same_state(_state(_continue(est, case)), continued[k],
                           context + ", continued")
    assert kept == set(range(N_EPOCHS + 1)), kept


@pytest.mark.parametrize("make", [
    lambda cb: SoftmaxRegression(learning_rate="constant", max_iter=6,
                                 random_state=0, callbacks=cb),
    lambda cb: MLPClassifier((4,), learning_rate="constant", max_iter=6,
                             random_state=0, callbacks=cb),
    lambda cb: SoftmaxRegression(solver="lbfgs", max_iter=6, tol=0.0,
                                 random_state=0, callbacks=cb),
], ids=["softmax", "mlp", "lbfgs"])
def test_a_callback_interrupt_keeps_the_epoch_it_saw(make):
    """The deterministic case of the issue: a callback raising
    KeyboardInterrupt at epoch k. The callback was shown epoch k, and the
    model keeps epoch k: its weights, not those of epoch k - 1."""
    seen = {}

    def interrupt(est, info):
        seen[info["epoch"]] = est._theta.copy()
        if info["epoch"] == 3:
            raise KeyboardInterrupt

    with pytest.warns(UserWarning, match="interrupted by the user after 3"):
        est = make(interrupt).fit(X, y)
    reference = _quiet(lambda: make(None).set_params(max_iter=3).fit(X, y))
    assert est.n_iter_ == len(est.loss_curve_) == est._n_epochs_total == 3
    np.testing.assert_array_equal(est._theta, seen[3])
    _assert_same_state(_state(est), _state(reference), "callback interrupt")
