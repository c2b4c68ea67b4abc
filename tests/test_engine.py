"""The pieces of the training engine, each alone against hand-computed values:
schedules, the curves, the stopping rule, the thread count, the team."""

import math
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from skdigits import MLPClassifier, SoftmaxRegression, _cores
from skdigits._cores import CoreShare, effective_n_threads
from skdigits._engine import _team
from skdigits._engine._history import History
from skdigits._engine._models import Accumulators
from skdigits._engine._schedules import make_schedule
from skdigits._engine._stopping import NoImprovement
from skdigits._engine._team import Team
from skdigits._kernels._losses import LOGISTIC, SOFTMAX

# ---------------------------------------------------------------- schedules


def test_constant_and_step_schedules_by_hand():
    assert make_schedule("constant", 0.1).rates(7, 10) == (0.1, 0.1)
    step = make_schedule("step", 0.1, step_size=3, gamma=0.5)
    assert [step.rates(e, 10)[0] for e in range(7)] == [0.1, 0.1, 0.1, 0.05, 0.05,
                                                       0.05, 0.025]


def test_invscaling_schedule_by_hand():
    inv = make_schedule("invscaling", 0.1, power_t=0.5)
    assert inv.rates(0, 10) == (0.1, 0.1)
    assert inv.rates(3, 10) == pytest.approx((0.05, 0.05))  # 0.1 / sqrt(4)


def test_cosine_schedule_by_hand():
    cos = make_schedule("cosine", 0.2)
    # half a cosine over 4 epochs: 0.2, 0.2 * (1 + cos(pi/4)) / 2, 0.1, ...
    assert cos.rates(0, 4) == pytest.approx((0.2, 0.1 * (1 + math.cos(math.pi / 4))))
    assert cos.rates(1, 4)[1] == pytest.approx(0.1)
    assert cos.rates(3, 4)[1] == pytest.approx(0.0, abs=1e-15)
    assert cos.rates(5, 4) == (0.0, 0.0)  # past the end: stays at zero


def test_onecycle_schedule_by_hand():
    one = make_schedule("onecycle", 0.1, warmup_fraction=0.2)
    # 10 epochs: up over epochs 0-2 (0 -> 0.1 at epoch 2), then down to 0 at 10
    assert one.rates(0, 10) == pytest.approx((0.0, 0.05))
    assert one.rates(1, 10) == pytest.approx((0.05, 0.1))
    assert one.rates(2, 10) == pytest.approx((0.1, 0.0875))
    assert one.rates(9, 10) == pytest.approx((0.0125, 0.0), abs=1e-15)
    assert one.rates(12, 10) == (0.0, 0.0)  # past the end: stays at zero
    # 2 epochs: the peak (at 0.2 of the run) falls inside epoch 0, at 0.4 of it
    lr0, lr1, peak, knee = one.rates(0, 2)
    assert (lr0, peak) == (0.0, 0.1)
    assert lr1 == pytest.approx(0.1 * 0.5 / 0.8) and knee == pytest.approx(0.4)
    assert one.rates(1, 2) == pytest.approx((0.0625, 0.0), abs=1e-15)
    # no warm-up: a linear decay from the start
    assert make_schedule("onecycle", 0.1, warmup_fraction=0.0).rates(0, 4) == \
        pytest.approx((0.1, 0.075))


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 30), st.floats(0.0, 0.95), st.integers(2, 40))
def test_onecycle_rate_within_each_epoch_follows_the_cycle(n_epochs, warmup,
                                                            n_batches):
    """Batch by batch, the kernels' rate (``batch_rate`` of the epoch's
    rates) equals the one-cycle curve at that point of the whole run."""
    from skdigits._kernels._batch import batch_rate, float_options

    one = make_schedule("onecycle", 0.3, warmup_fraction=warmup)
    for epoch in range(n_epochs):
        rates = one.rates(epoch, n_epochs)
        fopt = float_options(*rates[:2], **(
            dict(lr_knee=rates[2], knee=rates[3]) if len(rates) == 4 else {}))
        for k in range(n_batches):
            p = (epoch + k / n_batches) / n_epochs
            want = 0.3 * (p / warmup if p < warmup else (1 - p) / (1 - warmup))
            assert batch_rate(fopt, k, n_batches) == pytest.approx(want, abs=1e-12)


def test_adaptive_schedule_divides_by_five_down_to_a_floor():
    ada = make_schedule("adaptive", 1e-5)
    assert ada.rates(3, 10) == (1e-5, 1e-5)
    assert ada.plateau() and ada.lr == pytest.approx(2e-6)
    assert ada.plateau() and ada.lr == pytest.approx(4e-7)
    assert not ada.plateau()  # below 1e-6: spent
    assert ada.lr == pytest.approx(4e-7)


# ---------------------------------------------------------------- history


class _Fitted:
    pass


def test_history_appends_and_exports_every_curve():
    h = History(2, validation=True)
    h.append(1.0, 0.5, [1.5, 0.5], validation=(0.6, 0.9, [1.2, 0.6]))
    h.append(0.8, 0.7, [1.0, 0.6])  # an epoch without validation: NaN
    est = _Fitted()
    h.export(est)
    assert est.loss_curve_ == [1.0, 0.8] and est.accuracy_curve_ == [0.5, 0.7]
    np.testing.assert_array_equal(est.loss_curve_per_class_, [[1.5, 0.5], [1.0, 0.6]])
    assert est.validation_scores_[0] == 0.6 and np.isnan(est.validation_scores_[1])
    assert est.validation_loss_curve_[0] == 0.9
    assert np.isnan(est.validation_loss_curve_per_class_[1]).all()
    # every curve one entry per epoch
    assert {len(est.loss_curve_), len(est.validation_scores_),
            len(est.validation_loss_curve_per_class_)} == {2}


def test_history_pads_earlier_epochs_when_validation_starts():
    est = _Fitted()
    History(3).export(est)
    h = History(3, est)
    h.append(1.0, 0.1, [1, 2, 3])
    h.export(est)
    assert est.validation_scores_ is None
    assert not hasattr(est, "validation_loss_curve_")
    h = History(3, est, validation=True)  # a warm fit with early stopping
    h.append(0.5, 0.2, [1, 1, 1], validation=(0.3, 0.4, [0.1, 0.2, 0.3]))
    h.export(est)
    assert len(est.validation_scores_) == 2 and np.isnan(est.validation_scores_[0])
    assert est.validation_loss_curve_per_class_.shape == (2, 3)
    assert np.isnan(est.validation_loss_curve_per_class_[0]).all()
    # and the curves are copies: the next epoch does not change them
    kept = est.loss_curve_per_class_
    h.append(0.4, 0.3, [0, 0, 0])
    assert kept.shape == (2, 3)


# ---------------------------------------------------------------- stopping


def test_no_improvement_on_the_training_loss_by_hand():
    rule = NoImprovement(tol=0.1, n_iter_no_change=2, validation=False)
    improved = [rule.update(loss) for loss in (1.0, 0.95, 0.8, 0.75, 0.74, 0.7)]
    # 0.95 > 1.0 - 0.1: no real improvement, but the best so far
    assert improved == [True, True, True, True, True, True]
    assert rule.count == 3 and rule.exhausted  # 0.75, 0.74, 0.7 within tol of best
    assert rule.best_loss == 0.7


def test_no_improvement_on_the_validation_score_by_hand():
    rule = NoImprovement(tol=0.01, n_iter_no_change=1, validation=True)
    assert rule.update(1.0, score=0.5)
    assert rule.update(0.9, score=0.505) and rule.count == 1  # < 0.5 + tol
    assert not rule.update(0.8, score=0.4) and rule.count == 2 and rule.exhausted
    assert rule.best_score == 0.505 and rule.best_loss == 0.8
    assert rule.update(0.7, score=0.6) and rule.count == 0


# ---------------------------------------------------------------- threads


def test_epoch_sums_add_the_chunks_and_give_the_figures_by_hand():
    acc = Accumulators(2, 3, 3)  # two chunks, three classes
    acc.class_loss[:] = [[1.0, 0.0, 2.0], [0.5, 0.0, 0.0]]
    acc.class_weight[:] = [[2.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    acc.col_loss[:] = [[0.2, 0.4, 0.6], [0.4, 0.2, 0.0]]
    acc.stats[:] = [[3.0, 3.0, 2.0], [0.5, 1.0, 1.0]]
    sums = acc.totals()
    assert sums.mean_loss() == 3.5 / 4.0
    assert sums.accuracy() == 3.0 / 4.0
    np.testing.assert_array_equal(sums.per_class(SOFTMAX, 3),
                                  [1.5 / 3.0, np.nan, 2.0])  # class 1: no rows
    np.testing.assert_allclose(sums.per_class(LOGISTIC, 3), [0.15, 0.15, 0.15])
    class_loss, class_weight, col_loss, stats = sums
    np.testing.assert_array_equal(stats, [3.5, 4.0, 3.0])
    acc.reset()
    assert not any(a.any() for a in acc.args())


def test_n_jobs_counts_like_sklearn(monkeypatch):
    monkeypatch.setattr(_cores, "process_cores", lambda: 2)
    assert effective_n_threads(3) == 3
    assert effective_n_threads(1) == 1
    assert effective_n_threads(-1) >= 1
    with threadpool_limits(limits=1, user_api="openmp"):
        assert effective_n_threads(None) == 1  # within threadpool_limits
    with pytest.raises(ValueError):
        effective_n_threads(0)


def test_fits_running_together_share_the_cores(monkeypatch):
    monkeypatch.setattr(_cores, "process_cores", lambda: 4)
    with CoreShare(4) as a:
        assert a.threads() == 4
        with CoreShare(4) as b:
            assert a.threads() == b.threads() == 2
            with CoreShare(1) as c, CoreShare(8) as d:
                assert c.threads() == 1 and d.threads() == 1  # 4 cores, 4 fits
        assert a.threads() == 4  # the others ended


def test_default_n_jobs_leaves_cores_busy_elsewhere(monkeypatch):
    monkeypatch.setattr(_cores, "process_cores", lambda: 4)
    monkeypatch.setattr(_cores, "effective_n_threads", lambda n_jobs: 4)
    busy = {"cores": 0.0}
    monkeypatch.setattr(_cores._CpuMeter, "others", lambda self: busy["cores"])
    with CoreShare(None) as share:
        assert share.threads() == 4
        busy["cores"] = 1.0
        assert share.threads() == 3
        busy["cores"] = 3.7
        assert share.threads() == 1
    with CoreShare(4) as share:  # an explicit count is kept
        assert share.threads() == 4


def test_cpu_meter_counts_other_processes_only(monkeypatch):
    cpus = frozenset({0, 1})
    readings = iter([(0.0, 10.0, 5.0, cpus, 2), (1.0, 11.5, 5.5, cpus, 2)])
    monkeypatch.setattr(_cores._CpuMeter, "_read",
                        staticmethod(lambda: next(readings)))
    meter = _cores._CpuMeter()
    # 1.5 core-seconds busy in one second, 0.5 of them ours: 1 core elsewhere
    assert meter.others() == pytest.approx(1.0)


def _kernel(tid, n, sync, out):
    out[tid] = n * 10 + tid
    return tid


def test_team_runs_one_call_per_thread_and_returns_thread_0s_result():
    out = np.zeros(4, dtype=np.int64)
    with Team() as team:
        assert team.run(3, _kernel, out) == 0
        np.testing.assert_array_equal(out, [30, 31, 32, 0])
        names = {t.name for t in threading.enumerate()}
        assert "skdigits-worker" in names
        assert team.run(1, _kernel, out) == 0 and out[0] == 10
    assert "skdigits-worker" not in {t.name for t in threading.enumerate()}


def _in_a_thread(fn, timeout=60):
    """``fn()`` in a daemon thread; fails the test if it does not return."""
    result = {}

    def target():
        try:
            result["value"] = fn()
        except BaseException as exc:  # handed to the test
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "deadlock: the call never returned"
    return result


def test_a_helper_that_raises_does_not_leave_thread_0_at_the_barrier():
    from skdigits._kernels._sync import TEST_PHASE, barrier

    def kernel(tid, n, sync):
        if tid == 1:
            raise ValueError("helper failed before the barrier")
        barrier(sync, n, TEST_PHASE)  # would wait for thread 1 forever
        return tid

    def run():
        with Team() as team:
            return team.run(2, kernel)

    result = _in_a_thread(run)
    assert isinstance(result.get("error"), ValueError)


def test_thread_0_interrupted_before_the_kernel_releases_the_helpers(monkeypatch):
    # Ctrl-C between handing work to a helper and entering the kernel left the
    # helper at the barrier and the fit's clean-up joining it forever
    from skdigits._kernels._sync import TEST_PHASE, barrier

    entered = threading.Event()

    def kernel(tid, n, sync):
        if tid == 1:
            entered.set()
        barrier(sync, n, TEST_PHASE)
        return tid

    submit = _team._Worker.submit

    def interrupted_submit(self, kernel, args):
        submit(self, kernel, args)
        entered.wait(10)
        raise KeyboardInterrupt

    monkeypatch.setattr(_team._Worker, "submit", interrupted_submit)

    def run():
        with Team() as team:
            return team.run(2, kernel)

    result = _in_a_thread(run)
    assert isinstance(result.get("error"), KeyboardInterrupt)
    assert "skdigits-worker" not in {t.name for t in threading.enumerate()}


def test_an_interrupted_fit_returns_and_leaves_no_thread(monkeypatch):
    from skdigits import SoftmaxRegression
    from skdigits._engine import _models

    monkeypatch.setattr(_cores, "process_cores", lambda: 2)
    monkeypatch.setattr(_cores._CpuMeter, "others", lambda self: 0.0)
    monkeypatch.setattr(_models, "MIN_WORK", 1)  # threads even on tiny data
    rng = np.random.RandomState(0)
    X, y = rng.rand(40, 300), rng.randint(0, 3, 40)
    submit, calls = _team._Worker.submit, []

    def interrupted_submit(self, kernel, args):
        submit(self, kernel, args)
        calls.append(1)
        time.sleep(0.01)  # the helper enters the kernel
        if len(calls) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(_team._Worker, "submit", interrupted_submit)

    def fit():
        with pytest.warns(UserWarning, match="interrupted"):
            return SoftmaxRegression(max_iter=5, batch_size=10, n_jobs=2).fit(X, y)

    result = _in_a_thread(fit)
    assert "error" not in result, result.get("error")
    assert result["value"].n_iter_ == 2  # the epochs before the interrupt
    assert "skdigits-worker" not in {t.name for t in threading.enumerate()}


def test_team_reports_a_helpers_exception():
    def failing(tid, n, sync):
        if tid == 1:
            raise RuntimeError("helper failed")

    with Team() as team:
        with pytest.raises(RuntimeError, match="helper failed"):
            team.run(2, failing)
        out = np.zeros(2, dtype=np.int64)
        team.run(2, _kernel, out)  # still usable
        np.testing.assert_array_equal(out, [20, 21])


# ------------------------------------------------------------- the state
_FITS = {
    "softmax-early-stopping": lambda cb: SoftmaxRegression(
        max_iter=4, early_stopping=True, validation_fraction=0.2, random_state=0,
        callbacks=cb),
    "mlp-sgd": lambda cb: MLPClassifier(
        (6,), solver="sgd", max_iter=3, random_state=0, callbacks=cb),
    "lbfgs": lambda cb: MLPClassifier(
        (6,), solver="lbfgs", max_iter=5, random_state=0, callbacks=cb),
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("case", list(_FITS))
def test_the_engine_sets_no_attribute_of_the_estimator(case, monkeypatch):
    """Issue 20, item 8: training runs on a state of its own, which the
    estimator copies into its fitted attributes (after each epoch, for the
    callbacks, and at the end) in one assignment of its ``__dict__``; the
    engine never sets an attribute of the estimator itself."""
    from sklearn.datasets import make_classification

    import skdigits._base as base
    from skdigits._engine._state import TrainState

    X, y = make_classification(120, 6, n_informative=4, n_redundant=0, n_classes=3,
                               random_state=0)
    training, set_while_training, states = [], [], []

    def watch(real):
        def run(est, *args, **kwargs):
            training.append(est)
            try:
                states.append(real(est, *args, **kwargs))
            finally:
                training.pop()
            return states[-1]
        return run

    cls = type(_FITS[case](None))
    real_setattr = cls.__setattr__

    def guarded(self, name, value):
        if training and self is training[-1] and name != "__dict__":
            set_while_training.append(name)
        real_setattr(self, name, value)

    monkeypatch.setattr(base, "train", watch(base.train))
    monkeypatch.setattr(base, "train_lbfgs", watch(base.train_lbfgs))
    monkeypatch.setattr(cls, "__setattr__", guarded)
    seen = []  # what a callback sees: the epoch it is shown
    est = _FITS[case](lambda est, info: seen.append(
        (info["epoch"], est._n_epochs_total, len(est.loss_curve_))))
    est.fit(X, y)
    assert set_while_training == []
    assert seen and all(e == n == length for e, n, length in seen)
    (state,) = states
    assert isinstance(state, TrainState)
    # the estimator holds the state the engine returned, as it was published
    values, absent = state.fitted()
    for name, value in values.items():
        assert getattr(est, name) is value, name
    assert not any(hasattr(est, name) for name in absent)
    assert est.n_iter_ == len(est.loss_curve_) or case == "lbfgs"


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 140), min_size=3, max_size=4),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_prediction_folds_the_standardisation_as_unpack_does(sizes, dtype, seed):
    """The prediction's float64 parameters (``_folded``, which folds the
    first layer only, in place of a copy) are those of ``unpack`` packed
    again: every layer's weights and intercepts, bit for bit, whatever the
    panels (widths not multiples of 64) and the model's dtype."""
    from skdigits._engine import _layout
    from skdigits._engine._models import MLPModel

    rng = np.random.default_rng(seed)
    model = MLPModel(sizes, 0, SOFTMAX, mean=rng.normal(size=sizes[0]),
                     scale=rng.uniform(0.1, 3.0, size=sizes[0]))
    theta = _layout.pack(_layout.unpack(
        rng.normal(size=model.n_params).astype(dtype), model.sizes), dtype)
    before = theta.copy()
    folded = model._folded(theta)
    expected = _layout.unpack(theta.astype(np.float64), model.sizes)
    expected[0] = model._fold(*expected[0])
    assert folded.dtype == np.float64
    assert folded.tobytes() == _layout.pack(expected, np.float64).tobytes()
    assert theta.tobytes() == before.tobytes()  # the model's own, untouched
    for (W, b), (W2, b2) in zip(model.unpack(theta), expected):
        np.testing.assert_array_equal(W, W2.astype(dtype))
        np.testing.assert_array_equal(b, b2.astype(dtype))
