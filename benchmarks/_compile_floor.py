"""The compile floor: what Numba charges for a minimal plain kernel of a
default fit's epoch, whatever skdigits does (``bench_compile.py``).

Two epochs, each one plain function compiled as skdigits' ``jit`` compiles
(nopython, cached, ``error_model="numpy"``, the garbage collector made
rare), with the Adam step inlined: a softmax regression and a
one-hidden-layer ReLU network, both trained by minibatch Adam on the mean
cross-entropy with an L2 penalty, with the hyperparameters of
``SoftmaxRegression()`` and ``MLPClassifier()``. They have none of the
engine's tiles, threads, options, shuffling, standardisation, sparse input
or curves, and run in the rows' order. What their first call costs in a
fresh process with an empty cache folder, less what it costs with the cache
filled, is what Numba charges to compile such a kernel on this machine.

Run as ``python benchmarks/_compile_floor.py softmax|mlp [--epoch]``: it
loads the bundled sample as ``bench_compile``'s fits do, then prints the
seconds of the kernel's first call on one minibatch (the compile, and little
else), or with ``--epoch`` on the whole sample (one epoch).
"""

import math
import sys
import time

import numba
import numpy as np

_JIT = numba.njit(nogil=True, error_model="numpy", cache=True)


@numba.njit(nogil=True, error_model="numpy", inline="always")
def _adam(param, grad, m, v, t, lr, beta_1, beta_2, eps):
    """One Adam step of ``param`` (flat) from ``grad``, in place."""
    c1 = 1.0 - beta_1 ** t
    c2 = 1.0 - beta_2 ** t
    for q in range(param.size):
        m[q] = beta_1 * m[q] + (1.0 - beta_1) * grad[q]
        v[q] = beta_2 * v[q] + (1.0 - beta_2) * grad[q] * grad[q]
        param[q] -= lr * (m[q] / c1) / (math.sqrt(v[q] / c2) + eps)


def _softmax_epoch(X, y, W, b, mW, vW, mb, vb, t, lr, alpha, batch_size):
    """One epoch of minibatch Adam on a softmax regression; returns the mean
    loss and the step count. ``W`` is (features, classes), float32."""
    n, d = X.shape
    k = W.shape[1]
    P = np.empty((batch_size, k), dtype=np.float64)
    gW = np.empty((d, k), dtype=np.float64)
    gb = np.empty(k, dtype=np.float64)
    loss = 0.0
    for start in range(0, n, batch_size):
        rows = min(n, start + batch_size) - start
        for i in range(rows):
            top = -np.inf
            for j in range(k):
                z = float(b[j])
                for f in range(d):
                    z += X[start + i, f] * W[f, j]
                P[i, j] = z
                top = max(top, z)
            total = 0.0
            for j in range(k):
                P[i, j] = math.exp(P[i, j] - top)
                total += P[i, j]
            for j in range(k):
                P[i, j] /= total
            loss -= math.log(max(P[i, y[start + i]], 1e-300))
            P[i, y[start + i]] -= 1.0
        for f in range(d):
            for j in range(k):
                acc = 0.0
                for i in range(rows):
                    acc += X[start + i, f] * P[i, j]
                gW[f, j] = acc / rows + alpha * W[f, j]
        for j in range(k):
            acc = 0.0
            for i in range(rows):
                acc += P[i, j]
            gb[j] = acc / rows
        t += 1
        _adam(W.ravel(), gW.ravel(), mW, vW, t, lr, 0.9, 0.999, 1e-8)
        _adam(b, gb, mb, vb, t, lr, 0.9, 0.999, 1e-8)
    return loss / n, t


def _mlp_epoch(X, y, W1, b1, W2, b2, moments, t, lr, alpha, batch_size):
    """One epoch of minibatch Adam on a one-hidden-layer ReLU network;
    ``moments`` holds Adam's (m, v) pairs for W1, b1, W2, b2 in that order."""
    n, d = X.shape
    h = W1.shape[1]
    k = W2.shape[1]
    H = np.empty((batch_size, h), dtype=np.float64)
    P = np.empty((batch_size, k), dtype=np.float64)
    dH = np.empty((batch_size, h), dtype=np.float64)
    g1 = np.empty((d, h), dtype=np.float64)
    gb1 = np.empty(h, dtype=np.float64)
    g2 = np.empty((h, k), dtype=np.float64)
    gb2 = np.empty(k, dtype=np.float64)
    loss = 0.0
    for start in range(0, n, batch_size):
        rows = min(n, start + batch_size) - start
        for i in range(rows):
            for j in range(h):
                z = float(b1[j])
                for f in range(d):
                    z += X[start + i, f] * W1[f, j]
                H[i, j] = max(z, 0.0)
            top = -np.inf
            for j in range(k):
                z = float(b2[j])
                for f in range(h):
                    z += H[i, f] * W2[f, j]
                P[i, j] = z
                top = max(top, z)
            total = 0.0
            for j in range(k):
                P[i, j] = math.exp(P[i, j] - top)
                total += P[i, j]
            for j in range(k):
                P[i, j] /= total
            loss -= math.log(max(P[i, y[start + i]], 1e-300))
            P[i, y[start + i]] -= 1.0
            for f in range(h):
                acc = 0.0
                for j in range(k):
                    acc += P[i, j] * W2[f, j]
                dH[i, f] = acc if H[i, f] > 0.0 else 0.0
        for f in range(d):
            for j in range(h):
                acc = 0.0
                for i in range(rows):
                    acc += X[start + i, f] * dH[i, j]
                g1[f, j] = acc / rows + alpha * W1[f, j]
        for f in range(h):
            for j in range(k):
                acc = 0.0
                for i in range(rows):
                    acc += H[i, f] * P[i, j]
                g2[f, j] = acc / rows + alpha * W2[f, j]
        for j in range(h):
            acc = 0.0
            for i in range(rows):
                acc += dH[i, j]
            gb1[j] = acc / rows
        for j in range(k):
            acc = 0.0
            for i in range(rows):
                acc += P[i, j]
            gb2[j] = acc / rows
        t += 1
        _adam(W1.ravel(), g1.ravel(), moments[0], moments[1], t, lr,
              0.9, 0.999, 1e-8)
        _adam(b1, gb1, moments[2], moments[3], t, lr, 0.9, 0.999, 1e-8)
        _adam(W2.ravel(), g2.ravel(), moments[4], moments[5], t, lr,
              0.9, 0.999, 1e-8)
        _adam(b2, gb2, moments[6], moments[7], t, lr, 0.9, 0.999, 1e-8)
    return loss / n, t


softmax_epoch = _JIT(_softmax_epoch)
mlp_epoch = _JIT(_mlp_epoch)


def softmax_args(X, y, n_classes):
    """``softmax_epoch``'s arguments for float32 ``X``, starting at zero."""
    d = X.shape[1]
    W = np.zeros((d, n_classes), np.float32)
    b = np.zeros(n_classes, np.float32)
    return (X, y, W, b, np.zeros(W.size, np.float32), np.zeros(W.size, np.float32),
            np.zeros(n_classes, np.float32), np.zeros(n_classes, np.float32),
            0, 0.05, 1e-5, 256)


def mlp_args(X, y, n_classes, n_hidden=512, seed=0):
    """``mlp_epoch``'s arguments: Glorot-uniform float32 weights."""
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    shapes = [(d, n_hidden), (n_hidden,), (n_hidden, n_classes), (n_classes,)]
    params = []
    for shape in shapes:
        if len(shape) == 2:
            bound = math.sqrt(6.0 / (shape[0] + shape[1]))
            params.append(rng.uniform(-bound, bound, shape).astype(np.float32))
        else:
            params.append(np.zeros(shape, np.float32))
    moments = np.zeros((8, max(p.size for p in params)), np.float32)
    return (X, y, *params, moments, 0, 4e-3, 1e-3, 128)


def main(kind, epoch=False):
    from skdigits._kernels._numba import _rare_collection
    from skdigits.datasets import load_mnist

    X, y = load_mnist(sample=True, return_X_y=True)
    X = np.ascontiguousarray(X / 255.0, dtype=np.float32)
    y = y.astype(np.int64)
    if kind == "softmax":
        kernel, args = softmax_epoch, softmax_args(X, y, 10)
    else:
        kernel, args = mlp_epoch, mlp_args(X, y, 10)
    if not epoch:  # one minibatch: the compile, not the loops, is timed
        args = (X[:args[-1]], y[:args[-1]], *args[2:])
    tic = time.perf_counter()
    with _rare_collection():  # as skdigits' jit compiles
        kernel(*args)
    print(time.perf_counter() - tic)


if __name__ == "__main__":
    main(sys.argv[1], epoch="--epoch" in sys.argv[2:])
