"""Numba kernels against float64 NumPy references on random inputs."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from skdigits._engine._models import Accumulators, LinearModel, no_labels
from skdigits._engine._team import Team
from skdigits._kernels import _batch, _gemm, _losses, _optim, _rng, _stats, _sync

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


def ref_smoothed_loss(Z, y, w, loss, smooth):
    """Per-row objective against the smoothed targets and its weighted
    gradient: ``(1 - smooth)`` times the one-hot labels plus ``smooth / K``
    (softmax) or ``smooth / 2`` (each logistic output)."""
    Z = Z.astype(np.float64)
    n_out = Z.shape[1]
    if loss == _losses.SOFTMAX:
        T = (1 - smooth) * np.eye(n_out)[y] + smooth / n_out
        m = Z.max(axis=1, keepdims=True)
        logp = Z - m - np.log(np.exp(Z - m).sum(axis=1, keepdims=True))
        return -(T * logp).sum(axis=1), w[:, None] * (np.exp(logp) - T)
    T = (y == 1).astype(np.float64)[:, None] if n_out == 1 else np.eye(n_out)[y]
    T = (1 - smooth) * T + smooth / 2
    L = np.logaddexp(0.0, Z) - Z * T
    return L.sum(axis=1), w[:, None] * (1.0 / (1.0 + np.exp(-Z)) - T)


def run_loss_grad(Z, y, w, loss, scale, n_classes, smooth=0.0):
    Z = Z.copy()
    acc = [np.zeros(n_classes), np.zeros(n_classes), np.zeros(Z.shape[1]), np.zeros(3)]
    _losses.loss_grad(Z, y, no_labels(), w, Z.shape[0], loss, scale, smooth, *acc)
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


@settings(max_examples=40, deadline=None)
@given(problems, st.sampled_from([0.0, 0.2]))
def test_multilabel_loss_grad_matches_numpy(problem, smooth):
    """Multi-label targets: each column's binary loss against its own 0/1
    target read from ``Y`` (``y`` indexes its rows); a row is correct when
    every label's sign is right; no per-class accumulation."""
    n, k, seed, s = problem
    rng = np.random.default_rng(seed)
    Z = rng.normal(scale=s, size=(n, k))
    Y = (rng.random((n + 3, k)) < 0.4).astype(np.uint8)
    rows = rng.permutation(n + 3)[:n].astype(np.int64)  # y: rows of Y
    w = rng.uniform(0.1, 2.0, size=n)
    Zk = Z.copy()
    acc = [np.zeros(k), np.zeros(k), np.zeros(k), np.zeros(3)]
    _losses.loss_grad(Zk, rows, Y, w, n, _losses.LOGISTIC, 0.5, smooth, *acc)
    cl, cw, col, stats = acc
    T = Y[rows].astype(np.float64)
    L = np.logaddexp(0.0, Z) - Z * T  # plain binary cross-entropy per label
    Ts = (1 - smooth) * T + smooth / 2
    obj = (np.logaddexp(0.0, Z) - Z * Ts).sum(axis=1)
    np.testing.assert_allclose(Zk, 0.5 * w[:, None] * (1 / (1 + np.exp(-Z)) - Ts),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(col, (w[:, None] * L).sum(axis=0), rtol=1e-10,
                               atol=1e-14)
    np.testing.assert_allclose(stats[0], (w * obj).sum(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(stats[1], w.sum(), rtol=1e-12)
    exact = ((Z > 0) == (T > 0.5)).all(axis=1)
    np.testing.assert_allclose(stats[2], w[exact].sum(), rtol=1e-12, atol=0)
    assert not cl.any() and not cw.any()


@pytest.mark.parametrize("smooth", [0.0, 0.3])
@pytest.mark.parametrize("loss", [_losses.SOFTMAX, _losses.LOGISTIC])
def test_loss_gradient_by_finite_differences(loss, smooth, rng):
    """The gradient of the objective (the smoothed one with ``smooth``)."""
    n, k = 7, 4
    Z = rng.normal(size=(n, k))
    y = rng.integers(0, k, size=n)
    w = rng.uniform(0.5, 1.5, size=n)

    def total(Zp):
        return run_loss_grad(Zp, y, w, loss, 0.0, k, smooth)[1][3][0]

    G, _ = run_loss_grad(Z, y, w, loss, 1.0, k, smooth)
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


@settings(max_examples=40, deadline=None)
@given(problems, st.sampled_from(["softmax", "logistic", "binary"]),
       st.floats(0.0, 0.99))
def test_label_smoothing_matches_numpy(problem, kind, smooth):
    """The gradient and the objective (``stats``) are those of the smoothed
    targets; the per-class and per-column sums stay the plain cross-entropy."""
    n, k, seed, s = problem
    rng = np.random.default_rng(seed)
    loss = _losses.SOFTMAX if kind == "softmax" else _losses.LOGISTIC
    n_out, n_classes = (1, 2) if kind == "binary" else (k, k)
    Z = rng.normal(scale=s, size=(n, n_out))
    y = rng.integers(0, n_classes, size=n)
    w = rng.uniform(0.1, 2.0, size=n)
    G, (cl, cw, col, stats) = run_loss_grad(Z, y, w, loss, 0.5, n_classes, smooth)
    objective, grad = ref_smoothed_loss(Z, y, w, loss, smooth)
    np.testing.assert_allclose(G, 0.5 * grad, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(stats[0], (w * objective).sum(), rtol=1e-9, atol=1e-12)
    plain = (ref_softmax_loss(Z, y, w)[0] if loss == _losses.SOFTMAX
             else ref_logistic_loss(Z, y, w)[0])
    np.testing.assert_allclose(cl, np.bincount(y, w * plain, minlength=n_classes),
                               rtol=1e-10, atol=1e-13)
    if loss == _losses.LOGISTIC:
        np.testing.assert_allclose(col, (w[:, None] * ref_logistic_loss(Z, y, w)[1])
                                   .sum(axis=0), rtol=1e-10, atol=1e-13)


def test_smoothed_softmax_objective_is_smallest_at_the_smoothed_targets():
    """Against smoothed targets, the best prediction keeps ``smooth / K`` on
    the wrong classes: there the gradient vanishes and the objective is their
    entropy."""
    k, smooth = 4, 0.2
    T = np.full(k, smooth / k)
    T[2] += 1 - smooth
    Z = np.log(T)[None, :]
    G, (_, _, _, stats) = run_loss_grad(Z, np.array([2]), np.ones(1), _losses.SOFTMAX,
                                        1.0, k, smooth)
    np.testing.assert_allclose(G, 0.0, atol=1e-15)
    np.testing.assert_allclose(stats[0], -(T * np.log(T)).sum(), rtol=1e-13)


@settings(max_examples=50, deadline=None)
@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0),
       st.floats(0.01, 0.99), st.integers(1, 50))
def test_batch_rate_with_a_knee_is_piecewise_linear(lr0, lr1, lrk, knee, n_batches):
    fopt = _batch.float_options(lr0, lr1, lr_knee=lrk, knee=knee)
    for k in range(n_batches):
        x = k / n_batches
        want = (lr0 + (lrk - lr0) * x / knee if x < knee
                else lrk + (lr1 - lrk) * (x - knee) / (1 - knee))
        assert _batch.batch_rate(fopt, k, n_batches) == pytest.approx(want, abs=1e-15)
    # without a knee (1.0): linear from lr0 to lr1, whatever lrk holds
    fopt = _batch.float_options(lr0, lr1, lr_knee=lrk, knee=1.0)
    for k in range(n_batches):
        assert _batch.batch_rate(fopt, k, n_batches) == pytest.approx(
            lr0 + (lr1 - lr0) * k / n_batches, abs=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gather_rows_scaled_matches_numpy(dtype, rng):
    X = rng.normal(size=(9, 7)) * (rng.random((9, 7)) < 0.5)
    order = rng.permutation(9).astype(np.int64)
    scale = rng.uniform(0.5, 3.0, size=7).astype(dtype)
    out = np.full((6, 7), np.nan, dtype=dtype)
    _gemm.gather_rows_scaled(X, order, 2, 4, out, 1, scale)
    np.testing.assert_allclose(out[1:5], (X[order[2:6]] * scale).astype(dtype),
                               rtol=1e-6 if dtype == np.float32 else 0)
    assert np.isnan(out[[0, 5]]).all()  # nothing else written
    assert (out[1:5][X[order[2:6]] == 0] == 0).all()  # zeros stay zeros


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 30), st.integers(1, 9), st.integers(0, 2**31 - 1),
       st.sampled_from([np.float32, np.float64]))
def test_column_moments_match_numpy(n, d, seed, dtype):
    rng = np.random.default_rng(seed)
    X = (rng.normal(loc=3.0, size=(n + 5, d)) * (rng.random((n + 5, d)) < 0.6)
         ).astype(dtype)
    rows = np.sort(rng.choice(n + 5, size=n, replace=False)).astype(np.int64)
    w = rng.uniform(0.0, 2.0, size=n + 5).astype(dtype)
    w[rows[0]] = 1.0  # a positive sum
    w[rows[1:][rng.random(n - 1) < 0.2]] = 0.0  # rows that do not count
    mean, var = np.empty(d), np.empty(d)
    _stats.column_moments(X, rows, w, mean, var)
    Xr, wr = X[rows].astype(np.float64), w[rows].astype(np.float64)
    want = np.average(Xr, axis=0, weights=wr)
    np.testing.assert_allclose(mean, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(var, np.average((Xr - want) ** 2, axis=0, weights=wr),
                               rtol=1e-10, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 30), st.integers(1, 9), st.integers(0, 2**31 - 1),
       st.sampled_from([np.int32, np.int64]))
def test_sparse_column_moments_match_dense(n, d, seed, index_dtype):
    """The CSR version reads the stored entries only (explicit zeros
    included) and agrees with the dense kernel and NumPy."""
    from scipy import sparse

    rng = np.random.default_rng(seed)
    X = rng.normal(loc=3.0, size=(n + 5, d)) * (rng.random((n + 5, d)) < 0.4)
    S = sparse.csr_matrix(X)
    S.indices = S.indices.astype(index_dtype)
    S.indptr = S.indptr.astype(index_dtype)
    rows = np.sort(rng.choice(n + 5, size=n, replace=False)).astype(np.int64)
    w = rng.uniform(0.0, 2.0, size=n + 5)
    w[rows[0]] = 1.0
    mean, var = np.empty(d), np.empty(d)
    _stats.sparse_column_moments(S.indptr, S.indices, S.data, rows, w, mean, var)
    dmean, dvar = np.empty(d), np.empty(d)
    _stats.column_moments(X, rows, w, dmean, dvar)
    np.testing.assert_allclose(mean, dmean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(var, dvar, rtol=1e-9, atol=1e-12)
    want = np.average(X[rows], axis=0, weights=w[rows])
    np.testing.assert_allclose(var, np.average((X[rows] - want) ** 2, axis=0,
                                               weights=w[rows]), rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- optimizers


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_mode_accumulates_without_a_step(dtype, rng):
    """``GRADIENT``: ``S1 += G + l2 * P`` on the block only; ``P`` and ``S2``
    stay, ``G`` is zeroed (the full-batch solver's accumulation)."""
    P = rng.normal(size=(4, 6)).astype(dtype)
    G = rng.normal(size=(4, 6)).astype(dtype)
    S1 = rng.normal(size=(4, 6)).astype(dtype)
    S2 = rng.normal(size=(4, 6)).astype(dtype)
    P0, G0, S10, S20 = P.copy(), G.copy(), S1.copy(), S2.copy()
    _optim.step_block(_optim.GRADIENT, P, G, S1, S2, 1, 3, 2, 5, 0.5, 0.1, 0.9, True,
                      0.9, 0.999, 1e-8, 1)
    want = S10.copy()
    want[1:3, 2:5] += G0[1:3, 2:5] + dtype(0.5) * P0[1:3, 2:5]
    np.testing.assert_array_equal(P, P0)
    np.testing.assert_array_equal(S2, S20)
    np.testing.assert_allclose(S1, want, rtol=1e-6 if dtype == np.float32 else 1e-15)
    assert not G[1:3, 2:5].any()
    G0[1:3, 2:5] = 0
    np.testing.assert_array_equal(G, G0)


def test_adam_rate_by_hand():
    # lr * sqrt(1 - b2^t) / (1 - b1^t)
    assert _optim.adam_rate(0.01, 0.9, 0.999, 1) == pytest.approx(
        0.01 * np.sqrt(0.001) / 0.1, rel=1e-12)
    assert _optim.adam_rate(0.01, 0.9, 0.999, 2) == pytest.approx(
        0.01 * np.sqrt(1 - 0.999**2) / (1 - 0.81), rel=1e-12)


def test_adam_block_two_steps_by_hand():
    theta = np.array([[1.0, -1.0, 0.0]])
    grad = np.array([[0.2, -0.4, 0.0]])
    g0 = grad.copy()
    m = np.zeros((1, 3))
    v = np.zeros((1, 3))
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    _optim.step_block(_optim.ADAM, theta, grad, m, v, 0, 1, 0, 3, 0.0, lr, 0.0, False,
                      b1, b2, eps, 1)
    np.testing.assert_allclose(m, 0.1 * g0)
    np.testing.assert_allclose(v, 0.001 * g0**2)
    lr_t = lr * np.sqrt(1 - b2) / (1 - b1)
    expected = np.array([[1.0, -1.0, 0.0]]) - lr_t * m / (np.sqrt(v) + eps)
    np.testing.assert_allclose(theta, expected, rtol=1e-12)
    # second step with the same gradient (the first one zeroed it)
    assert not grad.any()
    grad[:] = g0
    _optim.step_block(_optim.ADAM, theta, grad, m, v, 0, 1, 0, 3, 0.0, lr, 0.0, False,
                      b1, b2, eps, 2)
    m2 = 0.9 * 0.1 * g0 + 0.1 * g0
    v2 = 0.999 * 0.001 * g0**2 + 0.001 * g0**2
    lr_t2 = lr * np.sqrt(1 - b2**2) / (1 - b1**2)
    np.testing.assert_allclose(theta, expected - lr_t2 * m2 / (np.sqrt(v2) + eps))


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


# ---------------------------------------------------------------- products


def ref_group_lists(X, r0, m):
    """Sorted non-zero columns of each group of 4 rows among rows r0..r0+m."""
    return [np.flatnonzero(X[i:min(i + 4, r0 + m)].any(axis=0))
            for i in range(r0, r0 + m, 4)]


products = st.tuples(
    st.integers(1, 21),  # rows
    st.integers(1, 90),  # inner dimension
    st.integers(1, 150),  # output columns
    st.sampled_from([0.0, 0.5, 0.95]),  # share of exact zeros in A
    st.sampled_from([np.float32, np.float64]),
    st.integers(0, 2**32 - 1),
)


def _product_problem(problem):
    m, K, N, zeros, dtype, seed = problem
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(m, K)) * (rng.random((m, K)) >= zeros)
    B = rng.normal(size=(K, N))
    n_groups = -(-m // 4)
    lists = np.full((n_groups, K), -1, dtype=np.int32)
    counts = np.zeros(n_groups, dtype=np.int64)
    _gemm.group_lists(A.astype(dtype), np.arange(m), m, lists, counts, 0)
    return rng, A.astype(dtype), B.astype(dtype), lists, counts


def _tol(dtype):
    return dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else \
        dict(rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(products)
def test_group_lists_match_numpy(problem):
    _, A, _, lists, counts = _product_problem(problem)
    for g, ref in enumerate(ref_group_lists(A, 0, A.shape[0])):
        assert counts[g] == len(ref)
        np.testing.assert_array_equal(lists[g, :counts[g]], ref)


@settings(max_examples=60, deadline=None)
@given(products)
def test_dot_rows_matches_numpy_and_skips_zeros_exactly(problem):
    rng, A, B, lists, counts = _product_problem(problem)
    m, K = A.shape
    N = B.shape[1]
    ref = A.astype(np.float64) @ B.astype(np.float64)
    rows = np.arange(m)
    out = np.full((m + 2, N + 3), np.nan, dtype=A.dtype)
    _gemm.dot_rows(out, 1, 2, A, rows, m, B, 0, N, lists, counts, 0, 1, 0, K)
    np.testing.assert_allclose(out[1:1 + m, 2:2 + N], ref, **_tol(A.dtype))
    assert np.isnan(out[0]).all() and np.isnan(out[:, :2]).all()  # nothing else
    # the dense list gives the very same bits: skipped zeros change nothing
    dense = np.arange(K, dtype=np.int32)[None, :]
    full = np.full((m, N), np.nan, dtype=A.dtype)
    _gemm.dot_rows(full, 0, 0, A, rows, m, B, 0, N, dense, np.array([K]), 0, 0, 0, K)
    np.testing.assert_array_equal(full, out[1:1 + m, 2:2 + N])
    # a range of columns of B, and a range of the inner dimension
    c0 = int(rng.integers(0, N))
    k0, k1 = sorted(int(v) for v in rng.integers(0, K + 1, 2))
    part = np.full((m, N - c0), np.nan, dtype=A.dtype)
    _gemm.dot_rows(part, 0, 0, A, rows, m, B, c0, N, lists, counts, 0, 1, k0, k1)
    np.testing.assert_allclose(part, A[:, k0:k1].astype(np.float64)
                               @ B[k0:k1, c0:].astype(np.float64), **_tol(A.dtype))
    # each row's result is its own: the same bits computed alone
    for i in {0, m - 1}:
        one = np.full((1, N), np.nan, dtype=A.dtype)
        _gemm.dot_rows(one, 0, 0, A, rows[i:], 1, B, 0, N, dense, np.array([K]), 0, 0,
                       0, K)
        np.testing.assert_array_equal(one[0], full[i])
    # rows picked by an index, in another order, as in place from the data
    perm = rng.permutation(m)
    picked = np.full((m, N), np.nan, dtype=A.dtype)
    plists, pcounts = np.zeros_like(lists), np.zeros_like(counts)
    _gemm.group_lists(A, perm, m, plists, pcounts, 0)
    _gemm.dot_rows(picked, 0, 0, A, perm, m, B, 0, N, plists, pcounts, 0, 1, 0, K)
    np.testing.assert_array_equal(picked, full[perm])


@settings(max_examples=60, deadline=None)
@given(products)
def test_acc_rows_matches_numpy_and_skips_zeros_exactly(problem):
    rng, A, B, lists, counts = _product_problem(problem)
    m, K = A.shape
    N = B.shape[1]
    D = rng.normal(size=(m, N)).astype(A.dtype)
    G0 = rng.normal(size=(K, N + 2)).astype(A.dtype)
    rows = np.arange(m)
    G = G0.copy()
    _gemm.acc_rows(G, 1, A, rows, m, D, 0, 0, N, lists, counts, 0, 1, 0, K)
    np.testing.assert_allclose(G[:, 1:1 + N], G0[:, 1:1 + N] + A.T.astype(np.float64)
                               @ D.astype(np.float64), **_tol(A.dtype))
    np.testing.assert_array_equal(G[:, 0], G0[:, 0])
    np.testing.assert_array_equal(G[:, -1], G0[:, -1])
    dense = np.arange(K, dtype=np.int32)[None, :]
    Gd = G0.copy()
    _gemm.acc_rows(Gd, 1, A, rows, m, D, 0, 0, N, dense, np.array([K]), 0, 0, 0, K)
    np.testing.assert_array_equal(Gd, G)
    # rows of A picked by an index (D in the same order): the same sums
    perm = rng.permutation(m)
    plists, pcounts = np.zeros_like(lists), np.zeros_like(counts)
    _gemm.group_lists(A, perm, m, plists, pcounts, 0)
    Gp = G0.copy()
    _gemm.acc_rows(Gp, 1, A, perm, m, np.ascontiguousarray(D[perm]), 0, 0, N, plists,
                   pcounts, 0, 1, 0, K)
    np.testing.assert_allclose(Gp, G, **_tol(A.dtype))


def test_gather_rows_casts_in_order(rng):
    X = rng.normal(size=(10, 5))
    out = np.zeros((6, 5), dtype=np.float32)
    order = np.array([9, 2, 2, 7], dtype=np.int64)
    _gemm.gather_rows(X, order, 1, 3, out, 2)
    np.testing.assert_array_equal(out[2:5], X[[2, 2, 7]].astype(np.float32))
    assert not out[[0, 1, 5]].any()


# ---------------------------------------------------------------- sync


@njit(nogil=True)
def _claim_every_item(tid, n, sync, seen, ok):
    for phase in range(seen.shape[0]):
        item = _sync.claim(sync)
        while item < seen.shape[1]:
            seen[phase, item] += 1
            item = _sync.claim(sync)
        _sync.barrier(sync, n, _sync.TEST_PHASE)
        # after the barrier, every item of the phase is done
        for i in range(seen.shape[1]):
            if seen[phase, i] != 1:
                ok[tid] = 0


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 4), st.integers(1, 40), st.integers(1, 9))
def test_team_claims_every_item_once_per_phase(n_threads, n_phases, n_items):
    seen = np.zeros((n_phases, n_items), dtype=np.int64)
    ok = np.ones(n_threads, dtype=np.int64)
    with Team() as team:
        team.run(n_threads, _claim_every_item, seen, ok)
    np.testing.assert_array_equal(seen, 1)
    assert ok.all()


# ---------------------------------------------------------------- linear epoch


def linear_epoch(X, y, w, theta, n_out, loss, batch_size, alpha=0.0, lr=0.1,
                 solver=_optim.SGD, momentum=0.0, shuffle=False, n_classes=None,
                 n_threads=1):
    """One epoch of ``LinearModel`` (weights ``theta`` in its padded layout),
    L2 ``alpha * W`` per minibatch; returns ``(t, accumulators)``."""
    n, nf = X.shape
    n_classes = n_classes or max(n_out, 2)
    model = LinearModel(nf, n_out, loss)
    order = np.arange(n, dtype=np.int64)
    if shuffle:
        _rng.shuffle(order, _rng.new_state(np.random.RandomState(0)))
    acc = Accumulators.for_batches(batch_size, n_classes, n_out)
    iopt = np.zeros(_batch.N_IOPT, dtype=np.int64)
    iopt[[_batch.I_LOSS, _batch.I_SOLVER, _batch.I_N_OUT]] = loss, solver, n_out
    fopt = _batch.float_options(lr, l2_fixed=alpha, momentum=momentum)
    with Team() as team:
        t = model.run_epoch(team, n_threads, X, y, no_labels(), w, order, theta,
                            model.new_state(theta.dtype),
                            model.workspace(batch_size, theta.dtype), acc,
                            iopt, fopt, 0)
    return t, list(acc.totals())


def linear_ld(k):
    """The documented row width of a model for dense data: ``k`` outputs
    padded to a multiple of 16."""
    return -(-k // 16) * 16


def pack_linear(W, b):
    """theta in the documented layout: W row-major with its columns padded to
    ``linear_ld``, then the intercepts, padded the same way."""
    nf, k = W.shape
    ld = linear_ld(k)
    Wp = np.zeros((nf, ld))
    Wp[:, :k] = W
    bp = np.zeros(ld)
    bp[:k] = b
    return np.concatenate([Wp.ravel(), bp])


def unpack_linear(theta, nf, k):
    ld = linear_ld(k)
    W = theta[:nf * ld].reshape(nf, ld)
    b = theta[nf * ld:]
    assert not W[:, k:].any() and not b[k:].any()  # the padding stays zero
    return W[:, :k], b[:k]


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
    n, nf = 23, 300  # three feature blocks
    n_classes = 2 if n_out == 1 else n_out
    X = rng.normal(size=(n, nf)) * (rng.random((n, nf)) < 0.4)
    y = rng.integers(0, n_classes, size=n)
    w = rng.uniform(0.5, 1.5, size=n)
    W0 = rng.normal(scale=0.3, size=(nf, n_out))
    b0 = rng.normal(scale=0.3, size=n_out)
    theta = pack_linear(W0, b0)
    obj, gW, gb = ref_linear_objective_grad(X, y, w, W0, b0, loss, alpha=0.01)
    t, acc = linear_epoch(X, y, w, theta, n_out, loss, batch_size=n, alpha=0.01,
                          lr=0.1, n_classes=n_classes)
    assert t == 1
    W1, b1 = unpack_linear(theta, nf, n_out)
    np.testing.assert_allclose(W1, W0 - 0.1 * gW, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b1, b0 - 0.1 * gb, rtol=1e-10, atol=1e-12)
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
    theta = pack_linear(W, b)
    # the kernel's step with lr=1 and plain SGD moves theta by -gradient
    moved = theta.copy()
    linear_epoch(X, y, w, moved, k, _losses.SOFTMAX, batch_size=n, alpha=0.1, lr=1.0)
    kW, kb = unpack_linear(theta - moved, nf, k)
    kernel_grad = np.concatenate([kW.ravel(), kb])
    flat = np.concatenate([W.ravel(), b])
    eps = 1e-6
    num = np.zeros_like(flat)
    for i in range(flat.size):
        tp, tm = flat.copy(), flat.copy()
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
    theta = pack_linear(np.zeros((3, 3)), np.zeros(3))
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
    th64 = pack_linear(np.zeros((nf, k)), np.zeros(k))
    th32 = th64.astype(np.float32)
    linear_epoch(X, y, np.ones(n), th64, k, _losses.SOFTMAX, 32, lr=0.05,
                 solver=_optim.ADAM)
    linear_epoch(X.astype(np.float32), y, np.ones(n, np.float32), th32, k,
                 _losses.SOFTMAX, 32, lr=0.05, solver=_optim.ADAM)
    assert th32.dtype == np.float32
    np.testing.assert_allclose(th32, th64, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_linear_any_thread_count_gives_the_same_bits(dtype, rng):
    n, nf, k = 500, 700, 10  # six feature blocks
    X = (rng.random((n, nf)) * (rng.random((n, nf)) < 0.2)).astype(dtype)
    y = rng.integers(0, k, size=n)
    w = np.ones(n, dtype=dtype)
    start = pack_linear(np.zeros((nf, k)), np.zeros(k))
    results = []
    for n_threads in (1, 2, 3):
        theta = start.astype(dtype)
        linear_epoch(X, y, w, theta, k, _losses.SOFTMAX, 64, alpha=1e-4, lr=0.05,
                     solver=_optim.ADAM, shuffle=True, n_threads=n_threads)
        results.append(theta)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])
