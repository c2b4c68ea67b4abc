"""MLP Numba kernels (``skdigits._kernels._mlp``) against float64 NumPy references.

The references below never call the kernels: the parameter layout, the forward
pass, backpropagation, the losses and the optimizer updates are written again
in plain NumPy (float64) from the documented formulas.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skdigits._kernels import _losses, _mlp, _optim, _rng

ACTIVATIONS = [_mlp.IDENTITY, _mlp.RELU, _mlp.TANH, _mlp.LOGISTIC, _mlp.LEAKY_RELU]
ACT_IDS = ["identity", "relu", "tanh", "logistic", "leaky_relu"]
# (loss code, n_outputs, n_classes): multi-class softmax and the binary
# problem (one logistic output) that MLPClassifier uses
LOSSES = [(_losses.SOFTMAX, 4, 4), (_losses.LOGISTIC, 1, 2)]
LOSS_IDS = ["softmax", "binary_logistic"]

# ---------------------------------------------------------------- references


def ref_act(z, code):
    """Activation function ``f(z)`` in float64."""
    if code == _mlp.RELU:
        return np.maximum(z, 0.0)
    if code == _mlp.LEAKY_RELU:
        return np.where(z > 0, z, _mlp.LEAKY_SLOPE * z)
    if code == _mlp.TANH:
        return np.tanh(z)
    if code == _mlp.LOGISTIC:
        return 1.0 / (1.0 + np.exp(-z))
    assert code == _mlp.IDENTITY
    return z.copy()


def ref_act_prime(z, code):
    """Derivative ``f'(z)`` as a function of the pre-activation ``z``."""
    if code == _mlp.RELU:
        return (z > 0).astype(np.float64)
    if code == _mlp.LEAKY_RELU:
        return np.where(z > 0, 1.0, _mlp.LEAKY_SLOPE)
    if code == _mlp.TANH:
        return 1.0 / np.cosh(z) ** 2
    if code == _mlp.LOGISTIC:
        s = 1.0 / (1.0 + np.exp(-z))
        return s * (1.0 - s)
    return np.ones_like(z)


def ref_unpack(theta, sizes):
    """Lists of float64 ``W_l`` (copies) and ``b_l`` from the documented layout:
    each layer's row-major weights, then its intercepts, layer after layer."""
    theta = np.asarray(theta, dtype=np.float64)
    Ws, bs, pos = [], [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        Ws.append(theta[pos:pos + n_in * n_out].reshape(n_in, n_out).copy())
        pos += n_in * n_out
        bs.append(theta[pos:pos + n_out].copy())
        pos += n_out
    assert pos == theta.size
    return Ws, bs


def ref_pack(Ws, bs):
    return np.concatenate([p for W, b in zip(Ws, bs) for p in (W.ravel(), b)])


def ref_forward(X, Ws, bs, code):
    """Pre-activations ``Zs`` and outputs ``Hs`` of every layer (float64);
    hidden layers apply ``code``, the output layer is the identity."""
    H = np.asarray(X, dtype=np.float64)
    Zs, Hs = [], []
    for l, (W, b) in enumerate(zip(Ws, bs)):
        Z = H @ W + b
        H = ref_act(Z, code) if l < len(Ws) - 1 else Z
        Zs.append(Z)
        Hs.append(H)
    return Zs, Hs


def ref_backward(X, Ws, bs, code, G, alpha):
    """Gradients of every ``W_l``/``b_l`` given dLoss/dlogits ``G``, with
    ``alpha * W_l`` added; also the deltas (dLoss/dpre-activation) of the
    hidden layers."""
    X = np.asarray(X, dtype=np.float64)
    Zs, Hs = ref_forward(X, Ws, bs, code)
    L = len(Ws)
    gWs, gbs, deltas = [None] * L, [None] * L, [None] * L
    delta = np.asarray(G, dtype=np.float64)
    for l in range(L - 1, -1, -1):
        A_in = X if l == 0 else Hs[l - 1]
        deltas[l] = delta
        gWs[l] = A_in.T @ delta + alpha * Ws[l]
        gbs[l] = delta.sum(axis=0)
        if l > 0:
            delta = (delta @ Ws[l].T) * ref_act_prime(Zs[l - 1], code)
    return gWs, gbs, deltas


def ref_loss(Z, y, w, loss):
    """Per-row loss and the weighted (unscaled) gradient ``w_i dloss_i/dZ_i``."""
    Z = np.asarray(Z, dtype=np.float64)
    if loss == _losses.SOFTMAX:
        zmax = Z.max(axis=1, keepdims=True)
        lse = zmax[:, 0] + np.log(np.exp(Z - zmax).sum(axis=1))
        per_row = lse - Z[np.arange(len(y)), y]
        P = np.exp(Z - lse[:, None])
        return per_row, w[:, None] * (P - np.eye(Z.shape[1])[y])
    assert Z.shape[1] == 1
    t = (y == 1).astype(np.float64)[:, None]
    per_row = (np.logaddexp(0.0, Z) - Z * t)[:, 0]
    return per_row, w[:, None] * (1.0 / (1.0 + np.exp(-Z)) - t)


def ref_objective_grad(X, y, w, theta, sizes, code, loss, alpha_m):
    """Minibatch objective ``sum_i w_i loss_i / m + alpha_m / 2 * sum ||W||^2``
    and its flat gradient (the scaling of ``mlp_epoch``: ``alpha_m = alpha/m``)."""
    m = X.shape[0]
    Ws, bs = ref_unpack(theta, sizes)
    _, Hs = ref_forward(X, Ws, bs, code)
    per_row, G = ref_loss(Hs[-1], y, w, loss)
    gWs, gbs, _ = ref_backward(X, Ws, bs, code, G / m, alpha_m)
    obj = (w * per_row).sum() / m + 0.5 * alpha_m * sum((W**2).sum() for W in Ws)
    return obj, ref_pack(gWs, gbs), per_row


def ref_full_loss(X, y, w, theta, sizes, code, loss):
    """Weighted mean data loss over all rows."""
    Ws, bs = ref_unpack(theta, sizes)
    per_row, _ = ref_loss(ref_forward(X, Ws, bs, code)[1][-1], y, w, loss)
    return (w * per_row).sum() / w.sum()


# ---------------------------------------------------------------- helpers


def random_net(rng, sizes, dtype=np.float64, scale=1.0):
    """Flat theta with weights ~ N(0, scale^2 / fan_in) and intercepts ~ N(0, 0.25)."""
    Ws = [rng.normal(scale=scale / np.sqrt(a), size=(a, b))
          for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(scale=0.5, size=b) for b in sizes[1:]]
    return ref_pack(Ws, bs).astype(dtype)


def make_problem(rng, n, n_features, n_classes, dtype=np.float64):
    X = rng.normal(size=(n, n_features)).astype(dtype)
    y = rng.integers(0, n_classes, size=n).astype(np.int64)
    w = rng.uniform(0.5, 1.5, size=n).astype(dtype)
    return X, y, w


class Net:
    """Kernel-side buffers of a network: sizes, offsets, activation buffer."""

    def __init__(self, sizes, n_rows, dtype):
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.w_off, self.b_off, self.n_params = _mlp.layout(self.sizes)
        self.a_off, a_len = _mlp.act_layout(self.sizes, n_rows)
        self.acts = np.full(a_len, np.nan, dtype=dtype)
        hidden = self.sizes[1:-1]
        self.D = np.full(n_rows * int(hidden.max()) if hidden.size else 0, np.nan,
                         dtype=dtype)

    def slot(self, l, m):
        k = int(self.sizes[l + 1])
        return self.acts[self.a_off[l]:self.a_off[l] + m * k].reshape(m, k)

    def forward(self, X, theta, code):
        _mlp.forward_batch(X, theta, self.sizes, self.w_off, self.b_off, self.acts,
                           self.a_off, code)
        return self.slot(len(self.sizes) - 2, X.shape[0])

    def backward(self, X, theta, grad, code, alpha):
        _mlp.backward_batch(X, theta, grad, self.sizes, self.w_off, self.b_off,
                            self.acts, self.a_off, self.D, code, alpha)


def accumulators(n_classes, n_out):
    return dict(class_loss=np.zeros(n_classes), class_weight=np.zeros(n_classes),
                col_loss=np.zeros(n_out), stats=np.zeros(3))


def run_epoch(X, y, w, theta, sizes, code, loss, batch_size, *, order=None,
              shuffle=False, seed=0, alpha=0.0, lr0=0.1, lr1=None, solver=_optim.SGD,
              momentum=0.0, nesterov=False, beta1=0.9, beta2=0.999, eps=1e-8, t=0,
              state=None, n_classes=None, epoch=None):
    """One ``mlp_epoch`` call with fresh buffers; returns ``(t, acc, order, state)``."""
    epoch = epoch or _mlp.mlp_epoch
    dtype = theta.dtype
    net = Net(sizes, batch_size, dtype)
    n_out = int(net.sizes[-1])
    n_classes = n_classes or max(n_out, 2)
    order = np.arange(X.shape[0], dtype=np.int64) if order is None else order
    state = state or (np.zeros_like(theta), np.zeros_like(theta))
    acc = accumulators(n_classes, n_out)
    rng_state = _rng.new_state(np.random.RandomState(seed))
    t = epoch(
        X, y, w, order, bool(shuffle), rng_state, net.sizes, net.w_off, net.b_off,
        theta, np.full_like(theta, np.nan), state[0], state[1],
        np.full((batch_size, X.shape[1]), np.nan, dtype),
        np.full(batch_size, -1, np.int64),
        np.full(batch_size, np.nan, dtype), net.acts, net.a_off, net.D, code, loss,
        float(alpha), float(lr0), float(lr0 if lr1 is None else lr1), solver,
        float(momentum), bool(nesterov), float(beta1), float(beta2), float(eps), t,
        acc["class_loss"], acc["class_weight"], acc["col_loss"], acc["stats"])
    return t, acc, order, state


def tolerances(dtype):
    return dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else \
        dict(rtol=2e-4, atol=2e-5)


# ---------------------------------------------------------------- layout


layer_sizes = st.lists(st.integers(1, 50), min_size=2, max_size=6)


@settings(max_examples=60, deadline=None)
@given(layer_sizes, st.integers(1, 40))
def test_layout_tiles_theta_layer_by_layer(sizes, n_rows):
    w_off, b_off, n_params = _mlp.layout(sizes)
    L = len(sizes) - 1
    assert w_off.dtype == b_off.dtype == np.int64
    assert w_off.shape == b_off.shape == (L,)
    assert n_params == sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    cover = np.zeros(n_params, dtype=np.int64)
    pos = 0
    for l in range(L):
        n_in, n_out = sizes[l], sizes[l + 1]
        # each layer is one contiguous block: its weights, then its intercepts,
        # right after the previous layer
        assert w_off[l] == pos
        assert b_off[l] == w_off[l] + n_in * n_out
        pos = b_off[l] + n_out
        cover[w_off[l]:w_off[l] + n_in * n_out] += 1
        cover[b_off[l]:b_off[l] + n_out] += 1
    assert pos == n_params
    np.testing.assert_array_equal(cover, 1)  # no overlap, no gap

    # param_views are views of exactly these blocks
    theta = np.arange(n_params, dtype=np.float64)
    sizes64 = np.asarray(sizes, dtype=np.int64)
    Ws, bs = ref_unpack(theta, sizes)
    for l in range(L):
        W, b = _mlp.param_views(theta, sizes64, w_off, b_off, l)
        np.testing.assert_array_equal(W, Ws[l])
        np.testing.assert_array_equal(b, bs[l])
        assert np.shares_memory(W, theta) and np.shares_memory(b, theta)

    # activation slots: contiguous, disjoint, covering the buffer exactly
    a_off, a_len = _mlp.act_layout(sizes, n_rows)
    assert a_off.dtype == np.int64 and a_off.shape == (L,)
    assert a_len == n_rows * sum(sizes[1:])
    cover = np.zeros(a_len, dtype=np.int64)
    for l in range(L):
        assert a_off[l] == n_rows * sum(sizes[1:l + 1])
        cover[a_off[l]:a_off[l] + n_rows * sizes[l + 1]] += 1
    np.testing.assert_array_equal(cover, 1)
    acts = np.arange(a_len, dtype=np.float64)
    for l in range(L):
        for m in (1, n_rows):
            v = _mlp.act_view(acts, a_off, sizes64, l, m)
            assert v.shape == (m, sizes[l + 1])
            np.testing.assert_array_equal(
                v.ravel(), np.arange(a_off[l], a_off[l] + m * sizes[l + 1]))


# ---------------------------------------------------------------- forward


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_hidden", [1, 2, 3])
@pytest.mark.parametrize("code", ACTIVATIONS, ids=ACT_IDS)
@settings(max_examples=5, deadline=None)
@given(widths=st.lists(st.integers(1, 9), min_size=5, max_size=5),
       m=st.integers(1, 12), extra_rows=st.integers(0, 5),
       seed=st.integers(0, 2**32 - 1))
def test_forward_matches_numpy(code, n_hidden, dtype, widths, m, extra_rows, seed):
    rng = np.random.default_rng(seed)
    sizes = [widths[0], *widths[1:1 + n_hidden], widths[-1]]
    theta = random_net(rng, sizes, dtype)
    X = rng.normal(size=(m, sizes[0])).astype(dtype)
    Zs, Hs = ref_forward(X, *ref_unpack(theta, sizes), code)
    tol = tolerances(dtype)

    # the activation buffer may be laid out for more rows than the batch has
    net = Net(sizes, m + extra_rows, dtype)
    logits = net.forward(X, theta, code)
    assert net.acts.dtype == dtype
    for l in range(len(sizes) - 1):  # every hidden output and the logits
        np.testing.assert_allclose(net.slot(l, m), Hs[l], **tol)
    np.testing.assert_allclose(logits, Zs[-1], **tol)  # identity output layer

    out = np.full((m, sizes[-1]), np.nan, dtype=dtype)
    _mlp.mlp_forward(X, theta, net.sizes, net.w_off, net.b_off, code, out)
    np.testing.assert_allclose(out, Zs[-1], **tol)
    np.testing.assert_array_equal(out, logits)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("code", ACTIVATIONS, ids=ACT_IDS)
def test_bias_activate_and_its_derivative_on_both_signs(code, dtype):
    z = np.array([[-3.0, -0.5, -1e-3, 0.0], [1e-3, 0.5, 3.0, 40.0]])
    b = np.array([0.25, -0.25, 0.0, 0.0])
    Z = z.astype(dtype)
    _mlp.bias_activate(Z, b.astype(dtype), code)
    assert Z.dtype == dtype
    expected = ref_act(z.astype(dtype).astype(np.float64) + b, code)
    np.testing.assert_allclose(Z, expected, rtol=1e-6 if dtype == np.float32 else 1e-14,
                               atol=1e-7 if dtype == np.float32 else 1e-15)
    if code == _mlp.LEAKY_RELU:  # negative inputs are scaled, not clipped
        assert Z[0, 0] == pytest.approx(_mlp.LEAKY_SLOPE * -2.75, rel=1e-6)
    # the derivative from the output f(z) equals f'(z) (no input exactly at a kink)
    zz = z + b
    keep = zz != 0.0
    A = ref_act(zz, code).astype(dtype)
    Dm = np.linspace(-2.0, 2.0, zz.size).reshape(zz.shape)
    _mlp.activation_backward(A, Dm.astype(dtype), code)
    np.testing.assert_allclose(A[keep], (Dm * ref_act_prime(zz, code))[keep],
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-7)


# ---------------------------------------------------------------- backward


@pytest.mark.parametrize("n_hidden", [1, 2, 3])
@pytest.mark.parametrize("code", ACTIVATIONS, ids=ACT_IDS)
@settings(max_examples=6, deadline=None)
@given(widths=st.lists(st.integers(1, 9), min_size=5, max_size=5),
       m=st.integers(1, 12), extra_rows=st.integers(0, 4),
       alpha=st.sampled_from([0.0, 0.37]), seed=st.integers(0, 2**32 - 1))
def test_backward_matches_numpy(code, n_hidden, widths, m, extra_rows, alpha, seed):
    rng = np.random.default_rng(seed)
    sizes = [widths[0], *widths[1:1 + n_hidden], widths[-1]]
    theta = random_net(rng, sizes)
    X = rng.normal(size=(m, sizes[0]))
    G = rng.normal(size=(m, sizes[-1]))  # dLoss/dlogits
    Ws, bs = ref_unpack(theta, sizes)
    gWs, gbs, deltas = ref_backward(X, Ws, bs, code, G, alpha)

    net = Net(sizes, m + extra_rows, np.float64)
    theta0 = theta.copy()
    logits = net.forward(X, theta, code)
    logits[:] = G
    grad = np.full_like(theta, np.nan)
    net.backward(X, theta, grad, code, alpha)
    np.testing.assert_array_equal(theta, theta0)  # read only
    np.testing.assert_allclose(grad, ref_pack(gWs, gbs), rtol=1e-10, atol=1e-12)
    for l in range(len(sizes) - 1):  # the slots now hold the deltas
        np.testing.assert_allclose(net.slot(l, m), deltas[l], rtol=1e-10, atol=1e-12)
    if alpha:  # the L2 term goes into the weights, not the intercepts
        grad0 = np.full_like(theta, np.nan)
        net.forward(X, theta, code)[:] = G
        net.backward(X, theta, grad0, code, 0.0)
        Wz, bz = ref_unpack(grad0, sizes)
        Wa, ba = ref_unpack(grad, sizes)
        for l in range(len(Ws)):
            np.testing.assert_allclose(Wa[l] - Wz[l], alpha * Ws[l], rtol=1e-9,
                                       atol=1e-12)
            np.testing.assert_array_equal(ba[l], bz[l])


@pytest.mark.parametrize("code", ACTIVATIONS, ids=ACT_IDS)
def test_backward_float32_close_to_float64(code, rng):
    sizes = [7, 8, 6, 3]
    theta = random_net(rng, sizes)
    X = rng.normal(size=(10, 7))
    G = rng.normal(size=(10, 3))
    gWs, gbs, _ = ref_backward(X, *ref_unpack(theta, sizes), code, G, 0.1)
    net = Net(sizes, 10, np.float32)
    th32 = theta.astype(np.float32)
    X32 = X.astype(np.float32)
    net.forward(X32, th32, code)[:] = G
    grad = np.zeros_like(th32)
    net.backward(X32, th32, grad, code, 0.1)
    assert grad.dtype == np.float32
    np.testing.assert_allclose(grad, ref_pack(gWs, gbs), rtol=1e-3, atol=1e-4)


# ---------------------------------------------------------------- gradient check


def kink_free_problem(sizes, code, n, n_classes, margin=1e-3):
    """Data and theta whose hidden pre-activations all lie ``margin`` away from 0
    (the kink of ReLU / leaky ReLU), searched over seeds."""
    for seed in range(200):
        rng = np.random.default_rng(seed)
        theta = random_net(rng, sizes)
        X, y, w = make_problem(rng, n, sizes[0], n_classes)
        Zs, _ = ref_forward(X, *ref_unpack(theta, sizes), code)
        if min(np.abs(Z).min() for Z in Zs[:-1]) > margin:
            return theta, X, y, w
    raise AssertionError("no kink-free problem found")  # pragma: no cover


@pytest.mark.parametrize("loss,n_out,n_classes", LOSSES, ids=LOSS_IDS)
@pytest.mark.parametrize("code", ACTIVATIONS, ids=ACT_IDS)
def test_gradient_by_finite_differences(code, loss, n_out, n_classes):
    sizes = [5, 6, 4, n_out]
    m, alpha = 9, 0.1
    theta, X, y, w = kink_free_problem(sizes, code, m, n_classes)
    net = Net(sizes, m, np.float64)
    L = len(sizes) - 1

    def objective(th):
        acc = accumulators(n_classes, n_out)
        logits = net.forward(X, th, code)
        _losses.loss_grad(logits, y, w, m, loss, 0.0, *acc.values())
        Ws, _ = ref_unpack(th, sizes)
        return acc["stats"][0] / m + 0.5 * alpha * sum((W**2).sum() for W in Ws)

    acc = accumulators(n_classes, n_out)
    logits = net.forward(X, theta, code)
    _losses.loss_grad(logits, y, w, m, loss, 1.0 / m, *acc.values())
    grad = np.full_like(theta, np.nan)
    net.backward(X, theta, grad, code, alpha)

    # a random subset of parameters, with weights and intercepts of every layer
    rng = np.random.default_rng(1)
    idx = set(rng.choice(theta.size, size=25, replace=False).tolist())
    for l in range(L):
        idx.add(int(rng.integers(net.w_off[l], net.b_off[l])))
        idx.add(int(rng.integers(net.b_off[l], net.b_off[l] + sizes[l + 1])))
    idx = np.array(sorted(idx))
    eps = 1e-6
    num = np.empty(idx.size)
    for k, i in enumerate(idx):
        tp, tm = theta.copy(), theta.copy()
        tp[i] += eps
        tm[i] -= eps
        num[k] = (objective(tp) - objective(tm)) / (2 * eps)
    assert np.abs(num).max() > 1e-3  # the check is not vacuous
    np.testing.assert_allclose(grad[idx], num, rtol=1e-5, atol=1e-8)
    # and the analytic gradient equals the NumPy reference everywhere
    _, ref_grad, _ = ref_objective_grad(X, y, w, theta, sizes, code, loss, alpha)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- epoch


@pytest.mark.parametrize("loss,n_out,n_classes", LOSSES, ids=LOSS_IDS)
@pytest.mark.parametrize("code", ACTIVATIONS, ids=ACT_IDS)
def test_full_batch_sgd_epoch_is_one_gradient_step(code, loss, n_out, n_classes, rng):
    sizes = [6, 5, 4, n_out]
    n, alpha, lr = 17, 0.2, 0.3
    X, y, w = make_problem(rng, n, 6, n_classes)
    theta = random_net(rng, sizes)
    theta0 = theta.copy()
    _, ref_grad, per_row = ref_objective_grad(X, y, w, theta0, sizes, code, loss,
                                              alpha / n)
    # lr1 differs: the single batch (k = 0) must use lr0
    t, acc, order, _ = run_epoch(X, y, w, theta, sizes, code, loss, n, alpha=alpha,
                                 lr0=lr, lr1=99.0, t=5, n_classes=n_classes)
    assert t == 6
    np.testing.assert_array_equal(order, np.arange(n))  # not shuffled
    np.testing.assert_allclose(theta, theta0 - lr * ref_grad, rtol=1e-10, atol=1e-12)
    # the accumulators hold the loss before the update
    np.testing.assert_allclose(acc["stats"][0], (w * per_row).sum(), rtol=1e-10)
    np.testing.assert_allclose(acc["stats"][1], w.sum(), rtol=1e-12)
    np.testing.assert_allclose(acc["class_loss"],
                               np.bincount(y, w * per_row, minlength=n_classes),
                               rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(acc["class_weight"],
                               np.bincount(y, w, minlength=n_classes), rtol=1e-12)


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("code", [_mlp.RELU, _mlp.TANH], ids=["relu", "tanh"])
def test_minibatch_sgd_epoch_matches_numpy(code, nesterov, rng):
    """Batches in order, the last one shorter (its L2 term uses its own size),
    momentum carried across batches and the linear learning-rate schedule."""
    sizes = [4, 6, 3]
    n, bs, alpha, lr0, lr1, mu = 20, 7, 0.1, 0.2, 0.05, 0.9
    X, y, w = make_problem(rng, n, 4, 3)
    theta = random_net(rng, sizes)
    ref, vel = theta.copy(), np.zeros_like(theta)
    n_batches = 3
    for k in range(n_batches):
        rows = np.arange(k * bs, min(n, (k + 1) * bs))
        _, g, _ = ref_objective_grad(X[rows], y[rows], w[rows], ref, sizes, code,
                                     _losses.SOFTMAX, alpha / rows.size)
        lr = lr0 + (lr1 - lr0) * k / n_batches
        vel = mu * vel - lr * g
        ref = ref + (mu * vel - lr * g if nesterov else vel)
    t, _, _, (s1, _) = run_epoch(X, y, w, theta, sizes, code, _losses.SOFTMAX, bs,
                                 alpha=alpha, lr0=lr0, lr1=lr1, momentum=mu,
                                 nesterov=nesterov)
    assert t == n_batches
    np.testing.assert_allclose(theta, ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(s1, vel, rtol=1e-10, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 40), st.integers(1, 15), st.booleans(), st.integers(0, 10**6),
       st.sampled_from([np.float64, np.float32]))
def test_epoch_visits_every_row_once(n, batch_size, shuffle, seed, dtype):
    rng = np.random.default_rng(seed)
    X, y, w = make_problem(rng, n, 3, 3, dtype)
    theta = random_net(rng, [3, 4, 3], dtype)
    bs = min(batch_size, n)
    t, acc, order, _ = run_epoch(X, y, w, theta, [3, 4, 3], _mlp.TANH,
                                 _losses.SOFTMAX, bs, shuffle=shuffle, seed=seed)
    assert t == -(-n // bs)
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
    expected = np.arange(n, dtype=np.int64)
    if shuffle:  # the seeded Fisher-Yates permutation of the kernel state
        _rng.shuffle(expected, _rng.new_state(np.random.RandomState(seed)))
    np.testing.assert_array_equal(order, expected)
    w64 = w.astype(np.float64)
    np.testing.assert_allclose(acc["class_weight"], np.bincount(y, w64, minlength=3),
                               rtol=1e-12)
    np.testing.assert_allclose(acc["stats"][1], w64.sum(), rtol=1e-12)
    assert np.all(np.isfinite(theta))


def test_shuffled_epoch_trains_on_the_shuffled_order(rng):
    sizes = [4, 5, 3]
    n = 25
    X, y, w = make_problem(rng, n, 4, 3)
    theta0 = random_net(rng, sizes)
    shuffled = theta0.copy()
    _, _, order, _ = run_epoch(X, y, w, shuffled, sizes, _mlp.TANH, _losses.SOFTMAX, 6,
                               shuffle=True, seed=11, lr0=0.2)
    perm = np.arange(n, dtype=np.int64)
    _rng.shuffle(perm, _rng.new_state(np.random.RandomState(11)))
    np.testing.assert_array_equal(order, perm)
    assert not np.array_equal(perm, np.arange(n))
    # the same epoch run unshuffled on the permuted order gives the same model...
    replay = theta0.copy()
    run_epoch(X, y, w, replay, sizes, _mlp.TANH, _losses.SOFTMAX, 6, order=perm.copy(),
              lr0=0.2)
    np.testing.assert_array_equal(shuffled, replay)
    # ...and a different one from the unshuffled epoch (the batches differ)
    plain = theta0.copy()
    run_epoch(X, y, w, plain, sizes, _mlp.TANH, _losses.SOFTMAX, 6, lr0=0.2)
    assert not np.allclose(plain, shuffled, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("batch_size", [11, 4])
def test_epoch_uses_only_the_rows_in_order(batch_size, rng):
    sizes = [5, 6, 3]
    n = 30
    X, y, w = make_problem(rng, n, 5, 3)
    theta0 = random_net(rng, sizes)
    order = np.sort(rng.choice(n, size=11, replace=False)).astype(np.int64)
    left_out = np.setdiff1d(np.arange(n), order)
    Xg, wg = X.copy(), w.copy()
    Xg[left_out] = np.nan  # rows not listed: poison, must never be read
    wg[left_out] = np.nan
    theta = theta0.copy()
    t, acc, _, _ = run_epoch(Xg, y, wg, theta, sizes, _mlp.RELU, _losses.SOFTMAX,
                             batch_size, order=order.copy(), alpha=0.1)
    assert t == -(-11 // batch_size)
    assert np.all(np.isfinite(theta))
    np.testing.assert_allclose(acc["class_weight"],
                               np.bincount(y[order], w[order], minlength=3), rtol=1e-12)
    # same as training on the listed rows alone
    sub = theta0.copy()
    run_epoch(np.ascontiguousarray(X[order]), y[order], w[order], sub, sizes, _mlp.RELU,
              _losses.SOFTMAX, batch_size, alpha=0.1)
    np.testing.assert_allclose(theta, sub, rtol=1e-12, atol=1e-14)
    if batch_size == 11:  # one full batch: one step of the NumPy reference
        _, g, _ = ref_objective_grad(X[order], y[order], w[order], theta0, sizes,
                                     _mlp.RELU, _losses.SOFTMAX, 0.1 / 11)
        np.testing.assert_allclose(theta, theta0 - 0.1 * g, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("code", ACTIVATIONS, ids=ACT_IDS)
def test_float32_epoch_tracks_float64(code, rng):
    sizes = [10, 12, 8, 4]
    n = 64
    X, y, w = make_problem(rng, n, 10, 4)
    theta = random_net(rng, sizes)
    th64, th32 = theta.copy(), theta.astype(np.float32)
    kw = dict(alpha=1e-3, lr0=0.01, solver=_optim.ADAM, shuffle=True, seed=3)
    _, acc64, o64, _ = run_epoch(X, y, w, th64, sizes, code, _losses.SOFTMAX, 16, **kw)
    _, acc32, o32, _ = run_epoch(X.astype(np.float32), y, w.astype(np.float32), th32,
                                 sizes, code, _losses.SOFTMAX, 16, **kw)
    assert th32.dtype == np.float32
    np.testing.assert_array_equal(o32, o64)  # same seed, same batches
    assert not np.allclose(th64, theta)  # it trained
    np.testing.assert_allclose(th32, th64, rtol=1e-3, atol=2e-4)
    np.testing.assert_allclose(acc32["stats"], acc64["stats"], rtol=1e-4)


@pytest.mark.parametrize("solver", [_optim.SGD, _optim.ADAM], ids=["sgd", "adam"])
def test_float64_input_is_cast_like_float32_input(solver, rng):
    sizes = [6, 7, 1]
    n = 21
    X, y, w = make_problem(rng, n, 6, 2)
    th_a = random_net(rng, sizes, np.float32)
    th_b = th_a.copy()
    kw = dict(alpha=0.01, lr0=0.05, solver=solver, momentum=0.9, shuffle=True, seed=7)
    _, acc_a, _, st_a = run_epoch(X, y, w, th_a, sizes, _mlp.LOGISTIC,
                                  _losses.LOGISTIC, 8, **kw)
    _, acc_b, _, st_b = run_epoch(X.astype(np.float32), y, w.astype(np.float32), th_b,
                                  sizes, _mlp.LOGISTIC, _losses.LOGISTIC, 8, **kw)
    assert th_a.dtype == np.float32
    np.testing.assert_array_equal(th_a, th_b)
    np.testing.assert_array_equal(st_a[0], st_b[0])
    for key in acc_a:
        np.testing.assert_array_equal(acc_a[key], acc_b[key])


@pytest.mark.parametrize("loss,n_out,n_classes", LOSSES, ids=LOSS_IDS)
@pytest.mark.parametrize("code", [_mlp.RELU, _mlp.TANH, _mlp.LOGISTIC],
                         ids=["relu", "tanh", "logistic"])
@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_adam_epochs_decrease_the_loss(code, loss, n_out, n_classes, seed):
    rng = np.random.default_rng(seed)
    sizes = [4, 8, n_out]
    n = 24
    X, y, w = make_problem(rng, n, 4, n_classes)
    X += 1.5 * np.eye(n_classes, 4)[y]  # learnable class structure
    theta = random_net(rng, sizes)
    state = (np.zeros_like(theta), np.zeros_like(theta))
    t = 0
    checkpoints = [ref_full_loss(X, y, w, theta, sizes, code, loss)]
    epoch_losses = []
    for _ in range(3):
        for _ in range(10):
            t, acc, _, state = run_epoch(X, y, w, theta, sizes, code, loss, n,
                                         lr0=0.02, solver=_optim.ADAM, t=t,
                                         state=state, n_classes=n_classes)
            epoch_losses.append(acc["stats"][0] / acc["stats"][1])
        checkpoints.append(ref_full_loss(X, y, w, theta, sizes, code, loss))
    assert t == 30
    assert all(np.isfinite(checkpoints))
    assert all(b < a for a, b in zip(checkpoints, checkpoints[1:])), checkpoints
    # the epoch's accumulated loss (full batch: before its update) is the
    # NumPy loss at the same theta
    np.testing.assert_allclose(epoch_losses[0], checkpoints[0], rtol=1e-10)
    assert epoch_losses[-1] < epoch_losses[0]


def test_python_twins_agree_with_compiled(rng):
    sizes = np.array([5, 6, 4, 3], dtype=np.int64)
    code = _mlp.TANH
    X, y, w = make_problem(rng, 9, 5, 3)
    theta = random_net(rng, sizes)
    G = rng.normal(size=(9, 3))
    grads, slots = [], []
    for fwd, bwd in [(_mlp.forward_batch, _mlp.backward_batch),
                     (_mlp._forward_batch_py, _mlp._backward_batch_py)]:
        net = Net(sizes, 9, np.float64)
        fwd(X, theta, net.sizes, net.w_off, net.b_off, net.acts, net.a_off, code)
        net.slot(2, 9)[:] = G
        grad = np.zeros_like(theta)
        bwd(X, theta, grad, net.sizes, net.w_off, net.b_off, net.acts, net.a_off,
            net.D, code, 0.3)
        grads.append(grad)
        slots.append(net.acts.copy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(slots[1], slots[0], rtol=1e-12, atol=1e-14)
    outs = []
    for fn in (_mlp.mlp_forward, _mlp._mlp_forward_py):
        out = np.empty((9, 3))
        w_off, b_off, _ = _mlp.layout(sizes)
        fn(X, theta, sizes, w_off, b_off, code, out)
        outs.append(out)
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-12, atol=1e-14)
    thetas = []
    for fn in (_mlp.mlp_epoch, _mlp._mlp_epoch_py):
        th = theta.copy()
        t, _, _, _ = run_epoch(X, y, w, th, sizes, code, _losses.SOFTMAX, 4,
                               shuffle=True, alpha=0.1, solver=_optim.ADAM, epoch=fn)
        assert t == 3
        thetas.append(th)
    np.testing.assert_allclose(thetas[1], thetas[0], rtol=1e-12, atol=1e-14)
    assert not np.allclose(thetas[0], theta)


# ---------------------------------------------------------------- optimizers


finite = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False)
vectors = st.lists(st.tuples(finite, finite, finite, st.floats(0.0, 2.0)),
                   min_size=1, max_size=20)


@settings(max_examples=40, deadline=None)
@given(vectors, st.floats(1e-4, 0.5), st.floats(0.0, 0.99), st.booleans())
def test_sgd_step_float32_by_hand(rows, lr, mu, nesterov):
    theta = np.array([r[0] for r in rows], dtype=np.float32)
    grad = np.array([r[1] for r in rows], dtype=np.float32)
    vel = np.array([r[2] for r in rows], dtype=np.float32)
    exp_theta, exp_vel = [], []
    for th, g, v in zip(theta.tolist(), grad.tolist(), vel.tolist()):  # float64
        v_new = mu * v - lr * g
        exp_vel.append(v_new)
        exp_theta.append(th + (mu * v_new - lr * g if nesterov else v_new))
    _optim.sgd_step(theta, grad, vel, lr, mu, nesterov)
    assert theta.dtype == vel.dtype == np.float32
    np.testing.assert_allclose(vel, exp_vel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(theta, exp_theta, rtol=1e-5, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(vectors, st.floats(1e-4, 0.1), st.sampled_from([0.0, 0.5, 0.9]),
       st.sampled_from([0.9, 0.999]), st.sampled_from([1e-8, 1e-3]),
       st.integers(1, 50))
def test_adam_step_float32_by_hand(rows, lr, beta1, beta2, eps, t):
    theta = np.array([r[0] for r in rows], dtype=np.float32)
    grad = np.array([r[1] for r in rows], dtype=np.float32)
    m = np.array([r[2] for r in rows], dtype=np.float32)
    v = np.array([r[3] for r in rows], dtype=np.float32)
    lr_t = lr * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
    exp_theta, exp_m, exp_v = [], [], []
    for th, g, mi, vi in zip(theta.tolist(), grad.tolist(), m.tolist(), v.tolist()):
        mi = beta1 * mi + (1.0 - beta1) * g
        vi = beta2 * vi + (1.0 - beta2) * g * g
        exp_m.append(mi)
        exp_v.append(vi)
        exp_theta.append(th - lr_t * mi / (math.sqrt(vi) + eps))
    _optim.adam_step(theta, grad, m, v, lr, beta1, beta2, eps, t)
    assert theta.dtype == m.dtype == v.dtype == np.float32
    np.testing.assert_allclose(m, exp_m, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v, exp_v, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(theta, exp_theta, rtol=1e-5, atol=1e-5)


def test_optimizer_steps_by_hand_fixed_values():
    """Hand-computed numbers (no formula shared with the kernels' code)."""
    theta = np.array([1.0, -2.0], dtype=np.float32)
    vel = np.array([0.1, 0.0], dtype=np.float32)
    grad = np.array([0.5, 1.0], dtype=np.float32)
    _optim.sgd_step(theta, grad, vel, 0.1, 0.9, False)
    # v = 0.9 v - 0.1 g = [0.09 - 0.05, -0.1]; theta += v
    np.testing.assert_allclose(vel, [0.04, -0.1], rtol=1e-6)
    np.testing.assert_allclose(theta, [1.04, -2.1], rtol=1e-6)
    theta = np.array([1.0, -2.0], dtype=np.float32)
    vel = np.array([0.1, 0.0], dtype=np.float32)
    _optim.sgd_step(theta, grad, vel, 0.1, 0.9, True)
    # Nesterov: theta += 0.9 v_new - 0.1 g = [0.036 - 0.05, -0.09 - 0.1]
    np.testing.assert_allclose(theta, [0.986, -2.19], rtol=1e-6)
    assert theta.dtype == vel.dtype == np.float32

    # Adam, t = 1 from zero moments: m = 0.1 g, v = 0.001 g^2, and the step is
    # lr * sqrt(0.001) / 0.1 * 0.1 |g| / (sqrt(0.001) |g| + eps) ~ lr * sign(g)
    theta = np.array([1.0, -1.0, 0.5], dtype=np.float32)
    grad = np.array([0.2, -0.4, 0.0], dtype=np.float32)
    m = np.zeros(3, np.float32)
    v = np.zeros(3, np.float32)
    _optim.adam_step(theta, grad, m, v, 0.01, 0.9, 0.999, 1e-8, 1)
    np.testing.assert_allclose(m, [0.02, -0.04, 0.0], rtol=1e-6)
    np.testing.assert_allclose(v, [4e-5, 1.6e-4, 0.0], rtol=1e-5)
    np.testing.assert_allclose(theta, [0.99, -0.99, 0.5], rtol=1e-6)
    assert theta.dtype == m.dtype == v.dtype == np.float32
