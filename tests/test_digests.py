"""The same bits before and after a change to the kernels (issue 20).

Digests of fits recorded on this project's machines: the weights, the curves
and the probabilities of each configuration, hashed. A rewrite of the
kernels must reproduce them exactly on the same CPU and Numba (the compiled
code, fused multiply-adds included, is part of the result). On another CPU,
Numba or ``NUMBA_CPU_NAME`` the test is skipped: the bits then legitimately
differ, although they still do not depend on the thread count (see
test_determinism.py).

To record the digests of a new machine, run this file with ``-s``: a
mismatch or a skip prints the digests computed here.
"""

import hashlib
import os
import warnings

import numpy as np
import pytest
from scipy import sparse

from skdigits import MLPClassifier, SoftmaxRegression
from skdigits.datasets import load_mnist

#: ``(host CPU, Numba version)`` -> configuration -> SHA-256 prefix.
DIGESTS = {
    # recorded at 5ebe4b0 (before issue 19) and identical after it
    ("znver5", "0.68.1"): {
        "mlp-csr": "df99e1fa380ed67b",
        "mlp-deep-sgd-float64": "73f9b84f2fc13585",
        "mlp-defaults-dense": "375c963a1543974d",
        "mlp-lbfgs": "bacb5b6ba2afaf0a",
        "softmax-defaults": "72b4ab8ebc1b0677",
        "softmax-lbfgs": "b57cd21d2ef05fc0",
        "softmax-ovr-early": "6eb7eafb165b24c7",
        # recorded at ccc504f (before issue 20's kernels), identical at
        # 65e9d52 and after b327888 (the epochs' CSR values scaled in NumPy)
        "mlp-csr-standardized": "4db2944020e6ccfd",
        "mlp-csr-standardized-float64": "5f1804f1a10c9263",
    },
}

#: The MLP's defaults before issue 23 changed them: the digests record the
#: kernels' bits, so each configuration stays what it was when recorded.
BEFORE_23 = dict(alpha=1e-4, label_smoothing=0.1)

CONFIGS = {
    "mlp-defaults-dense": lambda: MLPClassifier(
        hidden_layer_sizes=(256,), max_iter=3, random_state=0, **BEFORE_23),
    "mlp-deep-sgd-float64": lambda: MLPClassifier(
        hidden_layer_sizes=(32, 16), solver="sgd", dtype="float64", max_iter=3,
        learning_rate_init=0.05, random_state=0, **BEFORE_23),
    "mlp-csr": lambda: MLPClassifier(hidden_layer_sizes=(32,), max_iter=3,
                                     random_state=0, **BEFORE_23),
    "mlp-csr-standardized": lambda: MLPClassifier(
        hidden_layer_sizes=(32,), max_iter=3, standardize=True, random_state=0,
        **BEFORE_23),
    "mlp-csr-standardized-float64": lambda: MLPClassifier(
        hidden_layer_sizes=(32,), max_iter=3, standardize=True, dtype="float64",
        random_state=0, **BEFORE_23),
    "mlp-lbfgs": lambda: MLPClassifier(hidden_layer_sizes=(16,), solver="lbfgs",
                                       max_iter=5, random_state=0, **BEFORE_23),
    "softmax-defaults": lambda: SoftmaxRegression(max_iter=3, random_state=0),
    "softmax-lbfgs": lambda: SoftmaxRegression(solver="lbfgs", max_iter=5),
    "softmax-ovr-early": lambda: SoftmaxRegression(
        multi_class="ovr", early_stopping=True, max_iter=4, random_state=0),
}


def _host():
    import llvmlite.binding as ll
    import numba

    cpu = os.environ.get("NUMBA_CPU_NAME") or ll.get_host_cpu_name()
    return cpu, numba.__version__


@pytest.fixture(scope="module")
def data():
    X, y = load_mnist(sample=True, return_X_y=True)
    return (X[:1500] / 255.0).astype(np.float32), y[:1500]


def _digest(model, X):
    h = hashlib.sha256()
    for name in ("coefs_", "intercepts_", "coef_", "intercept_"):
        value = getattr(model, name, None)
        if value is None:
            continue
        for a in (value if isinstance(value, list) else [value]):
            h.update(np.ascontiguousarray(a).tobytes())
    for name in ("loss_curve_", "accuracy_curve_", "validation_scores_"):
        values = getattr(model, name, None)
        if values is not None:
            h.update(np.asarray(values, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(model.loss_curve_per_class_).tobytes())
    h.update(model.predict_proba(X[:300]).tobytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_fits_give_the_recorded_bits(name, data):
    X, y = data
    Xfit = sparse.csr_matrix(X) if name.startswith("mlp-csr") else X
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = CONFIGS[name]().fit(Xfit, y)
    digest = _digest(model, Xfit)
    recorded = DIGESTS.get(_host(), {})
    if name not in recorded:
        print(f"\n{_host()} {name!r}: {digest!r}")
        pytest.skip(f"no digest recorded for {name} on {_host()}")
    assert digest == recorded[name], (
        f"{name} gives other bits than recorded on {_host()}: {digest}")
