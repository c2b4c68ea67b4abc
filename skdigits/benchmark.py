"""Benchmark helpers: skdigits beside its peers, side by side in one process.

The peers are scikit-learn's estimators and a PyTorch MLP trained the usual
way (PyTorch is optional and imported only when asked for). Every side gets
the same thread budget (:func:`equal_budget`), every timing starts after the
previous side's threads went idle (:func:`settle`), and every report starts
with the machine it was measured on (:func:`machine_line`).

Every side's timing also records how busy other processes kept the CPUs
this process may use (before the fits, during each side and after them):
:func:`format_table` marks a ratio taken under load, which says more about
the neighbours than about the code.

``skdigits benchmark`` runs :func:`run_benchmark` and prints
:func:`format_table`; the scripts in the repository's ``benchmarks/`` folder
use the same helpers.

Examples
--------
>>> from skdigits.benchmark import machine_line
>>> machine_line(2).startswith("machine: ")
True
"""

import logging
import sys
import threading
import time
import warnings

import numpy as np

from ._logging import on_terminal as _on_terminal  # progress only on a terminal
from ._system import machine_info

logger = logging.getLogger(__name__)

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

    Every benchmark report starts with this line, so that its figures can be
    read against the machine, the BLAS libraries and the thread budget they
    were measured with.

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

    See Also
    --------
    equal_budget : Give every side of a comparison the same thread budget.
    run_benchmark : Fit skdigits and its peers side by side.

    Examples
    --------
    >>> from skdigits.benchmark import machine_line
    >>> line = machine_line(threads=2)
    >>> line.startswith("machine: ")
    True
    >>> line.endswith("thread budget 2 for every side")
    True
    """
    from ._cores import effective_n_threads

    info = machine_info()
    threads = effective_n_threads(None) if threads is None else threads
    forced = info["forced"]
    return (f"machine: {info['cpu']}, {info['logical_cores']} logical / "
            f"{info['physical_cores']} physical cores; BLAS: "
            f"{'; '.join(info['blas_threads']) or 'none loaded'}"
            f"{'; forced: ' + ' '.join(forced) if forced else ''}; thread budget "
            f"{threads} for every side")


def equal_budget(threads):
    """Limit BLAS and PyTorch to the thread budget skdigits gets.

    Within the returned context, the BLAS and OpenMP libraries loaded in the
    process (NumPy's, scikit-learn's) run with ``threads`` threads, through
    :mod:`threadpoolctl`, and so does PyTorch when it is already imported;
    PyTorch's previous thread count is restored on exit.

    Parameters
    ----------
    threads : int
        Number of threads for every library.

    Returns
    -------
    context : context manager
        The limits hold inside its ``with`` block.

    See Also
    --------
    machine_line : The line that reports the thread budget.
    settle : Let the threads of the previous timing go idle.

    Examples
    --------
    >>> import numpy as np
    >>> from threadpoolctl import threadpool_info
    >>> from skdigits.benchmark import equal_budget
    >>> with equal_budget(1):
    ...     product = np.ones((50, 50)) @ np.ones((50, 50))
    ...     limited = all(pool["num_threads"] == 1 for pool in threadpool_info())
    >>> limited
    True
    """
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
    """Time the matrix-product floor of one MLP epoch.

    The floor is the two first-layer products of every minibatch
    (``X_b @ W`` and ``X_b.T @ D``), computed through NumPy's BLAS with its
    current thread count on random data. No epoch of an MLP with this first
    layer can be faster than that.

    Parameters
    ----------
    n_rows : int
        Number of training rows in the epoch.
    n_features : int, default=784
        Number of input features (784 pixels for MNIST).
    hidden : int, default=256
        Units of the first hidden layer.
    batch_size : int, default=128
        Rows per minibatch; the epoch has ``ceil(n_rows / batch_size)``
        minibatches.
    dtype : dtype, default=np.float32
        Floating-point type of the products.
    repeats : int, default=3
        Number of timed epochs, after one untimed warm-up minibatch.

    Returns
    -------
    seconds : float
        The median time of the ``repeats`` epochs, in seconds.

    See Also
    --------
    equal_budget : Limit the BLAS threads this function runs with.
    run_benchmark : Fit skdigits and its peers side by side.

    Examples
    --------
    >>> from skdigits.benchmark import floor_epoch_seconds
    >>> seconds = floor_epoch_seconds(256, hidden=16, repeats=1)
    >>> seconds > 0
    True
    """
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
    """Import PyTorch if it is installed.

    PyTorch is optional: the benchmarks skip its column, with the reason
    returned here, when it cannot be imported.

    Returns
    -------
    torch : module or None
        The ``torch`` module, or None when it cannot be imported.
    reason : str or None
        Why ``torch`` cannot be imported, or None when it was.

    See Also
    --------
    TorchMLP : The PyTorch MLP of the comparisons.

    Examples
    --------
    >>> from skdigits.benchmark import import_torch
    >>> torch, reason = import_torch()
    >>> (torch is None) == (reason is not None)
    True
    """
    try:
        import torch
    except ImportError as exc:  # optional: benchmarks only
        return None, f"torch not importable ({exc})"
    return torch, None


def skdigits_mlp(hidden, *, batch_size, learning_rate_init, epochs, seed=0,
                 alpha=1e-4):
    """Build skdigits' MLPClassifier set like :func:`sklearn_mlp`.

    The model uses a constant learning rate and runs exactly ``epochs``
    epochs: ``tol=0`` and an unreachable ``n_iter_no_change`` keep it from
    stopping early.

    Parameters
    ----------
    hidden : tuple of int
        Hidden layer sizes.
    batch_size : int
        Minibatch size.
    learning_rate_init : float
        The constant learning rate.
    epochs : int
        Number of epochs (``max_iter``).
    seed : int, default=0
        The ``random_state``.
    alpha : float, default=1e-4
        Strength of the L2 penalty.

    Returns
    -------
    model : MLPClassifier
        An unfitted :class:`skdigits.MLPClassifier`.

    See Also
    --------
    sklearn_mlp : The scikit-learn MLPClassifier set the same way.

    Examples
    --------
    >>> from skdigits.benchmark import skdigits_mlp
    >>> model = skdigits_mlp((32,), batch_size=64, learning_rate_init=1e-3,
    ...                      epochs=2)
    >>> model.max_iter, model.learning_rate, model.tol
    (2, 'constant', 0)
    """
    from . import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=hidden, batch_size=batch_size,
                         learning_rate="constant",
                         learning_rate_init=learning_rate_init, max_iter=epochs,
                         tol=0, n_iter_no_change=10**6, alpha=alpha,
                         random_state=seed)


def sklearn_mlp(hidden, *, batch_size, learning_rate_init, epochs, seed=0,
                alpha=1e-4):
    """Build scikit-learn's MLPClassifier set to run exactly ``epochs`` epochs.

    ``tol=0`` and an unreachable ``n_iter_no_change`` keep it from stopping
    early; its learning rate is scikit-learn's default, constant.

    Parameters
    ----------
    hidden : tuple of int
        Hidden layer sizes.
    batch_size : int
        Minibatch size.
    learning_rate_init : float
        The constant learning rate.
    epochs : int
        Number of epochs (``max_iter``).
    seed : int, default=0
        The ``random_state``.
    alpha : float, default=1e-4
        Strength of the L2 penalty.

    Returns
    -------
    model : sklearn.neural_network.MLPClassifier
        An unfitted scikit-learn MLPClassifier.

    See Also
    --------
    skdigits_mlp : The skdigits MLPClassifier set the same way.

    Examples
    --------
    >>> from skdigits.benchmark import sklearn_mlp
    >>> model = sklearn_mlp((32,), batch_size=64, learning_rate_init=1e-3,
    ...                     epochs=2)
    >>> model.max_iter, model.learning_rate, model.tol
    (2, 'constant', 0)
    """
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
    """Let the previous side's spinning threads go idle.

    Sleeps for ``SETTLE_SECONDS`` seconds (one second): OpenBLAS and OpenMP
    threads spin-wait for a while after a call, and would slow down the next
    timing.

    See Also
    --------
    fit_quietly : Time a fit, after settling.

    Examples
    --------
    >>> from skdigits.benchmark import settle
    >>> settle()
    """
    time.sleep(SETTLE_SECONDS)


def fit_quietly(model, X, y):
    """Time ``model.fit(X, y)``, without ConvergenceWarning.

    The fit starts after :func:`settle`; a ``ConvergenceWarning`` (expected
    when a model is set to run a fixed number of epochs) is silenced, and so
    is scikit-learn's notice that a ``batch_size`` above the number of
    samples is clipped to it (skdigits clips it too, silently: the sides
    then train alike).

    Parameters
    ----------
    model : estimator instance
        The estimator to fit, in place.
    X : array-like of shape (n_samples, n_features)
        Training data.
    y : array-like of shape (n_samples,)
        Target labels.

    Returns
    -------
    seconds : float
        Wall-clock seconds the fit took.

    See Also
    --------
    settle : Let the previous side's threads go idle.
    equal_budget : Limit the threads of the fit.

    Examples
    --------
    >>> from skdigits import SoftmaxRegression
    >>> from skdigits.benchmark import fit_quietly
    >>> from skdigits.datasets import load_mnist
    >>> X, y = load_mnist(sample=True, return_X_y=True)
    >>> model = SoftmaxRegression(max_iter=1, random_state=0)
    >>> seconds = fit_quietly(model, X / 255.0, y)
    >>> seconds > 0, model.n_iter_
    (True, 1)
    """
    from sklearn.exceptions import ConvergenceWarning

    settle()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="Got `batch_size` less than 1 or "
                                "larger than sample size", category=UserWarning)
        tic = time.perf_counter()
        model.fit(X, y)
        return time.perf_counter() - tic


#: Other processes keeping more CPUs busy than this, beyond those the thread
#: budget leaves free, make a timing "taken under load": under a neighbour
#: that kept both CPUs of a 2-core machine busy, LogisticRegression's fit took
#: 104 s instead of 17.8 s, and the printed ratio went from 111x to 751x.
BUSY_CPUS = 0.5


class _Load:
    """How busy other processes keep the CPUs this process may use, read
    from ``/proc/stat`` by the core budget's meter (``_cores._CpuMeter``):
    each :meth:`read` gives the CPUs they kept busy since the last one. A
    reading is *busy* when they used more than ``BUSY_CPUS`` CPUs beyond
    those the thread budget ``threads`` leaves free. Where ``/proc`` is
    missing nothing is measured (``cpus`` is 0) and nothing is busy."""

    def __init__(self, threads):
        from ._cores import _CpuMeter

        self.threads = threads
        self._meter = _CpuMeter()

    @property
    def cpus(self):
        return self._meter.cpus

    def read(self):
        return float(self._meter.others())

    def quiet_period(self, seconds):
        """The CPUs other processes kept busy over ``seconds`` of sleep."""
        self.read()
        time.sleep(seconds)
        return self.read()

    def busy(self, others):
        return self.cpus > 0 and others > max(0, self.cpus - self.threads) + BUSY_CPUS


class _SideStatus:
    """One side's progress (a context manager): on a terminal with ``bar``, a
    status line on stderr (tqdm) whose elapsed time a thread refreshes every
    second, since a fit gives no word while it runs; otherwise one INFO log
    line as the side starts. ``done`` adds the fit time and the load to the
    status line."""

    def __init__(self, label, bar):
        self.label = label
        self._bar = None
        if bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=None, desc=label, file=sys.stderr, leave=True,
                             bar_format="{desc}: {elapsed}{postfix}",
                             dynamic_ncols=True)
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._tick, daemon=True,
                                            name="skdigits-benchmark-status")
            self._thread.start()
        else:
            logger.info("%s ...", label)

    def _tick(self):
        while not self._stop.wait(1.0):
            self._bar.refresh()

    def done(self, seconds, under_load):
        if self._bar is not None:
            self._bar.set_postfix_str(
                f"fit {seconds:.2f} s{', under load' if under_load else ''}",
                refresh=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._bar is not None:
            self._stop.set()
            self._thread.join()
            self._bar.close()
        return False


class TorchMLP:
    """A ReLU MLP in PyTorch, trained with Adam and shuffled minibatches.

    The PyTorch side of :func:`run_benchmark`: the network is trained the
    usual PyTorch way, one Python loop over the minibatches of each epoch,
    with ``CrossEntropyLoss``. It is not a scikit-learn estimator.

    Parameters
    ----------
    torch : module
        The imported ``torch``.
    n_features, n_classes : int
        Input and output units.
    hidden : tuple of int
        Hidden layer sizes.
    batch_size : int, default=128
        Minibatch size.
    learning_rate_init : float, default=1e-3
        Learning rate of Adam.
    seed : int, default=0
        Seed of ``torch.manual_seed``, which draws the initial weights and
        the shuffling.

    See Also
    --------
    import_torch : Import PyTorch if it is installed.
    skdigits_mlp : The skdigits MLPClassifier of the same comparison.

    Examples
    --------
    >>> from skdigits.benchmark import TorchMLP, import_torch
    >>> from skdigits.datasets import load_mnist
    >>> X, y = load_mnist(sample=True, return_X_y=True)
    >>> torch, reason = import_torch()  # doctest: +SKIP
    >>> net = TorchMLP(torch, 784, 10, (32,), seed=0)  # doctest: +SKIP
    >>> Xt, yt = net.tensors(X / 255.0, y)  # doctest: +SKIP
    >>> seconds = net.epoch(Xt, yt)  # doctest: +SKIP
    >>> 0 <= net.accuracy(Xt, yt) <= 1  # doctest: +SKIP
    True
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
        """Convert arrays to float32 / int64 tensors.

        The tensors share memory with the arrays when possible.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data, converted to a C-contiguous float32 tensor.
        y : array-like of shape (n_samples,), default=None
            Integer class labels, converted to an int64 tensor.

        Returns
        -------
        Xt : torch.Tensor
            ``X`` as a tensor.
        yt : torch.Tensor
            ``y`` as a tensor; only returned when ``y`` is not None.
        """
        Xt = self.torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        if y is None:
            return Xt
        return Xt, self.torch.from_numpy(np.asarray(y, dtype=np.int64))

    def epoch(self, X, y):
        """Train for one epoch over shuffled minibatches.

        Parameters
        ----------
        X : torch.Tensor of shape (n_samples, n_features)
            Training data, as returned by :meth:`tensors`.
        y : torch.Tensor of shape (n_samples,)
            Class labels, as returned by :meth:`tensors`.

        Returns
        -------
        seconds : float
            Wall-clock seconds the epoch took.
        """
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
        """Return the accuracy on tensors ``X``, ``y``.

        It is not part of any timing.

        Parameters
        ----------
        X : torch.Tensor of shape (n_samples, n_features)
            Input data, as returned by :meth:`tensors`.
        y : torch.Tensor of shape (n_samples,)
            True class labels, as returned by :meth:`tensors`.

        Returns
        -------
        accuracy : float
            Fraction of rows whose predicted class is ``y``.
        """
        self.model.eval()
        with self.torch.no_grad():
            return float((self.model(X).argmax(1) == y).float().mean())


def run_benchmark(X, y, X_test, y_test, *, models=("softmax", "mlp"), epochs=3,
                  hidden=(256,), batch_size=128, seed=0, n_jobs=None,
                  progress=False):
    """Fit skdigits and its peers on the same data, side by side.

    The Numba kernels are compiled (or loaded from the cache) before any
    timing. The MLP rows train the same network with Adam (learning rate
    1e-3, constant) for ``epochs`` epochs; the softmax rows compare
    ``SoftmaxRegression()`` with ``LogisticRegression()`` at their defaults.

    How busy other processes keep the CPUs this process may use is measured
    over a second before the first side, during each side and over a second
    after the last one. A side is taken under load when, at any of these
    times, they kept more than ``BUSY_CPUS`` CPUs busy beyond those the
    thread budget leaves free.

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
        Number of skdigits' threads; scikit-learn's BLAS and PyTorch get the
        same count.
    progress : bool, default=False
        Show a status line per side on stderr (its elapsed time, then its fit
        time) when stderr is a terminal. Otherwise, and without
        ``progress``, each side logs one INFO line as it starts, to the
        ``skdigits.benchmark`` logger.

    Returns
    -------
    rows : list of dict
        One per side: ``group`` ("softmax" or "mlp"), ``implementation``,
        ``seconds``, ``epochs``, ``accuracy``; ``load``, the CPUs other
        processes kept busy during the side; ``load_before`` and
        ``load_after``, the same before the first side and after the last;
        ``cpus``, how many CPUs were read (0: not measured);
        ``under_load``, whether any of the three was busy; plus ``notes``
        (a list of str) in the first row's ``notes`` key when a side was
        skipped.

    See Also
    --------
    format_table : Lay the rows out as a table.
    machine_line : The line saying where the figures were measured.

    Examples
    --------
    >>> from skdigits.benchmark import format_table, run_benchmark
    >>> from skdigits.datasets import load_mnist
    >>> X, y = load_mnist(sample=True, return_X_y=True)
    >>> X = X / 255.0
    >>> rows = run_benchmark(X, y, X, y, models=("softmax",))  # doctest: +SKIP
    >>> [row["implementation"] for row in rows]  # doctest: +SKIP
    ['skdigits SoftmaxRegression()', 'sklearn LogisticRegression()']
    >>> lines = format_table(rows)  # doctest: +SKIP
    """
    import importlib.util

    from . import MLPClassifier, SoftmaxRegression
    from ._cores import effective_n_threads
    from ._warmup import wait_quietly

    budget = effective_n_threads(n_jobs)
    rows, notes = [], []
    bar = progress and _on_terminal()
    n_sides = (2 * ("softmax" in models) + 2 * ("mlp" in models)
               + ("mlp" in models and importlib.util.find_spec("torch") is not None))
    load = _Load(budget)

    def side(label):
        return _SideStatus(f"benchmark {len(rows) + 1}/{n_sides}: {label}", bar)

    def row(status, group, implementation, seconds, n_epochs, accuracy, during):
        status.done(seconds, load.busy(during))
        rows.append({"group": group, "implementation": implementation,
                     "seconds": float(seconds), "epochs": int(n_epochs),
                     "accuracy": float(accuracy), "load": during})

    def timed(model):  # fit_quietly, with the load during it (settle included)
        load.read()
        seconds = fit_quietly(model, X, y)
        return seconds, load.read()

    # compile (or load from the cache) outside the timings, and let the
    # background compiles a first fit starts end before the first timing
    SoftmaxRegression(max_iter=1).fit(X[:256], y[:256])
    MLPClassifier(hidden_layer_sizes=(8,), max_iter=1).fit(X[:256], y[:256])
    wait_quietly()
    before = load.quiet_period(SETTLE_SECONDS)
    if "softmax" in models:
        from sklearn.linear_model import LogisticRegression

        name = "skdigits SoftmaxRegression()"
        with side(name) as status:
            ours = SoftmaxRegression(random_state=seed, n_jobs=n_jobs)
            sec, during = timed(ours)
            row(status, "softmax", name, sec, ours.n_iter_,
                ours.score(X_test, y_test), during)
        name = "sklearn LogisticRegression()"
        with side(name) as status:
            peer = LogisticRegression()
            with equal_budget(budget):
                sec, during = timed(peer)
            row(status, "softmax", name, sec, int(np.max(peer.n_iter_)),
                peer.score(X_test, y_test), during)
    if "mlp" in models:
        hidden = tuple(hidden)
        name = "skdigits MLPClassifier"
        with side(name) as status:
            ours = skdigits_mlp(hidden, batch_size=batch_size,
                                learning_rate_init=1e-3, epochs=epochs,
                                seed=seed).set_params(n_jobs=n_jobs)
            sec, during = timed(ours)
            row(status, "mlp", name, sec, ours.n_iter_,
                ours.score(X_test, y_test), during)
        name = "sklearn MLPClassifier"
        with side(name) as status:
            peer = sklearn_mlp(hidden, batch_size=batch_size, learning_rate_init=1e-3,
                               epochs=epochs, seed=seed)
            with equal_budget(budget):
                sec, during = timed(peer)
            row(status, "mlp", name, sec, peer.n_iter_, peer.score(X_test, y_test),
                during)
        torch, why = import_torch()
        if torch is None:
            notes.append(f"PyTorch column skipped: {why}")
        else:
            with side("PyTorch") as status:
                n_classes = int(np.max(y)) + 1
                with equal_budget(budget):
                    net = TorchMLP(torch, X.shape[1], n_classes, hidden,
                                   batch_size=batch_size, seed=seed)
                    Xtr, ytr = net.tensors(X, y)
                    net.epoch(Xtr[:256], ytr[:256])  # warm-up
                    net = TorchMLP(torch, X.shape[1], n_classes, hidden,
                                   batch_size=batch_size, seed=seed)
                    load.read()
                    sec = sum(net.epoch(Xtr, ytr) for _ in range(epochs))
                    during = load.read()
                    threads = torch.get_num_threads()
                row(status, "mlp", f"PyTorch {torch.__version__} ({threads} threads)",
                    sec, epochs, net.accuracy(*net.tensors(X_test, y_test)), during)
    after = load.quiet_period(SETTLE_SECONDS)
    for r in rows:
        r.update(load_before=before, load_after=after, cpus=load.cpus,
                 under_load=any(map(load.busy, (before, r["load"], after))))
    if rows and notes:
        rows[0]["notes"] = notes
    return rows


def format_table(rows):
    """Lay out :func:`run_benchmark`'s rows as a side-by-side table.

    The columns are the fit seconds, the epochs, the seconds per epoch, the
    test accuracy and the time ratio to skdigits' row of the same group
    (above 1: skdigits is faster). A line explains the time ratio. When the
    rows carry the machine's load (``run_benchmark`` measures it), a last
    line says how busy other processes kept the CPUs, and a ratio taken
    under load (its row's or skdigits' row's ``under_load``) ends with
    ``*``, which that line explains.

    Parameters
    ----------
    rows : list of dict
        The rows returned by :func:`run_benchmark`: each has the keys
        ``group`` ("softmax" or "mlp"), ``implementation``, ``seconds``,
        ``epochs`` and ``accuracy``, and may have ``load``,
        ``load_before``, ``load_after``, ``cpus`` and ``under_load``.

    Returns
    -------
    lines : list of str
        The header, a rule, one line per row (grouped, softmax first), the
        explanation and, with the load, the load line.

    See Also
    --------
    run_benchmark : Fit skdigits and its peers side by side.
    machine_line : The line that starts every report.

    Examples
    --------
    >>> from skdigits.benchmark import format_table
    >>> rows = [
    ...     {"group": "mlp", "implementation": "skdigits MLPClassifier",
    ...      "seconds": 2.0, "epochs": 4, "accuracy": 0.97},
    ...     {"group": "mlp", "implementation": "sklearn MLPClassifier",
    ...      "seconds": 6.0, "epochs": 4, "accuracy": 0.96},
    ... ]
    >>> lines = format_table(rows)
    >>> len(lines)  # header, rule, two rows, note
    5
    >>> [line.split()[-1] for line in lines[2:4]]  # the time ratios
    ['1.00x', '3.00x']
    >>> lines[3].split()
    ['mlp', 'sklearn', 'MLPClassifier', '6.00', '4', '1.500', '0.9600', '3.00x']
    >>> load = {"load_before": 0.0, "load_after": 0.1, "cpus": 2}
    >>> rows[0].update(load, load=0.0, under_load=False)
    >>> rows[1].update(load, load=1.6, under_load=True)
    >>> lines = format_table(rows)
    >>> lines[3].split()[-1]
    '3.00x*'
    >>> print(lines[-1])  # doctest: +NORMALIZE_WHITESPACE
    load: other processes kept 0.00 of the 2 CPUs busy before the fits, up to
    1.60 during them, 0.10 after; * taken under load (they used CPUs the thread
    budget needs): the ratio says more about them than about the code
    """
    head = (f"{'model':<8} {'implementation':<34} {'fit s':>8} {'epochs':>6} "
            f"{'s/epoch':>8} {'test acc':>8} {'time ratio':>10}")
    lines = [head, "-" * len(head)]
    for group in ("softmax", "mlp"):
        mine = [r for r in rows if r["group"] == group
                and r["implementation"].startswith("skdigits")]
        for r in (r for r in rows if r["group"] == group):
            ratio = r["seconds"] / mine[0]["seconds"] if mine else float("nan")
            marked = (bool(mine) and r is not mine[0]
                      and (r.get("under_load") or mine[0].get("under_load")))
            lines.append(
                f"{group:<8} {r['implementation']:<34} {r['seconds']:>8.2f} "
                f"{r['epochs']:>6} {r['seconds'] / max(r['epochs'], 1):>8.3f} "
                f"{r['accuracy']:>8.4f} {ratio:>9.2f}x{'*' if marked else ''}")
    lines.append("time ratio: the implementation's fit time / skdigits' (above 1: "
                 "skdigits is faster). Compile time is excluded (warm-up fit "
                 "first). Every side had the thread budget of the machine line.")
    if rows and "cpus" in rows[0]:
        lines.append(_load_line(rows))
    return lines


def _load_line(rows):
    """The table's last line: the load before, during and after the fits."""
    first = rows[0]
    if not first["cpus"]:
        return "load: not measured (no /proc/stat on this system)"
    line = (f"load: other processes kept {first['load_before']:.2f} of the "
            f"{first['cpus']} CPUs busy before the fits, up to "
            f"{max(r['load'] for r in rows):.2f} during them, "
            f"{first['load_after']:.2f} after")
    if any(r.get("under_load") for r in rows):
        return (line + "; * taken under load (they used CPUs the thread budget "
                "needs): the ratio says more about them than about the code")
    return line + ": a quiet machine"
