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

from skdigits._engine import _layout
from skdigits._engine._models import Accumulators, MLPModel, no_labels
from skdigits._engine._team import Team
from skdigits._kernels import _batch, _losses, _mlp, _optim, _rng

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


def ref_layout_blocks(sizes):
    """The documented layout, block by block: for each layer, its weights
    (a hidden layer: panels of 64 columns, each row-major (n_in, width); the
    output layer: row-major (n_in, ld) with ld the outputs rounded up to 16),
    then ``ld`` intercepts. Yields ``(layer, kind, c0, width, start, n)``."""
    pos = 0
    L = len(sizes) - 1
    for l in range(L):
        n_in, n_out = sizes[l], sizes[l + 1]
        if l == L - 1:
            ld = -(-n_out // 16) * 16
            yield l, "W", 0, ld, pos, n_in * ld
            pos += n_in * ld
        else:
            ld = n_out
            for c0 in range(0, n_out, 64):
                width = min(64, n_out - c0)
                yield l, "W", c0, width, pos, n_in * width
                pos += n_in * width
        yield l, "b", 0, ld, pos, ld
        pos += ld


def ref_n_params(sizes):
    return sum(n for *_, n in ref_layout_blocks(sizes))


def ref_unpack(theta, sizes):
    """Lists of float64 ``W_l`` (n_in, n_out) and ``b_l`` (copies)."""
    theta = np.asarray(theta, dtype=np.float64)
    assert theta.size == ref_n_params(sizes)
    Ws = [np.zeros((a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [np.zeros(b) for b in sizes[1:]]
    for l, kind, c0, width, start, n in ref_layout_blocks(sizes):
        n_out = sizes[l + 1]
        if kind == "b":
            bs[l] = theta[start:start + n_out].copy()
            continue
        block = theta[start:start + n].reshape(sizes[l], width)
        cols = min(width, n_out - c0)
        Ws[l][:, c0:c0 + cols] = block[:, :cols]
    return Ws, bs


def ref_pack(Ws, bs):
    sizes = [Ws[0].shape[0]] + [W.shape[1] for W in Ws]
    theta = np.zeros(ref_n_params(sizes))
    for l, kind, c0, width, start, n in ref_layout_blocks(sizes):
        n_out = sizes[l + 1]
        if kind == "b":
            theta[start:start + n_out] = bs[l]
            continue
        cols = min(width, n_out - c0)
        block = np.zeros((sizes[l], width))
        block[:, :cols] = Ws[l][:, c0:c0 + cols]
        theta[start:start + n] = block.ravel()
    return theta


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
    ``alpha * W_l`` added."""
    X = np.asarray(X, dtype=np.float64)
    Zs, Hs = ref_forward(X, Ws, bs, code)
    L = len(Ws)
    gWs, gbs = [None] * L, [None] * L
    delta = np.asarray(G, dtype=np.float64)
    for l in range(L - 1, -1, -1):
        A_in = X if l == 0 else Hs[l - 1]
        gWs[l] = A_in.T @ delta + alpha * Ws[l]
        gbs[l] = delta.sum(axis=0)
        if l > 0:
            delta = (delta @ Ws[l].T) * ref_act_prime(Zs[l - 1], code)
    return gWs, gbs


def ref_loss(Z, y, w, loss, smooth=0.0):
    """Per-row loss and the weighted (unscaled) gradient ``w_i dloss_i/dZ_i``,
    against targets smoothed by ``smooth`` (``(1 - smooth)`` times the one-hot
    labels plus ``smooth / K``, or ``smooth / 2`` for a logistic output)."""
    Z = np.asarray(Z, dtype=np.float64)
    if loss == _losses.SOFTMAX:
        k = Z.shape[1]
        T = (1 - smooth) * np.eye(k)[y] + smooth / k
        zmax = Z.max(axis=1, keepdims=True)
        logp = Z - zmax - np.log(np.exp(Z - zmax).sum(axis=1, keepdims=True))
        return -(T * logp).sum(axis=1), w[:, None] * (np.exp(logp) - T)
    assert Z.shape[1] == 1
    t = (1 - smooth) * (y == 1).astype(np.float64)[:, None] + smooth / 2
    per_row = (np.logaddexp(0.0, Z) - Z * t)[:, 0]
    return per_row, w[:, None] * (1.0 / (1.0 + np.exp(-Z)) - t)


def ref_objective_grad(X, y, w, theta, sizes, code, loss, alpha_m, smooth=0.0):
    """Minibatch objective ``sum_i w_i loss_i / m + alpha_m / 2 * sum ||W||^2``
    and its flat gradient (scikit-learn's scaling: ``alpha_m = alpha/m``)."""
    m = X.shape[0]
    Ws, bs = ref_unpack(theta, sizes)
    _, Hs = ref_forward(X, Ws, bs, code)
    per_row, G = ref_loss(Hs[-1], y, w, loss, smooth)
    gWs, gbs = ref_backward(X, Ws, bs, code, G / m, alpha_m)
    obj = (w * per_row).sum() / m + 0.5 * alpha_m * sum((W**2).sum() for W in Ws)
    return obj, ref_pack(gWs, gbs), per_row


def ref_full_loss(X, y, w, theta, sizes, code, loss):
    """Weighted mean data loss over all rows."""
    Ws, bs = ref_unpack(theta, sizes)
    per_row, _ = ref_loss(ref_forward(X, Ws, bs, code)[1][-1], y, w, loss)
    return (w * per_row).sum() / w.sum()


# ---------------------------------------------------------------- helpers


def random_net(rng, sizes, dtype=np.float64, scale=1.0):
    """theta with weights ~ N(0, scale^2 / fan_in) and intercepts ~ N(0, 0.25)."""
    Ws = [rng.normal(scale=scale / np.sqrt(a), size=(a, b))
          for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(scale=0.5, size=b) for b in sizes[1:]]
    return ref_pack(Ws, bs).astype(dtype)


def make_problem(rng, n, n_features, n_classes, dtype=np.float64, sparsity=0.0):
    X = rng.normal(size=(n, n_features))
    if sparsity:
        X *= rng.random((n, n_features)) >= sparsity
    y = rng.integers(0, n_classes, size=n).astype(np.int64)
    w = rng.uniform(0.5, 1.5, size=n).astype(dtype)
    return X.astype(dtype), y, w


def run_epoch(X, y, w, theta, sizes, code, loss, batch_size, *, order=None,
              shuffle=False, seed=0, alpha=0.0, lr0=0.1, lr1=None, solver=_optim.SGD,
              momentum=0.0, nesterov=False, beta1=0.9, beta2=0.999, eps=1e-8, t=0,
              state=None, n_classes=None, n_threads=1, smooth=0.0, mean=None,
              scale=None):
    """One ``mlp_epoch`` call (in ``n_threads`` threads) with fresh buffers, the
    order shuffled first when ``shuffle``; returns ``(t, acc, order, state)``.
    ``alpha`` follows scikit-learn's MLP: ``alpha / m`` per minibatch. With
    ``mean`` and ``scale`` the network sees ``(X - mean) / scale``."""
    model = MLPModel(sizes, code, loss, mean, scale)
    n_out = int(sizes[-1])
    n_classes = n_classes or max(n_out, 2)
    order = np.arange(X.shape[0], dtype=np.int64) if order is None else order
    if shuffle:
        _rng.shuffle(order, _rng.new_state(np.random.RandomState(seed)))
    state = state or model.new_state(theta.dtype)
    acc = Accumulators.for_batches(batch_size, n_classes, n_out)
    iopt = np.zeros(_batch.N_IOPT, dtype=np.int64)
    iopt[[_batch.I_ACTIVATION, _batch.I_LOSS, _batch.I_SOLVER, _batch.I_NESTEROV,
          _batch.I_N_OUT]] = code, loss, solver, int(nesterov), n_out
    fopt = _batch.float_options(lr0, lr1, l2_per_row=alpha, momentum=momentum,
                                beta1=beta1, beta2=beta2, eps=eps, smooth=smooth)
    ws = model.workspace(batch_size, theta.dtype)
    with Team() as team:
        t = model.run_epoch(team, n_threads, X, y, no_labels(), w, order, theta, state,
                            ws, acc,
                            iopt, fopt, t)
    assert not ws["grad"].any()  # the gradient is left at zero
    class_loss, class_weight, col_loss, stats = acc.totals()
    return t, dict(class_loss=class_loss, class_weight=class_weight,
                   col_loss=col_loss, stats=stats), order, state


def tolerances(dtype):
    return dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else \
        dict(rtol=2e-4, atol=2e-5)


# ---------------------------------------------------------------- layout


layer_sizes = st.lists(st.integers(1, 140), min_size=2, max_size=5)


@settings(max_examples=60, deadline=None)
@given(layer_sizes, st.integers(0, 2**32 - 1))
def test_layout_pack_unpack(sizes, seed):
    w_off, b_off, ld, n_params = _layout.layout(sizes)
    L = len(sizes) - 1
    assert w_off.dtype == b_off.dtype == ld.dtype == np.int64
    assert n_params == ref_n_params(sizes)
    starts = [(l, kind, c0, start) for l, kind, c0, _, start, _ in
              ref_layout_blocks(sizes)]
    for l in range(L):
        assert w_off[l] == next(s for ll, k, c0, s in starts if ll == l and k == "W"
                                and c0 == 0)
        assert b_off[l] == next(s for ll, k, _, s in starts if ll == l and k == "b")
    assert list(ld[:-1]) == list(sizes[1:-1])
    assert ld[-1] % _mlp.PAD == 0 and 0 <= ld[-1] - sizes[-1] < _mlp.PAD
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(size=(a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(size=b) for b in sizes[1:]]
    theta = _layout.pack(list(zip(Ws, bs)), np.float64)
    np.testing.assert_array_equal(theta, ref_pack(Ws, bs))
    for (W, b), W0, b0 in zip(_layout.unpack(theta, sizes), Ws, bs):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)


# ---------------------------------------------------------------- activations


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("code", ACTIVATIONS, ids=ACT_IDS)
def test_bias_activate_and_its_derivative_on_both_signs(code, dtype):
    z = np.array([[-3.0, -0.5, -1e-3, 0.0, 9.0], [1e-3, 0.5, 3.0, 40.0, 9.0]])
    b = np.array([[0.25, -0.25, 0.0, 0.0, 9.0]])
    Z = z.astype(dtype)
    _mlp.bias_activate(Z, b.astype(dtype), 2, 0, 4, code)  # the last column: left
    assert Z.dtype == dtype
    np.testing.assert_array_equal(Z[:, 4], z[:, 4])
    expected = ref_act(z.astype(dtype).astype(np.float64) + b, code)
    np.testing.assert_allclose(Z[:, :4], expected[:, :4],
                               rtol=1e-6 if dtype == np.float32 else 1e-14,
                               atol=1e-7 if dtype == np.float32 else 1e-15)
    if code == _mlp.LEAKY_RELU:  # negative inputs are scaled, not clipped
        assert Z[0, 0] == pytest.approx(_mlp.LEAKY_SLOPE * -2.75, rel=1e-6)
    # the derivative from the output f(z) equals f'(z) (no input exactly at a kink)
    zz = (z + b)[:, :4]
    keep = zz != 0.0
    H = ref_act(zz, code).astype(dtype)
    Dm = np.linspace(-2.0, 2.0, zz.size).reshape(zz.shape)
    D = Dm.astype(dtype)
    _mlp.times_derivative(D, H, 2, 0, 4, code, dtype(1.0))
    np.testing.assert_allclose(D[keep], (Dm * ref_act_prime(zz, code))[keep],
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-7)
    # dropout's scaled activations (f(z) / q): the derivative is still f'(z)
    q = dtype(0.75)
    D = Dm.astype(dtype)
    _mlp.times_derivative(D, (H / q).astype(dtype), 2, 0, 4, code, q)
    np.testing.assert_allclose(D[keep], (Dm * ref_act_prime(zz, code))[keep],
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-7)


# ---------------------------------------------------------------- forward


@pytest.mark.parametrize("code", ACTIVATIONS, ids=ACT_IDS)
@settings(max_examples=8, deadline=None)
@given(widths=st.lists(st.integers(1, 150), min_size=5, max_size=5),
       n_hidden=st.integers(1, 3), m=st.integers(1, 30),
       sparsity=st.sampled_from([0.0, 0.8]), n_threads=st.integers(1, 3),
       seed=st.integers(0, 2**32 - 1))
def test_forward_matches_numpy(code, widths, n_hidden, m, sparsity, n_threads, seed):
    rng = np.random.default_rng(seed)
    sizes = [widths[0], *widths[1:1 + n_hidden], widths[-1]]
    theta = random_net(rng, sizes)
    X, _, _ = make_problem(rng, m, sizes[0], 2, sparsity=sparsity)
    Zs, _ = ref_forward(X, *ref_unpack(theta, sizes), code)
    model = MLPModel(sizes, code, _losses.SOFTMAX)
    rows = np.arange(m, dtype=np.int64)
    with Team() as team:
        out = model.logits(team, n_threads, X, rows, theta)
        # a float32 model predicts in float64 too; rows in another order
        out32 = model.logits(team, n_threads, X, rows[::-1].copy(),
                             theta.astype(np.float32))
    np.testing.assert_allclose(out, Zs[-1], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(out32[::-1], Zs[-1], rtol=1e-5, atol=1e-5)
    # each row on its own: the same bits alone as in a block
    with Team() as team:
        for i in {0, m - 1}:
            one = model.logits(team, 1, X, np.array([i], dtype=np.int64), theta)
            np.testing.assert_array_equal(one[0], out[i])


# ---------------------------------------------------------------- epoch


@pytest.mark.parametrize("loss,n_out,n_classes", LOSSES, ids=LOSS_IDS)
@pytest.mark.parametrize("code", ACTIVATIONS, ids=ACT_IDS)
@pytest.mark.parametrize("hidden", [[5], [70, 4]], ids=["shallow", "deep"])
def test_full_batch_sgd_epoch_is_one_gradient_step(code, loss, n_out, n_classes,
                                                  hidden, rng):
    sizes = [6, *hidden, n_out]
    n, alpha, lr = 17, 0.2, 0.3
    X, y, w = make_problem(rng, n, 6, n_classes, sparsity=0.3)
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


@pytest.mark.parametrize("loss,n_out,n_classes", LOSSES, ids=LOSS_IDS)
@pytest.mark.parametrize("hidden", [[70], [70, 4]], ids=["shallow", "deep"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_standardised_smoothed_step_matches_numpy(loss, n_out, n_classes, hidden,
                                                  dtype, rng):
    """With ``mean`` and ``scale`` the kernels step the network on
    ``(X - mean) / scale``, although they read only ``X / scale`` (zeros kept)
    and centre through the first layer's intercepts and gradient; with label
    smoothing the step is that of the smoothed objective, while the per-class
    sums stay the plain cross-entropy."""
    sizes = [9, *hidden, n_out]
    n, alpha, lr, smooth = 17, 0.2, 0.3, 0.15
    X, y, w = make_problem(rng, n, 9, n_classes, dtype, sparsity=0.4)
    X += (X != 0) * dtype(2.0)  # far from centred
    mean = rng.uniform(0.5, 2.5, size=9)
    scale = rng.uniform(0.5, 3.0, size=9)
    Xs = (X.astype(np.float64) - mean) / scale
    theta = random_net(rng, sizes, dtype)
    theta0 = theta.astype(np.float64)
    w64 = w.astype(np.float64)
    _, ref_grad, objective = ref_objective_grad(Xs, y, w64, theta0, sizes, _mlp.TANH,
                                                loss, alpha / n, smooth)
    _, _, plain = ref_objective_grad(Xs, y, w64, theta0, sizes, _mlp.TANH, loss,
                                     alpha / n)
    t, acc, _, _ = run_epoch(X, y, w, theta, sizes, _mlp.TANH, loss, n, alpha=alpha,
                             lr0=lr, n_classes=n_classes, smooth=smooth, mean=mean,
                             scale=scale)
    assert t == 1
    tol = tolerances(dtype)
    np.testing.assert_allclose(theta, theta0 - lr * ref_grad, **tol)
    np.testing.assert_allclose(acc["stats"][0], (w64 * objective).sum(), **tol)
    np.testing.assert_allclose(acc["class_loss"],
                               np.bincount(y, w64 * plain, minlength=n_classes), **tol)
    assert not np.allclose(objective, plain, rtol=1e-3)  # smoothing did something


@pytest.mark.parametrize("hidden", [[70], [70, 4]], ids=["shallow", "deep"])
def test_standardisation_folds_into_the_first_layer(hidden, rng):
    """``unpack`` and ``logits`` act on the raw inputs: the same outputs as the
    network on ``(X - mean) / scale``."""
    sizes = [9, *hidden, 4]
    X, _, _ = make_problem(rng, 13, 9, 4, sparsity=0.4)
    mean = rng.uniform(-1.0, 1.0, size=9)
    scale = rng.uniform(0.5, 3.0, size=9)
    theta = random_net(rng, sizes)
    theta0 = theta.copy()
    Ws, bs = ref_unpack(theta, sizes)
    want = ref_forward((X - mean) / scale, Ws, bs, _mlp.RELU)[1][-1]
    model = MLPModel(sizes, _mlp.RELU, _losses.SOFTMAX, mean, scale)
    layers = model.unpack(theta)
    got = ref_forward(X, [W for W, _ in layers], [b for _, b in layers],
                      _mlp.RELU)[1][-1]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    with Team() as team:
        Z = model.logits(team, 2, X, np.arange(13, dtype=np.int64), theta)
    np.testing.assert_allclose(Z[:, :4], want, rtol=1e-10, atol=1e-12)
    # theta itself is untouched: the model keeps training in its own space
    np.testing.assert_array_equal(theta, theta0)


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
def test_kernel_gradient_by_finite_differences(code, loss, n_out, n_classes):
    """The gradient a full-batch SGD step applies (``(theta0 - theta1) / lr``)
    against central differences of the NumPy objective."""
    sizes = [5, 6, 4, n_out]
    m, alpha, lr = 9, 0.1, 1e-3
    theta, X, y, w = kink_free_problem(sizes, code, m, n_classes)
    stepped = theta.copy()
    run_epoch(X, y, w, stepped, sizes, code, loss, m, alpha=alpha * m, lr0=lr,
              n_classes=n_classes)
    grad = (theta - stepped) / lr

    def objective(th):
        return ref_objective_grad(X, y, w, th, sizes, code, loss, alpha)[0]

    rng = np.random.default_rng(1)
    real = np.flatnonzero(ref_pack(*[[np.ones_like(a) for a in part] for part in
                                     ref_unpack(theta, sizes)]))
    idx = np.sort(rng.choice(real, size=30, replace=False))
    eps = 1e-6
    num = np.empty(idx.size)
    for k, i in enumerate(idx):
        tp, tm = theta.copy(), theta.copy()
        tp[i] += eps
        tm[i] -= eps
        num[k] = (objective(tp) - objective(tm)) / (2 * eps)
    assert np.abs(num).max() > 1e-3  # the check is not vacuous
    np.testing.assert_allclose(grad[idx], num, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("hidden", [[6], [67, 5]], ids=["shallow", "deep"])
def test_minibatch_sgd_epoch_matches_numpy(hidden, nesterov, rng):
    """Batches in order, the last one shorter (its L2 term uses its own size),
    momentum carried across batches and the linear learning-rate schedule."""
    sizes = [4, *hidden, 3]
    code = _mlp.TANH
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


def test_minibatch_adam_epoch_matches_numpy(rng):
    sizes = [5, 9, 3]
    code = _mlp.RELU
    n, bs, alpha, lr, b1, b2, eps = 23, 8, 0.05, 0.01, 0.9, 0.99, 1e-7
    X, y, w = make_problem(rng, n, 5, 3)
    theta = random_net(rng, sizes)
    ref, m, v = theta.copy(), np.zeros_like(theta), np.zeros_like(theta)
    for k in range(3):
        rows = np.arange(k * bs, min(n, (k + 1) * bs))
        _, g, _ = ref_objective_grad(X[rows], y[rows], w[rows], ref, sizes, code,
                                     _losses.SOFTMAX, alpha / rows.size)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        step = lr * math.sqrt(1 - b2 ** (k + 1)) / (1 - b1 ** (k + 1))
        ref = ref - step * m / (np.sqrt(v) + eps)
    t, _, _, (s1, s2) = run_epoch(X, y, w, theta, sizes, code, _losses.SOFTMAX, bs,
                                  alpha=alpha, lr0=lr, solver=_optim.ADAM, beta1=b1,
                                  beta2=b2, eps=eps)
    assert t == 3
    np.testing.assert_allclose(theta, ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(s1, m, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(s2, v, rtol=1e-10, atol=1e-16)


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
    w64 = w.astype(np.float64)
    np.testing.assert_allclose(acc["class_weight"], np.bincount(y, w64, minlength=3),
                               rtol=1e-12)
    np.testing.assert_allclose(acc["stats"][1], w64.sum(), rtol=1e-12)
    assert np.all(np.isfinite(theta))


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
    # the same bits as training on the listed rows alone
    sub = theta0.copy()
    run_epoch(np.ascontiguousarray(X[order]), y[order], w[order], sub, sizes, _mlp.RELU,
              _losses.SOFTMAX, batch_size, alpha=0.1)
    np.testing.assert_array_equal(theta, sub)


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


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("hidden", [[200], [130, 70], [3]],
                         ids=["wide", "deep", "tiny"])
def test_any_thread_count_gives_the_same_bits(hidden, dtype, rng):
    """The team splits the work into items whose results do not depend on
    who runs them: 1 to 4 threads give bit-identical models."""
    sizes = [50, *hidden, 7]
    n = 300
    X, y, w = make_problem(rng, n, 50, 7, dtype, sparsity=0.6)
    theta0 = random_net(rng, sizes, dtype)
    results = []
    for n_threads in (1, 2, 3, 4):
        theta = theta0.copy()
        t, acc, _, state = run_epoch(X, y, w, theta, sizes, _mlp.RELU,
                                     _losses.SOFTMAX, 32, alpha=1e-3, lr0=0.01,
                                     solver=_optim.ADAM, shuffle=True, seed=5,
                                     n_threads=n_threads)
        results.append((theta, state[0], state[1], acc["stats"].copy()))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


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
    state = None
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
    """The raw Python functions behind the kernels compute what the compiled
    ones do (they are what coverage and benchmarks use)."""
    sizes = np.array([5, 6, 3], dtype=np.int64)
    Z = rng.normal(size=(4, 6))
    b = rng.normal(size=(1, 6))
    for fn in (_mlp.bias_activate, _mlp._bias_activate_py):
        out = Z.copy()
        fn(out, b, 4, 1, 5, _mlp.TANH)
        np.testing.assert_allclose(out[:, 1:5], np.tanh(Z + b)[:, 1:5], rtol=1e-12)
    w_off, b_off, ld, n_params = _layout.layout(sizes)
    theta = np.arange(n_params, dtype=np.float64)
    for fn in (_mlp.panel, _mlp._panel_py):
        P, c0 = fn(theta, sizes, w_off, 0, 0)
        assert c0 == 0 and P.shape == (5, 6)
        np.testing.assert_array_equal(P.ravel(), np.arange(30))


# ---------------------------------------------------------------- optimizers


finite = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False)
vectors = st.lists(st.tuples(finite, finite, finite, st.floats(0.0, 2.0)),
                   min_size=1, max_size=20)


def _block(values, dtype=np.float32):
    return np.array(values, dtype=dtype).reshape(1, -1)


@settings(max_examples=40, deadline=None)
@given(vectors, st.floats(1e-4, 0.5), st.floats(0.0, 0.99), st.booleans(),
       st.sampled_from([0.0, 0.1]))
def test_sgd_block_float32_by_hand(rows, lr, mu, nesterov, l2):
    theta = _block([r[0] for r in rows])
    grad = _block([r[1] for r in rows])
    vel = _block([r[2] for r in rows])
    exp_theta, exp_vel = [], []
    for th, g, v in zip(theta[0].tolist(), grad[0].tolist(), vel[0].tolist()):
        g = g + l2 * th
        v_new = mu * v - lr * g
        exp_vel.append(v_new)
        exp_theta.append(th + (mu * v_new - lr * g if nesterov else v_new))
    _optim.step_block(_optim.SGD, theta, grad, vel, vel.copy(), 0, 1, 0, len(rows),
                      l2, lr, mu, nesterov, 0.9, 0.999, 1e-8, 1)
    assert theta.dtype == vel.dtype == np.float32
    np.testing.assert_allclose(vel[0], exp_vel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(theta[0], exp_theta, rtol=1e-5, atol=1e-6)
    assert not grad.any()  # used, then zeroed


@settings(max_examples=40, deadline=None)
@given(vectors, st.floats(1e-4, 0.1), st.sampled_from([0.0, 0.5, 0.9]),
       st.sampled_from([0.9, 0.999]), st.sampled_from([1e-8, 1e-3]),
       st.integers(1, 50))
def test_adam_block_float32_by_hand(rows, lr, beta1, beta2, eps, t):
    theta = _block([r[0] for r in rows])
    grad = _block([r[1] for r in rows])
    m = _block([r[2] for r in rows])
    v = _block([r[3] for r in rows])
    lr_t = lr * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
    exp_theta, exp_m, exp_v = [], [], []
    for th, g, mi, vi in zip(theta[0].tolist(), grad[0].tolist(), m[0].tolist(),
                             v[0].tolist()):
        mi = beta1 * mi + (1.0 - beta1) * g
        vi = beta2 * vi + (1.0 - beta2) * g * g
        exp_m.append(mi)
        exp_v.append(vi)
        exp_theta.append(th - lr_t * mi / (math.sqrt(vi) + eps))
    _optim.step_block(_optim.ADAM, theta, grad, m, v, 0, 1, 0, len(rows), 0.0, lr,
                      0.0, False, beta1, beta2, eps, t)
    assert theta.dtype == m.dtype == v.dtype == np.float32
    np.testing.assert_allclose(m[0], exp_m, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v[0], exp_v, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(theta[0], exp_theta, rtol=1e-5, atol=1e-5)


def test_optimizer_steps_by_hand_fixed_values():
    """Hand-computed numbers (no formula shared with the kernels' code)."""
    def sgd(nesterov):
        theta = _block([1.0, -2.0])
        vel = _block([0.1, 0.0])
        _optim.step_block(_optim.SGD, theta, _block([0.5, 1.0]), vel, vel.copy(), 0,
                          1, 0, 2, 0.0, 0.1, 0.9, nesterov, 0.9, 0.999, 1e-8, 1)
        return theta[0], vel[0]

    theta, vel = sgd(False)
    # v = 0.9 v - 0.1 g = [0.09 - 0.05, -0.1]; theta += v
    np.testing.assert_allclose(vel, [0.04, -0.1], rtol=1e-6)
    np.testing.assert_allclose(theta, [1.04, -2.1], rtol=1e-6)
    theta, _ = sgd(True)
    # Nesterov: theta += 0.9 v_new - 0.1 g = [0.036 - 0.05, -0.09 - 0.1]
    np.testing.assert_allclose(theta, [0.986, -2.19], rtol=1e-6)

    # Adam, t = 1 from zero moments: m = 0.1 g, v = 0.001 g^2, and the step is
    # lr * sqrt(0.001) / 0.1 * 0.1 |g| / (sqrt(0.001) |g| + eps) ~ lr * sign(g)
    theta = _block([1.0, -1.0, 0.5])
    m = np.zeros((1, 3), np.float32)
    v = np.zeros((1, 3), np.float32)
    _optim.step_block(_optim.ADAM, theta, _block([0.2, -0.4, 0.0]), m, v, 0, 1, 0, 3,
                      0.0, 0.01, 0.0, False, 0.9, 0.999, 1e-8, 1)
    np.testing.assert_allclose(m[0], [0.02, -0.04, 0.0], rtol=1e-6)
    np.testing.assert_allclose(v[0], [4e-5, 1.6e-4, 0.0], rtol=1e-5)
    np.testing.assert_allclose(theta[0], [0.99, -0.99, 0.5], rtol=1e-6)

    # a block: only rows 1..2, columns 1..3 of a 3 x 4 array move; L2 added
    P = np.ones((3, 4))
    G = np.full((3, 4), 0.5)
    V = np.zeros((3, 4))
    _optim.step_block(_optim.SGD, P, G, V, V.copy(), 1, 3, 1, 3, 1.0, 0.1, 0.0,
                      False, 0.9, 0.999, 1e-8, 1)
    expected = np.ones((3, 4))
    expected[1:3, 1:3] = 1.0 - 0.1 * (0.5 + 1.0)
    np.testing.assert_allclose(P, expected, rtol=1e-12)
    assert (G[1:3, 1:3] == 0).all() and (G[0] == 0.5).all() and (G[:, 0] == 0.5).all()
