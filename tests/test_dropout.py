"""Dropout on MLPClassifier (issue 23, item 1): the mask generator against a
plain-Python reference and its keep rate, one dropout step of the kernels
against NumPy in float64, and what the estimator promises (the bits do not
depend on the threads, the minibatches or dense against sparse input;
prediction and validation never drop; partial_fit and warm starts continue
the masks' stream; lbfgs refuses it)."""

import copy

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_classification
from sklearn.utils._param_validation import InvalidParameterError

from skdigits import MLPClassifier, SoftmaxRegression
from skdigits._engine import _layout
from skdigits._engine._models import Accumulators, MLPModel, no_labels
from skdigits._engine._team import Team
from skdigits._kernels import _batch, _losses, _mlp, _optim, _rng

# ------------------------------------------------------ the mask generator

_M64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def ref_mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def ref_key_word(key, word):
    return ref_mix64((key + (word + 1) * _GOLDEN) & _M64)


def ref_uniform(seed, epoch, row, unit):
    """The uniform of hidden unit ``unit`` (across layers) of data row
    ``row`` in epoch ``epoch``, in plain Python integers."""
    key = ref_key_word(ref_key_word(ref_key_word(seed, epoch), row), unit)
    return (key >> 11) / 2.0**53


def ref_keep(seed, epoch, rows, unit0, n_units, p):
    """Keep mask ``(len(rows), n_units)`` of units ``unit0 ..``."""
    return np.array([[ref_uniform(seed, epoch, int(r), int(unit0) + j) >= p
                      for j in range(n_units)] for r in rows])


def kernel_drop(Z, rows, unit0, c0, c1, seed, epoch, p):
    """``_mlp.drop`` on ``Z`` in place (all its rows)."""
    iopt = np.zeros(_batch.N_IOPT, dtype=np.int64)
    iopt[[_batch.I_SEED, _batch.I_EPOCH]] = seed, epoch
    fopt = _batch.float_options(0.0, dropout=p)
    _mlp.drop(Z, np.int64(Z.shape[0]), np.int64(c0), np.int64(c1),
              np.asarray(rows, dtype=np.int64), np.int64(unit0), iopt, fopt)


seeds = st.integers(0, 2**63 - 1)


@settings(max_examples=30, deadline=None)
@given(seed=seeds, epoch=st.integers(0, 10**6), row=st.integers(0, 2**40),
       unit=st.integers(0, 10**6))
def test_key_chain_matches_plain_python(seed, epoch, row, unit):
    # from Python the compiled functions return ints: typed back as uint64
    key = np.uint64(_rng.key_word(np.uint64(seed), np.int64(epoch)))
    key = np.uint64(_rng.key_word(key, np.int64(row)))
    key = np.uint64(_rng.key_word(key, np.int64(unit)))
    u = int(key >> np.uint64(11)) * _rng.UNIFORM_SCALE
    assert u == ref_uniform(seed, epoch, row, unit)
    assert 0.0 <= u < 1.0


@settings(max_examples=25, deadline=None)
@given(seed=seeds, epoch=st.integers(0, 1000), p=st.floats(0.02, 0.98),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_drop_keeps_about_one_minus_p(seed, epoch, p, dtype):
    """Over 120 rows by 70 units, the kept share is within 5 binomial
    standard deviations of ``1 - p``; kept values are scaled by ``1 / (1 -
    p)`` in the array's dtype, dropped ones are zero, and the mask is the
    plain-Python reference's."""
    rows = np.arange(1000, 1120) * 7  # rows of the data, not positions
    Z = np.ones((len(rows), 70), dtype=dtype)
    kernel_drop(Z, rows, 5, 0, 70, seed, epoch, p)
    keep = ref_keep(seed, epoch, rows, 5, 70, p)
    np.testing.assert_array_equal(Z != 0, keep)
    np.testing.assert_array_equal(Z[keep], dtype(1.0 / (1.0 - p)))
    n = keep.size
    assert abs(keep.mean() - (1 - p)) <= 5 * np.sqrt(p * (1 - p) / n) + 1 / n


def test_masks_depend_on_each_key_word_and_nothing_else():
    """The mask of one (seed, epoch, row, unit) is the same whatever the
    rows around it or the columns asked for (a panel starting elsewhere);
    another seed, epoch or row gives another mask."""
    p = 0.5
    rows = np.arange(40)
    full = np.ones((40, 130))
    kernel_drop(full, rows, 0, 0, 130, 3, 2, p)
    part = np.ones((5, 130))
    kernel_drop(part, rows[[7, 3, 30, 31, 0]], 0, 64, 130, 3, 2, p)
    np.testing.assert_array_equal(part[:, 64:], full[[7, 3, 30, 31, 0], 64:])
    np.testing.assert_array_equal(part[:, :64], 1.0)  # columns not asked for
    for seed, epoch, offset in ((4, 2, 0), (3, 3, 0), (3, 2, 40)):
        other = np.ones((40, 130))
        kernel_drop(other, rows + offset, 0, 0, 130, seed, epoch, p)
        assert 0.3 < np.mean((other != 0) != (full != 0)) < 0.7


# ------------------------------------------- one step against NumPy float64


def ref_act(z, code):
    if code == _mlp.RELU:
        return np.maximum(z, 0.0)
    if code == _mlp.LEAKY_RELU:
        return np.where(z > 0, z, _mlp.LEAKY_SLOPE * z)
    if code == _mlp.TANH:
        return np.tanh(z)
    return 1.0 / (1.0 + np.exp(-z))


def ref_act_prime(z, code):
    if code == _mlp.RELU:
        return (z > 0).astype(np.float64)
    if code == _mlp.LEAKY_RELU:
        return np.where(z > 0, 1.0, _mlp.LEAKY_SLOPE)
    if code == _mlp.TANH:
        return 1.0 / np.cosh(z) ** 2
    s = 1.0 / (1.0 + np.exp(-z))
    return s * (1.0 - s)


def ref_loss(Z, y, w, loss):
    """Per-row loss and ``w_i dloss_i / dZ_i``."""
    if loss == _losses.SOFTMAX:
        T = np.eye(Z.shape[1])[y]
        logp = Z - Z.max(axis=1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
        return -(T * logp).sum(axis=1), w[:, None] * (np.exp(logp) - T)
    t = (y == 1).astype(np.float64)[:, None]
    return ((np.logaddexp(0.0, Z) - Z * t)[:, 0],
            w[:, None] * (1.0 / (1.0 + np.exp(-Z)) - t))


def ref_dropout_step(X, y, w, weights, code, loss, masks, p, alpha):
    """The gradient of the minibatch objective of one dropout step (every
    row in one minibatch; ``masks[l]``: the keep mask of hidden layer ``l``,
    one row per row of ``X``), and the per-row loss."""
    m = X.shape[0]
    A, Zs, As = X, [], [X]
    for l, (W, b) in enumerate(weights):
        Z = A @ W + b
        Zs.append(Z)
        if l < len(weights) - 1:
            A = ref_act(Z, code) * masks[l] / (1.0 - p)
            As.append(A)
    per_row, G = ref_loss(Zs[-1], y, w, loss)
    delta = G / m
    grads = [None] * len(weights)
    for l in range(len(weights) - 1, -1, -1):
        W = weights[l][0]
        grads[l] = (As[l].T @ delta + alpha / m * W, delta.sum(axis=0))
        if l > 0:
            delta = ((delta @ W.T) * masks[l - 1] / (1.0 - p)
                     * ref_act_prime(Zs[l - 1], code))
    return grads, per_row


def kernel_epoch(X, y, w, theta, sizes, code, loss, batch, order, *, p, seed, epoch,
                 lr, alpha=0.0, n_threads=1):
    """One ``mlp_epoch`` (plain SGD, no shuffle) with dropout; returns the
    accumulated (loss sum, weight sum)."""
    model = MLPModel(np.array(sizes, dtype=np.int64), code, loss, None, None)
    acc = Accumulators.for_batches(batch, max(sizes[-1], 2), sizes[-1])
    iopt = np.zeros(_batch.N_IOPT, dtype=np.int64)
    iopt[[_batch.I_ACTIVATION, _batch.I_LOSS, _batch.I_SOLVER, _batch.I_N_OUT,
          _batch.I_SEED, _batch.I_EPOCH]] = (code, loss, _optim.SGD, sizes[-1], seed,
                                             epoch)
    fopt = _batch.float_options(lr, l2_per_row=alpha, dropout=p)
    ws = model.workspace(batch, theta.dtype)
    with Team() as team:
        model.run_epoch(team, n_threads, X, y, no_labels(), w, order, theta,
                        model.new_state(theta.dtype), ws, acc, iopt, fopt, 0)
    return acc.totals().stats[:2]


CODES = [_mlp.RELU, _mlp.TANH, _mlp.LOGISTIC, _mlp.LEAKY_RELU]


@pytest.mark.parametrize("loss,n_out,n_classes",
                         [(_losses.SOFTMAX, 4, 4), (_losses.LOGISTIC, 1, 2)],
                         ids=["softmax", "binary"])
@pytest.mark.parametrize("code", CODES, ids=["relu", "tanh", "logistic", "leaky"])
@pytest.mark.parametrize("hidden", [[70], [70, 5]], ids=["shallow", "deep"])
def test_dropout_step_matches_numpy(hidden, code, loss, n_out, n_classes):
    """A full-batch SGD step with dropout is the NumPy float64 step with
    the reference masks of each row of the data (the rows visited in a
    shuffled order, so that a row's place in the minibatch is not its
    index), the units numbered across the hidden layers."""
    rng = np.random.default_rng(len(hidden) * 10 + code)
    sizes = [6, *hidden, n_out]
    n, p, seed, epoch, lr, alpha = 19, 0.3, 2**62 + 12345, 7, 0.3, 0.2
    X = rng.normal(size=(n, 6))
    y = rng.integers(0, n_classes, size=n)
    w = rng.uniform(0.5, 1.5, size=n)
    weights = [(rng.normal(scale=1 / np.sqrt(a), size=(a, b)),
                rng.normal(scale=0.5, size=b))
               for a, b in zip(sizes[:-1], sizes[1:])]
    theta = _layout.pack(weights, np.float64)
    order = rng.permutation(n).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(hidden)])
    masks = [ref_keep(seed, epoch, np.arange(n), offsets[l], h, p)
             for l, h in enumerate(hidden)]
    assert 0 < np.mean(masks[0]) < 1
    grads, per_row = ref_dropout_step(X, y, w, weights, code, loss, masks, p, alpha)
    stats = kernel_epoch(X, y, w, theta, sizes, code, loss, n, order, p=p, seed=seed,
                         epoch=epoch, lr=lr, alpha=alpha)
    expected = _layout.pack([(W - lr * gW, b - lr * gb)
                             for (W, b), (gW, gb) in zip(weights, grads)], np.float64)
    np.testing.assert_allclose(theta, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(stats, [(w * per_row).sum(), w.sum()], rtol=1e-10)


@pytest.mark.parametrize("hidden", [[70], [70, 5]], ids=["shallow", "deep"])
def test_masks_do_not_depend_on_the_minibatches_or_threads(hidden):
    """With a zero learning rate the weights stay, so an epoch's loss is the
    sum of each row's loss under its masks: the same for any batch size and
    thread count (in the order of the sums only), and with dropout not the
    loss without it."""
    rng = np.random.default_rng(1)
    sizes = [6, *hidden, 4]
    n = 37
    X = rng.normal(size=(n, 6))
    y = rng.integers(0, 4, size=n)
    w = np.ones(n)
    theta = _layout.pack([(rng.normal(size=(a, b)), rng.normal(size=b))
                          for a, b in zip(sizes[:-1], sizes[1:])], np.float64)
    order = rng.permutation(n).astype(np.int64)
    kw = dict(seed=99, epoch=3, lr=0.0)
    ref = kernel_epoch(X, y, w, theta.copy(), sizes, _mlp.TANH, _losses.SOFTMAX, n,
                       order, p=0.4, **kw)
    for batch, n_threads in ((1, 1), (5, 2), (16, 3), (n, 2)):
        got = kernel_epoch(X, y, w, theta.copy(), sizes, _mlp.TANH, _losses.SOFTMAX,
                           batch, order, p=0.4, n_threads=n_threads, **kw)
        np.testing.assert_allclose(got, ref, rtol=1e-12)
    plain = kernel_epoch(X, y, w, theta.copy(), sizes, _mlp.TANH, _losses.SOFTMAX, n,
                         order, p=0.0, **kw)
    assert abs(plain[0] - ref[0]) > 1e-6 * abs(ref[0])


# ----------------------------------------------------------- the estimator


@pytest.fixture(scope="module")
def problem():
    X, y = make_classification(n_samples=300, n_features=12, n_informative=8,
                               n_classes=3, random_state=0)
    X[np.abs(X) < 0.5] = 0.0  # zeros for the sparse path to skip
    return X, y


def _same_model(a, b):
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(u, v)
    assert a.loss_curve_ == b.loss_curve_


@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("hidden", [(70,), (70, 9)], ids=["shallow", "deep"])
def test_same_bits_for_any_n_jobs_and_dense_or_sparse(problem, solver, hidden):
    X, y = problem
    # float32, the default (float64 dense and CSR fits differ in the last
    # bits with standardize=True, with or without dropout)
    kw = dict(hidden_layer_sizes=hidden, solver=solver, dropout=0.3, max_iter=3,
              batch_size=32, random_state=0, standardize=True)
    ref = MLPClassifier(n_jobs=1, **kw).fit(X, y)
    _same_model(ref, MLPClassifier(n_jobs=2, **kw).fit(X, y))
    _same_model(ref, MLPClassifier(n_jobs=2, **kw).fit(sp.csr_matrix(X), y))
    plain = MLPClassifier(n_jobs=1, **{**kw, "dropout": 0.0}).fit(X, y)
    assert plain.loss_curve_ != ref.loss_curve_


def test_predict_never_drops(problem):
    """predict_proba is the dropout-free forward pass of the weights,
    bit-identical from call to call; predict is its argmax."""
    X, y = problem
    clf = MLPClassifier((40, 20), dropout=0.5, max_iter=3, random_state=0,
                        dtype="float64").fit(X, y)
    proba = clf.predict_proba(X)
    np.testing.assert_array_equal(proba, clf.predict_proba(X))
    logits = _layout.forward_numpy(X, list(zip(clf.coefs_, clf.intercepts_)),
                                   _mlp.RELU)
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(proba, expected, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])


def test_validation_figures_never_drop(problem, monkeypatch):
    """The validation loss recorded each epoch is the plain cross-entropy of
    predict_proba on the validation split, with that epoch's weights."""
    X, y = problem
    split = {}
    original = MLPClassifier._split_validation

    def spy(self, *args):
        split["train"], split["val"] = original(self, *args)
        return split["train"], split["val"]

    monkeypatch.setattr(MLPClassifier, "_split_validation", spy)
    seen = []

    def callback(est, info):
        proba = est.predict_proba(X[split["val"]])
        index = np.searchsorted(est.classes_, y[split["val"]])
        plain = -np.mean(np.log(proba[np.arange(len(index)), index]))
        seen.append((info["val_loss"], plain))

    MLPClassifier((30,), dropout=0.5, max_iter=4, early_stopping=True,
                  n_iter_no_change=10, random_state=0, dtype="float64",
                  callbacks=callback).fit(X, y)
    assert len(seen) == 4
    for recorded, plain in seen:
        assert recorded == pytest.approx(plain, rel=1e-9)


def _spy_keys(monkeypatch):
    """Record (seed, epoch, dropout) of every MLP epoch the engine runs."""
    keys = []
    original = MLPModel.run_epoch

    def spy(self, team, n_threads, X, y, Y, w, order, theta, state, ws, acc, iopt,
            fopt, t):
        keys.append((int(iopt[_batch.I_SEED]), int(iopt[_batch.I_EPOCH]),
                     float(fopt[_batch.F_DROPOUT])))
        return original(self, team, n_threads, X, y, Y, w, order, theta, state, ws,
                        acc, iopt, fopt, t)

    monkeypatch.setattr(MLPModel, "run_epoch", spy)
    return keys


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_partial_fit_and_warm_start_continue_the_stream(problem, monkeypatch):
    """Every epoch of a model gets its own masks: the seed drawn by the
    first call stays, the epoch counts the epochs of every call (so a
    partial_fit or a warm start never repeats an earlier epoch's masks), and
    a new fit starts again from its random_state."""
    X, y = problem
    keys = _spy_keys(monkeypatch)
    clf = MLPClassifier((20,), dropout=0.2, random_state=0, max_iter=2)
    for _ in range(3):
        clf.partial_fit(X, y, classes=np.unique(y))
    seed = keys[0][0]
    assert keys == [(seed, 0, 0.2), (seed, 1, 0.2), (seed, 2, 0.2)]
    keys.clear()
    clf.set_params(warm_start=True, learning_rate="constant").fit(X, y)
    assert keys == [(seed, 3, 0.2), (seed, 4, 0.2)]
    keys.clear()
    clf.set_params(warm_start=False).fit(X, y)
    assert keys == [(seed, 0, 0.2), (seed, 1, 0.2)]  # the same random_state
    keys.clear()
    MLPClassifier((20,), dropout=0.2, random_state=1, max_iter=1).fit(X, y)
    assert keys[0][0] != seed
    keys.clear()
    MLPClassifier((20,), random_state=0, max_iter=1).fit(X, y)
    assert keys == [(0, 0, 0.0)]  # without dropout: no key


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_a_second_partial_fit_draws_new_masks(problem, dropout):
    """The second partial_fit call trains with the masks of epoch 1: a copy
    told it is at epoch 0 again (nothing else changes with a constant rate)
    gets other bits with dropout, and the same without."""
    X, y = problem
    clf = MLPClassifier((20, 7), dropout=dropout, learning_rate="constant",
                        random_state=3, batch_size=50)
    clf.partial_fit(X, y, classes=np.unique(y))
    rewound = copy.deepcopy(clf)
    rewound._n_epochs_total = 0
    clf.partial_fit(X, y)
    rewound.partial_fit(X, y)
    same = all(np.array_equal(u, v) for u, v in zip(clf.coefs_, rewound.coefs_))
    assert same == (dropout == 0.0)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_lbfgs_refuses_dropout(problem):
    X, y = problem
    clf = MLPClassifier((10,), solver="lbfgs", dropout=0.1)
    with pytest.raises(ValueError, match="dropout=0.1 needs a minibatch solver") as err:
        clf.fit(X, y)
    assert "\n" not in str(err.value)
    MLPClassifier((10,), solver="lbfgs", dropout=0.0, max_iter=5).fit(X, y)


@pytest.mark.parametrize("value", [1.0, -0.1, 1.5, "0.1", None])
def test_dropout_is_a_float_in_0_1(problem, value):
    X, y = problem
    with pytest.raises(InvalidParameterError, match="dropout"):
        MLPClassifier(dropout=value).fit(X, y)


def test_dropout_is_mlp_only():
    assert MLPClassifier().dropout == 0.0
    assert "dropout" not in SoftmaxRegression().get_params()
