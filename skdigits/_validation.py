"""The one place where inputs are checked and converted for the kernels."""

import numpy as np
from scipy import sparse
from sklearn.utils import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, column_or_1d, validate_data

FIT_DTYPES = (np.float64, np.float32)


def validate_fit_data(estimator, X, y, *, reset, dtypes=FIT_DTYPES):
    """Check ``X``/``y`` for training; returns float ``X`` and ``y``.

    ``X`` is a C-contiguous array or a canonical CSR matrix (see
    ``as_csr``); it keeps a dtype listed in ``dtypes`` (float32 or float64)
    and any other dtype becomes ``dtypes[0]``; conforming input is not
    copied. NaN or infinity, 1-D or empty ``X``, and a mismatch with
    ``n_features_in_`` (when ``reset`` is False) raise ``ValueError`` with
    scikit-learn's messages.

    ``y`` is a vector of labels, or a multi-label indicator matrix (2-D, of
    zeros and ones, at least two columns; a single column is raveled, with
    scikit-learn's warning).
    """
    _refuse_complex(X, "X")
    _refuse_complex(y, "y")
    if sparse.issparse(y):  # a sparse indicator matrix: small, made dense
        y = y.toarray()
    with np.errstate(over="ignore", invalid="ignore"):  # the finiteness check
        # sums X first: huge but finite values must not warn
        X, y = validate_data(estimator, X, y, reset=reset, dtype=list(dtypes),
                             order="C", accept_sparse=["csr", "csc"],
                             multi_output=True)
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    check_classification_targets(y)
    if y.ndim == 2 and (type_of_target(y) != "multilabel-indicator"
                        or not np.isin(np.unique(y), (0, 1)).all()):
        raise ValueError(
            f"y is 2-D with {y.shape[1]} columns but is not a multi-label indicator "
            f"matrix (type {type_of_target(y)!r}): each column must hold only 0 "
            "and 1. Multi-output targets with more values per column are not "
            "supported.")
    return as_csr(X), y


def as_csr(X):
    """Sparse ``X`` as a canonical CSR matrix (sorted indices, no duplicates,
    explicit zeros kept), the form the kernels read; a CSC one is converted
    (memory in proportion to its non-zeros, never dense). Dense ``X`` is
    returned as it is."""
    if not sparse.issparse(X):
        return X
    _check_compressed(X)
    if X.format != "csr":
        X = X.tocsr()
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    if (X.indptr.dtype != X.indices.dtype
            or X.indices.dtype not in (np.int32, np.int64)):  # uint32, int16...
        X = X.copy()
        X.indptr = X.indptr.astype(np.int64)
        X.indices = X.indices.astype(np.int64)
    return X


def _check_compressed(X):
    """``ValueError`` for a CSR or CSC matrix whose structure is broken
    (``indptr`` not running from 0 to the stored count, decreasing, or
    indices outside the matrix), before any kernel reads it: O(non-zeros)."""
    n_major, n_minor = X.shape if X.format == "csr" else X.shape[::-1]
    indptr, indices = X.indptr, X.indices
    what = f"X is a malformed {X.format.upper()} matrix"
    if (indptr.shape[0] != n_major + 1 or indptr[0] != 0
            or indptr[-1] > min(indices.shape[0], X.data.shape[0])
            or np.any(np.diff(indptr.astype(np.int64)) < 0)):
        raise ValueError(f"{what}: its indptr must run from 0 to the number of "
                         "stored entries without decreasing.")
    stored = indices[:indptr[-1]]
    if stored.size and (stored.min() < 0 or stored.max() >= n_minor):
        raise ValueError(
            f"{what}: it stores entries at {'column' if X.format == 'csr' else 'row'} "
            f"indices from {stored.min()} to {stored.max()}, outside [0, {n_minor}).")


def _refuse_complex(a, name):
    """A short error for complex input (scikit-learn's prints the whole array)."""
    if hasattr(a, "dtype") and not hasattr(a, "columns"):
        # pandas' extension dtypes (Categorical, Int64...) are not NumPy's
        complex_ = getattr(a.dtype, "kind", "") == "c"
    else:
        try:
            complex_ = np.iscomplexobj(np.asarray(a))
        except (ValueError, TypeError):  # ragged or odd input: sklearn's errors
            return
    if complex_:
        shape = getattr(a, "shape", None)
        raise ValueError(
            f"Complex data not supported: {name} has complex values"
            + (f" (shape {tuple(shape)})" if shape is not None else "")
            + "; pass real numbers (e.g. the magnitude or the real part).")


def validate_predict_data(estimator, X):
    """Check ``X`` for prediction without converting it all at once.

    Numeric arrays keep their dtype and memory order (blocks of rows are cast
    one by one to the forward pass's one type by ``canonical_row_blocks``, so
    memory stays bounded), except floats other than float32 and float64
    (float16, long double), which become float64, as in ``fit``. The feature
    count and names must match ``fit``.
    """
    _refuse_complex(X, "X")
    with np.errstate(over="ignore", invalid="ignore"):
        X = validate_data(estimator, X, reset=False, dtype="numeric",
                          accept_sparse=["csr", "csc"])
    if sparse.issparse(X) and X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    elif X.dtype.kind == "f" and X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    return as_csr(X)


#: Most values of a prediction's input cast at a time (see
#: ``canonical_row_blocks``): 4096 rows of 784 float64 pixels, 25 MB.
PREDICT_VALUES = 4096 * 784

#: The dtypes of dense ``X`` the forward kernels read in place (they compute
#: in float64 and widen float32 rows as they copy them); CSR data and other
#: dtypes are cast to float64.
FORWARD_DTYPES = (np.float32, np.float64)


def _is_canonical(X):
    """True when the forward kernels read ``X`` in place with the one type
    they are compiled for (read-only views of it: see
    ``_engine._models.readonly``): an aligned, C-ordered 2-D float32 or
    float64 array, or a CSR matrix with float64 data and int64 ``indices``
    and ``indptr``."""
    if sparse.issparse(X):
        return (X.data.dtype == np.float64 and X.indices.dtype == np.int64
                and X.indptr.dtype == np.int64)
    return (X.dtype in FORWARD_DTYPES and X.flags.c_contiguous
            and X.flags.aligned)


def canonical_row_blocks(X, rows, block=None):
    """``(start, Xc, rows_c)`` triples covering the rows ``rows`` of ``X``
    (an array, or a canonical CSR matrix from ``as_csr``) in a type the
    forward kernels are compiled for, so that no input dtype, memory order,
    writeability or index dtype compiles a new forward pass.

    Canonical input (see ``_is_canonical``) is read in place: one triple
    ``(0, X, rows)``. Other input is copied ``block`` rows at a time (by
    default as many as hold ``PREDICT_VALUES`` values, so memory stays
    bounded): ``Xc`` holds the rows ``rows[start:start + block]`` as a
    C-ordered float64 array, or a CSR matrix with int64 ``indices`` and
    ``indptr`` and float64 data, and ``rows_c`` numbers them
    from 0. The cast is exact (integers, float16 and float32 widen to the
    same float64 the kernels convert each element to), so no logit changes.
    """
    if sparse.issparse(X) and X.format != "csr":
        raise TypeError(f"sparse data must be CSR, not {X.format.upper()}")
    if _is_canonical(X):
        yield 0, X, rows
        return
    if block is None:
        block = max(1, PREDICT_VALUES // max(1, X.shape[1]))
    for start in range(0, len(rows), block):
        part = rows[start:start + block]
        if sparse.issparse(X):
            Xc = sparse.csr_matrix(X[part], copy=True)
            if Xc.dtype != np.float64:
                Xc = Xc.astype(np.float64)
            # set after construction: scipy's constructor may narrow them
            Xc.indptr = Xc.indptr.astype(np.int64)
            Xc.indices = Xc.indices.astype(np.int64)
        else:
            Xc = np.empty((len(part), X.shape[1]), dtype=np.float64)
            Xc[...] = X[part]
        yield start, Xc, np.arange(len(part), dtype=np.int64)


def encode_labels(y, classes):
    """Indices of ``y`` in the sorted ``classes``; ``ValueError`` names any
    label that is not in ``classes``."""
    idx = np.searchsorted(classes, y)
    idx = np.clip(idx, 0, len(classes) - 1)
    unknown = classes[idx] != y
    if np.any(unknown):
        bad = np.unique(np.asarray(y)[unknown])
        raise ValueError(
            f"y contains labels {bad.tolist()[:10]} that are not in classes "
            f"{np.asarray(classes).tolist()}; pass every label to the first "
            "partial_fit call through `classes`."
        )
    return idx.astype(np.int64)


def check_classes(classes):
    """``partial_fit``'s ``classes``: a 1-d array of distinct labels, none
    of them NaN (a model with a NaN class could never be used)."""
    arr = np.asarray(classes)
    if arr.ndim != 1:
        raise ValueError(
            "classes must be a 1-d array-like of the labels, got "
            + (f"a {arr.ndim}-d array." if arr.ndim else
               f"{type(classes).__name__} {classes!r}."[:200]))
    if any(isinstance(c, float) and c != c for c in arr.tolist()):
        raise ValueError("classes contains NaN: every class must be a label "
                         "that y can hold.")
    try:
        n_distinct = len(np.unique(arr))
    except TypeError:  # labels of types that do not sort together
        raise ValueError(
            "classes mixes labels of types that cannot be compared, such as "
            "numbers and strings.") from None
    if n_distinct != len(arr):
        raise ValueError("classes must not contain duplicates.")
    return arr


def training_weights(sample_weight, class_weight, X, y_idx, classes, y, dtype):
    """Per-sample weights for the loss: ``sample_weight * class_weight[y]``,
    scaled to mean 1 so they change the balance of the loss, not the step size.

    Returns the scaled weights (in ``dtype``) and the weights before scaling
    (float64): the full-batch solver's penalty divides by their sum, as
    scikit-learn's does.
    """
    sw = _check_sample_weight(sample_weight, X, dtype=np.float64,
                              ensure_non_negative=True)
    if isinstance(class_weight, dict):
        # over every class the model knows, so a partial_fit batch that
        # lacks some classes is fine; unknown keys are an error
        # by Python equality: np.isin compares through a sort from 10
        # classes on, which casts the classes to strings, so "1" matched 1
        # and its weight was silently dropped
        known = set(np.asarray(classes).tolist())
        unknown = [k for k in class_weight if k not in known]
        if unknown:
            raise ValueError(
                f"class_weight names labels {unknown} that are not classes of "
                f"the model ({np.asarray(classes).tolist()}).")
        full = np.array([_class_weight_value(class_weight, c)
                         for c in classes.tolist()])
        sw = sw * full[y_idx]
    elif class_weight is not None:  # "balanced": from the labels at hand
        present = np.unique(y)
        cw = compute_class_weight(class_weight, classes=present, y=y)
        full = np.ones(len(classes))
        full[np.searchsorted(classes, present)] = cw
        sw = sw * full[y_idx]
    # scale by the largest weight first: the mean of weights near the top of
    # the float range would overflow
    top = sw.max() if sw.size else 0.0
    total = (sw / top).mean() if top > 0 else 0.0
    if not total > 0:
        raise ValueError(
            "The sample weights (times the class weights) sum to zero: there "
            "is nothing to learn from. Give some samples a positive weight."
        )
    return (sw / top / total).astype(dtype), sw


def _class_weight_value(class_weight, label):
    value = class_weight.get(label, 1.0)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"class_weight[{label!r}] must be a number, got {value!r}.") from None
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(
            f"class_weight[{label!r}] is {value}: class weights must be finite "
            "and non-negative (0 ignores the class).")
    return value
