"""Sparse (CSR) data in the training and prediction kernels
(``skdigits._kernels._sparse``, through ``LinearModel`` and ``MLPModel``),
against the dense path and NumPy.

The sparse kernels read the rows of a CSR matrix in place. Their sums run
over each row's non-zeros in column order: the chains the dense products run
over the same row, whose extra terms are exact zeros. So on the same data the
two paths give the same bits, for any number of threads; the tests check the
bits, and the values against float64 NumPy.
"""

import inspect

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from skdigits._engine import _layout
from skdigits._engine._models import (
    Accumulators,
    LinearModel,
    MLPModel,
    linear_width,
    no_labels,
)
from skdigits._engine._team import Team
from skdigits._kernels import _batch, _gemm, _losses, _mlp, _optim, _rng, _sparse

INDEX_DTYPES = [np.int32, np.int64]
KINDS = ["matrix", "array"]  # csr_matrix, csr_array
LOSSES = [(_losses.SOFTMAX, 4, 4), (_losses.LOGISTIC, 1, 2)]
LOSS_IDS = ["softmax", "binary_logistic"]

# ---------------------------------------------------------------- helpers


def random_data(rng, n, d, density, dtype=np.float64):
    """Dense rows with exact zeros, among them an empty row and a row of a
    single non-zero (when there are rows enough)."""
    X = rng.normal(size=(n, d)) * (rng.random((n, d)) < density)
    rows = rng.permutation(n)
    X[rows[0]] = 0.0
    if n > 1:
        X[rows[1]] = 0.0
        X[rows[1], rng.integers(d)] = rng.normal()
    return X.astype(dtype)


def to_csr(X, index_dtype=np.int32, kind="matrix", dtype=None):
    """``X`` as a canonical CSR matrix (or array) with the given dtypes."""
    make = sp.csr_array if kind == "array" else sp.csr_matrix
    A = make(X.astype(dtype or X.dtype))
    A.indices = A.indices.astype(index_dtype)
    A.indptr = A.indptr.astype(index_dtype)
    assert A.has_canonical_format and A.indices.dtype == index_dtype
    return A


def options(loss, n_out, code=_mlp.TANH, solver=_optim.ADAM, lr=0.01, alpha=1e-3,
            smooth=0.1):
    iopt = np.zeros(_batch.N_IOPT, dtype=np.int64)
    iopt[[_batch.I_ACTIVATION, _batch.I_LOSS, _batch.I_SOLVER, _batch.I_N_OUT]] = (
        code, loss, solver, n_out)
    return iopt, _batch.float_options(lr, l2_per_row=alpha, smooth=smooth)


def train(model, X, y, w, theta, batch_size, loss, n_out, *, n_threads=1, n_epochs=2,
          seed=0, **kw):
    """``n_epochs`` epochs of ``model`` on ``X`` (dense or CSR), the rows
    shuffled, in ``n_threads`` threads; updates ``theta``, returns the
    optimizer state and the last epoch's sums."""
    n_classes = max(n_out, 2)
    order = np.arange(X.shape[0], dtype=np.int64)
    rng_state = _rng.new_state(np.random.RandomState(seed))
    state = model.new_state(theta.dtype)
    acc = Accumulators.for_batches(batch_size, n_classes, n_out)
    iopt, fopt = options(loss, n_out, **kw)
    ws = model.workspace(batch_size, theta.dtype, sparse=sp.issparse(X))
    t = 0
    with Team() as team:
        for _ in range(n_epochs):
            _rng.shuffle(order, rng_state)
            acc.reset()
            t = model.run_epoch(team, n_threads, X, y, no_labels(), w, order, theta,
                                state, ws, acc, iopt, fopt, t)
    assert t == n_epochs * -(-X.shape[0] // batch_size)
    assert not ws["grad"].any()  # the gradient is left at zero
    return state, np.concatenate(list(acc.totals()))


def assert_csr_trains_as_dense(model, X, y, w, theta0, batch_size, loss, n_out,
                               index_dtype, kind):
    """Training from ``theta0`` on ``X`` as CSR (``index_dtype``, ``kind``)
    gives the dense run's bits, on 1, 2 and 3 threads: weights, optimizer
    state and the epoch's sums."""
    theta = theta0.copy()
    state, sums = train(model, X, y, w, theta, batch_size, loss, n_out)
    A = to_csr(X, index_dtype, kind)
    for n_threads in (1, 2, 3):
        got = theta0.copy()
        got_state, got_sums = train(model, A, y, w, got, batch_size, loss, n_out,
                                    n_threads=n_threads)
        assert_same(got, theta)
        assert_same(got_state[0], state[0])
        assert_same(got_state[1], state[1])
        assert_same(got_sums, sums)


def standardisation(rng, d):
    return rng.uniform(-0.5, 0.5, size=d), rng.uniform(0.5, 2.0, size=d)


def assert_same(got, want):
    """The same bits, and (the tests' own statement of exactness) the same
    values to 1e-12."""
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------- products


products = st.tuples(
    st.integers(1, 21),  # rows
    st.integers(1, 90),  # columns of the data
    st.integers(1, 70),  # output columns
    st.sampled_from([0.05, 0.3, 0.9]),  # density
    st.sampled_from(INDEX_DTYPES),
    st.booleans(),  # scaled columns (standardised inputs)
    st.integers(0, 2**32 - 1),
)


def _rows_and_lists(A, perm):
    lists = np.zeros((-(-len(perm) // 4), A.shape[1]), dtype=np.int32)
    counts = np.zeros(lists.shape[0], dtype=np.int64)
    _gemm.group_lists(A, perm, len(perm), lists, counts, 0)
    return lists, counts


@settings(max_examples=40, deadline=None)
@given(products)
def test_sparse_products_are_the_dense_ones(problem):
    """``sparse_dot_rows`` and ``sparse_acc_rows`` on CSR rows picked by an
    index give the bits of ``_gemm``'s products on the same rows (scaled as
    the dense path copies them), and NumPy's values."""
    m, K, N, density, index_dtype, scaled, seed = problem
    rng = np.random.default_rng(seed)
    X = random_data(rng, m + 3, K, density)
    A = to_csr(X, index_dtype)
    rows = rng.permutation(m + 3)[:m].astype(np.int64)
    scale = rng.uniform(0.5, 2.0, size=K) if scaled else np.zeros(0)
    Xs = X * scale if scaled else X  # what the dense path copies
    B = rng.normal(size=(K, N + 2))
    c0 = int(rng.integers(0, 2))
    out = np.full((m + 1, N + 1), np.nan)
    _sparse.sparse_dot_rows(out, 1, 1, A.indptr, A.indices, A.data, rows, m, scale, B,
                            c0, c0 + N)
    lists, counts = _rows_and_lists(Xs, rows)
    want = np.full_like(out, np.nan)
    _gemm.dot_rows(want, 1, 1, Xs, rows, m, B, c0, c0 + N, lists, counts, 0, 1, 0, K)
    assert_same(out, want)  # nothing else written either
    np.testing.assert_allclose(out[1:, 1:], Xs[rows] @ B[:, c0:c0 + N], rtol=1e-12,
                               atol=1e-12)
    D = rng.normal(size=(m + 1, N + 1))
    G0 = rng.normal(size=(K, N + 3))
    G = G0.copy()
    _sparse.sparse_acc_rows(G, 2, A.indptr, A.indices, A.data, rows, m, scale, D, 1, 1,
                            N)
    want = G0.copy()
    _gemm.acc_rows(want, 2, Xs, rows, m, D, 1, 1, N, lists, counts, 0, 1, 0, K)
    assert_same(G, want)
    np.testing.assert_allclose(G[:, 2:2 + N], G0[:, 2:2 + N] + Xs[rows].T @ D[1:, 1:],
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("data_dtype", [np.float64, np.float32])
def test_sparse_products_cast_each_value(dtype, data_dtype, rng):
    """CSR data of another dtype than the model's: each value cast (after its
    scaling, in the wider dtype) as the dense path casts the copied rows."""
    X = random_data(rng, 9, 30, 0.4, data_dtype)
    A = to_csr(X, np.int64)
    scale = rng.uniform(0.5, 2.0, size=30).astype(dtype)
    rows = np.arange(9, dtype=np.int64)
    B = rng.normal(size=(30, 20)).astype(dtype)
    for sc in (scale, scale[:0]):
        copied = np.empty((9, 30), dtype=dtype)
        if sc.size:
            _gemm.gather_rows_scaled(X, rows, 0, 9, copied, 0, sc)
        else:
            _gemm.gather_rows(X, rows, 0, 9, copied, 0)
        lists, counts = _rows_and_lists(copied, rows)
        out = np.empty((9, 20), dtype=dtype)
        want = np.empty_like(out)
        _sparse.sparse_dot_rows(out, 0, 0, A.indptr, A.indices, A.data, rows, 9, sc, B,
                                0, 20)
        _gemm.dot_rows(want, 0, 0, copied, rows, 9, B, 0, 20, lists, counts, 0, 1, 0,
                       30)
        np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("solver", [_optim.SGD, _optim.ADAM, _optim.GRADIENT])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(5, 3), (300, 64), (40, 23)])
def test_sparse_step_is_the_dense_steps(shape, dtype, solver, nesterov, rng):
    """``sparse_step`` of a first-layer panel: the dense path's
    ``centre_gradient``, ``update`` and ``centred_intercepts``, in one sweep,
    bit for bit."""
    n, width = shape
    P, G, M, V = (rng.normal(size=shape).astype(dtype) for _ in range(4))
    V = np.abs(V)
    shift = (rng.normal(size=n) * (rng.random(n) < 0.8)).astype(dtype)
    gb = rng.normal(size=(1, width)).astype(dtype)
    b = rng.normal(size=(1, width)).astype(dtype)
    iopt, fopt = options(_losses.SOFTMAX, 1, solver=solver)
    iopt[_batch.I_NESTEROV] = nesterov
    fopt[_batch.F_MOMENTUM] = 0.9
    for centre in (shift, shift[:0]):
        want = [a.copy() for a in (P, G, M, V)]
        if centre.size:
            _mlp.centre_gradient(want[1], centre, gb, 0)
        _batch.update(*(a.reshape(1, -1) for a in want), 0, 1, 0, n * width, 0.01,
                      0.1, iopt, fopt, 3)
        beff_want = np.zeros_like(b)
        _mlp.centred_intercepts(want[0], shift, b, 0, beff_want)
        got = [a.copy() for a in (P, G, M, V)]
        beff = np.zeros(width, dtype=dtype)
        _sparse.sparse_step(*got, centre, gb[0].copy(), b[0], beff, 0.01, 0.1, iopt,
                            fopt, 3)
        for a, a_want in zip(got, want):
            np.testing.assert_array_equal(a, a_want)
        assert not got[1].any()
        if centre.size:
            np.testing.assert_array_equal(beff, beff_want[0])


def test_sparse_kernels_are_subroutines_of_the_entry_points():
    # compiled into the epoch and forward kernels that call them, with the
    # kernels' flags (see test_numba_cache.py)
    from skdigits._kernels._numba import _Subroutine

    kernels = [obj for obj in vars(_sparse).values() if isinstance(obj, _Subroutine)]
    assert {"sparse_dot_rows", "sparse_acc_rows", "sparse_step", "centred_step"} <= {
        k.py_func.__name__.removeprefix("_").removesuffix("_py") for k in kernels}


# ---------------------------------------------------------------- MLP epochs


@pytest.mark.parametrize("standardize", [False, True], ids=["raw", "standardised"])
@pytest.mark.parametrize("loss,n_out,n_classes", LOSSES, ids=LOSS_IDS)
@pytest.mark.parametrize("hidden", [[5], [70], [70, 4], [9, 66, 3]],
                         ids=["shallow", "two-panels", "deep", "deeper"])
@settings(max_examples=4, deadline=None)
@given(n=st.integers(1, 40), d=st.integers(1, 90),
       density=st.sampled_from([0.05, 0.3, 0.8]),
       batch_size=st.sampled_from([1, 7, 16]),
       index_dtype=st.sampled_from(INDEX_DTYPES), kind=st.sampled_from(KINDS),
       seed=st.integers(0, 2**32 - 1))
def test_mlp_epochs_on_csr_are_the_dense_ones(hidden, loss, n_out, n_classes,
                                              standardize, n, d, density, batch_size,
                                              index_dtype, kind, seed):
    """Two epochs of Adam (L2, label smoothing) on the CSR data: the weights,
    the optimizer state and the epoch's sums of the dense path, for 1, 2 and
    3 threads."""
    rng = np.random.default_rng(seed)
    sizes = [d, *hidden, n_out]
    X = random_data(rng, n, d, density)
    y = rng.integers(0, n_classes, size=n).astype(np.int64)
    w = rng.uniform(0.5, 1.5, size=n)
    mean, scale = standardisation(rng, d) if standardize else (None, None)
    model = MLPModel(sizes, _mlp.TANH, loss, mean, scale)
    theta0 = model.init_params(rng, np.float64)
    batch_size = min(batch_size, n)
    assert_csr_trains_as_dense(model, X, y, w, theta0, batch_size, loss, n_out,
                               index_dtype, kind)


@pytest.mark.parametrize("hidden", [[70], [70, 4]], ids=["shallow", "deep"])
def test_float32_mlp_on_float64_csr(hidden, rng):
    """A float32 model reads float64 CSR values cast one by one: the bits of
    the dense path on the same float64 rows, and close to a float64 model."""
    n, d = 50, 40
    sizes = [d, *hidden, 3]
    X = random_data(rng, n, d, 0.3)
    y = rng.integers(0, 3, size=n).astype(np.int64)
    w = np.ones(n)
    mean, scale = standardisation(rng, d)
    model = MLPModel(sizes, _mlp.RELU, _losses.SOFTMAX, mean, scale)
    theta64 = model.init_params(rng, np.float64)
    dense32 = theta64.astype(np.float32)
    sparse32 = dense32.copy()
    train(model, X, y, w.astype(np.float32), dense32, 8, _losses.SOFTMAX, 3,
          code=_mlp.RELU)
    A = to_csr(X, np.int32)
    assert A.dtype == np.float64
    train(model, A, y, w.astype(np.float32), sparse32, 8, _losses.SOFTMAX, 3,
          n_threads=2, code=_mlp.RELU)
    assert sparse32.dtype == np.float32
    np.testing.assert_array_equal(sparse32, dense32)
    train(model, A, y, w, theta64, 8, _losses.SOFTMAX, 3, code=_mlp.RELU)
    np.testing.assert_allclose(sparse32, theta64, rtol=1e-3, atol=1e-4)


def test_sparse_workspace_holds_no_dense_rows():
    """Sparse buffers never scale with batch x features (the data is read in
    place), and a workspace is for one kind of data only."""
    sizes = [10_000, 70, 4]
    model = MLPModel(sizes, _mlp.RELU, _losses.SOFTMAX)
    ws = model.workspace(32, np.float32, sparse=True)
    assert ws["batches"].Xb.shape == (2, 32, 0)
    assert ws["batches"].lists.shape[-1] == 0
    per_row = 2 * (70 + 4) * 4
    assert (model.fit_bytes(1000, 4, sparse=True) - model.fit_bytes(1, 4, sparse=True)
            == 999 * per_row)
    assert model.fit_bytes(32, 4) - model.fit_bytes(32, 4, sparse=True) == \
        2 * 32 * 10_000 * 4
    linear = LinearModel(10_000, 3, _losses.SOFTMAX)
    ws = linear.workspace(32, np.float64, sparse=True)
    assert ws["batches"].Xb.shape == (2, 32, 0)
    # per row of a minibatch: its logits only (no copied row)
    assert (linear.fit_bytes(1000, 8, sparse=True) - linear.fit_bytes(1, 8, sparse=True)
            == 999 * linear.ld * 8)
    X = sp.csr_matrix((5, 10_000))
    theta = model.init_params(np.random.RandomState(0), np.float32)
    with pytest.raises(ValueError, match="sparse=True"), Team() as team:
        model.run_epoch(team, 1, X, np.zeros(5, np.int64), no_labels(),
                        np.ones(5, np.float32), np.arange(5), theta,
                        model.new_state(np.float32), model.workspace(4, np.float32),
                        Accumulators(2, 4, 4), *options(_losses.SOFTMAX, 4), 0)
    with pytest.raises(TypeError, match="CSR"), Team() as team:
        model.logits(team, 1, X.tocsc(), np.arange(5), theta)


# ---------------------------------------------------------------- linear epochs


@pytest.mark.parametrize("loss,n_out", [(_losses.SOFTMAX, 4), (_losses.LOGISTIC, 4),
                                        (_losses.LOGISTIC, 1)])
@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 40), d=st.integers(1, 300),
       density=st.sampled_from([0.02, 0.3, 0.8]),
       batch_size=st.sampled_from([1, 7, 32]),
       index_dtype=st.sampled_from(INDEX_DTYPES), kind=st.sampled_from(KINDS),
       seed=st.integers(0, 2**32 - 1))
def test_linear_epochs_on_csr_are_the_dense_ones(loss, n_out, n, d, density,
                                                 batch_size, index_dtype, kind, seed):
    """Two epochs of a linear model (Adam, L2) on the CSR data: the dense
    path's bits for 1, 2 and 3 threads (up to three blocks of features)."""
    rng = np.random.default_rng(seed)
    n_classes = max(n_out, 2)
    X = random_data(rng, n, d, density)
    y = rng.integers(0, n_classes, size=n).astype(np.int64)
    w = rng.uniform(0.5, 1.5, size=n)
    model = LinearModel(d, n_out, loss)
    theta0 = model.init_params(rng, np.float64)
    theta0[:d * model.ld].reshape(d, model.ld)[:, :n_out] = rng.normal(size=(d, n_out))
    batch_size = min(batch_size, n)
    assert_csr_trains_as_dense(model, X, y, w, theta0, batch_size, loss, n_out,
                               index_dtype, kind)


# ---------------------------------------------------------------- lazy update


@pytest.fixture
def always_lazy(monkeypatch):
    """Small CSR data takes the lazy update of wide sparse data."""
    from skdigits._engine import _models

    monkeypatch.setattr(_models, "is_wide_sparse", lambda X, batch_size: True)


def ref_lazy_epochs(A, y, w, W, b, loss, batch_size, n_epochs, order, *, solver,
                    lr, alpha, beta1=0.9, beta2=0.999, eps=1e-8, momentum=0.0,
                    nesterov=False):
    """NumPy float64 reference of the lazy update: per minibatch, the loss
    gradient of its rows, then a step of the intercepts and of the rows of
    ``W`` whose features the minibatch holds (with their L2 term) only; the
    other rows and their state stay as they are. Returns ``W, b, M, V``."""
    W, b = W.copy(), b.copy()
    M, V = np.zeros_like(W), np.zeros_like(W)
    mb, vb = np.zeros_like(b), np.zeros_like(b)
    t = 0
    for _ in range(n_epochs):
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            m = len(rows)
            Xb = A[rows].toarray()
            Z = Xb @ W + b
            if loss == _losses.SOFTMAX:
                P = np.exp(Z - Z.max(axis=1, keepdims=True))
                P /= P.sum(axis=1, keepdims=True)
                T = np.eye(W.shape[1])[y[rows]]
            else:
                P = 1.0 / (1.0 + np.exp(-Z))
                T = (y[rows] == 1)[:, None] * 1.0 if W.shape[1] == 1 else \
                    np.eye(W.shape[1])[y[rows]]
            dZ = w[rows, None] * (P - T) / m
            touched = np.unique(A[rows].indices)
            t += 1
            G = Xb.T[touched] @ dZ + alpha * W[touched]
            gb = dZ.sum(axis=0)
            for P_, S1, S2, g, idx in ((W, M, V, G, touched), (b, mb, vb, gb, None)):
                at = np.s_[idx] if idx is not None else np.s_[:]
                if solver == _optim.ADAM:
                    S1[at] = beta1 * S1[at] + (1 - beta1) * g
                    S2[at] = beta2 * S2[at] + (1 - beta2) * g * g
                    rate = lr * np.sqrt(1 - beta2**t) / (1 - beta1**t)
                    P_[at] -= rate * S1[at] / (np.sqrt(S2[at]) + eps)
                else:
                    S1[at] = momentum * S1[at] - lr * g
                    P_[at] += (momentum * S1[at] - lr * g) if nesterov else S1[at]
    return W, b, M, V


@pytest.mark.parametrize("loss,n_out", [(_losses.SOFTMAX, 4), (_losses.LOGISTIC, 1)])
@pytest.mark.parametrize("solver", [_optim.ADAM, _optim.SGD])
def test_lazy_update_matches_numpy_on_any_thread_count(loss, n_out, solver, rng,
                                                       always_lazy):
    """Wide sparse data: two epochs of the lazy update (only the minibatch's
    features step) give NumPy's float64 values, and the same bits on 1, 2 and
    3 threads (several blocks of touched features)."""
    from skdigits._kernels import _linear

    n, d, batch_size = 60, 9000, 16
    X = random_data(rng, n, d, 0.01)
    y = rng.integers(0, max(n_out, 2), size=n).astype(np.int64)
    w = rng.uniform(0.5, 1.5, size=n)
    model = LinearModel(d, n_out, loss, ld=linear_width(n_out, sparse=True))
    assert model.ld == n_out  # no padding: one column for a binary model
    theta0 = model.init_params(rng, np.float64)
    theta0[:] = rng.normal(scale=0.1, size=theta0.size)
    W0, b0 = _linear.params(theta0, d, model.ld)
    order = np.arange(n, dtype=np.int64)
    _rng.shuffle(order, _rng.new_state(np.random.RandomState(0)))
    kw = dict(solver=solver, lr=0.05, alpha=1e-2, momentum=0.9)
    want = ref_lazy_epochs(to_csr(X), y, w, W0, b0[0], loss, batch_size, 2, order,
                           nesterov=True, **kw)
    results = []
    for n_threads in (1, 2, 3):
        theta = theta0.copy()
        state = model.new_state(np.float64)
        iopt, _ = options(loss, n_out, solver=solver)
        iopt[_batch.I_NESTEROV] = 1
        fopt = _batch.float_options(0.05, l2_fixed=1e-2, momentum=0.9)
        acc = Accumulators.for_batches(batch_size, max(n_out, 2), n_out)
        ws = model.workspace(batch_size, np.float64, sparse=True)
        with Team() as team:
            t = 0
            for _ in range(2):
                t = model.run_epoch(team, n_threads, to_csr(X), y, no_labels(), w,
                                    order, theta, state, ws, acc, iopt, fopt, t)
        mark, touched, _ = ws["lazy"]
        assert touched.size > 0 and not mark.any() and not ws["grad"].any()
        results.append((theta, *state))
    W, b = _linear.params(results[0][0], d, model.ld)
    M, _ = _linear.params(results[0][1], d, model.ld)
    np.testing.assert_allclose(W, want[0], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(b[0], want[1], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(M, want[2], rtol=1e-10, atol=1e-13)
    untouched = np.setdiff1d(np.arange(d), to_csr(X).indices)
    assert untouched.size > 0
    np.testing.assert_array_equal(W[untouched], W0[untouched])  # never stepped
    for got in results[1:]:
        for a, b_ in zip(got, results[0]):
            np.testing.assert_array_equal(a, b_)


def test_lazy_gradient_is_the_dense_one(rng, always_lazy):
    """The full-batch solver's gradient (``GRADIENT``, no L2 in the kernel)
    is exact on the lazy route: the dense path's bits."""
    n, d, k = 50, 5000, 3
    X = random_data(rng, n, d, 0.01)
    y = rng.integers(0, k, size=n).astype(np.int64)
    w = rng.uniform(0.5, 1.5, size=n)
    model = LinearModel(d, k, _losses.SOFTMAX)
    theta = model.init_params(rng, np.float64)
    theta[:] = rng.normal(scale=0.1, size=theta.size)
    grads = []
    for data in (X, to_csr(X)):
        state, _ = train(model, data, y, w, theta.copy(), 16, _losses.SOFTMAX, k,
                         n_epochs=1, solver=_optim.GRADIENT, alpha=0.0, smooth=0.0)
        grads.append(state[0])
    assert_same(grads[1], grads[0])


def test_wide_sparse_rule():
    from skdigits._engine._models import LAZY_MIN_FEATURES, is_wide_sparse

    narrow = sp.random(100, 784, density=0.2, format="csr", random_state=0)
    assert not is_wide_sparse(narrow, 256)  # MNIST-like: the dense algorithm
    cols = np.sort(np.random.default_rng(0).integers(0, 2**20, (1000, 50)), axis=1)
    wide = sp.csr_matrix((np.ones(50_000), cols.ravel(), np.arange(0, 50_001, 50)),
                         shape=(1000, 2**20))
    assert is_wide_sparse(wide, 256) and not is_wide_sparse(wide[:2].toarray(), 256)
    small = sp.csr_matrix(wide[:100, :LAZY_MIN_FEATURES - 1])
    assert not is_wide_sparse(small, 256)


def test_float32_linear_on_float64_csr(rng):
    n, d, k = 60, 200, 5
    X = random_data(rng, n, d, 0.1)
    y = rng.integers(0, k, size=n).astype(np.int64)
    w = np.ones(n, dtype=np.float32)
    model = LinearModel(d, k, _losses.SOFTMAX)
    dense32 = model.init_params(rng, np.float32)
    sparse32 = dense32.copy()
    train(model, X, y, w, dense32, 16, _losses.SOFTMAX, k)
    train(model, to_csr(X, np.int64), y, w, sparse32, 16, _losses.SOFTMAX, k,
          n_threads=2)
    np.testing.assert_array_equal(sparse32, dense32)


# ---------------------------------------------------------------- logits


@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 300), d=st.integers(1, 90),
       hidden=st.sampled_from([[5], [70, 4]]),
       standardize=st.booleans(), data_dtype=st.sampled_from([np.float64, np.float32]),
       index_dtype=st.sampled_from(INDEX_DTYPES), n_threads=st.integers(1, 3),
       seed=st.integers(0, 2**32 - 1))
def test_logits_of_csr_rows(n, d, hidden, standardize, data_dtype, index_dtype,
                            n_threads, seed):
    """Both models' float64 logits of CSR rows (in another order, over
    several blocks of rows): the dense path's bits, NumPy's values, for a
    float64 or float32 model and float64 or float32 data."""
    rng = np.random.default_rng(seed)
    X = random_data(rng, n, d, 0.3, data_dtype)
    A = to_csr(X, index_dtype)
    rows = rng.permutation(n).astype(np.int64)
    mean, scale = standardisation(rng, d) if standardize else (None, None)
    mlp = MLPModel([d, *hidden, 3], _mlp.TANH, _losses.SOFTMAX, mean, scale)
    linear = LinearModel(d, 3, _losses.SOFTMAX)
    for model in (mlp, linear):
        theta = model.init_params(rng, np.float64)
        if model is linear:
            theta[:] = rng.normal(size=theta.size)
            theta[:d * model.ld].reshape(d, model.ld)[:, 3:] = 0.0
            theta[d * model.ld + 3:] = 0.0
        layers = model.unpack(theta)
        if model is mlp:
            ref = _layout.forward_numpy(X[rows].astype(np.float64), layers, _mlp.TANH)
        else:
            ref = X[rows].astype(np.float64) @ layers[0][0] + layers[0][1]
        for th in (theta, theta.astype(np.float32)):
            with Team() as team:
                want = model.logits(team, 1, X, rows, th)
                got = model.logits(team, n_threads, A, rows, th)
            assert_same(got, want)
            if th.dtype == np.float64:
                np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


def test_logits_of_csr_allocate_no_dense_rows(monkeypatch, rng):
    """Predicting from CSR rows reads them in place: the per-thread blocks of
    copied rows have no columns."""
    widths = []
    original = MLPModel._forward_buffers

    def spy(self, n_threads, block, n_features, w):
        widths.append(n_features)
        return original(self, n_threads, block, n_features, w)

    monkeypatch.setattr(MLPModel, "_forward_buffers", spy)
    monkeypatch.setattr(LinearModel, "_forward_buffers", spy)
    X = random_data(rng, 20, 50, 0.2)
    for model in (MLPModel([50, 6, 2], _mlp.RELU, _losses.SOFTMAX),
                  LinearModel(50, 2, _losses.SOFTMAX)):
        theta = model.init_params(rng, np.float64)
        with Team() as team:
            model.logits(team, 2, to_csr(X), np.arange(20, dtype=np.int64), theta)
            model.logits(team, 2, X, np.arange(20, dtype=np.int64), theta)
    assert widths == [0, 50, 0, 50]


def test_read_only_csr(rng):
    """The CSR arrays are only read: read-only ones (a memory map, say) train
    and predict as well."""
    X = random_data(rng, 30, 20, 0.3)
    y = rng.integers(0, 3, size=30).astype(np.int64)
    w = np.ones(30)
    A = to_csr(X)
    for a in (A.data, A.indices, A.indptr):
        a.flags.writeable = False
    model = MLPModel([20, 8, 3], _mlp.RELU, _losses.SOFTMAX, *standardisation(rng, 20))
    theta = model.init_params(rng, np.float64)
    want = theta.copy()
    train(model, X, y, w, want, 8, _losses.SOFTMAX, 3, code=_mlp.RELU)
    train(model, A, y, w, theta, 8, _losses.SOFTMAX, 3, code=_mlp.RELU, n_threads=2)
    np.testing.assert_array_equal(theta, want)
    with Team() as team:
        np.testing.assert_array_equal(
            model.logits(team, 2, A, np.arange(30, dtype=np.int64), theta),
            model.logits(team, 2, X, np.arange(30, dtype=np.int64), theta))


def test_dense_and_csr_data_compile_apart(rng):
    """Dense data reaches the kernels with None for the CSR arrays: a type of
    its own, so every branch on the kind of data (``indptr is None``) is
    resolved when compiling and each kind has its own specialisations. The
    dense ones hold no sparse code: a sparse product typed with None for its
    arrays does not compile, so the dense path running at all shows those
    branches pruned. Same bits either way."""
    from numba import types

    from skdigits._kernels import _linear

    X = random_data(rng, 30, 20, 0.3)
    y = rng.integers(0, 3, size=30).astype(np.int64)
    w = np.ones(30)
    A = to_csr(X)
    rows = np.arange(30, dtype=np.int64)
    for model in (MLPModel([20, 8, 3], _mlp.RELU, _losses.SOFTMAX),
                  MLPModel([20, 8, 5, 3], _mlp.RELU, _losses.SOFTMAX),
                  LinearModel(20, 3, _losses.SOFTMAX)):
        theta = model.init_params(rng, np.float64)
        want = theta.copy()
        train(model, X, y, w, want, 8, _losses.SOFTMAX, 3, code=_mlp.RELU)
        train(model, A, y, w, theta, 8, _losses.SOFTMAX, 3, code=_mlp.RELU)
        np.testing.assert_array_equal(theta, want)
        with Team() as team:
            np.testing.assert_array_equal(model.logits(team, 1, A, rows, theta),
                                          model.logits(team, 1, X, rows, theta))
    for kernel in (_mlp.mlp_epoch, _mlp.mlp_epoch_deep, _mlp.mlp_forward,
                   _linear.linear_epoch, _linear.linear_forward):
        # the CSR arrays are fields of the Data (epochs) or Rows (forward)
        # tuple of _kernels._boundary
        names = list(inspect.signature(kernel.py_func).parameters)
        arg = names.index("data" if "data" in names else "rows")

        def csr_fields(sig):
            tup = sig[arg]
            return tuple(tup.types[tup.fields.index(f)]
                         for f in ("indptr", "indices", "data"))

        dense = [sig for sig in kernel.signatures
                 if csr_fields(sig) == (types.none,) * 3]
        csr = [sig for sig in kernel.signatures
               if all(isinstance(a, types.Array) for a in csr_fields(sig))]
        assert dense and csr, kernel
        assert len(dense) + len(csr) == len(kernel.signatures), kernel
