"""What the training loop needs to know about a model, kept apart from the
estimators: the parameter layout, its initialisation, the buffers of a fit,
one epoch, and the forward pass.

A model object holds plain values (sizes, codes) and is rebuilt from the
estimator's parameters and fitted arrays whenever needed, so an estimator
never stores it. The kernels behind it (``_kernels._linear``,
``_kernels._mlp``) know nothing of estimators; another implementation of the
same methods (a GPU one, say) could take their place.

Data comes as a C-ordered ndarray, or as a ``scipy.sparse`` CSR matrix or
array in canonical form (sorted indices, no duplicates; ``data`` float32 or
float64, whatever the model's dtype; ``indices`` and ``indptr`` int32 or
int64), of which a fit makes one copy of the stored entries in the kernels'
types (``KernelData``; see ``_kernels._sparse``): it never allocates
anything of size rows x features or batch x features.
The buffers of a fit come from ``workspace(..., sparse=True)`` for sparse
data, and ``fit_bytes(..., sparse=True)`` counts them.
"""

import numpy as np
from scipy import sparse as sp

from .._kernels import _linear, _mlp
from .._kernels._batch import LOSS_ROWS
from .._kernels._boundary import (
    Data,
    ForwardWork,
    Layout,
    LinearForwardWork,
    LinearWork,
    MLPWork,
    Net,
    Options,
    Params,
    Rows,
    Sums,
)
from .._kernels._losses import (
    LOGISTIC,
    N_STATS,
    STAT_CORRECT,
    STAT_LOSS,
    STAT_WEIGHT,
)
from .._kernels._simd import TILE_ROWS
from .._validation import canonical_row_blocks
from . import _layout

__all__ = ["LinearModel", "MLPModel", "PREDICT_BLOCK", "no_labels"]


def no_labels():
    """The empty multi-label matrix: single-label targets (see ``_losses``)."""
    return np.zeros((0, 0), dtype=np.uint8)

#: Rows per work item when predicting.
PREDICT_BLOCK = 256


def predict_blocks(n_rows):
    """Work items of a prediction of ``n_rows`` rows: the most threads it can
    keep busy."""
    return max(1, -(-n_rows // PREDICT_BLOCK))


def _block_rows(n_rows):
    """Rows per work item for ``n_rows`` rows: ``PREDICT_BLOCK``, or fewer
    when there are fewer rows (their buffers then hold those rows only). The
    work items then start at the same rows as with whole blocks, and a row's
    logits depend on that row alone anyway."""
    return max(1, min(PREDICT_BLOCK, n_rows))


#: Multiply-adds of a minibatch that make one more thread worth its
#: synchronisation (a few hundred microseconds of work per thread and phase).
MIN_WORK = 1_000_000

#: Index lists of dense inputs: ``0, 1, 2, ...`` (grown on demand).
_DENSE = {"list": np.arange(1024, dtype=np.int32)[None, :]}


def _dense(n):
    """The dense list (at least ``n`` long) and its count."""
    dense = _DENSE["list"]
    if dense.shape[1] < n:
        dense = np.arange(max(n, 2 * dense.shape[1]), dtype=np.int32)[None, :]
        _DENSE["list"] = dense
    return dense, np.array([dense.shape[1]], dtype=np.int64)


def readonly(a):
    """A read-only view of ``a``: the kernels take every input array
    read-only, so writeable and read-only input (a loaded model, a memory
    map) compile one specialisation, not two."""
    view = a.view()
    view.flags.writeable = False
    return view


def _writeable(theta):
    """``theta``, or a copy when it is read-only (a loaded model's): the
    forward kernels take the parameters writeable, one type."""
    return theta if theta.flags.writeable else theta.copy()


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _float_rows(X):
    """``X`` as a C-ordered float32 or float64 array (a float64 copy of any
    other dtype or order)."""
    if X.dtype in _FLOATS and X.flags.c_contiguous and X.flags.aligned:
        return X
    return np.ascontiguousarray(X, dtype=X.dtype if X.dtype in _FLOATS else np.float64)


#: Stored values scaled per step by ``_scaled_values`` (bounds its
#: temporaries to a few MB whatever the matrix).
SCALE_CHUNK = 1 << 18


def _scaled_values(data, indices, scale, dtype):
    """The stored values ``data`` of a CSR matrix times ``scale`` of their
    columns ``indices``, in ``dtype``: each factor in ``dtype`` (as the
    kernels take it), each product in float64 (exact for float32 values and
    factors, the kernels' own for float64 ones), rounded once."""
    factors = np.asarray(scale).astype(dtype).astype(np.float64)
    values = np.empty(data.shape[0], dtype=dtype)
    for i in range(0, values.shape[0], SCALE_CHUNK):
        j = i + SCALE_CHUNK
        values[i:j] = data[i:j].astype(np.float64) * factors[indices[i:j]]
    return values


class KernelData:
    """The data of a fit as the epoch kernels take it, in one type per model
    dtype and kind of data, so that each entry point compiles once per
    (model dtype, dense or CSR, depth) whatever the input's dtypes, order or
    writeability (issue 20, item 2). Made once per fit (by ``of``), since
    a CSR matrix's entries are copied.

    - ``dtype``: the model's dtype it was made for;
    - ``X``: dense rows in the model's dtype (read in place), or an empty
      ``(0, n_features)`` array when they are in the other float dtype;
    - ``Xalt``: those rows (the kernels copy and cast each minibatch, one
      rounding as before), or an empty array of the other dtype;
    - ``csr``: ``(indptr, indices, data)`` of CSR data as int64, int32 and
      the model's dtype, or three Nones for dense data (see
      ``_kernels._mlp``: a None compiles no sparse code). Each stored value
      is what the kernels computed from it when they read any float dtype:
      ``value * scale[column]`` (``scale``: the standardisation's factors,
      rounded to the model's dtype; the product in the wider dtype),
      rounded once to the model's dtype; the kernels then read it unscaled. A
      float32 model so reads 8 bytes per stored value, not 16 (float64 data and
      int64 indices made its CSR epoch about 20 % slower). Column indices
      fit int32: a first layer of 2^31 columns would not fit in memory;
    - ``w``: the sample weights in float64 (exact; the kernels cast them to
      the model's dtype as before).

    Every array is read-only.
    """

    def __init__(self, X, w, dtype, scale=None):
        dtype = np.dtype(dtype)
        other = _FLOATS[1] if dtype == _FLOATS[0] else _FLOATS[0]
        n_features = X.shape[1]
        self.source = (X, w, scale)
        self.dtype = dtype
        if sp.issparse(X):
            if X.format != "csr":
                raise TypeError(f"sparse data must be CSR, not {X.format.upper()}")
            if n_features > np.iinfo(np.int32).max:
                raise ValueError(f"sparse data with {n_features} columns: at most "
                                 f"{np.iinfo(np.int32).max} are supported")
            self.X = readonly(np.zeros((0, n_features), dtype=dtype))
            self.Xalt = readonly(np.zeros((0, n_features), dtype=other))
            # the stored entries the rows hold (scipy may keep room past them)
            nnz = int(X.indptr[-1])
            indices = X.indices[:nnz]
            # a value beyond float32's range becomes inf, as the kernels made
            # it; the fit then stops as diverged, without NumPy's warning
            with np.errstate(over="ignore"):
                if scale is not None and len(scale):
                    values = _scaled_values(X.data[:nnz], indices, scale, dtype)
                else:
                    values = np.ascontiguousarray(X.data[:nnz], dtype=dtype)
            self.csr = (readonly(np.ascontiguousarray(X.indptr, dtype=np.int64)),
                        readonly(np.ascontiguousarray(indices, dtype=np.int32)),
                        readonly(values))
        else:
            rows = _float_rows(X)
            empty = np.zeros((0, n_features), dtype=dtype)
            if rows.dtype == dtype:
                self.X, self.Xalt = readonly(rows), readonly(empty.astype(other))
            else:
                self.X, self.Xalt = readonly(empty), readonly(rows)
            self.csr = (None, None, None)
        self.w = readonly(np.ascontiguousarray(w, dtype=np.float64))

    @classmethod
    def of(cls, ws, X, w, dtype, scale=None):
        """The kernel data of ``X``, ``w`` (and CSR data's ``scale``) for
        workspace ``ws`` and model dtype ``dtype``: the workspace's when an
        earlier call made it of these very objects for this dtype, else a
        new one."""
        data = ws.get("data")
        if (data is None or any(a is not b for a, b in zip(data.source, (X, w, scale)))
                or data.dtype != np.dtype(dtype)):
            data = ws["data"] = cls(X, w, dtype, scale)
        return data

    def direct(self):
        """Whether the kernels can read the minibatches in place: CSR data,
        or dense rows already in the model's dtype."""
        return self.csr[0] is not None or self.X.shape[0] > 0


def _forward_args(X):
    """``(X, Xalt, indptr, indices, data)`` for the forward kernels, from a
    canonical block of ``canonical_row_blocks``, all read-only: dense
    float64 rows in ``X`` or float32 ones in ``Xalt`` (the other an empty
    ``(0, n_features)`` array) and None for the CSR arrays, or for a CSR
    matrix two empty arrays and its int64/int64/float64 arrays."""
    empty64 = readonly(np.zeros((0, X.shape[1])))
    empty32 = readonly(np.zeros((0, X.shape[1]), dtype=np.float32))
    if sp.issparse(X):
        return (empty64, empty32, readonly(X.indptr), readonly(X.indices),
                readonly(X.data))
    if X.dtype == np.float32:
        return empty64, readonly(X), None, None, None
    return readonly(X), empty32, None, None, None


def _check_workspace(ws, X):
    """Refuse a workspace made for the other kind of data (its buffers differ:
    see ``workspace``)."""
    if bool(ws["sparse"]) != sp.issparse(X):
        kind = "sparse" if sp.issparse(X) else "dense"
        raise ValueError(f"{kind} data needs a workspace made with "
                         f"sparse={sp.issparse(X)}")


def _padded(n):
    return -(-int(n) // _mlp.PAD) * _mlp.PAD


def linear_width(n_outputs, sparse=False):
    """Row width ``ld`` of a new linear model's weights, for the kind of
    data it is fitted on. Dense data: the outputs padded to a multiple of
    ``_mlp.PAD``, for the dense products run on whole vectors (their scalar
    tails made a fit 3 to 20 times slower). Sparse data: the outputs as they
    are up to ``PAD // 2`` (a binary model has one column: the sparse
    products read a row of ``W`` per stored entry, where padding costs memory
    and bandwidth and saves nothing), padded from there on (ten classes:
    the dense layout)."""
    n = int(n_outputs)
    return n if sparse and n <= _mlp.PAD // 2 else _padded(n)


#: Wide sparse data, for a linear model: CSR data of at least
#: ``LAZY_MIN_FEATURES`` features whose minibatches hold at most
#: ``1 / LAZY_RATIO`` as many non-zeros (on average) as there are features.
#: Its minibatch solvers take the lazy update (see ``_kernels._linear``).
LAZY_MIN_FEATURES = 4096
LAZY_RATIO = 4

#: float64 vectors of the parameters' size that a full-batch (L-BFGS) fit
#: holds at its peak, measured with scipy 1.17: L-BFGS-B's ``2 m = 20``
#: correction vectors and its work arrays and bounds (about 30), its
#: wrapper's copies of the point and the gradient, and the objective's
#: float64 copies of the weights and the gradient (``_engine._lbfgs``).
FULL_BATCH_VECTORS = 54


def is_wide_sparse(X, batch_size):
    """True when ``X`` is wide sparse data for minibatches of ``batch_size``
    rows (see ``LAZY_MIN_FEATURES``): a function of its shape and number of
    stored entries only, so of the data, not of the threads."""
    if not sp.issparse(X) or X.shape[0] == 0:
        return False
    n_rows, n_features = X.shape
    batch_nnz = X.nnz * min(int(batch_size), n_rows) / n_rows
    return n_features >= LAZY_MIN_FEATURES and LAZY_RATIO * batch_nnz <= n_features


#: Alignment of every buffer the threads share: a cache line. A work item
#: writes whole 64-byte blocks of them, so no line is written by two threads.
ALIGN = 64


def aligned_zeros(shape, dtype=np.float64):
    """Zeros whose data starts on a cache line."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    raw = np.zeros(n * dtype.itemsize + ALIGN, dtype=np.uint8)
    start = (-raw.ctypes.data) % ALIGN
    return raw[start:start + n * dtype.itemsize].view(dtype).reshape(shape)


def aligned(a):
    """``a``, or an aligned copy of it when its data is not on a cache line."""
    if a.ctypes.data % ALIGN == 0:
        return a
    out = aligned_zeros(a.shape, a.dtype)
    out[...] = a
    return out


class _Batches:
    """The double-buffered minibatch shared by a team (rows of no columns for
    sparse data: its labels and weights only)."""

    def __init__(self, batch_size, n_features, dtype):
        n_groups = -(-batch_size // TILE_ROWS)
        self.Xb = aligned_zeros((2, batch_size, n_features), dtype)
        self.lists = aligned_zeros((2, n_groups, n_features), np.int32)
        self.counts = aligned_zeros((2, n_groups), np.int64)
        self.yb = aligned_zeros((2, batch_size), np.int64)
        self.wb = aligned_zeros((2, batch_size), dtype)

    def args(self):
        return self.Xb, self.lists, self.counts, self.yb, self.wb


class Accumulators:
    """The sums of an epoch (see ``_losses.loss_grad``), one row per chunk of
    rows of the loss phase (``_batch.LOSS_ROWS``); ``totals`` adds them up in
    order. Each row starts on a cache line of its own (different threads
    write them at every minibatch)."""

    @classmethod
    def for_batches(cls, batch_size, n_classes, n_outputs):
        return cls(-(-batch_size // LOSS_ROWS), n_classes, n_outputs)

    def __init__(self, n_rows, n_classes, n_outputs):
        # whole cache lines of float64, at least one column more than used
        # and at least two rows (the second one zero when unused), so the
        # view is never C-contiguous: one kernel type
        n_rows = max(n_rows, 2)

        def rows(n):
            width = -(-(n + 1) // 8) * 8
            return aligned_zeros((n_rows, width))[:, :n]

        self.class_loss = rows(n_classes)
        self.class_weight = rows(n_classes)
        self.col_loss = rows(n_outputs)
        self.stats = rows(N_STATS)

    def reset(self):
        for a in (self.class_loss, self.class_weight, self.col_loss, self.stats):
            a[:] = 0.0

    def totals(self):
        """The epoch's :class:`EpochSums`. Sums that overflow are inf, without
        NumPy's warning: the epoch's caller stops the fit as diverged."""
        with np.errstate(over="ignore", invalid="ignore"):
            return EpochSums(*(a.sum(axis=0) for a in self.args()))

    def args(self):
        return self.class_loss, self.class_weight, self.col_loss, self.stats


class EpochSums:
    """An epoch's sums over its rows: per class (``class_loss``,
    ``class_weight``), per output (``col_loss``, the one-vs-rest losses) and
    in all (``loss``, ``weight``, ``correct``); unpacks as ``(class_loss,
    class_weight, col_loss, stats)``."""

    def __init__(self, class_loss, class_weight, col_loss, stats):
        self.class_loss, self.class_weight, self.col_loss = (
            class_loss, class_weight, col_loss)
        self.stats = stats
        self.loss = stats[STAT_LOSS]
        self.weight = stats[STAT_WEIGHT]
        self.correct = stats[STAT_CORRECT]

    def __iter__(self):
        return iter((self.class_loss, self.class_weight, self.col_loss, self.stats))

    def mean_loss(self):
        return float(self.loss / self.weight)

    def accuracy(self):
        return float(self.correct / self.weight)

    def per_class(self, loss, n_outputs):
        """Loss of each class: the weighted mean loss of its samples, or for
        one-vs-rest models (``loss`` LOGISTIC, several outputs) the binary
        loss of each label's model."""
        if loss == LOGISTIC and n_outputs > 1:
            return self.col_loss / self.weight
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.class_weight > 0,
                            self.class_loss / self.class_weight, np.nan)


class _Model:
    """What the two models share."""

    n_outputs = None
    loss = None

    def new_state(self, dtype):
        """Zeroed optimizer state (two vectors in the layout of ``theta``)."""
        return (aligned_zeros(self.n_params, dtype),
                aligned_zeros(self.n_params, dtype))

    def _forward_buffers(self, n_threads, block, n_features, widths):
        """Per-thread blocks of ``block`` rows (``n_features`` 0 for sparse
        data: its rows are read in place), their lists and the layers'
        outputs."""
        n_groups = -(-block // TILE_ROWS)
        return (aligned_zeros((n_threads, block, n_features)),
                aligned_zeros((n_threads, n_groups, n_features), np.int32),
                aligned_zeros((n_threads, n_groups), np.int64),
                aligned_zeros((n_threads, block * sum(widths))))


class LinearModel(_Model):
    """A linear classifier: ``n_features`` inputs, ``n_outputs`` logits.

    Parameters
    ----------
    n_features, n_outputs : int
        Sizes.
    loss : int
        ``_losses.SOFTMAX`` or ``_losses.LOGISTIC``.
    ld : int or None
        Row width of the weights in ``theta`` (at least ``n_outputs``);
        None: ``linear_width(n_outputs)``, the dense layout.
    full_batch : bool
        Trained by the full-batch solver (L-BFGS): ``fit_bytes`` counts its
        memory.
    """

    def __init__(self, n_features, n_outputs, loss, ld=None, full_batch=False):
        self.n_features = int(n_features)
        self.n_outputs = int(n_outputs)
        self.loss = loss
        self.full_batch = bool(full_batch)
        self.ld = linear_width(n_outputs) if ld is None else int(ld)
        if self.ld < max(self.n_outputs, 1):
            raise ValueError(f"a row width of {self.ld} cannot hold "
                             f"{self.n_outputs} outputs")
        self.n_params = self.n_features * self.ld + self.ld

    def max_threads(self, batch_size):
        """Most threads an epoch can keep busy: one per feature block, and
        one per ``MIN_WORK`` multiply-adds of a minibatch."""
        work = batch_size * self.n_features * self.ld
        return max(1, min(-(-self.n_features // _linear.FEATURE_BLOCK),
                          work // MIN_WORK))

    def init_params(self, rng, dtype):
        """Zeros (the loss is convex), like ``LogisticRegression``."""
        return aligned_zeros(self.n_params, dtype)

    def fit_bytes(self, batch_size, itemsize, sparse=False):
        """Memory a fit needs beyond the data, as allocated: the parameters,
        their gradient and two optimizer vectors and the three copies kept to
        undo an epoch (7 vectors of ``n_params``; early stopping's best
        weights add an eighth, within the estimate's margin); the exported
        weights (the last epoch's, their copy and its transpose, without
        padding); the minibatch's logits and the copied rows (dense data) or
        the lazy update's marks and feature list (sparse data). A full-batch
        fit holds ``FULL_BATCH_VECTORS`` float64 vectors of the parameters
        instead of the seven."""
        params = 7 * self.n_params * itemsize
        if self.full_batch:
            params = FULL_BATCH_VECTORS * self.n_params * 8
        exports = 3 * self.n_features * self.n_outputs * itemsize
        logits = batch_size * self.ld * itemsize
        if sparse:
            lazy = self.n_features * (1 + 8)
            return params + exports + logits + lazy
        rows = 2 * batch_size * self.n_features * itemsize
        return params + exports + logits + rows

    def unpack(self, theta):
        """``[(W, b)]``: weights ``(n_features, n_outputs)`` and intercepts
        (copies)."""
        n_weights = self.n_features * self.ld
        W = theta[:n_weights].reshape(self.n_features, self.ld)
        b = theta[n_weights:n_weights + self.ld]
        return [(W[:, :self.n_outputs].copy(), b[:self.n_outputs].copy())]

    def weight_mask(self):
        """True at the weights of ``theta`` (the penalised entries), False at
        the intercepts."""
        mask = np.zeros(self.n_params, dtype=bool)
        mask[:self.n_features * self.ld] = True
        return mask

    def penalty_norm(self, theta):
        """Sum of the squared weights (not the intercepts)."""
        W = theta[:self.n_features * self.ld]
        with np.errstate(over="ignore", invalid="ignore"):
            return float(np.dot(W, W))

    def workspace(self, batch_size, dtype, sparse=False):
        """The buffers of a fit; ``sparse``: for CSR data (no copied rows;
        the lazy update's buffers come with the first epoch on wide sparse
        data, see ``run_epoch``)."""
        return dict(grad=aligned_zeros(self.n_params, dtype),
                    batches=_Batches(batch_size, 0 if sparse else self.n_features,
                                     dtype),
                    Z=aligned_zeros((batch_size, self.ld), dtype), sparse=sparse,
                    lazy=None)

    def _lazy_buffers(self, ws, X):
        """``(mark, touched, n_touched)`` of the lazy update for ``X`` (made
        once per workspace), or three empty arrays when ``X`` is not wide
        sparse data."""
        if ws["lazy"] is None:
            batch = ws["batches"].Xb.shape[1]
            if ws["sparse"] and is_wide_sparse(X, batch):
                most = int(np.max(np.diff(X.indptr))) if X.shape[0] else 0
                room = max(1, min(self.n_features, batch * most))
                ws["lazy"] = (np.zeros(self.n_features, dtype=np.uint8),
                              np.zeros(room, dtype=np.int64),
                              np.zeros(1, dtype=np.int64))
            else:
                ws["lazy"] = (np.zeros(0, dtype=np.uint8), np.zeros(0, dtype=np.int64),
                              np.zeros(1, dtype=np.int64))
        return ws["lazy"]

    def run_epoch(self, team, n_threads, X, y, Y, w, order, theta, state, ws, acc, iopt,
                  fopt, t):
        """One epoch over the rows ``order`` (targets ``y``, and ``Y`` for
        multi-label ones: see ``_losses``); returns the step count. ``X``: a
        C-ordered array, or a canonical CSR matrix with ``ws`` made with
        ``sparse=True``."""
        _check_workspace(ws, X)
        lazy = self._lazy_buffers(ws, X)
        data = KernelData.of(ws, X, w, theta.dtype)
        return team.run(
            n_threads, _linear.linear_epoch,
            Data(data.X, *data.csr, y, Y, data.w, order, data.Xalt, data.direct()),
            np.int64(self.ld), Params(theta, ws["grad"], state[0], state[1]),
            LinearWork(*ws["batches"].args(), ws["Z"], *lazy), Sums(*acc.args()),
            Options(iopt, fopt), t)

    def logits(self, team, n_threads, X, rows, theta):
        """float64 logits of the rows ``rows`` of ``X`` (an array, or a
        canonical CSR matrix): read in place when it is of a type the
        forward pass is compiled for, else cast in blocks of rows (see
        ``canonical_row_blocks``)."""
        theta = _writeable(theta.astype(np.float64, copy=False))
        out = np.empty((len(rows), self.n_outputs))
        for start, Xc, rows_c in canonical_row_blocks(X, rows):
            args = _forward_args(Xc)
            n_features = self.n_features if args[2] is None else 0
            block = _block_rows(len(rows_c))
            Xb, lists, counts, Z = self._forward_buffers(n_threads, block, n_features,
                                                         [self.ld])
            team.run(n_threads, _linear.linear_forward, Rows(*args, rows_c),
                     np.int64(self.ld), theta, LinearForwardWork(
                         Xb, lists, counts, Z.reshape(n_threads, block, self.ld)),
                     out[start:start + len(rows_c)])
        return out

    def logits_exact(self, X, theta):
        """Logits by NumPy in ``X``'s dtype (extended precision for rows that
        overflow float64)."""
        ((W, b),) = self.unpack(theta)
        return X @ W.astype(X.dtype) + b.astype(X.dtype)


class MLPModel(_Model):
    """A multilayer perceptron with layer sizes ``sizes`` (inputs, hidden
    layers, outputs).

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, inputs first.
    activation : int
        Hidden activation code (``_mlp.ACTIVATIONS``).
    loss : int
        ``_losses.SOFTMAX`` or ``_losses.LOGISTIC``.
    mean, scale : ndarray of shape (n_features,) or None
        Standardised inputs: the network sees ``(X - mean) / scale``. The
        kernels read ``X / scale`` (zeros stay zeros, so blank pixels are
        still skipped) and fold the centring into the first layer's
        intercepts and gradient. ``unpack`` and the forward passes fold both
        into the first layer, so exported weights act on ``X`` itself.
    """

    def __init__(self, sizes, activation, loss, mean=None, scale=None):
        self.sizes = np.array(sizes, dtype=np.int64)  # a copy: one kernel type
        self.activation = activation
        self.loss = loss
        self.standardize = mean is not None
        if self.standardize:
            self.inv_scale = 1.0 / np.asarray(scale, dtype=np.float64)
            self.shift = np.asarray(mean, dtype=np.float64) * self.inv_scale
        self.n_features = int(self.sizes[0])
        self.n_outputs = int(self.sizes[-1])
        self.w_off, self.b_off, self.ld, self.n_params = _layout.layout(self.sizes)

    def max_threads(self, batch_size):
        """Most threads an epoch can keep busy: one per panel of the first
        hidden layer, and one per ``MIN_WORK`` multiply-adds of a
        minibatch."""
        work = batch_size * int(np.sum(self.sizes[:-1] * self.sizes[1:]))
        return max(1, min(-(-int(self.sizes[1]) // _mlp.PANEL), work // MIN_WORK))

    def init_params(self, rng, dtype, glorot_factor=6.0, block=1 << 20):
        """Glorot/Xavier uniform weights and intercepts, drawn layer by layer
        in scikit-learn's order (weights row by row, then intercepts), in
        blocks cast as they come (no float64 copy of a large layer)."""
        theta = aligned_zeros(self.n_params, dtype)
        sizes = self.sizes
        for l in range(len(sizes) - 1):
            fan_in, fan_out = int(sizes[l]), int(sizes[l + 1])
            bound = np.sqrt(glorot_factor / (fan_in + fan_out))
            rows = max(1, block // fan_out)
            for r0 in range(0, fan_in, rows):
                r1 = min(fan_in, r0 + rows)
                _layout.put_rows(theta, sizes, l, r0, rng.uniform(
                    -bound, bound, (r1 - r0, fan_out)).astype(dtype, copy=False))
            b = rng.uniform(-bound, bound, fan_out)
            theta[self.b_off[l]:self.b_off[l] + fan_out] = b
        return theta

    def fit_bytes(self, batch_size, itemsize, sparse=False):
        """Memory a fit needs beyond the data (parameters, gradient, optimizer
        state, copies kept to undo an epoch, exports, buffers); ``sparse``:
        for CSR data (no copied rows)."""
        if sparse:
            per_batch = batch_size * 2 * int(np.sum(self.sizes[1:]))
            return (9 * self.n_params + per_batch) * itemsize
        per_batch = batch_size * (2 * int(self.sizes[0])
                                  + 2 * int(np.sum(self.sizes[1:])))
        return (9 * self.n_params + per_batch) * itemsize

    def _fold(self, W, b):
        """First-layer ``W``, ``b`` for the raw inputs, in float64 (no BLAS:
        the same sums whatever the thread settings). ``W`` must be a copy of
        the caller's own: when it is float64 already, it is scaled in place
        and returned."""
        W64 = W.astype(np.float64, copy=False)
        b = b - (self.shift[:, None] * W64).sum(axis=0)
        W64 *= self.inv_scale[:, None]
        return W64, b

    def unpack(self, theta):
        """``[(W, b), ...]`` per layer, row-major, without padding (copies),
        acting on the raw inputs (the standardisation folded into the first
        layer, in float64)."""
        layers = _layout.unpack(theta, self.sizes)
        if self.standardize:
            W, b = layers[0]
            layers[0] = tuple(a.astype(W.dtype) for a in self._fold(W, b))
        return layers

    def _folded(self, theta):
        """float64 ``theta`` acting on the raw inputs (a copy, when
        standardised: only its first layer changes, folded as in
        ``unpack``)."""
        if not self.standardize:
            return theta.astype(np.float64, copy=False)
        theta = theta.astype(np.float64)
        W, b = _layout.unpack_layer(theta, self.sizes, 0)
        _layout.put_rows(theta, self.sizes, 0, 0, *self._fold(W, b))
        return theta

    def weight_mask(self):
        """True at the weights of ``theta`` (the penalised entries), False at
        the intercepts."""
        mask = np.zeros(self.n_params, dtype=bool)
        for w0, b0 in zip(self.w_off, self.b_off):
            mask[w0:b0] = True
        return mask

    def penalty_norm(self, theta):
        """Sum of the squared weights (not the intercepts)."""
        total = 0.0
        with np.errstate(over="ignore", invalid="ignore"):
            for l in range(len(self.sizes) - 1):
                n = int(self.b_off[l] - self.w_off[l])
                W = theta[self.w_off[l]:self.w_off[l] + n]
                total += float(np.dot(W, W))
        return total

    def _transposes(self):
        t_off = np.zeros(len(self.sizes) - 1, dtype=np.int64)
        pos = 0
        for l in range(1, len(self.sizes) - 1):
            t_off[l] = pos
            pos += int(self.ld[l] * self.sizes[l])
        return t_off, pos

    def _slots(self, n_rows, widths):
        a_off = np.zeros(len(widths), dtype=np.int64)
        pos = 0
        for l, width in enumerate(widths):
            a_off[l] = pos
            pos += n_rows * int(width)
        return a_off, pos

    def workspace(self, batch_size, dtype, sparse=False):
        """The buffers of a fit; ``sparse``: for CSR data (no copied rows)."""
        t_off, n_t = self._transposes()
        a_off, n_a = self._slots(batch_size, self.sizes[1:-1])
        n_parts = -(-int(self.sizes[-2]) // _mlp.PANEL)
        return dict(grad=aligned_zeros(self.n_params, dtype),
                    Wt=aligned_zeros(max(n_t, 1), dtype), t_off=t_off,
                    batches=_Batches(batch_size, 0 if sparse else self.n_features,
                                     dtype),
                    H=aligned_zeros(max(n_a, 1), dtype),
                    D=aligned_zeros(max(n_a, 1), dtype), a_off=a_off,
                    Zp=aligned_zeros((n_parts, batch_size, self.ld[-1]), dtype),
                    Z=aligned_zeros((batch_size, self.ld[-1]), dtype),
                    beff=aligned_zeros((1, int(self.ld[0])), dtype), sparse=sparse)

    def run_epoch(self, team, n_threads, X, y, Y, w, order, theta, state, ws, acc, iopt,
                  fopt, t):
        """One epoch over the rows ``order`` (targets ``y``, and ``Y`` for
        multi-label ones: see ``_losses``); returns the step count. ``X``: a
        C-ordered array, or a canonical CSR matrix with ``ws`` made with
        ``sparse=True``."""
        _check_workspace(ws, X)
        if self.standardize:
            scaling = (self.inv_scale.astype(theta.dtype),
                       self.shift.astype(theta.dtype))
        else:
            scaling = (theta[:0], theta[:0])
        if ws["sparse"]:
            # CSR values come scaled, in the model's dtype (see KernelData)
            data = KernelData.of(ws, X, w, theta.dtype,
                                 self.inv_scale if self.standardize else None)
            scaling = (theta[:0], scaling[1])
        else:
            data = KernelData.of(ws, X, w, theta.dtype)
        dense, dense_counts = _dense(int(self.sizes.max()))
        epoch = _mlp.mlp_epoch if len(self.sizes) == 3 else _mlp.mlp_epoch_deep
        # dense rows of a standardised model are copied and scaled (centring
        # in the kernel); CSR rows are read in place
        direct = data.direct() and (ws["sparse"] or not self.standardize)
        return team.run(
            n_threads, epoch,
            Data(data.X, *data.csr, y, Y, data.w, order, data.Xalt, direct),
            Net(self.sizes, self.w_off, self.b_off, self.ld, ws["t_off"], ws["a_off"],
                *scaling),
            Params(theta, ws["grad"], state[0], state[1]),
            MLPWork(ws["Wt"], ws["beff"], *ws["batches"].args(), dense, dense_counts,
                    ws["H"], ws["D"], ws["Zp"], ws["Z"]),
            Sums(*acc.args()), Options(iopt, fopt), t)

    def logits(self, team, n_threads, X, rows, theta):
        """float64 logits of the rows ``rows`` of ``X`` (an array, or a
        canonical CSR matrix): read in place when it is of a type the
        forward pass is compiled for, else cast in blocks of rows (see
        ``canonical_row_blocks``)."""
        theta = _writeable(self._folded(theta))
        widths = [*self.sizes[1:-1], self.ld[-1]]
        dense, dense_counts = _dense(int(self.sizes.max()))
        out = np.empty((len(rows), self.n_outputs))
        for start, Xc, rows_c in canonical_row_blocks(X, rows):
            args = _forward_args(Xc)
            n_features = self.n_features if args[2] is None else 0
            block = _block_rows(len(rows_c))
            a_off, _ = self._slots(block, widths)
            Xb, lists, counts, H = self._forward_buffers(n_threads, block, n_features,
                                                         widths)
            team.run(n_threads, _mlp.mlp_forward, Rows(*args, rows_c),
                     Layout(self.sizes, self.w_off, self.b_off, self.ld, a_off), theta,
                     np.int64(self.activation),
                     ForwardWork(Xb, lists, counts, H, dense, dense_counts),
                     out[start:start + len(rows_c)])
        return out

    def logits_exact(self, X, theta):
        """Logits by NumPy in ``X``'s dtype (extended precision for rows that
        overflow float64)."""
        return _layout.forward_numpy(X, self.unpack(theta), self.activation)
