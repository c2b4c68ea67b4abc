"""The peers skdigits is compared with: scikit-learn's estimators and a PyTorch
MLP trained the usual way. Shared by ``skdigits benchmark`` and
``benchmarks/``. PyTorch is optional and imported only here, when asked for.
"""

import time
import warnings

import numpy as np


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


def fit_quietly(model, X, y):
    """``model.fit(X, y)`` without ConvergenceWarning; returns seconds taken."""
    from sklearn.exceptions import ConvergenceWarning

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
