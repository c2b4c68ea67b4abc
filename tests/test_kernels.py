"""Numba kernels against float64 NumPy references on random inputs."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skdigits._kernels import _linear, _losses, _optim, _rng

# ---------------------------------------------------------------- references


def ref_softmax_loss(Z, y, w):
    """Per-row softmax cross-entropy and its gradient (float64)."""
    Z = Z.astype(np.float64)
    m = Z.max(axis=1, keepdims=True)
    logp = Z - m - np.log(np.exp(Z - m).sum(axis=1, keepdims=True))
    loss = -logp[np.arange(len(y)), y]
    onehot = np.eye(Z.shape[1])[y]
    return loss, w[:, None] * (np.exp(logp) - onehot)


def ref_logistic_loss(Z, y, w):
    """Per-row sum of per-column binary logistic losses, per-column losses, grad."""
    Z = Z.astype(np.float64)
    if Z.shape[1] == 1:
        T = (y == 1).astype(np.float64)[:, None]
    else:
        T = np.eye(Z.shape[1])[y]
    L = np.logaddexp(0.0, Z) - Z * T
    P = 1.0 / (1.0 + np.exp(-Z))
    return L.sum(axis=1), L, w[:, None] * (P - T)


def run_loss_grad(Z, y, w, loss, scale, n_classes):
    Z = Z.copy()
    acc = [np.zeros(n_classes), np.zeros(n_classes), np.zeros(Z.shape[1]), np.zeros(3)]
    _losses.loss_grad(Z, y, w, Z.shape[0], loss, scale, *acc)
    return Z, acc


problems = st.tuples(
    st.integers(1, 40),  # rows
    st.integers(2, 12),  # classes
    st.integers(0, 2**31 - 1),  # seed
    st.sampled_from([1.0, 30.0]),  # logit scale (large values test stability)
)

# ---------------------------------------------------------------- losses


@settings(max_examples=40, deadline=None)
@given(problems)
def test_softmax_loss_grad_matches_numpy(problem):
    n, k, seed, s = problem
    rng = np.random.default_rng(seed)
    Z = rng.normal(scale=s, size=(n, k))
    y = rng.integers(0, k, size=n)
    w = rng.uniform(0.1, 2.0, size=n)
    G, (cl, cw, col, stats) = run_loss_grad(Z, y, w, _losses.SOFTMAX, 0.5, k)
    loss, grad = ref_softmax_loss(Z, y, w)
    np.testing.assert_allclose(G, 0.5 * grad, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(stats[0], (w * loss).sum(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(stats[1], w.sum(), rtol=1e-12)
    np.testing.assert_allclose(stats[2], w[Z.argmax(1) == y].sum(), rtol=1e-12)
    np.testing.assert_allclose(cl, np.bincount(y, w * loss, minlength=k), rtol=1e-10,
                               atol=1e-14)
    np.testing.assert_allclose(cw, np.bincount(y, w, minlength=k), rtol=1e-12)
    assert np.all(np.isfinite(G))


@settings(max_examples=40, deadline=None)
@given(problems, st.booleans())
def test_logistic_loss_grad_matches_numpy(problem, binary):
    n, k, seed, s = problem
    rng = np.random.default_rng(seed)
    n_out = 1 if binary else k
    n_classes = 2 if binary else k
    Z = rng.normal(scale=s, size=(n, n_out))
    y = rng.integers(0, n_classes, size=n)
    w = rng.uniform(0.1, 2.0, size=n)
    G, (cl, cw, col, stats) = run_loss_grad(Z, y, w, _losses.LOGISTIC, 0.25, n_classes)
    loss, L, grad = ref_logistic_loss(Z, y, w)
    np.testing.assert_allclose(G, 0.25 * grad, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(col, (w[:, None] * L).sum(axis=0), rtol=1e-10)
    np.testing.assert_allclose(stats[0], (w * loss).sum(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(cl, np.bincount(y, w * loss, minlength=n_classes),
                               rtol=1e-10)
    pred = (Z[:, 0] > 0).astype(int) if binary else Z.argmax(1)
    np.testing.assert_allclose(stats[2], w[pred == y].sum(), rtol=1e-12)


@pytest.mark.parametrize("loss", [_losses.SOFTMAX, _losses.LOGISTIC])
def test_loss_gradient_by_finite_differences(loss, rng):
    n, k = 7, 4
    Z = rng.normal(size=(n, k))
    y = rng.integers(0, k, size=n)
    w = rng.uniform(0.5, 1.5, size=n)

    def total(Zp):
        return run_loss_grad(Zp, y, w, loss, 0.0, k)[1][3][0]

    G, _ = run_loss_grad(Z, y, w, loss, 1.0, k)
    eps = 1e-6
    num = np.zeros_like(Z)
    for idx in np.ndindex(Z.shape):
        Zp, Zm = Z.copy(), Z.copy()
        Zp[idx] += eps
        Zm[idx] -= eps
        num[idx] = (total(Zp) - total(Zm)) / (2 * eps)
    np.testing.assert_allclose(G, num, rtol=1e-6, atol=1e-8)


def test_loss_is_stable_for_huge_logits():
    Z = np.array([[1e4, -1e4, 0.0], [-800.0, 800.0, 0.0]])
    y = np.array([1, 0])
    G, (_, _, _, stats) = run_loss_grad(Z, y, np.ones(2), _losses.SOFTMAX, 1.0, 3)
    assert np.isfinite(stats[0]) and np.all(np.isfinite(G))
    np.testing.assert_allclose(stats[0], 2e4 + 1600.0)
    G, (_, _, col, stats) = run_loss_grad(Z, y, np.ones(2), _losses.LOGISTIC, 1.0, 3)
    assert np.isfinite(stats[0]) and np.all(np.isfinite(G))


def test_scale_zero_leaves_logits_untouched(rng):
    Z = rng.normal(size=(5, 3))
    G, _ = run_loss_grad(Z, rng.integers(0, 3, 5), np.ones(5), _losses.SOFTMAX, 0.0, 3)
    np.testing.assert_array_equal(G, Z)


# ---------------------------------------------------------------- optimizers


def test_sgd_step_by_hand():
    theta = np.array([1.0, -2.0])
    grad = np.array([0.5, 1.0])
    vel = np.array([0.1, 0.0])
    _optim.sgd_step(theta, grad, vel, 0.1, 0.9, False)
    # v = 0.9 * v - 0.1 * g
    np.testing.assert_allclose(vel, [0.09 - 0.05, -0.1])
    np.testing.assert_allclose(theta, [1.04, -2.1])
    theta = np.array([1.0, -2.0])
    vel = np.array([0.1, 0.0])
    _optim.sgd_step(theta, grad, vel, 0.1, 0.9, True)
    # Nesterov: theta += 0.9 * v_new - 0.1 * g
    np.testing.assert_allclose(theta, [1.0 + 0.9 * 0.04 - 0.05, -2.0 - 0.09 - 0.1])


def test_adam_step_by_hand():
    theta = np.array([1.0, -1.0, 0.0])
    grad = np.array([0.2, -0.4, 0.0])
    m = np.zeros(3)
    v = np.zeros(3)
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    _optim.adam_step(theta, grad, m, v, lr, b1, b2, eps, 1)
    np.testing.assert_allclose(m, 0.1 * grad)
    np.testing.assert_allclose(v, 0.001 * grad**2)
    # first step: lr * sqrt(1-b2)/(1-b1) * m / (sqrt(v) + eps) ~ lr * sign(g)
    lr_t = lr * np.sqrt(1 - b2) / (1 - b1)
    expected = np.array([1.0, -1.0, 0.0]) - lr_t * m / (np.sqrt(v) + eps)
    np.testing.assert_allclose(theta, expected, rtol=1e-12)
    np.testing.assert_allclose(theta[:2], [0.99, -0.99], rtol=1e-6)
    # second step with the same gradient
    _optim.adam_step(theta, grad, m, v, lr, b1, b2, eps, 2)
    m2 = 0.9 * 0.1 * grad + 0.1 * grad
    v2 = 0.999 * 0.001 * grad**2 + 0.001 * grad**2
    lr_t2 = lr * np.sqrt(1 - b2**2) / (1 - b1**2)
    np.testing.assert_allclose(theta, expected - lr_t2 * m2 / (np.sqrt(v2) + eps))


def test_step_dispatches_on_solver_code():
    g = np.array([1.0])
    a, b = np.array([0.0]), np.array([0.0])
    _optim.step(_optim.SGD, a, g, np.zeros(1), np.zeros(1), 0.5, 0.0, False,
                0.9, 0.999, 1e-8, 1)
    _optim.step(_optim.ADAM, b, g, np.zeros(1), np.zeros(1), 0.5, 0.0, False,
                0.9, 0.999, 1e-8, 1)
    assert a[0] == pytest.approx(-0.5)
    assert b[0] == pytest.approx(-0.5, rel=1e-6)


# ---------------------------------------------------------------- rng


def test_shuffle_is_a_seeded_permutation():
    order = np.arange(1000)
    state = _rng.new_state(np.random.RandomState(3))
    _rng.shuffle(order, state)
    assert sorted(order.tolist()) == list(range(1000))
    assert not np.array_equal(order, np.arange(1000))
    again = np.arange(1000)
    _rng.shuffle(again, _rng.new_state(np.random.RandomState(3)))
    np.testing.assert_array_equal(order, again)
    other = np.arange(1000)
    _rng.shuffle(other, _rng.new_state(np.random.RandomState(4)))
    assert not np.array_equal(order, other)


def test_randbelow_is_roughly_uniform():
    state = _rng.new_state(np.random.RandomState(0))
    draws = np.array([_rng.randbelow(state, 10) for _ in range(20000)])
    counts = np.bincount(draws, minlength=10)
    assert draws.min() >= 0 and draws.max() < 10
    assert counts.min() > 1800 and counts.max() < 2200


# ---------------------------------------------------------------- linear epoch


def linear_epoch(X, y, w, theta, n_out, loss, batch_size, alpha=0.0, lr=0.1,
                 solver=_optim.SGD, momentum=0.0, shuffle=False, n_classes=None):
    n, nf = X.shape
    n_classes = n_classes or max(n_out, 2)
    dtype = X.dtype
    s1, s2 = np.zeros_like(theta), np.zeros_like(theta)
    acc = [np.zeros(n_classes), np.zeros(n_classes), np.zeros(n_out), np.zeros(3)]
    t = _linear.linear_epoch(
        X, y, w, np.arange(n), shuffle, _rng.new_state(np.random.RandomState(0)),
        theta, np.empty_like(theta), s1, s2, np.empty((batch_size, nf), dtype),
        np.empty((batch_size, n_out), dtype), np.empty(batch_size, np.int64),
        np.empty(batch_size, dtype), n_out, loss, alpha, lr, lr, solver, momentum,
        False, 0.9, 0.999, 1e-8, 0, *acc)
    return t, acc


def ref_linear_objective_grad(X, y, w, W, b, loss, alpha):
    Z = X @ W + b
    if loss == _losses.SOFTMAX:
        per_row, dZ = ref_softmax_loss(Z, y, w)
    else:
        per_row, _, dZ = ref_logistic_loss(Z, y, w)
    n = X.shape[0]
    obj = (w * per_row).sum() / n + 0.5 * alpha * (W**2).sum()
    return obj, X.T @ dZ / n + alpha * W, dZ.sum(axis=0) / n


@pytest.mark.parametrize("loss,n_out", [(_losses.SOFTMAX, 4), (_losses.LOGISTIC, 4),
                                        (_losses.LOGISTIC, 1)])
def test_linear_full_batch_step_matches_numpy(loss, n_out, rng):
    n, nf = 23, 6
    n_classes = 2 if n_out == 1 else n_out
    X = rng.normal(size=(n, nf))
    y = rng.integers(0, n_classes, size=n)
    w = rng.uniform(0.5, 1.5, size=n)
    theta = rng.normal(scale=0.3, size=nf * n_out + n_out)
    W0 = theta[: nf * n_out].reshape(nf, n_out).copy()
    b0 = theta[nf * n_out:].copy()
    obj, gW, gb = ref_linear_objective_grad(X, y, w, W0, b0, loss, alpha=0.01)
    t, acc = linear_epoch(X, y, w, theta, n_out, loss, batch_size=n, alpha=0.01,
                          lr=0.1, n_classes=n_classes)
    assert t == 1
    np.testing.assert_allclose(theta[: nf * n_out].reshape(nf, n_out), W0 - 0.1 * gW,
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(theta[nf * n_out:], b0 - 0.1 * gb, rtol=1e-10,
                               atol=1e-12)
    # the accumulated data loss is the objective without its penalty
    np.testing.assert_allclose(acc[3][0] / acc[3][1] * w.sum() / n,
                               obj - 0.005 * (W0**2).sum(), rtol=1e-10)


def test_linear_gradient_by_finite_differences(rng):
    n, nf, k = 9, 3, 3
    X = rng.normal(size=(n, nf))
    y = rng.integers(0, k, size=n)
    w = np.ones(n)
    W = rng.normal(size=(nf, k))
    b = rng.normal(size=k)
    _, gW, gb = ref_linear_objective_grad(X, y, w, W, b, _losses.SOFTMAX, 0.1)
    theta = np.concatenate([W.ravel(), b])
    # the kernel's step with lr=1 and plain SGD moves theta by -gradient
    moved = theta.copy()
    linear_epoch(X, y, w, moved, k, _losses.SOFTMAX, batch_size=n, alpha=0.1, lr=1.0)
    kernel_grad = theta - moved
    eps = 1e-6
    num = np.zeros_like(theta)
    for i in range(theta.size):
        tp, tm = theta.copy(), theta.copy()
        tp[i] += eps
        tm[i] -= eps
        fp = ref_linear_objective_grad(X, y, w, tp[:nf * k].reshape(nf, k), tp[nf * k:],
                                       _losses.SOFTMAX, 0.1)[0]
        fm = ref_linear_objective_grad(X, y, w, tm[:nf * k].reshape(nf, k), tm[nf * k:],
                                       _losses.SOFTMAX, 0.1)[0]
        num[i] = (fp - fm) / (2 * eps)
    np.testing.assert_allclose(kernel_grad, num, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(kernel_grad[nf * k:], gb, rtol=1e-10)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 50), st.integers(1, 17), st.integers(0, 1000))
def test_minibatches_cover_every_row_once(n, batch_size, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = rng.integers(0, 3, size=n)
    w = rng.uniform(0.5, 2.0, size=n)
    theta = np.zeros(3 * 3 + 3)
    bs = min(batch_size, n)
    t, acc = linear_epoch(X, y, w, theta, 3, _losses.SOFTMAX, batch_size=bs,
                          shuffle=True)
    assert t == -(-n // bs)
    np.testing.assert_allclose(acc[1], np.bincount(y, w, minlength=3))
    np.testing.assert_allclose(acc[3][1], w.sum())


def test_float32_epoch_tracks_float64(rng):
    n, nf, k = 200, 20, 5
    X = rng.normal(size=(n, nf))
    y = rng.integers(0, k, size=n)
    th64 = np.zeros(nf * k + k)
    th32 = th64.astype(np.float32)
    linear_epoch(X, y, np.ones(n), th64, k, _losses.SOFTMAX, 32, lr=0.05,
                 solver=_optim.ADAM)
    linear_epoch(X.astype(np.float32), y, np.ones(n, np.float32), th32, k,
                 _losses.SOFTMAX, 32, lr=0.05, solver=_optim.ADAM)
    assert th32.dtype == np.float32
    np.testing.assert_allclose(th32, th64, rtol=1e-3, atol=1e-4)
