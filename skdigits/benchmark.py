"""Benchmark helpers: skdigits beside its peers, side by side in one process.

The peers are scikit-learn's estimators and a PyTorch MLP trained the usual
way (PyTorch is optional and imported only when asked for). Every side gets
the same thread budget (:func:`equal_budget`), every timing starts after the
previous side's threads went idle (:func:`settle`), and every report starts
with the machine it was measured on (:func:`machine_line`).

``skdigits benchmark`` runs :func:`run_benchmark` and prints
:func:`format_table`; the scripts in the repository's ``benchmarks/`` folder
use the same helpers.

Examples
--------
>>> from skdigits.benchmark import machine_line
>>> machine_line(2).startswith("machine: ")
True
"""

import sys
import time
import warnings

import numpy as np

from ._system import machine_info

__all__ = [
    "TorchMLP",
    "equal_budget",
    "fit_quietly",
    "floor_epoch_seconds",
    "format_table",
    "import_torch",
    "machine_line",
    "run_benchmark",
    "settle",
    "skdigits_mlp",
    "sklearn_mlp",
]


def machine_line(threads=None):
    """One line saying where figures were measured.

    Parameters
    ----------
    threads : int, default=None
        The thread budget every side of a comparison gets; by default the
        threads skdigits would use.

    Returns
    -------
    line : str
        The CPU, its cores, the BLAS libraries with the kernel they run and
        their thread counts, the thread budget, and whether the environment
        forces an OpenBLAS kernel.
    """
    from ._engine._parallel import effective_n_threads

    info = machine_info()
    threads = effective_n_threads(None) if threads is None else threads
    forced = info["forced"]
    return (f"machine: {info['cpu']}, {info['logical_cores']} logical / "
            f"{info['physical_cores']} physical cores; BLAS: "
            f"{'; '.join(info['blas_threads']) or 'none loaded'}"
            f"{'; forced: ' + ' '.join(forced) if forced else ''}; thread budget "
            f"{threads} for every side")


def equal_budget(threads):
    """A context manager giving BLAS (NumPy, scikit-learn) and PyTorch, when
    loaded, ``threads`` threads: the budget skdigits gets."""
    import contextlib

    from threadpoolctl import threadpool_limits

    @contextlib.contextmanager
    def limit():
        torch = sys.modules.get("torch")
        before = torch.get_num_threads() if torch is not None else None
        with threadpool_limits(threads):
            if torch is not None:
                torch.set_num_threads(threads)
            try:
                yield
            finally:
                if torch is not None:
                    torch.set_num_threads(before)

    return limit()


def floor_epoch_seconds(n_rows, n_features=784, hidden=256, batch_size=128,
                        dtype=np.float32, repeats=3):
    """The matrix-product floor of an MLP epoch: the two first-layer products
    of every minibatch (``X_b @ W`` and ``X_b.T @ D``) through NumPy's BLAS,
    with its current thread count; the median of ``repeats`` epochs."""
    rng = np.random.default_rng(0)
    Xb = rng.random((batch_size, n_features), dtype=np.float64).astype(dtype)
    W = rng.random((n_features, hidden), dtype=np.float64).astype(dtype)
    D = rng.random((batch_size, hidden), dtype=np.float64).astype(dtype)
    H = np.empty((batch_size, hidden), dtype)
    G = np.empty((n_features, hidden), dtype)
    n_batches = -(-n_rows // batch_size)
    np.dot(Xb, W, H)
    np.dot(Xb.T, D, G)
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        for _ in range(n_batches):
            np.dot(Xb, W, H)
            np.dot(Xb.T, D, G)
        times.append(time.perf_counter() - tic)
    return float(np.median(times))


def import_torch():
    """The ``torch`` module, or ``None`` with the reason when it is missing."""
    try:
        import torch
    except ImportError as exc:  # optional: benchmarks only
        return None, f"torch not importable ({exc})"
    return torch, None


def skdigits_mlp(hidden, *, batch_size, learning_rate_init, epochs, seed=0,
                 alpha=1e-4):
    """skdigits' MLPClassifier set like :func:`sklearn_mlp`: a constant
    learning rate for exactly ``epochs`` epochs."""
    from . import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=hidden, batch_size=batch_size,
                         learning_rate="constant",
                         learning_rate_init=learning_rate_init, max_iter=epochs,
                         tol=0, n_iter_no_change=10**6, alpha=alpha,
                         random_state=seed)


def sklearn_mlp(hidden, *, batch_size, learning_rate_init, epochs, seed=0,
                alpha=1e-4):
    """sklearn's MLPClassifier set to run exactly ``epochs`` epochs."""
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=hidden, batch_size=batch_size,
                         learning_rate_init=learning_rate_init, max_iter=epochs,
                         tol=0, n_iter_no_change=10**6, alpha=alpha,
                         random_state=seed)


#: Seconds to wait before a timing, so that the threads of the side timed
#: before (OpenBLAS and OpenMP threads spin-wait for a while after a call)
#: are idle again: right after a LogisticRegression fit, a softmax fit took
#: 0.16 s instead of 0.09 on 2 cores.
SETTLE_SECONDS = 1.0


def settle():
    """Let the previous side's spinning threads go idle (see SETTLE_SECONDS)."""
    time.sleep(SETTLE_SECONDS)


def fit_quietly(model, X, y):
    """``model.fit(X, y)`` without ConvergenceWarning, after :func:`settle`;
    returns the seconds the fit took."""
    from sklearn.exceptions import ConvergenceWarning

    settle()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        tic = time.perf_counter()
        model.fit(X, y)
        return time.perf_counter() - tic


class TorchMLP:
    """A ReLU MLP in PyTorch, trained with Adam and shuffled minibatches.

    Parameters
    ----------
    torch : module
        The imported ``torch``.
    n_features, n_classes : int
        Input and output units.
    hidden : tuple of int
        Hidden layer sizes.
    batch_size : int
    learning_rate_init : float
    seed : int
    """

    def __init__(self, torch, n_features, n_classes, hidden, *, batch_size=128,
                 learning_rate_init=1e-3, seed=0):
        self.torch = torch
        torch.manual_seed(seed)
        layers, prev = [], n_features
        for h in hidden:
            layers += [torch.nn.Linear(prev, h), torch.nn.ReLU()]
            prev = h
        layers.append(torch.nn.Linear(prev, n_classes))
        self.model = torch.nn.Sequential(*layers)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=learning_rate_init)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.batch_size = batch_size

    def tensors(self, X, y=None):
        """float32 / int64 tensors sharing memory with the arrays when possible."""
        Xt = self.torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        if y is None:
            return Xt
        return Xt, self.torch.from_numpy(np.asarray(y, dtype=np.int64))

    def epoch(self, X, y):
        """One epoch over tensors ``X``, ``y``; returns seconds taken."""
        torch = self.torch
        tic = time.perf_counter()
        self.model.train()
        perm = torch.randperm(X.shape[0])
        for i in range(0, X.shape[0], self.batch_size):
            idx = perm[i:i + self.batch_size]
            self.opt.zero_grad()
            loss = self.loss_fn(self.model(X[idx]), y[idx])
            loss.backward()
            self.opt.step()
        return time.perf_counter() - tic

    def accuracy(self, X, y):
        """Accuracy on tensors ``X``, ``y`` (not part of any timing)."""
        self.model.eval()
        with self.torch.no_grad():
            return float((self.model(X).argmax(1) == y).float().mean())


def run_benchmark(X, y, X_test, y_test, *, models=("softmax", "mlp"), epochs=3,
                  hidden=(256,), batch_size=128, seed=0, n_jobs=None):
    """Fit skdigits and its peers on the same data, side by side.

    The Numba kernels are compiled (or loaded from the cache) before any
    timing. The MLP rows train the same network with Adam (learning rate
    1e-3, constant) for ``epochs`` epochs; the softmax rows compare
    ``SoftmaxRegression()`` with ``LogisticRegression()`` at their defaults.

    Parameters
    ----------
    X, y : ndarray
        Training data (pixels scaled to [0, 1]) and labels.
    X_test, y_test : ndarray
        Test data and labels, for the accuracy column.
    models : sequence of {"softmax", "mlp"}, default=("softmax", "mlp")
        Which comparisons to run.
    epochs : int, default=3
        MLP epochs, for every side.
    hidden : tuple of int, default=(256,)
        MLP hidden layer sizes.
    batch_size : int, default=128
        MLP minibatch size.
    seed : int, default=0
        Seed of every side.
    n_jobs : int, default=None
        skdigits' threads; scikit-learn's BLAS and PyTorch get the same count.

    Returns
    -------
    rows : list of dict
        One per side: ``group`` ("softmax" or "mlp"), ``implementation``,
        ``seconds``, ``epochs``, ``accuracy``; plus ``notes`` (a list of
        str) in the first row's ``notes`` key when a side was skipped.
    """
    from . import MLPClassifier, SoftmaxRegression
    from ._engine._parallel import effective_n_threads

    budget = effective_n_threads(n_jobs)
    rows, notes = [], []

    def row(group, implementation, seconds, n_epochs, accuracy):
        rows.append({"group": group, "implementation": implementation,
                     "seconds": float(seconds), "epochs": int(n_epochs),
                     "accuracy": float(accuracy)})

    # compile (or load from the cache) outside the timings
    SoftmaxRegression(max_iter=1).fit(X[:256], y[:256])
    MLPClassifier(hidden_layer_sizes=(8,), max_iter=1).fit(X[:256], y[:256])
    if "softmax" in models:
        from sklearn.linear_model import LogisticRegression

        ours = SoftmaxRegression(random_state=seed, n_jobs=n_jobs)
        sec = fit_quietly(ours, X, y)
        row("softmax", "skdigits SoftmaxRegression()", sec, ours.n_iter_,
            ours.score(X_test, y_test))
        peer = LogisticRegression()
        with equal_budget(budget):
            sec = fit_quietly(peer, X, y)
        row("softmax", "sklearn LogisticRegression()", sec,
            int(np.max(peer.n_iter_)), peer.score(X_test, y_test))
    if "mlp" in models:
        hidden = tuple(hidden)
        ours = skdigits_mlp(hidden, batch_size=batch_size, learning_rate_init=1e-3,
                            epochs=epochs, seed=seed).set_params(n_jobs=n_jobs)
        sec = fit_quietly(ours, X, y)
        row("mlp", "skdigits MLPClassifier", sec, ours.n_iter_,
            ours.score(X_test, y_test))
        peer = sklearn_mlp(hidden, batch_size=batch_size, learning_rate_init=1e-3,
                           epochs=epochs, seed=seed)
        with equal_budget(budget):
            sec = fit_quietly(peer, X, y)
        row("mlp", "sklearn MLPClassifier", sec, peer.n_iter_,
            peer.score(X_test, y_test))
        torch, why = import_torch()
        if torch is None:
            notes.append(f"PyTorch column skipped: {why}")
        else:
            n_classes = int(np.max(y)) + 1
            with equal_budget(budget):
                net = TorchMLP(torch, X.shape[1], n_classes, hidden,
                               batch_size=batch_size, seed=seed)
                Xtr, ytr = net.tensors(X, y)
                net.epoch(Xtr[:256], ytr[:256])  # warm-up
                net = TorchMLP(torch, X.shape[1], n_classes, hidden,
                               batch_size=batch_size, seed=seed)
                sec = sum(net.epoch(Xtr, ytr) for _ in range(epochs))
                threads = torch.get_num_threads()
            row("mlp", f"PyTorch {torch.__version__} ({threads} threads)", sec,
                epochs, net.accuracy(*net.tensors(X_test, y_test)))
    if rows and notes:
        rows[0]["notes"] = notes
    return rows


def format_table(rows):
    """The lines of the side-by-side table of :func:`run_benchmark`'s rows:
    fit seconds, epochs, seconds per epoch, test accuracy and the time ratio
    to skdigits' row of the same group (above 1: skdigits is faster)."""
    head = (f"{'model':<8} {'implementation':<34} {'fit s':>8} {'epochs':>6} "
            f"{'s/epoch':>8} {'test acc':>8} {'time ratio':>10}")
    lines = [head, "-" * len(head)]
    for group in ("softmax", "mlp"):
        mine = [r for r in rows if r["group"] == group
                and r["implementation"].startswith("skdigits")]
        for r in (r for r in rows if r["group"] == group):
            ratio = r["seconds"] / mine[0]["seconds"] if mine else float("nan")
            lines.append(
                f"{group:<8} {r['implementation']:<34} {r['seconds']:>8.2f} "
                f"{r['epochs']:>6} {r['seconds'] / max(r['epochs'], 1):>8.3f} "
                f"{r['accuracy']:>8.4f} {ratio:>9.2f}x")
    lines.append("time ratio: the implementation's fit time / skdigits' (above 1: "
                 "skdigits is faster). Compile time is excluded (warm-up fit "
                 "first). Every side had the thread budget of the machine line.")
    return lines
