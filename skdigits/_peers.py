"""The peers skdigits is compared with: scikit-learn's estimators and a PyTorch
MLP trained the usual way. Shared by ``skdigits benchmark`` and
``benchmarks/``. PyTorch is optional and imported only here, when asked for.
"""

import sys
import time
import warnings

import numpy as np


def machine_line(threads=None):
    """One line saying where figures were measured: the CPU, its cores, the
    BLAS library with the kernel it runs and its thread count, the thread
    budget every side of a comparison gets, and whether the environment
    forces an OpenBLAS kernel."""
    import os
    import platform

    from threadpoolctl import threadpool_info

    from ._engine._parallel import _process_cores, effective_n_threads

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    blas = [f"{i.get('internal_api')} {i.get('version')} "
            f"({i.get('architecture') or '?'} kernel, {i.get('num_threads')} threads)"
            for i in threadpool_info() if i.get("user_api") == "blas"]
    forced = [f"{k}={os.environ[k]}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
              if k in os.environ]
    threads = effective_n_threads(None) if threads is None else threads
    return (f"machine: {model}, {os.cpu_count()} logical / {_process_cores()} "
            f"physical cores; BLAS: {'; '.join(dict.fromkeys(blas)) or 'none loaded'}"
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
