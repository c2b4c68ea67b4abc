"""A model file is trusted for nothing it says: its attributes are checked
against each other before any kernel reads them, its declared sizes before
anything is inflated, and a damaged file gets a message that says so.

The property test mutates every fitted attribute of saved models and runs in
a subprocess, so that a crash (a kernel reading outside an array) fails the
test instead of killing the test run.
"""

import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdigits import MLPClassifier, SoftmaxRegression
from skdigits._fitted import InconsistentModelError
from skdigits.io import ModelFileError, dump, load

X, y = load_digits(return_X_y=True)
X = X[:300] / 16.0
y = y[:300]


def _fit(est, X=X, y=y):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


def _run(code, timeout=600):
    """Run ``code`` in a fresh interpreter; returns (returncode, output)."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    return proc.returncode, proc.stdout + proc.stderr


# ---------------------------------------------------------------- the lie
def test_a_file_lying_about_its_feature_count_is_refused(tmp_path):
    # the reproducer: an MLP fitted on 10 features saved as one of
    # 784; `skdigits evaluate` aborted with "double free or corruption"
    path = tmp_path / "liar.skops"
    model = _fit(MLPClassifier(hidden_layer_sizes=(8,), max_iter=2,
                               random_state=0), X[:, :10], y)
    model.n_features_in_ = 784
    dump(model, path)
    with pytest.raises(ModelFileError, match="n_features_in_=784"):
        load(path)
    proc = subprocess.run([sys.executable, "-m", "skdigits", "evaluate", str(path),
                           "--sample"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "n_features_in_=784" in lines[0], proc.stderr


@pytest.mark.parametrize("make", [
    lambda: SoftmaxRegression(max_iter=2, random_state=0),
    lambda: MLPClassifier(hidden_layer_sizes=(8, 4), max_iter=2, random_state=0),
], ids=["softmax", "mlp"])
def test_an_attribute_set_by_hand_is_caught_before_any_kernel(make):
    model = _fit(make())
    model.n_features_in_ = 784
    with pytest.raises(InconsistentModelError, match="n_features_in_"):
        model.predict(np.zeros((3, 784)))
    model = _fit(make())
    model._theta = np.concatenate([model._theta, model._theta])  # too long
    with pytest.raises(InconsistentModelError, match="_theta has shape .*, not"):
        model.predict_proba(X)
    model = _fit(make())
    model._theta = model._theta[::2]  # a strided view of the right length?
    with pytest.raises(InconsistentModelError, match="_theta"):
        model.predict_proba(X)


def test_a_lying_file_cannot_be_trained_further(tmp_path):
    # warm_start and partial_fit continue from the kept state: a kernel
    # must not continue from a vector shorter than the layout
    model = _fit(MLPClassifier(hidden_layer_sizes=(8,), max_iter=2,
                               random_state=0, warm_start=True))
    model._opt_state = (model._opt_state[0][:5], model._opt_state[1])
    with pytest.raises(InconsistentModelError, match=r"_opt_state\[0\] has shape"):
        model.partial_fit(X, y)
    with pytest.raises(InconsistentModelError, match=r"_opt_state\[0\] has shape"):
        model.fit(X, y)


@pytest.mark.parametrize("make, params", [
    (lambda: MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0),
     {"hidden_layer_sizes": (64, 32), "standardize": False}),
    (lambda: SoftmaxRegression(max_iter=2, random_state=0),
     {"multi_class": "ovr"}),
])
def test_parameters_changed_after_fit_leave_the_model_usable(make, params):
    # set_params changes the next fit, not the fitted model: prediction goes
    # on with the fitted structure, as in scikit-learn
    model = _fit(make())
    before = model.predict_proba(X)
    model.set_params(**params)
    np.testing.assert_array_equal(model.predict_proba(X), before)


def test_weights_that_are_not_those_the_model_predicts_with(tmp_path):
    # coefs_ is what a user reads; _theta is what the kernels use: a file
    # where they differ would describe one model and predict with another
    model = _fit(MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0))
    model.coefs_[0] = model.coefs_[0] * 2
    dump(model, tmp_path / "m.skops")
    with pytest.raises(ModelFileError, match="coefs_ does not match"):
        load(tmp_path / "m.skops")


@pytest.mark.parametrize("make, data", [
    (lambda: SoftmaxRegression(max_iter=2, random_state=0), "digits"),
    (lambda: SoftmaxRegression(multi_class="ovr", early_stopping=True, max_iter=3,
                               random_state=0), "digits"),
    (lambda: SoftmaxRegression(solver="lbfgs", max_iter=5), "binary"),
    (lambda: SoftmaxRegression(multi_class="ovr", max_iter=2, random_state=0),
     "multilabel"),
    (lambda: MLPClassifier(hidden_layer_sizes=(8, 4), activation="tanh",
                           dtype="float64", early_stopping=True, max_iter=3,
                           random_state=0), "digits"),
    (lambda: MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=5,
                           random_state=0), "strings"),
    (lambda: MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0),
     "multilabel"),
    (lambda: MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0),
     "sparse"),
    (lambda: make_pipeline(StandardScaler(), MLPClassifier(
        hidden_layer_sizes=(8,), max_iter=2, random_state=0)), "digits"),
    (lambda: GridSearchCV(SoftmaxRegression(max_iter=2, random_state=0),
                          {"alpha": [1e-4, 1e-3]}, cv=2), "digits"),
], ids=["softmax", "ovr-early", "lbfgs-binary", "ovr-multilabel", "mlp-deep-tanh",
        "mlp-lbfgs-strings", "mlp-multilabel", "mlp-sparse", "pipeline", "search"])
def test_every_real_model_passes_the_checks(make, data, tmp_path):
    # the checks refuse no model that skdigits fitted itself
    from scipy import sparse

    Xd, yd = X, y
    if data == "binary":
        yd = (y > 4).astype(int)
    elif data == "strings":
        yd = np.array(["zero", "one", "two", "three", "four", "five", "six",
                       "seven", "eight", "nine"])[y]
    elif data == "multilabel":
        yd = np.column_stack([y % 2, y > 4, y == 0]).astype(int)
    elif data == "sparse":
        Xd = sparse.csr_matrix(X)
    model = _fit(make(), Xd, yd)
    model.predict(Xd)
    dump(model, tmp_path / "m.skops")
    again = load(tmp_path / "m.skops", trusted=[
        "sklearn.metrics._scorer._PassthroughScorer",
        "sklearn.model_selection._split.StratifiedKFold"])
    np.testing.assert_array_equal(again.predict_proba(Xd), model.predict_proba(Xd))


# ---------------------------------------------------------------- the fuzz
FUZZ = r"""
import copy, io, os, sys, tempfile, warnings
import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st
from sklearn.datasets import load_digits
from skdigits import MLPClassifier, SoftmaxRegression
from skdigits.io import dump, load

warnings.simplefilter("ignore")
X, y = load_digits(return_X_y=True)
X, y = X[:200] / 16.0, y[:200]
Xt = X[:50]
ML = np.column_stack([y % 2, y > 4]).astype(int)
BASES = [
    SoftmaxRegression(max_iter=2, random_state=0).fit(X.astype(np.float32), y),
    SoftmaxRegression(multi_class="ovr", early_stopping=True, max_iter=3,
                      random_state=0).fit(X, y),
    SoftmaxRegression(max_iter=2, random_state=0).fit(X, y > 4),
    MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X, y),
    MLPClassifier(hidden_layer_sizes=(6, 5), dtype="float64", activation="tanh",
                  early_stopping=True, max_iter=3, random_state=0).fit(X, y),
    MLPClassifier(hidden_layer_sizes=(7,), standardize=False, max_iter=2,
                  random_state=0).fit(X, ML),
]
PARAMS = ["hidden_layer_sizes", "activation", "multi_class", "standardize",
          "dtype"]


def reference(est, X):
    # probabilities from the public weights, in float64 NumPy
    if isinstance(est, SoftmaxRegression):
        Z = X @ est.coef_.T.astype(np.float64) + est.intercept_
    else:
        act = {"relu": lambda a: np.maximum(a, 0), "tanh": np.tanh,
               "identity": lambda a: a, "logistic": lambda a: 1 / (1 + np.exp(-a)),
               "leaky_relu": lambda a: np.where(a > 0, a, 0.01 * a)}[est.activation]
        A = X
        for l, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
            A = A @ W.astype(np.float64) + b
            if l < len(est.coefs_) - 1:
                A = act(A)
        Z = A
    if est._multilabel:
        return 1 / (1 + np.exp(-Z))
    if Z.shape[1] == 1:
        p = 1 / (1 + np.exp(-Z[:, 0]))
        return np.column_stack([1 - p, p])
    if est._loss_code == 1:  # one-vs-rest
        P = 1 / (1 + np.exp(-Z))
        return P / P.sum(axis=1, keepdims=True)
    Z = Z - Z.max(axis=1, keepdims=True)
    return np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)


def attributes(est):
    names = [k for k in vars(est) if k not in est.get_params()]
    return sorted(names) + [p for p in PARAMS if p in est.get_params()]


def mutate(value, how, k, other):
    if how == "none":
        return None
    if how == "swap":
        return other
    if how == "int":
        return k
    if how == "string":
        return "relu" if k % 2 else "x" * (k % 7)
    if isinstance(value, (list, tuple)):
        items = list(value)
        if how == "shorter":
            return type(value)(items[:max(0, len(items) - 1 - k % 3)])
        if how == "longer":
            return type(value)(items + items[:1] * (1 + k % 3))
        if how == "element" and items:
            items[k % len(items)] = mutate(items[k % len(items)], "nan", k, other)
            return type(value)(items)
        return value
    if isinstance(value, np.ndarray):
        flat = value.ravel()
        if how == "shorter":
            return flat[:max(0, flat.size - 1 - k % 5)].reshape(-1)
        if how == "longer":
            return np.concatenate([flat, flat[:1 + k % 5]])
        if how == "reshape":
            return flat.reshape(1, -1) if value.ndim == 1 else flat
        if how == "dtype":
            return value.astype([np.float32, np.float64, np.int64, np.uint8,
                                 np.int32][k % 5])
        if how == "nan" and value.dtype.kind == "f" and value.size:
            out = value.copy()
            out.flat[k % value.size] = [np.nan, np.inf, -np.inf, 1e300][k % 4]
            return out
        if how == "scale" and value.dtype.kind in "fi" and value.size:
            return value * (k % 4 + 2)
        if how == "big" and value.dtype.kind == "i" and value.size:
            out = value.copy()
            out.flat[k % value.size] = [0, -1, 2**31, 2**40, 10**6][k % 5]
            return out
        return value
    if isinstance(value, (bool, np.bool_)):
        return not value
    if isinstance(value, (int, np.integer)):
        return [0, -1, 1, 2, 3, 784, 2**31, 2**40, int(value) + 1][k % 9]
    if isinstance(value, float):
        return [np.nan, -1.0, 0.0, 1e300][k % 4]
    return value


HOWS = ["none", "swap", "int", "string", "shorter", "longer", "element",
        "reshape", "dtype", "nan", "scale", "big", "same"]
tmp = tempfile.mkdtemp()
counts = {"refused": 0, "worked": 0}


def try_one(index, name, how, k, other):
    base = BASES[index]
    est = copy.deepcopy(base)
    new = getattr(est, name) if how == "same" else mutate(getattr(est, name), how,
                                                          k, copy.deepcopy(other))
    print(f"case {index} {name} {how} {k}", file=sys.stderr, flush=True)
    setattr(est, name, new)
    path = os.path.join(tmp, "m.skops")
    try:
        dump(est, path)
    except (ValueError, TypeError):
        counts["refused"] += 1
        return
    try:
        again = load(path)
        proba = again.predict_proba(Xt)
    except ValueError:
        counts["refused"] += 1
        return
    # it worked: then it must be right
    n_cols = len(again.classes_)
    assert proba.shape == (len(Xt), n_cols), proba.shape
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba, reference(again, Xt), rtol=1e-3, atol=1e-5)
    pred = again.predict(Xt)
    if not again._multilabel:
        assert np.isin(pred, again.classes_).all()
    counts["worked"] += 1


# every attribute of every model, each with one mutation (in turn)
turn = 0
for index, base in enumerate(BASES):
    names = attributes(base)
    for name in names:
        try_one(index, name, HOWS[turn % len(HOWS)], turn,
                getattr(base, names[(turn * 7) % len(names)]))
        turn += 1


# then mutations drawn at random
@settings(max_examples=int(sys.argv[1]), deadline=None, derandomize=True,
          database=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, len(BASES) - 1), st.data())
def check(index, data):
    names = attributes(BASES[index])
    try_one(index, data.draw(st.sampled_from(names)),
            data.draw(st.sampled_from(HOWS)), data.draw(st.integers(0, 1000)),
            getattr(BASES[index], data.draw(st.sampled_from(names))))


check()
print("FUZZ-OK", counts["refused"], counts["worked"])
"""


def test_mutated_model_files_are_refused_or_work_never_crash(tmp_path):
    pytest.importorskip("hypothesis")
    code = FUZZ.replace("int(sys.argv[1])", "300")
    rc, out = _run(code)
    last = [line for line in out.splitlines() if line.startswith("case")][-1:]
    assert rc == 0 and "FUZZ-OK" in out, (
        f"exit code {rc} after {last}:\n{out[-3000:]}")
    refused, worked = map(int, out.split("FUZZ-OK")[1].split()[:2])
    assert refused > 50 and worked > 20  # both outcomes were exercised


# ---------------------------------------------------------------- sizes
def _rewrite(path, out, member, payload, new_name=None, module=None):
    """Copy the zip ``path`` to ``out`` with ``member`` written by
    ``payload(fh)`` (deflated), renamed ``new_name`` in the zip and the
    schema when given; ``module`` replaces the estimator's module name in
    the schema."""
    new_name = new_name or member
    with zipfile.ZipFile(path) as src:
        members = {i.filename: src.read(i.filename) for i in src.infolist()}
    schema = json.loads(members["schema.json"].decode().replace(member, new_name))
    if module is not None:
        schema["__module__"] = module
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, data in members.items():
            if name == member:
                with dst.open(new_name, "w", force_zip64=True) as fh:
                    payload(fh)
            else:
                dst.writestr(name, data)


def _big_theta(n):
    """A payload: the ``.npy`` of ``n`` float64 zeros, written in chunks."""
    def payload(fh):
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "<f8", "fortran_order": False, "shape": (n,)})
        fh.write(header.getvalue())
        chunk = bytes(1 << 22)
        for _ in range(n * 8 // len(chunk)):
            fh.write(chunk)
    return payload


def _theta_member(path):
    with zipfile.ZipFile(path) as archive:
        schema = json.loads(archive.read("schema.json"))
    return schema["content"]["content"]["_theta"]["file"]


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path):
    # a file of about 1 MB declaring a 1 GiB array; it was inflated (2.36 GB
    # peak) and then evaluated
    import tracemalloc

    model = _fit(SoftmaxRegression(max_iter=2, random_state=0))
    dump(model, tmp_path / "m.skops")
    _rewrite(tmp_path / "m.skops", tmp_path / "bomb.skops",
             _theta_member(tmp_path / "m.skops"), _big_theta((1 << 30) // 8))
    assert os.path.getsize(tmp_path / "bomb.skops") < 2 << 20
    tracemalloc.start()
    with pytest.raises(ModelFileError, match="134,217,728 values, more than"):
        load(tmp_path / "bomb.skops")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 << 20


def test_a_header_that_disagrees_with_the_declared_size_is_refused(tmp_path):
    model = _fit(SoftmaxRegression(max_iter=2, random_state=0))
    dump(model, tmp_path / "m.skops")
    theta = model._theta

    def short_header(fh):  # says 10 values, holds them all
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": theta.dtype.str, "fortran_order": False,
                     "shape": (10,)})
        fh.write(header.getvalue() + theta.tobytes())

    _rewrite(tmp_path / "m.skops", tmp_path / "bad.skops",
             _theta_member(tmp_path / "m.skops"), short_header)
    with pytest.raises(ModelFileError, match="declares .* bytes but its header"):
        load(tmp_path / "bad.skops")


# ---------------------------------------------------------------- messages
def test_a_truncated_skops_file_is_called_damaged_not_a_pickle(tmp_path):
    model = _fit(SoftmaxRegression(max_iter=2, random_state=0))
    dump(model, tmp_path / "m.skops")
    data = (tmp_path / "m.skops").read_bytes()
    (tmp_path / "cut.skops").write_bytes(data[:len(data) // 2])
    with pytest.raises(ModelFileError, match="damaged or truncated") as info:
        load(tmp_path / "cut.skops")
    assert "pickle" not in str(info.value)
    proc = subprocess.run([sys.executable, "-m", "skdigits", "evaluate",
                           str(tmp_path / "cut.skops"), "--sample"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "truncated" in proc.stderr and "--trust-pickle" not in proc.stderr


def test_dump_of_a_deeply_nested_object_says_why(tmp_path):
    model = _fit(SoftmaxRegression(max_iter=2, random_state=0))
    deep = []
    for _ in range(5000):
        deep = [deep]
    model.callbacks = deep
    with pytest.raises(ValueError, match="nested too deeply"):
        dump(model, tmp_path / "m.skops")
    assert not (tmp_path / "m.skops").exists()


# ---------------------------------------------------------------- review
def test_a_model_saved_before_multilabel_targets_still_loads(tmp_path):
    # files of older versions lack _multilabel and _n_epochs_total; they
    # predict in memory, so they must load
    model = _fit(MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0))
    expected = model.predict_proba(X)
    del model._multilabel, model._n_epochs_total
    dump(model, tmp_path / "old.skops")
    np.testing.assert_array_equal(load(tmp_path / "old.skops").predict_proba(X),
                                  expected)


def _with_metadata(tmp_path, **changes):
    """A softmax model file whose metadata member is rewritten with
    ``changes``."""
    from skdigits.io import METADATA_MEMBER

    model = _fit(SoftmaxRegression(max_iter=2, random_state=0))
    dump(model, tmp_path / "m.skops")
    meta = json.loads(zipfile.ZipFile(tmp_path / "m.skops").read(METADATA_MEMBER))
    meta.update(changes)
    _rewrite(tmp_path / "m.skops", tmp_path / "changed.skops", METADATA_MEMBER,
             lambda fh: fh.write(json.dumps(meta).encode()))
    return tmp_path / "changed.skops"


def test_a_later_file_format_is_refused(tmp_path):
    """The format number saved with every model was never read: a file of a
    later format loaded without a word."""
    from skdigits.io import FORMAT_VERSION

    path = _with_metadata(tmp_path, format=FORMAT_VERSION + 98,
                          skdigits_version="9.0")
    with pytest.raises(ModelFileError, match=f"format {FORMAT_VERSION + 98} "
                                             r"\(skdigits 9.0\).*upgrade skdigits"):
        load(path)


@pytest.mark.parametrize("fmt", ["idx-ubyte", 0, True, None])
def test_a_format_that_is_no_version_number_still_loads(fmt, tmp_path):
    """Before dump reserved the key, a user's metadata could overwrite the
    format with anything; such files load as they always did."""
    model, meta = load(_with_metadata(tmp_path, format=fmt), return_metadata=True)
    assert meta["format"] == fmt and model.n_iter_ == 2


@pytest.mark.parametrize("key", ["format", "skdigits_version", "estimator"])
def test_dump_refuses_metadata_that_would_overwrite_the_files_own(key, tmp_path):
    model = _fit(SoftmaxRegression(max_iter=2, random_state=0))
    with pytest.raises(ValueError, match=f"may not set '{key}'"):
        dump(model, tmp_path / "m.skops", metadata={key: 2, "note": "x"})
    assert not (tmp_path / "m.skops").exists()


@pytest.mark.parametrize("name", ["_n_outputs", "_loss_code", "_theta", "classes_"])
def test_a_missing_attribute_is_a_model_file_error(name, tmp_path):
    model = _fit(SoftmaxRegression(max_iter=2, random_state=0))
    delattr(model, name)
    dump(model, tmp_path / "m.skops")
    with pytest.raises(ModelFileError, match=f"{name} is missing"):
        load(tmp_path / "m.skops")


@pytest.mark.parametrize("rename, module", [(True, None), (False, "skdigits")],
                         ids=["member-not-named-npy", "module-without-dot"])
def test_the_size_check_cannot_be_sidestepped(rename, module, tmp_path):
    # a member not named .npy, or an estimator node whose module skops still
    # resolves, escaped the structural caps: the array was inflated first
    import tracemalloc

    model = _fit(SoftmaxRegression(max_iter=2, random_state=0))
    dump(model, tmp_path / "m.skops")
    member = _theta_member(tmp_path / "m.skops")
    new_name = member.replace(".npy", ".bin") if rename else member
    _rewrite(tmp_path / "m.skops", tmp_path / "bomb.skops", member,
             _big_theta(1 << 25), new_name=new_name, module=module)
    tracemalloc.start()
    with pytest.raises(ModelFileError, match="more than the"):
        load(tmp_path / "bomb.skops")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 32 << 20


def test_a_member_no_object_uses_is_refused(tmp_path):
    model = _fit(SoftmaxRegression(max_iter=2, random_state=0))
    dump(model, tmp_path / "m.skops")
    with zipfile.ZipFile(tmp_path / "m.skops", "a") as archive:
        archive.writestr("extra.bin", b"\0" * 1000)
    with pytest.raises(ModelFileError, match="no object uses"):
        load(tmp_path / "m.skops")


def test_estimators_held_by_plain_objects_are_checked_at_load(tmp_path):
    # CalibratedClassifierCV keeps its fitted estimators in plain objects
    from sklearn.calibration import CalibratedClassifierCV

    model = _fit(CalibratedClassifierCV(SoftmaxRegression(max_iter=2,
                                                          random_state=0), cv=2))
    inner = model.calibrated_classifiers_[0].estimator
    inner.coef_ = inner.coef_ * 2
    dump(model, tmp_path / "m.skops")
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=tmp_path / "m.skops")
    with pytest.raises(ModelFileError, match="coef_ does not match"):
        load(tmp_path / "m.skops", trusted=untrusted)
