"""scikit-learn's callback API (``sklearn.callback``, scikit-learn >= 1.9) on the
skdigits estimators: the task tree of a fit, the hooks' arguments, stopping,
propagation through meta-estimators compared with ``LogisticRegression``,
determinism, what a fitted estimator keeps, and the guard for older
scikit-learn."""

import hashlib
import os
import pickle
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skdigits._engine._train as train_mod
import skdigits._sklearn_callbacks as skl_callbacks
from skdigits import MLPClassifier, SoftmaxRegression
from skdigits.datasets import load_mnist

requires_callbacks = pytest.mark.skipif(
    not skl_callbacks.available(), reason="scikit-learn < 1.9 has no sklearn.callback")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# small, fast configurations: each runs a handful of epochs on 200 digits
CONFIGS = {
    "softmax-adam": lambda: SoftmaxRegression(max_iter=4, random_state=0),
    "softmax-sgd-early": lambda: SoftmaxRegression(
        solver="sgd", learning_rate="constant", max_iter=4, early_stopping=True,
        random_state=0),
    "softmax-lbfgs": lambda: SoftmaxRegression(solver="lbfgs", max_iter=4),
    "mlp-adam": lambda: MLPClassifier(hidden_layer_sizes=(8,), max_iter=4,
                                      random_state=0),
    "mlp-lbfgs": lambda: MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs",
                                       max_iter=4, random_state=0),
}


@pytest.fixture(scope="module")
def digits():
    X, y = load_mnist(sample=True, return_X_y=True)
    return X[:200] / 255.0, y[:200]


class Recorder:
    """A callback that records every hook call: ``(hook, estimator name,
    task name, task id path, kwargs)``. ``stop_after`` makes
    ``on_fit_task_end`` return True at that subtask (a ``(task_name,
    task_id)``)."""

    def __init__(self, stop_after=None):
        self.calls = []
        self.stop_after = stop_after

    def setup(self, estimator, context):
        self.calls.append(("setup", type(estimator).__name__, None, None, {}))

    def teardown(self, estimator, context):
        self.calls.append(("teardown", type(estimator).__name__, None, None, {}))

    def _record(self, hook, estimator, context, kwargs):
        path = []
        ctx = context
        while ctx is not None:
            path.insert(0, ctx.task_id)
            ctx = ctx.parent
        self.calls.append((hook, type(estimator).__name__, context.task_name,
                           tuple(path), kwargs))

    def on_fit_task_begin(self, estimator, context, *, X=None, y=None, metadata=None,
                          fitted_estimator=None):
        self._record("begin", estimator, context, dict(
            X=X, y=y, metadata=metadata, fitted_estimator=fitted_estimator))

    def on_fit_task_end(self, estimator, context, *, X=None, y=None, metadata=None,
                        fitted_estimator=None):
        self._record("end", estimator, context, dict(
            X=X, y=y, metadata=metadata, fitted_estimator=fitted_estimator))
        return (context.task_name, context.task_id) == self.stop_after

    def hooks(self, name):
        return [c for c in self.calls if c[0] == name]


class PropagatedRecorder(Recorder):
    """The same, auto-propagated to every depth (as ``ProgressBar`` can be)."""

    max_propagation_depth = None


def _theta_digest(est):
    return hashlib.sha256(np.ascontiguousarray(est._theta).tobytes()).hexdigest()


# ---------------------------------------------------------------- the guard


def test_without_sklearn_callback_there_is_no_set_callbacks(digits, monkeypatch):
    X, y = digits
    reference = SoftmaxRegression(max_iter=3, random_state=0).fit(X, y)
    monkeypatch.setattr(skl_callbacks, "_Support", None)
    est = SoftmaxRegression(max_iter=3, random_state=0)
    assert not hasattr(est, "set_callbacks")
    with pytest.raises(AttributeError, match="set_callbacks") as info:
        est.set_callbacks(Recorder())
    assert "scikit-learn >= 1.9" in str(info.value.__cause__)
    assert "callbacks= parameter" in str(info.value.__cause__)
    # fit runs as before, with the same bits, and skdigits' own callbacks work
    seen = []
    est.set_params(callbacks=lambda e, i: seen.append(i["epoch"])).fit(X, y)
    assert seen == [1, 2, 3]
    assert _theta_digest(est) == _theta_digest(reference)
    assert not [k for k in vars(est) if "callback_fit" in k or "teardown" in k]


@requires_callbacks
def test_without_sklearn_callback_meta_estimators_pass_nothing_down(digits,
                                                                    monkeypatch):
    X, y = digits
    monkeypatch.setattr(skl_callbacks, "_Support", None)
    monitor = PropagatedRecorder()
    search = GridSearchCV(SoftmaxRegression(max_iter=2, random_state=0),
                          {"alpha": [1e-4]}, cv=2).set_callbacks(monitor)
    # sklearn's own warning for a sub-estimator without set_callbacks
    with pytest.warns(UserWarning, match="does not support callbacks"):
        search.fit(X, y)
    assert {c[1] for c in monitor.hooks("end")} == {"GridSearchCV"}
    assert hasattr(search, "best_estimator_")


_GUARD_CHILD = textwrap.dedent("""
    import builtins, sys
    import numpy as np

    real_import = builtins.__import__

    def no_sklearn_callback(name, globals=None, locals=None, fromlist=(), level=0):
        # skdigits sees a scikit-learn without sklearn.callback; scikit-learn
        # itself still imports its own modules
        importer = (globals or {{}}).get("__name__") or ""
        if importer.startswith("skdigits") and name.startswith("sklearn.callback"):
            raise ImportError("No module named 'sklearn.callback'")
        return real_import(name, globals, locals, fromlist, level)

    builtins.__import__ = no_sklearn_callback
    sys.path.insert(0, {root!r})
    import skdigits._sklearn_callbacks as cb
    from skdigits import MLPClassifier, SoftmaxRegression
    from skdigits.datasets import load_mnist

    assert not cb.available()
    X, y = load_mnist(sample=True, return_X_y=True)
    X, y = X[:200] / 255.0, y[:200]
    for est in (SoftmaxRegression(max_iter=3, random_state=0),
                SoftmaxRegression(solver="lbfgs", max_iter=3),
                MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0)):
        assert not hasattr(est, "set_callbacks")
        est.fit(X, y)
        print(np.ascontiguousarray(est._theta).tobytes().hex()[:4000])
""")


def test_skdigits_imports_and_fits_without_sklearn_callback(digits):
    """A child process where importing ``sklearn.callback`` from skdigits
    fails, as it does before scikit-learn 1.9: skdigits imports, has no
    ``set_callbacks`` and fits the same bits."""
    import skdigits

    root = os.path.dirname(os.path.dirname(skdigits.__file__))
    out = subprocess.run([sys.executable, "-c", _GUARD_CHILD.format(root=root)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    X, y = digits
    expected = []
    for est in (SoftmaxRegression(max_iter=3, random_state=0),
                SoftmaxRegression(solver="lbfgs", max_iter=3),
                MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0)):
        est.fit(X, y)
        expected.append(np.ascontiguousarray(est._theta).tobytes().hex()[:4000])
    assert out.stdout.split() == expected


# ---------------------------------------------------------------- the task tree


@requires_callbacks
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_fit_is_the_root_task_and_each_epoch_a_subtask(digits, name):
    X, y = digits
    recorder = Recorder()
    est = CONFIGS[name]().set_callbacks(recorder)
    w = np.linspace(0.5, 1.5, len(y))
    est.fit(X, y, sample_weight=w)
    lbfgs = est.solver == "lbfgs"
    leaf = "lbfgs-iter" if lbfgs else "epoch"
    n = est.n_iter_
    assert n == 4
    hooks = [c[0] for c in recorder.calls]
    # setup, the root begins, each epoch begins and ends, the root ends
    # (L-BFGS: one more iteration begins and ends empty, as LogisticRegression)
    n_sub = n + lbfgs
    assert hooks == ["setup", "begin"] + ["begin", "end"] * n_sub + ["end", "teardown"]
    begins, ends = recorder.hooks("begin"), recorder.hooks("end")
    assert begins[0][2:4] == ("fit", (0,)) and ends[-1][2:4] == ("fit", (0,))
    assert [c[2:4] for c in ends[:-1]] == [(leaf, (0, i)) for i in range(n_sub)]
    assert [c[2:4] for c in begins[1:]] == [(leaf, (0, i)) for i in range(n_sub)]
    # every non-empty hook gets the data given to fit and its sample_weight
    for _, _, _, _, kw in begins[1:] + ends[:n] + ends[-1:]:
        assert kw["X"] is not None and kw["y"] is not None
        np.testing.assert_array_equal(kw["y"], y)
        np.testing.assert_array_equal(kw["metadata"]["sample_weight"], w)
        assert kw["fitted_estimator"] is not None
    if lbfgs:  # the iteration scipy never ran ends without anything
        assert all(v is None for v in ends[n][4].values())
    # the root task's end sees the fitted estimator
    np.testing.assert_array_equal(ends[-1][4]["fitted_estimator"].predict_proba(X),
                                  est.predict_proba(X))


@requires_callbacks
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_fitted_estimator_predicts_with_the_weights_of_its_epoch(digits, name):
    """Each epoch's ``fitted_estimator`` predicts as the estimator did at the
    end of that epoch (seen by skdigits' own callbacks), also after training
    went on: the weights are copies. An epoch begins from the previous end."""
    X, y = digits
    rows = X[:20]
    seen = []
    recorder = Recorder()
    est = CONFIGS[name]().set_params(
        callbacks=lambda e, i: seen.append(e.predict_proba(rows)))
    est.set_callbacks(recorder).fit(X, y)
    ends = [c[4]["fitted_estimator"] for c in recorder.hooks("end")[:est.n_iter_]]
    begins = [c[4]["fitted_estimator"] for c in recorder.hooks("begin")[1:]]
    assert len(ends) == len(seen) == est.n_iter_
    for fitted, proba in zip(ends, seen):
        assert fitted is not est
        np.testing.assert_array_equal(fitted.predict_proba(rows), proba)
    for fitted, proba in zip(begins[1:], seen):
        np.testing.assert_array_equal(fitted.predict_proba(rows), proba)
    # before the first epoch: the initial weights, already ready to predict
    assert begins[0].predict_proba(rows).shape == (20, 10)


@requires_callbacks
@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(CONFIGS)), stop=st.integers(0, 5))
def test_a_hook_returning_true_stops_after_that_epoch(digits, name, stop):
    X, y = digits
    est = CONFIGS[name]().set_params(max_iter=6)
    subtask = "lbfgs-iter" if est.solver == "lbfgs" else "epoch"
    recorder = Recorder(stop_after=(subtask, stop))
    own = []
    est.set_params(callbacks=lambda e, i: own.append(i["epoch"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # not "max_iter reached"
        est.set_callbacks(recorder).fit(X, y)
    assert est.n_iter_ == stop + 1 == len(est.loss_curve_) == len(own)
    # nothing begins after the stop; the root task still ends
    assert recorder.hooks("begin")[-1][3] == (0, stop)
    assert recorder.hooks("end")[-1][2] == "fit"
    assert est.predict(X[:3]).shape == (3,)


@requires_callbacks
def test_skdigits_callbacks_keep_working_beside_sklearn_ones(digits):
    X, y = digits
    recorder = Recorder()

    def stop_at_2(est, info):
        return info["epoch"] >= 2

    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=6, random_state=0,
                        callbacks=stop_at_2).set_callbacks(recorder).fit(X, y)
    assert est.n_iter_ == 2
    # the sklearn task of the last epoch still ends, and the root task
    assert [c[2:4] for c in recorder.hooks("end")] == [
        ("epoch", (0, 0)), ("epoch", (0, 1)), ("fit", (0,))]


@requires_callbacks
def test_partial_fit_calls_no_hook(digits):
    X, y = digits
    recorder = Recorder()
    est = SoftmaxRegression(random_state=0).set_callbacks(recorder)
    est.partial_fit(X, y, classes=np.arange(10)).partial_fit(X, y)
    assert recorder.calls == []
    est.fit(X, y)  # fit still does
    assert recorder.hooks("setup") and recorder.hooks("teardown")


@requires_callbacks
def test_interrupted_fit_ends_its_open_epoch(digits):
    X, y = digits
    recorder = Recorder()

    def interrupt(est, info):
        if info["epoch"] == 2:
            raise KeyboardInterrupt

    est = SoftmaxRegression(max_iter=5, random_state=0, callbacks=interrupt)
    with pytest.warns(UserWarning, match="interrupted"):
        est.set_callbacks(recorder).fit(X, y)
    hooks = [c[0] for c in recorder.calls]
    assert hooks.count("begin") == hooks.count("end") == 3  # root and two epochs
    assert hooks[-1] == "teardown"


@requires_callbacks
def test_callbacks_are_torn_down_when_the_first_epoch_fails(digits, monkeypatch):
    """A fit that fails before finishing an epoch puts the estimator back as it
    was, but scikit-learn still tears the callbacks down, and nothing of the
    fit is left."""
    X, y = digits
    recorder = Recorder()

    def broken(*args):
        raise ValueError("broken validation")

    monkeypatch.setattr(train_mod, "evaluate", broken)
    est = SoftmaxRegression(max_iter=3, early_stopping=True).set_callbacks(recorder)
    before = set(vars(est))
    with pytest.raises(ValueError, match="broken validation"):
        est.fit(X, y)
    assert [c[0] for c in recorder.calls] == ["setup", "begin", "begin", "teardown"]
    assert set(vars(est)) == before


# ---------------------------------------------------------------- sklearn's callbacks


@requires_callbacks
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_scoring_monitor_logs_one_row_per_epoch(digits, name):
    from sklearn.callback import ScoringMonitor

    X, y = digits
    monitor = ScoringMonitor(scoring="accuracy")
    seen = []
    est = CONFIGS[name]().set_params(
        callbacks=lambda e, i: seen.append(e.score(X, y)))
    est.set_callbacks(monitor).fit(X, y)
    log = monitor.get_logs()
    epochs = [row for row in log.data if len(row["task_id_path"]) == 2]
    root = [row for row in log.data if len(row["task_id_path"]) == 1]
    assert len(epochs) == est.n_iter_ and len(root) == 1
    assert log.estimator_name == type(est).__name__
    assert [row["accuracy"] for row in epochs] == seen
    assert root[0]["accuracy"] == est.score(X, y)


def _shape(log, leaf):
    """The rows of a ScoringMonitor log as (task id path, task name), the
    estimators' own names replaced by what they do."""
    names = {"lbfgs-iter": "iteration", "epoch": "iteration"}
    return sorted((row["task_id_path"], names.get(row["task_name"], row["task_name"]),
                   "leaf" if row["estimator_name"] == leaf else row["estimator_name"])
                  for row in log.data)


def _nest(kind, inner):
    if kind == "grid":
        return GridSearchCV(inner, {"tol": [1e-4, 1e-3]}, cv=2)
    return make_pipeline(StandardScaler(), inner)


@requires_callbacks
@pytest.mark.parametrize("kind", ["grid", "pipeline"])
@pytest.mark.parametrize("ours", [
    lambda: SoftmaxRegression(solver="lbfgs", max_iter=3),
    lambda: SoftmaxRegression(max_iter=3, random_state=0),
    lambda: MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0),
], ids=["softmax-lbfgs", "softmax-adam", "mlp-adam"])
def test_scoring_monitor_through_meta_estimators_as_logistic_regression(digits,
                                                                        kind, ours):
    """The same ScoringMonitor, set on the inner estimator of a GridSearchCV or
    a Pipeline, logs the same rows at the same places of the task tree for
    LogisticRegression and for skdigits' estimators."""
    from sklearn.callback import ScoringMonitor

    X, y = digits
    shapes, logs = [], []
    for inner in (LogisticRegression(max_iter=3), ours()):
        monitor = ScoringMonitor(scoring="accuracy")
        _nest(kind, inner.set_callbacks(monitor)).fit(X, y)
        log = monitor.get_logs()
        logs.append(log)
        shapes.append(_shape(log, type(inner).__name__))
    assert shapes[0] == shapes[1]
    depth = max(len(path) for path, _, _ in shapes[1])
    assert depth == (4 if kind == "grid" else 3)
    assert logs[0].estimator_name == logs[1].estimator_name  # the outer one
    assert len(shapes[1]) == (5 * 4 if kind == "grid" else 4)


@requires_callbacks
@pytest.mark.parametrize("kind", ["grid", "pipeline"])
def test_auto_propagated_callbacks_reach_every_epoch_as_for_logistic_regression(
        digits, kind):
    """A callback set on the meta-estimator (auto-propagated, as ProgressBar
    is) sees the same task tree for ``SoftmaxRegression(solver="lbfgs")`` as
    for ``LogisticRegression``: the same hooks at the same paths."""
    X, y = digits
    trees = []
    for inner in (LogisticRegression(max_iter=3),
                  SoftmaxRegression(solver="lbfgs", max_iter=3)):
        recorder = PropagatedRecorder()
        _nest(kind, inner).set_callbacks(recorder).fit(X, y)
        trees.append([(c[0], c[2], c[3]) for c in recorder.calls if c[2] is not None])
        names = {c[1] for c in recorder.calls}
        assert type(inner).__name__ in names
    assert trees[0] == trees[1]
    assert max(len(path) for _, _, path in trees[1]) == (4 if kind == "grid" else 3)


@requires_callbacks
def test_progress_bar_through_grid_search_and_pipeline(digits, capsys, monkeypatch):
    pytest.importorskip("rich")
    from sklearn.callback import ProgressBar

    monkeypatch.setenv("COLUMNS", "200")  # rich's width: no line cut short
    X, y = digits
    GridSearchCV(make_pipeline(StandardScaler(),
                               MLPClassifier(hidden_layer_sizes=(8,), max_iter=3)),
                 {"mlpclassifier__alpha": [1e-4, 1e-3]}, cv=2).set_callbacks(
        ProgressBar(max_propagation_depth=None)).fit(X, y)
    SoftmaxRegression(max_iter=3).set_callbacks(ProgressBar()).fit(X, y)
    out = capsys.readouterr().out
    assert "Pipeline - fit-final-estimator | MLPClassifier - fit" in out
    assert "SoftmaxRegression - fit" in out
    # every bar is complete
    assert "100%" in out and not re.search(r"\b[0-9]{1,2}%", out)


# ---------------------------------------------------------------- what stays the same


@requires_callbacks
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_same_bits_with_or_without_callbacks(digits, name):
    from sklearn.callback import ScoringMonitor

    X, y = digits
    plain = CONFIGS[name]().fit(X, y)
    watched = CONFIGS[name]().set_callbacks(
        ScoringMonitor(scoring=["accuracy", "neg_log_loss"]), Recorder()).fit(X, y)
    assert _theta_digest(watched) == _theta_digest(plain)
    assert watched.loss_curve_ == plain.loss_curve_
    np.testing.assert_array_equal(watched.predict_proba(X), plain.predict_proba(X))


def _plain(value):
    if isinstance(value, (np.ndarray, np.generic, int, float, str, bool, type(None))):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(k) and _plain(v) for k, v in value.items())
    return False


@requires_callbacks
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_fitted_estimator_keeps_arrays_and_plain_values_only(digits, name):
    from sklearn.callback import ScoringMonitor

    X, y = digits
    plain = CONFIGS[name]().fit(X, y)
    monitor = ScoringMonitor(scoring="accuracy")
    est = CONFIGS[name]().set_callbacks(monitor)
    twin = clone(est)
    assert twin._skl_callbacks == [monitor]  # sklearn's clone shares them
    est.fit(X, y)
    # the fit added what it adds without callbacks, nothing else: the
    # contexts are gone, and only the callbacks set by the user remain
    assert set(vars(est)) == set(vars(plain)) | {"_skl_callbacks"}
    for key, value in vars(est).items():
        if key not in ("_skl_callbacks", "callbacks"):
            assert _plain(value), key
    # pickle and clone still work, callbacks included
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    assert len(back._skl_callbacks) == 1
    clone(est).fit(X, y)
    assert len(monitor.get_logs(select="all")) == 2
    # removing them leaves the estimator as a plain fit would
    est.set_callbacks()
    assert set(vars(est)) == set(vars(plain))


@requires_callbacks
def test_set_callbacks_refuses_what_is_not_a_callback():
    with pytest.raises(TypeError, match="FitCallback"):
        SoftmaxRegression().set_callbacks(lambda est, info: None)
    with pytest.raises(TypeError, match="FitCallback"):
        MLPClassifier().set_callbacks(Recorder)
