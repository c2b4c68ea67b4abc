"""Time to accuracy: the defaults of MLPClassifier and SoftmaxRegression against
PyTorch's standard recipe, over seeds 0-4, and small data before and after.

Run (full data needed; CI never runs benchmarks), with the BLAS kernel the
processor supports (this project's environment forces an older one)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE SKDIGITS_DATA=../shared/data \\
        python -m pytest benchmarks/bench_recipe.py -s

(plain tests that time themselves: no ``--benchmark-only``). Every side runs
in this process, one after the other, with the same thread budget: skdigits'
default (``n_jobs=None``), given to PyTorch through ``torch.set_num_threads``
and to BLAS through ``threadpool_limits``. The table printed at the end
(stderr: pass ``-s``) starts with the machine line and gives, for each
figure, the minimum and the median over seeds 0-4. Timings are reported,
never asserted; the tests assert the accuracy floors only.

1. MNIST: ``MLPClassifier(random_state=seed)`` (the defaults: 784-512-10,
   standardised inputs, label smoothing 0.2, alpha 1e-3, Adam on a cosine
   schedule from 4e-3, 12 epochs) on pixels / 255 as float32: the fit's
   seconds (warm: the kernels compiled or loaded before) and the test
   accuracy (target 0.982 for every seed), and the previous defaults (see 5)
   in the same run, to show what the new ones cost. Beside it, the time to 0.980 by
   PyTorch's rule below: the epochs' training seconds until the test
   accuracy, measured after each epoch (not timed), first reaches 0.980.
2. PyTorch's standard recipe, in the same run: 784-256-10 ReLU, Adam 1e-3,
   batch 128, shuffled, no weight decay; the test accuracy is measured after
   each epoch (not timed) and the time is the training time until it first
   reaches 0.980 (at most 30 epochs). Target: skdigits' median fit time at
   most 0.2x torch's median time to 0.980.
3. Fashion-MNIST: the same defaults (target 0.905 for every seed) and fit
   time.
4. ``SoftmaxRegression(random_state=seed)`` (cosine schedule from 0.05, 2
   epochs) on both datasets: floors 0.925 and 0.845 (the median), and the
   same with ``learning_rate="onecycle"`` (tried as its default, dropped).
5. Small data, before and after: scikit-learn's 8x8 ``load_digits`` (pixels
   / 16, a stratified 75/25 split) and the bundled 3000-image samples (their
   own 1000-image test sets), with today's defaults and with the previous
   ones (``PREVIOUS``: 784-256-10, label smoothing 0.1, alpha 1e-4 and the
   epochs of 4200 updates, the defaults until issue 23); for the softmax,
   whose defaults did not change, with ``learning_rate="onecycle"`` as the
   "after".

The recipes tried for the MLP's defaults, with their figures, are in
``study_recipes.py``.
"""

import math
import sys

import numpy as np
import pytest
from _bench_data import _data, _have_full_data  # benchmarks/, on sys.path
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skdigits import MLPClassifier, SoftmaxRegression
from skdigits._cores import effective_n_threads
from skdigits.benchmark import (
    TorchMLP,
    equal_budget,
    fit_quietly,
    import_torch,
    machine_line,
    settle,
)
from skdigits.datasets import load_mnist

BUDGET = effective_n_threads(None)
SEEDS = (0, 1, 2, 3, 4)
TARGET_ACCURACY = 0.980
MAX_TORCH_EPOCHS = 30
#: Test accuracy each seed of the MLP's defaults is to reach.
TARGETS = {"digits": 0.982, "fashion": 0.905}
#: Below these the defaults fail the run: a margin over the floors of before
#: (0.980 and 0.900) that the worst seed keeps here (0.9847 and 0.9044) with
#: room for another CPU's bits.
FLOORS = {"digits": 0.983, "fashion": 0.903}
RESULTS = {}
#: The MLP's defaults before issue 23 (784-256-10, label smoothing 0.1,
#: alpha 1e-4, max_iter="auto" aiming at 4200 updates), as parameters.
PREVIOUS = dict(hidden_layer_sizes=(256,), label_smoothing=0.1, alpha=1e-4)
BEFORE = {MLPClassifier: PREVIOUS, SoftmaxRegression: {}}


def _before(estimator, n_rows):
    params = dict(BEFORE[estimator])
    if estimator is MLPClassifier:
        n_batches = math.ceil(n_rows / 128)
        params["max_iter"] = int(min(estimator._auto_max_epochs, max(
            estimator._auto_min_epochs, math.ceil(4200 / n_batches))))
    return params


AFTER = {MLPClassifier: {}, SoftmaxRegression: dict(learning_rate="onecycle")}

pytestmark = pytest.mark.skipif(
    not _have_full_data() or not _have_full_data("fashion"),
    reason="full MNIST / Fashion-MNIST not found: set SKDIGITS_DATA")


@pytest.fixture(scope="module")
def warm():
    """Compile (or load) the kernels outside every timing."""
    X, y = load_digits(return_X_y=True)
    for est in (MLPClassifier(max_iter=1), SoftmaxRegression(max_iter=1)):
        fit_quietly(est, X / 16, y)


def _seeds(estimator, X, y, Xt, yt, **params):
    """Fit seconds and test accuracy of ``estimator(random_state=s, **params)``
    for each seed."""
    secs, accs = [], []
    for seed in SEEDS:
        model = estimator(random_state=seed, **params)
        secs.append(fit_quietly(model, X, y))
        accs.append(model.score(Xt, yt))
    return secs, accs


@pytest.mark.parametrize("kind", ["digits", "fashion"])
def test_mlp_defaults(kind, warm):
    X, y, Xt, yt = _data(kind)
    secs, accs = _seeds(MLPClassifier, X, y, Xt, yt)
    RESULTS[f"MLP {kind}"] = secs, accs
    # the previous defaults in the same run: what the new ones cost
    RESULTS[f"MLP {kind} previous"] = _seeds(MLPClassifier, X, y, Xt, yt,
                                             **_before(MLPClassifier, len(y)))
    assert min(accs) >= FLOORS[kind], accs


def test_mlp_time_to_accuracy(warm):
    """The defaults timed by PyTorch's rule: the training seconds of the
    epochs (``info["time"]``) until the test accuracy, measured after each
    epoch outside the timing, first reaches ``TARGET_ACCURACY``."""
    X, y, Xt, yt = _data("digits")
    secs, epochs = [], []
    for seed in SEEDS:
        reached = []
        total = [0.0]

        def watch(model, info):
            total[0] += info["time"]
            if not reached and model.score(Xt, yt) >= TARGET_ACCURACY:
                reached.append((total[0], info["epoch"]))

        fit_quietly(MLPClassifier(random_state=seed, callbacks=watch), X, y)
        secs.append(reached[0][0] if reached else float("inf"))
        epochs.append(reached[0][1] if reached else -1)
    RESULTS["MLP digits to target"] = secs, epochs
    assert all(np.isfinite(secs)), "the defaults never reached 0.980"


@pytest.mark.parametrize("kind,floor", [("digits", 0.925), ("fashion", 0.845)])
def test_softmax_defaults(kind, floor, warm):
    X, y, Xt, yt = _data(kind)
    secs, accs = _seeds(SoftmaxRegression, X, y, Xt, yt)
    RESULTS[f"softmax {kind}"] = secs, accs
    RESULTS[f"softmax onecycle {kind}"] = _seeds(SoftmaxRegression, X, y, Xt, yt,
                                                 learning_rate="onecycle")
    assert np.median(accs) >= floor, accs


def test_torch_time_to_accuracy():
    torch, why = import_torch()
    if torch is None:
        RESULTS["torch missing"] = why
        pytest.skip(why)
    X, y, Xt, yt = _data("digits")
    secs, epochs = [], []
    with equal_budget(BUDGET):
        warmup = TorchMLP(torch, 784, 10, (256,))
        Xtr, ytr = warmup.tensors(X, y)
        Xte, yte = warmup.tensors(Xt, yt)
        warmup.epoch(Xtr[:1024], ytr[:1024])
        for seed in SEEDS:
            net = TorchMLP(torch, 784, 10, (256,), batch_size=128,
                           learning_rate_init=1e-3, seed=seed)
            settle()
            total = 0.0
            for epoch in range(1, MAX_TORCH_EPOCHS + 1):
                total += net.epoch(Xtr, ytr)
                if net.accuracy(Xte, yte) >= TARGET_ACCURACY:
                    break
            else:
                total = float("inf")
            secs.append(total)
            epochs.append(epoch)
        RESULTS["torch"] = secs, epochs
        RESULTS["torch version"] = (f"{torch.__version__}, "
                                    f"{torch.get_num_threads()} threads")
    assert all(np.isfinite(secs)), "torch never reached 0.980"


@pytest.mark.parametrize("estimator", [MLPClassifier, SoftmaxRegression],
                         ids=["mlp", "softmax"])
def test_small_data_before_and_after(estimator, warm):
    X, y = load_digits(return_X_y=True)
    sets = {"load_digits": train_test_split(X / 16, y, test_size=0.25,
                                            random_state=0, stratify=y)}
    for kind in ("digits", "fashion"):
        Xs, ys = load_mnist(kind, "train", sample=True, return_X_y=True)
        Xst, yst = load_mnist(kind, "test", sample=True, return_X_y=True)
        sets[f"{kind} sample"] = (Xs.astype(np.float32) / 255,
                                  Xst.astype(np.float32) / 255, ys, yst)
    for name, (Xa, Xb, ya, yb) in sets.items():
        _, before = _seeds(estimator, Xa, ya, Xb, yb, **_before(estimator, len(ya)))
        _, after = _seeds(estimator, Xa, ya, Xb, yb, **AFTER[estimator])
        RESULTS[f"small {estimator.__name__} {name}"] = before, after
        # sanity only (the table gives both): the worst seed no more than
        # five images in a thousand below the worst seed before
        assert min(after) >= min(before) - 0.005, (name, before, after)


def _stats(values, spec):
    return f"{format(min(values), spec)} / {format(float(np.median(values)), spec)}"


def teardown_module(module):
    if not RESULTS:
        return
    r = RESULTS
    lines = ["", machine_line(BUDGET),
             "seeds 0-4; 'min / median'",
             f"{'measure':44} {'seconds':>17} {'test accuracy':>17} {'target':>22}"]

    def row(name, secs="", accs="", target=""):
        lines.append(f"{name:44} {secs:>17} {accs:>17} {target:>22}")

    for kind, target in TARGETS.items():
        if f"MLP {kind}" in r:
            secs, accs = r[f"MLP {kind}"]
            row(f"MLPClassifier() {kind}", _stats(secs, ".2f"), _stats(accs, ".4f"),
                f"each >= {target:.3f}: {'met' if min(accs) >= target else 'NOT met'}")
            secs, accs = r[f"MLP {kind} previous"]
            row("  the previous defaults", _stats(secs, ".2f"), _stats(accs, ".4f"))
    if "MLP digits to target" in r:
        secs, epochs = r["MLP digits to target"]
        row(f"  to {TARGET_ACCURACY} by PyTorch's rule", _stats(secs, ".2f"),
            f"epochs {min(epochs)}-{max(epochs)}")
    if "torch" in r:
        secs, epochs = r["torch"]
        row(f"PyTorch to {TARGET_ACCURACY} ({r['torch version']})",
            _stats(secs, ".2f"), f"epochs {min(epochs)}-{max(epochs)}")
        if "MLP digits" in r:
            ratio = np.median(r["MLP digits"][0]) / np.median(secs)
            row("skdigits fit / PyTorch (medians)", f"{ratio:.3f}x", "",
                f"<= 0.2x: {'met' if ratio <= 0.2 else 'NOT met'}")
        if "MLP digits previous" in r:
            ratio = np.median(r["MLP digits previous"][0]) / np.median(secs)
            row("  the previous defaults' fit / PyTorch", f"{ratio:.3f}x")
        if "MLP digits to target" in r:
            ratio = np.median(r["MLP digits to target"][0]) / np.median(secs)
            row("  both by PyTorch's rule (medians)", f"{ratio:.3f}x", "",
                f"<= 0.2x: {'met' if ratio <= 0.2 else 'NOT met'}")
    elif "torch missing" in r:
        row(f"PyTorch: {r['torch missing']}")
    for kind, floor in (("digits", 0.925), ("fashion", 0.845)):
        if f"softmax {kind}" in r:
            secs, accs = r[f"softmax {kind}"]
            met = "met" if np.median(accs) >= floor else "NOT met"
            row(f"SoftmaxRegression() {kind}", _stats(secs, ".3f"),
                _stats(accs, ".4f"), f"median >= {floor:.3f}: {met}")
            secs, accs = r[f"softmax onecycle {kind}"]
            row(f"  learning_rate='onecycle' (dropped) {kind}", _stats(secs, ".3f"),
                _stats(accs, ".4f"))
    lines.append("small data, test accuracy 'min / median': before -> after "
                 "(MLP: previous -> new defaults; softmax: defaults -> onecycle)")
    for key, value in r.items():
        if key.startswith("small "):
            before, after = value
            row(key[len("small "):], _stats(before, ".4f"), _stats(after, ".4f"))
    sys.stderr.write("\n".join(lines) + "\n")
