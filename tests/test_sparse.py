"""Sparse input (CSR and CSC, matrices and arrays) in both estimators: the
same model as the dense input, and never a dense copy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from skdigits import MLPClassifier, SoftmaxRegression

FORMATS = [sparse.csr_matrix, sparse.csc_matrix, sparse.csr_array, sparse.csc_array]


def problem(seed, n, d, n_classes, density):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * (rng.random((n, d)) < density)
    X[rng.integers(0, n)] = 0.0  # an empty row
    y = np.arange(n) % n_classes
    rng.shuffle(y)
    w = rng.uniform(0.5, 2.0, n)
    return X, y, w


def assert_same_model(a, b, rtol):
    for name in ("coefs_", "intercepts_"):
        for u, v in zip(getattr(a, name, []), getattr(b, name, [])):
            np.testing.assert_allclose(u, v, rtol=rtol, atol=rtol)
    if hasattr(a, "coef_"):
        np.testing.assert_allclose(a.coef_, b.coef_, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=rtol)
    np.testing.assert_allclose(a.loss_curve_per_class_, b.loss_curve_per_class_,
                               rtol=rtol, atol=1e-12)


ESTIMATORS = {
    "mlp-adam": lambda: MLPClassifier((9,), dtype="float64", max_iter=4,
                                      batch_size=16, standardize=True,
                                      random_state=0),
    "mlp-deep-sgd": lambda: MLPClassifier((7, 5), dtype="float64", solver="sgd",
                                          standardize=False, max_iter=3,
                                          batch_size=10, random_state=0),
    "mlp-lbfgs": lambda: MLPClassifier((6,), dtype="float64", solver="lbfgs",
                                       max_iter=8, standardize=True, random_state=0),
    "mlp-early": lambda: MLPClassifier((6,), dtype="float64", early_stopping=True,
                                       max_iter=4, batch_size=8, random_state=0,
                                       standardize=True),
    "softmax": lambda: SoftmaxRegression(max_iter=3, batch_size=16, random_state=0),
    "softmax-ovr-lbfgs": lambda: SoftmaxRegression(multi_class="ovr", solver="lbfgs",
                                                   max_iter=10),
}


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(30, 70), d=st.integers(1, 40),
       n_classes=st.integers(2, 4), density=st.sampled_from([0.02, 0.2, 0.7]),
       kind=st.sampled_from(sorted(ESTIMATORS)), fmt=st.sampled_from(FORMATS))
def test_sparse_and_dense_input_give_the_same_model(seed, n, d, n_classes, density,
                                                    kind, fmt):
    """float64 training on a sparse X gives the dense X's model (the sums run
    in another order, so to rounding), and its predictions on sparse and
    dense rows agree."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    X, y, w = problem(seed, n, d, n_classes, density)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (ConvergenceWarning, UserWarning))
        dense = ESTIMATORS[kind]().fit(X, y, sample_weight=w)
        sp = ESTIMATORS[kind]().fit(fmt(X), y, sample_weight=w)
    rtol = 1e-5 if "lbfgs" in kind else 1e-8  # lbfgs amplifies rounding a little
    assert_same_model(sp, dense, rtol)
    np.testing.assert_allclose(sp.predict_proba(fmt(X)), dense.predict_proba(X),
                               rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(dense.predict_proba(fmt(X)), dense.predict_proba(X),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_float32_model_on_sparse_input_of_either_dtype(dtype, index_dtype):
    X, y, _ = problem(0, 200, 30, 3, 0.2)
    S = sparse.csr_matrix(X.astype(dtype))
    S.indices = S.indices.astype(index_dtype)
    S.indptr = S.indptr.astype(index_dtype)
    kw = dict(max_iter=30, standardize=True, random_state=0)
    clf = MLPClassifier((16,), **kw).fit(S, y)
    ref = MLPClassifier((16,), **kw).fit(X.astype(dtype), y)
    assert clf.coefs_[0].dtype == np.float32
    np.testing.assert_allclose(clf.loss_curve_, ref.loss_curve_, rtol=1e-4)
    assert clf.score(S, y) == pytest.approx(ref.score(X, y), abs=0.02)


def test_unsorted_and_duplicate_entries_are_summed_as_scipy_does():
    X, y, _ = problem(1, 60, 12, 2, 0.3)
    # each row's entries split in two halves and listed backwards: a CSR
    # with duplicates and unsorted indices
    data, indices, indptr = [], [], [0]
    for row in X:
        cols = np.flatnonzero(row)[::-1]
        indices += [*cols, *cols]
        data += [*(row[cols] / 2), *(row[cols] / 2)]
        indptr.append(len(indices))
    S = sparse.csr_matrix((np.array(data), np.array(indices), np.array(indptr)),
                          shape=X.shape)
    assert not S.has_canonical_format
    kw = dict(dtype="float64", max_iter=3, standardize=True, random_state=0)
    np.testing.assert_allclose(MLPClassifier((5,), **kw).fit(S, y).coefs_[0],
                               MLPClassifier((5,), **kw).fit(X, y).coefs_[0],
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make", [
    lambda: MLPClassifier((8,), max_iter=2, random_state=0),
    lambda: MLPClassifier((8, 4), early_stopping=True, max_iter=2, random_state=0),
    lambda: MLPClassifier((8,), solver="lbfgs", max_iter=3, random_state=0),
    lambda: SoftmaxRegression(max_iter=2, random_state=0),
    lambda: SoftmaxRegression(solver="lbfgs", max_iter=3),
])
def test_nothing_densifies_sparse_input(make, monkeypatch):
    """fit, partial_fit, predict and the early-stopping split never make X
    dense: every scipy route to a dense array raises while they run."""
    X, y, _ = problem(2, 80, 50, 3, 0.1)
    S = sparse.csr_matrix(X)

    def refuse(*args, **kw):
        raise AssertionError("sparse X was made dense")

    for cls in (sparse.csr_matrix, sparse.csc_matrix, sparse.csr_array,
                sparse.csc_array, sparse.coo_matrix):
        monkeypatch.setattr(cls, "toarray", refuse)
        monkeypatch.setattr(cls, "todense", refuse)
        monkeypatch.setattr(cls, "__array__", refuse, raising=False)
    clf = make()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(S, y)
        if hasattr(clf, "partial_fit") and not clf.early_stopping:
            clf.partial_fit(S, y)
    assert clf.predict(S).shape == (80,)
    assert clf.predict_proba(sparse.csc_matrix(X)).shape == (80, 3)


def test_wide_sparse_input_fits_in_memory_of_its_non_zeros():
    """200 000 columns: a dense copy of the 2 000 x 200 000 float64 rows would
    take 3.2 GB, and a dense minibatch buffer 0.2 GB per 128 rows; the fit's
    traced allocations stay within the model (12.8 M float32 weights and
    their Adam state: ~0.26 GB) plus a margin."""
    import tracemalloc

    rng = np.random.default_rng(0)
    n, d, nnz = 2000, 200_000, 20
    indices = rng.integers(0, d, size=(n, nnz))
    indices.sort(axis=1)
    S = sparse.csr_matrix((rng.random(n * nnz).astype(np.float32), indices.ravel(),
                           np.arange(0, n * nnz + 1, nnz)), shape=(n, d))
    S.sum_duplicates()
    y = rng.integers(0, 2, n)
    tracemalloc.start()
    clf = MLPClassifier((16,), max_iter=1, standardize=False, random_state=0).fit(S, y)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    params = d * 16 * 4
    assert peak < 12 * params, f"peak {peak / 1e6:.0f} MB for {params / 1e6:.0f} MB"
    assert clf.predict(S[:5]).shape == (5,)


def test_standardize_auto_leaves_sparse_input_unscaled():
    """``standardize="auto"`` (the default) standardises dense input only: on
    sparse bag-of-words features the per-column scale blows rare columns up
    (bench_sparse.py: 0.81 test accuracy against 0.99 unscaled); True still
    standardises sparse input when asked, False never."""
    X, y, _ = problem(3, 120, 20, 3, 0.1)
    S = sparse.csr_matrix(X)
    kw = dict(hidden_layer_sizes=(4,), max_iter=1, random_state=0)
    assert MLPClassifier().standardize == "auto"
    assert MLPClassifier(**kw).fit(S, y).input_mean_ is None
    assert MLPClassifier(**kw).fit(X, y).input_mean_ is not None
    assert MLPClassifier(standardize=True, **kw).fit(S, y).input_mean_ is not None
    assert MLPClassifier(standardize=False, **kw).fit(X, y).input_mean_ is None


@pytest.mark.parametrize("index_dtype", [np.uint32, np.int16, np.uint8])
def test_unusual_index_dtypes_are_converted(index_dtype):
    X, y, _ = problem(4, 60, 12, 3, 0.3)
    S = sparse.csr_matrix(X)
    S.indices = S.indices.astype(index_dtype)
    S.indptr = S.indptr.astype(index_dtype)
    kw = dict(max_iter=2, random_state=0)
    for Est in (MLPClassifier, SoftmaxRegression):
        a, b = Est(**kw).fit(S, y), Est(**kw).fit(sparse.csr_matrix(X), y)
        np.testing.assert_array_equal(a.predict_proba(S), b.predict_proba(X))


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("break_", ["index too large", "negative index",
                                    "indptr decreasing", "indptr too long"])
def test_malformed_sparse_input_is_refused_before_any_kernel(fmt, break_):
    """Out-of-range indices would read outside the weights: a clear error
    instead (sklearn's MLP crashes or trains on garbage)."""
    X, y, _ = problem(5, 40, 8, 2, 0.4)
    S = sparse.csr_matrix(X) if fmt == "csr" else sparse.csc_matrix(X)
    S.indices = S.indices.astype(np.int64)
    S.indptr = S.indptr.astype(np.int64)
    if break_ == "index too large":
        S.indices[3] = 10**6
    elif break_ == "negative index":
        S.indices[3] = -5
    elif break_ == "indptr decreasing":
        S.indptr[2], S.indptr[3] = S.indptr[3], S.indptr[2] - 1
    else:
        S.indptr = np.r_[S.indptr, S.indptr[-1]]
    for Est in (MLPClassifier, SoftmaxRegression):
        with pytest.raises(ValueError, match="malformed|indptr|index"):
            Est(max_iter=1).fit(S, y)
    fitted = SoftmaxRegression(max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="malformed|indptr|index"):
        fitted.predict(S)


def test_digit_grid_draws_sparse_rows():
    from skdigits.plotting import DigitGridDisplay

    X, y, _ = problem(6, 40, 16, 2, 0.5)
    clf = SoftmaxRegression(max_iter=2, random_state=0).fit(X, y)
    disp = DigitGridDisplay.from_estimator(clf, sparse.csr_matrix(X), y, n_samples=4,
                                           image_shape=(4, 4), random_state=0)
    dense = DigitGridDisplay.from_estimator(clf, X, y, n_samples=4, image_shape=(4, 4),
                                            random_state=0)
    np.testing.assert_array_equal(disp.images, dense.images)
    import matplotlib.pyplot as plt

    plt.close("all")


# ---------------------------------------------------------------- wide sparse data


def wide_problem(n=2000, d=1_000_000, nnz=20, n_classes=2, seed=0):
    """Bag-of-words-like CSR rows: ``nnz`` entries per row, one of them a
    word of the row's class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    cols = rng.integers(0, d, (n, nnz))
    cols[:, 0] = y * 7 + rng.integers(0, 7, n)
    cols.sort(axis=1)
    X = sparse.csr_matrix((rng.random(n * nnz), cols.ravel(),
                           np.arange(0, n * nnz + 1, nnz)), shape=(n, d))
    X.sum_duplicates()
    return X, y


def test_memory_check_lets_a_wide_binary_model_through(monkeypatch):
    """Issue 19: a binary model of 10^7 features (weights: 80 MB) was
    refused as needing about 10.73 GiB (its one output padded to 16 columns,
    every vector counted at that width). With 2 GiB free it now trains (on
    20 rows, a few hundred MB); L-BFGS, which keeps about 54 vectors of the
    weights, is refused there, not with 24 GiB free."""
    from skdigits import _system
    from skdigits._engine._models import LinearModel, linear_width
    from skdigits._kernels._losses import LOGISTIC

    monkeypatch.setattr(_system, "available_memory", lambda: 2 * 2**30)
    X, y = wide_problem(n=20, d=10**7, nnz=5)
    clf = SoftmaxRegression(max_iter=1, random_state=0).fit(X, y)
    assert clf.coef_.shape == (1, 10**7) and clf._theta.shape == (10**7 + 1,)
    assert clf._model().fit_bytes(20, 8, sparse=True) < 2**30
    with pytest.raises(MemoryError, match="needs about 4.* GiB"):
        SoftmaxRegression(solver="lbfgs").fit(X, y)
    monkeypatch.setattr(_system, "available_memory", lambda: 24 * 2**30)
    full = LinearModel(10**7, 1, LOGISTIC, ld=linear_width(1, sparse=True),
                       full_batch=True)
    _system.check_memory(full.fit_bytes(20, 8, sparse=True), "SoftmaxRegression")


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_memory_estimate_counts_what_a_fit_allocates(n_classes, solver):
    import tracemalloc

    X, y = wide_problem(n_classes=n_classes)
    clf = SoftmaxRegression(max_iter=2, solver=solver, random_state=0)
    tracemalloc.start()
    try:
        clf.fit(X, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    estimate = clf._model().fit_bytes(256, 8, sparse=True)
    assert 0.8 * estimate < peak < 1.15 * estimate, (peak, estimate)


def test_wide_sparse_input_takes_the_lazy_update_on_any_thread_count():
    """Wide CSR data trains with the lazy update (see the Notes of
    SoftmaxRegression): the same bits whatever n_jobs; close to the dense
    algorithm in accuracy, not in bits. The full-batch solver stays exact."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    X, y = wide_problem(n=600, d=20_000, nnz=10, n_classes=3)
    fits = [SoftmaxRegression(max_iter=3, random_state=0, n_jobs=k).fit(X, y)
            for k in (1, 2, 3)]
    for other in fits[1:]:
        np.testing.assert_array_equal(other.coef_, fits[0].coef_)
        np.testing.assert_array_equal(other.intercept_, fits[0].intercept_)
        assert other.loss_curve_ == fits[0].loss_curve_
    dense = SoftmaxRegression(max_iter=3, random_state=0).fit(X.toarray(), y)
    assert not np.array_equal(dense.coef_, fits[0].coef_)  # another algorithm
    assert abs(dense.score(X, y) - fits[0].score(X, y)) < 0.05
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        exact = [SoftmaxRegression(solver="lbfgs", max_iter=5).fit(data, y)
                 for data in (X, X.toarray())]
    np.testing.assert_allclose(exact[0].coef_, exact[1].coef_, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kw", [dict(solver="sgd"), dict(solver="adam"),
                                dict(solver="adam", early_stopping=True),
                                dict(solver="lbfgs")], ids=str)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_standardized_fit_copies_the_csr_arrays_once(kw, dtype, monkeypatch):
    """Issue 20: the copy of a CSR matrix's arrays the epochs read (int32
    indices, the values scaled in the model's dtype) is made once per fit,
    not once per epoch or per solver step; the standardisation's column
    moments read exact int64/float64 copies, dropped before it."""
    from skdigits._engine._models import KernelData

    made = []
    real = KernelData.__init__

    def counted(self, X, w, dtype, scale=None):
        made.append(sparse.issparse(X))
        real(self, X, w, dtype, scale)

    monkeypatch.setattr(KernelData, "__init__", counted)
    X, y, _ = problem(3, 60, 30, 3, 0.2)
    S = sparse.csr_matrix(X)
    assert S.indices.dtype == np.int32  # a copy is needed
    clf = MLPClassifier((5,), dtype=dtype, standardize=True, max_iter=2,
                        batch_size=16, random_state=0, **kw).fit(S, y)
    assert clf.input_mean_ is not None
    assert made == [True]


def test_kernel_data_is_reused_only_for_the_same_data_and_dtype():
    """``KernelData.of`` hands back the workspace's kernel data only when it
    was made of these very ``X`` and ``w`` for this dtype."""
    from skdigits._engine._models import KernelData

    X, _, w = problem(4, 20, 6, 2, 0.3)
    S = sparse.csr_matrix(X)
    ws = {}
    data = KernelData.of(ws, S, w, np.float64)
    assert KernelData.of(ws, S, w, np.float64) is data
    for args in ((S, w, np.float32), (S, w.copy(), np.float64),
                 (S.copy(), w, np.float64)):
        other = KernelData.of(ws, *args)
        assert other is not data and other.dtype == np.dtype(args[2])
        assert ws["data"] is other
        data = KernelData.of(ws, S, w, np.float64)
    # CSR values scaled by another factor (the same values or not) are others
    scale = np.full(X.shape[1], 2.0)
    scaled = KernelData.of(ws, S, w, np.float64, scale)
    assert scaled is not data and KernelData.of(ws, S, w, np.float64, scale) is scaled
    assert KernelData.of(ws, S, w, np.float64, scale.copy()) is not scaled
    np.testing.assert_array_equal(scaled.csr[2], 2.0 * data.csr[2])


@settings(max_examples=40, deadline=None)
@given(data_dtype=st.sampled_from(["float32", "float64"]),
       model_dtype=st.sampled_from(["float32", "float64"]), scaled=st.booleans(),
       index_dtype=st.sampled_from(["int32", "int64"]),
       seed=st.integers(0, 2**31 - 1))
def test_the_epochs_read_csr_values_as_the_kernels_computed_them(
        data_dtype, model_dtype, scaled, index_dtype, seed):
    """The epochs read a CSR matrix's values in the model's dtype, already
    times the standardisation's factor, and its column indices as int32 (a
    float32 model: 8 bytes per stored value instead of 16; float64 values
    and int64 indices made the CSR epoch about 20 % slower). Each value is
    what the kernels' own conversion (``_sparse.scaled``) gives for the
    stored value, whatever its dtype, so the bits of a fit stay."""
    from skdigits._engine._models import KernelData
    from skdigits._kernels import _sparse

    rng = np.random.default_rng(seed)
    X = sparse.random(6, 9, density=0.4, random_state=rng, format="csr")
    X.data = (rng.standard_normal(X.nnz) * 10.0 ** rng.uniform(-3, 3, X.nnz)).astype(
        data_dtype)
    X.indices = X.indices.astype(index_dtype)
    X.indptr = X.indptr.astype(index_dtype)
    scale = (rng.uniform(0.01, 100.0, 9).astype(model_dtype) if scaled
             else np.zeros(0, dtype=model_dtype))
    data = KernelData(X, np.ones(6), model_dtype, scale if scaled else None)
    indptr, indices, values = data.csr
    assert (indptr.dtype, indices.dtype, values.dtype) == (
        np.int64, np.int32, np.dtype(model_dtype))
    np.testing.assert_array_equal(indptr, X.indptr)
    np.testing.assert_array_equal(indices, X.indices)
    dt = np.dtype(model_dtype).type
    expected = np.array([_sparse.scaled(X.data, q, scale, int(X.indices[q]), dt)
                         for q in range(X.nnz)], dtype=model_dtype)
    np.testing.assert_array_equal(values, expected)
    assert not values.flags.writeable and not indices.flags.writeable


def test_csr_data_wider_than_int32_columns_is_refused():
    from skdigits._engine._models import KernelData

    X = sparse.csr_matrix((2, 2**31), dtype=np.float32)
    with pytest.raises(ValueError, match="2147483648 columns: at most 2147483647"):
        KernelData(X, np.ones(2), np.float32)


def test_csr_values_are_scaled_in_bounded_steps(monkeypatch):
    """The scaled copy is made a few hundred thousand values at a time (its
    temporaries stay small on a large matrix); the steps change no value."""
    from skdigits._engine import _models

    rng = np.random.default_rng(3)
    X = sparse.random(40, 30, density=0.5, random_state=rng, format="csr")
    scale = rng.uniform(0.1, 10.0, 30).astype(np.float32)
    whole = _models.KernelData(X, np.ones(40), np.float32, scale).csr[2]
    monkeypatch.setattr(_models, "SCALE_CHUNK", 7)
    steps = _models.KernelData(X, np.ones(40), np.float32, scale).csr[2]
    assert X.nnz > 7 * 3
    np.testing.assert_array_equal(steps, whole)
    np.testing.assert_array_equal(
        whole, (X.data * scale.astype(np.float64)[X.indices]).astype(np.float32))


def test_storage_past_the_last_row_is_ignored():
    """scipy lets ``indices``/``data`` hold room past ``indptr[-1]`` (set by
    hand); no row holds those entries, so the fit is that of the same matrix
    without them, standardised or not, and a value there never reaches the
    scaling (it indexed the factors out of range)."""
    X, y, _ = problem(5, 50, 12, 3, 0.3)
    S = sparse.csr_matrix(X.astype(np.float32))
    T = S.copy()
    T.data = np.r_[S.data, np.float32([7.0, 8.0])]
    T.indices = np.r_[S.indices, np.int32([10**6, 3])]
    assert T.indptr[-1] == S.nnz < T.data.shape[0]
    for standardize in (True, "auto"):
        kw = dict(hidden_layer_sizes=(6,), max_iter=3, standardize=standardize,
                  random_state=0)
        want = MLPClassifier(**kw).fit(S, y)
        got = MLPClassifier(**kw).fit(T, y)
        for a, b in zip(want.coefs_ + want.intercepts_, got.coefs_ + got.intercepts_):
            np.testing.assert_array_equal(a, b)


def test_a_float64_value_beyond_float32_stops_the_fit_without_numpy_noise():
    """A float32 model reads such a value as inf, as the kernels did when
    they cast each value themselves: the fit stops as diverged, and NumPy's
    overflow warning from the cast does not reach the console."""
    import warnings

    from skdigits._engine._train import TrainingDivergedError

    X, y, _ = problem(6, 40, 8, 2, 0.3)
    S = sparse.csr_matrix(X)
    S.data[0] = 1e300
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TrainingDivergedError):
            MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, standardize=False,
                          random_state=0).fit(S, y)
    assert not [w for w in caught if "overflow encountered" in str(w.message)]
