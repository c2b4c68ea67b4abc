"""ONNX export (issue 22): onnxruntime reproduces predict and predict_proba.

The agreement tests run twice: on the bundled sample (always) and on the full
MNIST test set (``full_data``: skipped, with the reason, when SKDIGITS_DATA
does not hold it). Models are small and train for a few epochs: the graph's
fidelity does not depend on how well they learnt.

Tolerances (the issue's): probabilities within 1e-5 of ``predict_proba`` for
a float32 graph input or model, within 1e-9 where the model and the graph are
float64; labels equal ``predict`` but on rows whose top two probabilities tie
within float32 rounding (``TIE``).
"""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

pytest.importorskip("onnx", reason="ONNX export: pip install '.[tests]'")
pytest.importorskip("skl2onnx", reason="ONNX export: pip install '.[tests]'")
ort = pytest.importorskip("onnxruntime", reason="ONNX export: pip install '.[tests]'")

from skdigits import MLPClassifier, SoftmaxRegression  # noqa: E402
from skdigits.cli import main  # noqa: E402
from skdigits.datasets import load_mnist  # noqa: E402
from skdigits.io import dump, to_onnx  # noqa: E402

TOL32, TOL64 = 1e-5, 1e-9
#: Rows whose top two probabilities are this close may swap labels.
TIE = 4 * float(np.finfo(np.float32).eps)
NAMES = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                  "eight", "nine"])


@pytest.fixture(scope="module", params=[
    "sample", pytest.param("mnist", marks=pytest.mark.full_data)])
def digits(request):
    """6000 (sample: 3000) training rows and the test set (MNIST: 10,000
    rows), pixels / 255 in float32 and float64."""
    sample = request.param == "sample"
    X, y = load_mnist(subset="train", sample=sample, return_X_y=True,
                      download_if_missing=False)
    Xt, yt = load_mnist(subset="test", sample=sample, return_X_y=True,
                        download_if_missing=False)
    X, y = X[:6000] / 255.0, y[:6000]
    Xt = Xt / 255.0
    return dict(X64=X, X32=X.astype(np.float32), y=y, Xt64=Xt,
                Xt32=Xt.astype(np.float32), yt=yt)


def _run(model, X):
    sess = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: X})


def _agreement(est, model, X):
    """``(max |dp|, label mismatches, tied rows, mismatches off the ties)``
    between onnxruntime and ``est`` on ``X``."""
    labels, proba = _run(model, X)
    P = est.predict_proba(X)
    expected = est.predict(X)
    assert proba.shape == P.shape and labels.shape == expected.shape
    assert proba.dtype == (np.float64 if X.dtype == np.float64 else np.float32)
    dp = float(np.abs(proba - P).max())
    if expected.ndim == 2:  # multi-label: each label on its own, tie at 1/2
        tied = np.abs(P - 0.5) <= TIE
        wrong = labels != expected
    else:
        top2 = np.sort(P, axis=1)[:, -2:]
        tied = top2[:, 1] - top2[:, 0] <= TIE
        wrong = np.asarray(labels) != expected
    return dp, int(wrong.sum()), int(tied.sum()), int((wrong & ~tied).sum())


def _check(est, X, tol, **options):
    model = to_onnx(est, X[:5], **options)
    dp, wrong, tied, untied_wrong = _agreement(est, model, X)
    assert dp <= tol, (dp, tol)
    assert untied_wrong == 0, (wrong, tied)
    return model


def test_defaults(digits):
    d = digits
    mlp = MLPClassifier(max_iter=2, random_state=0).fit(d["X32"], d["y"])
    assert mlp.input_mean_ is not None  # standardised: folded into the graph
    model = _check(mlp, d["Xt32"], TOL32)
    assert [o.name for o in model.graph.output] == ["label", "probabilities"]
    # a float64 input of a float32 model: float64 arithmetic on the float32
    # weights (rounded after folding the standardisation), far within 1e-5
    _check(mlp, d["Xt64"], TOL32)
    # float32 arithmetic, as skl2onnx does for scikit-learn's MLP
    _check(mlp, d["Xt32"], TOL32, float64=False)
    soft = SoftmaxRegression(max_iter=3, random_state=0).fit(d["X32"], d["y"])
    _check(soft, d["Xt32"], TOL32)


def test_deep_tanh_float64(digits):
    d = digits
    mlp = MLPClassifier((64, 32, 16), activation="tanh", dtype="float64",
                        max_iter=3, random_state=0).fit(d["X64"], d["y"])
    model = _check(mlp, d["Xt64"], TOL64)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("MatMul") == 4 and ops.count("Tanh") == 3


@pytest.mark.parametrize("multi_class", ["multinomial", "ovr"])
def test_softmax_regression_modes(digits, multi_class):
    d = digits
    soft = SoftmaxRegression(multi_class=multi_class, max_iter=3,
                             random_state=0).fit(d["X64"], d["y"])
    _check(soft, d["Xt64"], TOL64)
    _check(soft, d["Xt32"], TOL32)


def test_scaler_pca_mlp_pipeline(digits):
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    d = digits
    pipe = make_pipeline(StandardScaler(), PCA(40, random_state=0),
                         MLPClassifier((32,), dtype="float64", max_iter=3,
                                       random_state=0)).fit(d["X64"], d["y"])
    _check(pipe, d["Xt64"], TOL64)
    _check(pipe, d["Xt32"], TOL32)  # the scaler and PCA in float32 on both sides


def test_string_labels(digits):
    d = digits
    mlp = MLPClassifier((32,), max_iter=3, random_state=0).fit(d["X32"],
                                                              NAMES[d["y"]])
    _check(mlp, d["Xt32"], TOL32)
    # binary, strings: one logistic output becomes two probability columns
    odd = np.where(d["y"] % 2, "odd", "even")
    soft = SoftmaxRegression(max_iter=3, random_state=0).fit(d["X32"], odd)
    _check(soft, d["Xt32"], TOL32)
    # zipmap: one {class: probability} per row
    model = to_onnx(mlp, d["Xt32"][:1], zipmap=True)
    labels, dicts = _run(model, d["Xt32"][:3])
    assert list(labels) == list(mlp.predict(d["Xt32"][:3]))
    assert sorted(dicts[0]) == sorted(NAMES)
    seven = list(mlp.classes_).index("seven")  # classes_ sorts the names
    assert dicts[0]["seven"] == pytest.approx(
        mlp.predict_proba(d["Xt32"][:1])[0, seven], abs=TOL32)


def test_multilabel(digits):
    d = digits
    y = d["y"]
    Y = np.column_stack([y % 2, y >= 5, y == 0]).astype(int)
    mlp = MLPClassifier((32,), max_iter=3, random_state=0).fit(d["X32"], Y)
    model = _check(mlp, d["Xt32"], TOL32)
    labels, proba = _run(model, d["Xt32"][:4])
    assert labels.dtype == np.int64 and labels.shape == (4, 3)
    ovr = SoftmaxRegression(multi_class="ovr", max_iter=3,
                            random_state=0).fit(d["X64"], Y)
    _check(ovr, d["Xt64"], TOL64)


# ---------------------------------------------------------------- small problems


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 12))
    y = np.argmax(X[:, :3] + 0.3 * rng.normal(size=(240, 3)), axis=1)
    return X, y


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "logistic",
                                        "identity"])
def test_every_activation_float64(small, activation):
    X, y = small
    mlp = MLPClassifier((9, 7), activation=activation, dtype="float64",
                        max_iter=20, learning_rate_init=0.05,
                        random_state=0).fit(X, y)
    _check(mlp, X * 3, TOL64)  # inputs beyond the training range


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_features=st.integers(1, 6),
       n_classes=st.integers(2, 4),
       model=st.sampled_from(["multinomial", "ovr", "mlp"]),
       target=st.sampled_from(["classes", "multi-label"]),
       depth=st.integers(1, 3), activation=st.sampled_from(
           ["identity", "logistic", "tanh", "relu", "leaky_relu"]),
       dtype=st.sampled_from(["float32", "float64"]), standardize=st.booleans(),
       sparse=st.booleans(), input64=st.booleans(), float64=st.booleans())
def test_random_small_models_agree(seed, n_features, n_classes, model, target, depth,
                                   activation, dtype, standardize, sparse, input64,
                                   float64):
    """Any model kind, depth, activation, dtype, standardisation, sparse or
    dense training data, on random small problems: the graph agrees with
    predict and predict_proba, within 1e-9 where the model and the input are
    float64."""
    from scipy.sparse import csr_matrix

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(30, n_features)).astype(dtype)
    if target == "multi-label":
        y = rng.integers(0, 2, size=(30, n_classes))
        model = "ovr" if model == "multinomial" else model
    else:
        y = rng.permutation(np.arange(30) % n_classes)
    if model == "mlp":
        est = MLPClassifier((3,) * depth, activation=activation, dtype=dtype,
                            standardize=standardize, max_iter=3, random_state=0)
    else:  # its dtype follows the data's
        est = SoftmaxRegression(multi_class=model, max_iter=3, random_state=0)
    est.fit(csr_matrix(X) if sparse else X, y)
    X = X.astype(np.float64 if input64 else np.float32)
    exact = input64 and dtype == "float64"  # a float64 input: float64 arithmetic
    _check(est, X, TOL64 if exact else TOL32, float64=float64)


def test_binary_mlp_and_integer_labels_of_any_kind(small):
    X, y = small
    for target in (y == 1, (y == 1) * 10 - 3, (y == 1).astype(np.float64) + 1.0):
        mlp = MLPClassifier((5,), dtype="float64", max_iter=5,
                            random_state=0).fit(X, target)
        model = _check(mlp, X, TOL64)
        labels, _ = _run(model, X)
        assert labels.dtype == np.int64
        assert np.array_equal(labels, mlp.predict(X).astype(np.int64))


_LABELS = st.one_of(
    st.tuples(st.sampled_from(["int8", "int64", "uint8", "uint64"]),
              st.lists(st.integers(0, 2**64 - 1), min_size=2, max_size=4)),
    st.tuples(st.just("float64"),  # scikit-learn takes whole floats to 2**63
              st.lists(st.integers(-2**62, 2**62), min_size=2, max_size=4)),
    st.tuples(st.just("str"),
              st.lists(st.text(min_size=1, max_size=3), min_size=2, max_size=4)))


@settings(max_examples=25, deadline=None)
@given(drawn=_LABELS)
@example(drawn=("uint64", [2**63, 2**63 + 5]))
@example(drawn=("uint64", [3, 2**64 - 1]))
@example(drawn=("int64", [-2**63, 2**63 - 1]))
@example(drawn=("float64", [-2**62, 2**53 + 2]))
def test_labels_of_any_type_export_exactly_or_are_refused(small, drawn):
    """Integer, whole-float and string labels come out of the graph as
    ``predict`` gives them (int64 or string); labels an int64 cannot hold
    (from 2**63 on, below -2**63) are refused in one line, never wrapped
    around."""
    X, _ = small
    dtype, raw = drawn
    if dtype == "str":
        labels = np.array(raw)
    elif dtype == "float64":
        labels = np.array([float(v) for v in raw])
    else:  # the drawn integers, wrapped into the dtype
        info = np.iinfo(dtype)
        span = int(info.max) + 1 - int(info.min)
        labels = np.array([v % span + int(info.min) for v in raw], dtype=dtype)
    classes = np.unique(labels)
    if len(classes) < 2:
        return
    y = classes[np.arange(len(X)) % len(classes)]
    clf = SoftmaxRegression(max_iter=1, random_state=0).fit(X, y)
    exact = dtype == "str" or all(-2**63 <= int(c) < 2**63 for c in classes.tolist())
    if not exact:
        with pytest.raises(ValueError, match="cannot export") as exc:
            to_onnx(clf, X)
        assert "\n" not in str(exc.value)
        return
    labels, _ = _run(to_onnx(clf, X), X)
    expected = clf.predict(X)
    if dtype == "str":
        assert list(labels) == list(expected)
    else:
        assert labels.dtype == np.int64
        assert [int(v) for v in labels] == [int(v) for v in expected.tolist()]


def test_skl2onnx_classifier_options(small):
    """``nocl``: the label is the class's index; ``output_class_labels``: a
    third output lists the classes; ``zipmap="columns"``: one output each."""
    X, y = small
    X = X.astype(np.float32)
    clf = SoftmaxRegression(max_iter=2, random_state=0).fit(X, np.array(
        ["cat", "cow", "dog"])[y])
    index = np.searchsorted(clf.classes_, clf.predict(X))
    labels, _ = _run(to_onnx(clf, X, options={id(clf): {"nocl": True}}), X)
    assert labels.dtype == np.int64 and np.array_equal(labels, index)
    outs = _run(to_onnx(clf, X, options={id(clf): {"output_class_labels": True}}), X)
    assert list(outs[2]) == ["cat", "cow", "dog"]
    labels, *columns = _run(to_onnx(clf, X, zipmap="columns"), X)
    assert np.abs(np.column_stack(columns) - clf.predict_proba(X)).max() <= TOL32


def test_raw_scores_and_calibrated_classifier(small):
    """``raw_scores``: the second output is ``decision_function`` (for two
    classes ``(-z, z)``, as skl2onnx's linear classifiers give it); the
    converter of ``CalibratedClassifierCV`` asks for it, and the calibrated
    probabilities then agree (with ``method="sigmoid"``: skl2onnx's isotonic
    calibration is up to 0.07 off scikit-learn's for its own
    LogisticRegression too)."""
    from sklearn.calibration import CalibratedClassifierCV

    X, y = small
    for target in (y, y == 1):
        clf = SoftmaxRegression(multi_class="ovr", max_iter=3,
                                random_state=0).fit(X, target)
        _, scores = _run(to_onnx(clf, X, options={id(clf): {"raw_scores": True}}),
                         X)
        z = clf.decision_function(X)
        expected = np.column_stack([-z, z]) if z.ndim == 1 else z
        assert np.abs(scores - expected).max() <= TOL64 * np.abs(z).max()
        cal = CalibratedClassifierCV(clf, cv=2).fit(X, target)
        X32 = X.astype(np.float32)
        labels, proba = _run(to_onnx(cal, X32), X32)
        assert np.abs(proba - cal.predict_proba(X32)).max() <= TOL32
        assert np.array_equal(labels, cal.predict(X32))


@pytest.mark.parametrize("wrapper", ["grid", "one-vs-rest", "bagging", "stacking"])
def test_skl2onnx_wrappers_of_skdigits_models(small, wrapper):
    """The scikit-learn wrappers skl2onnx converts take skdigits' models (the
    docs name them): a search exports its best_estimator_, the ensembles
    call skdigits' converter for each member."""
    from sklearn.ensemble import BaggingClassifier, StackingClassifier
    from sklearn.model_selection import GridSearchCV
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = small
    X = X.astype(np.float32)
    labels = np.array(["cat", "cow", "dog"])[y]
    soft = SoftmaxRegression(max_iter=2, random_state=0)
    mlp = MLPClassifier((4,), max_iter=2, random_state=0)
    est = {
        "grid": GridSearchCV(make_pipeline(StandardScaler(), mlp),
                             {"mlpclassifier__alpha": [1e-4, 1e-2]}, cv=2),
        "one-vs-rest": OneVsRestClassifier(soft),
        "bagging": BaggingClassifier(soft, n_estimators=3, random_state=0),
        "stacking": StackingClassifier([("soft", soft), ("mlp", mlp)], cv=2),
    }[wrapper].fit(X, labels)
    _check(est, X, TOL32)


def test_column_transformer_and_dataframe(small):
    pd = pytest.importorskip("pandas")
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = small
    df = pd.DataFrame({"a": X[:, 0].astype(np.float32),
                       "b": X[:, 1].astype(np.float32),
                       "c": np.array(["x", "y", "z"])[y]})
    ct = ColumnTransformer([("num", StandardScaler(), ["a", "b"]),
                            ("cat", OneHotEncoder(), ["c"])])  # sparse output
    pipe = make_pipeline(ct, MLPClassifier((6,), max_iter=5, random_state=0))
    pipe.fit(df, y)
    model = to_onnx(pipe, df[:2])
    sess = ort.InferenceSession(model.SerializeToString())
    assert [i.name for i in sess.get_inputs()] == ["a", "b", "c"]
    labels, proba = sess.run(None, {"a": df[["a"]].to_numpy(),
                                    "b": df[["b"]].to_numpy(),
                                    "c": df[["c"]].to_numpy().astype(object)})
    assert np.abs(proba - pipe.predict_proba(df)).max() <= TOL32
    assert np.array_equal(labels, pipe.predict(df))


def test_text_pipeline_from_a_sample_of_strings():
    """A sparse-producing text pipeline (TfidfVectorizer) exports from a
    sample of documents, 1-D as scikit-learn takes them: the graph takes one
    string per row. (``locale``: skl2onnx's tokenizer asks for en_US.UTF-8,
    which a bare container may lack.)"""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    docs = np.array(["the cat sat", "a dog ran", "the dog sat", "a cat ran fast",
                     "cats and dogs", "the end"] * 5)
    y = np.arange(len(docs)) % 3
    tfidf = TfidfVectorizer()
    pipe = make_pipeline(tfidf, SoftmaxRegression(max_iter=3, random_state=0))
    pipe.fit(docs, y)
    model = to_onnx(pipe, docs[:1], options={id(tfidf): {"locale": "C"}})
    labels, proba = _run(model, docs.reshape(-1, 1))
    assert np.abs(proba - pipe.predict_proba(docs)).max() <= TOL32
    assert np.array_equal(labels, pipe.predict(docs))


def test_skl2onnx_converts_skdigits_once_skdigits_io_is_imported():
    """In a fresh process, in both import orders: importing skdigits.io
    imports neither onnx nor skl2onnx, and skl2onnx.to_onnx then converts a
    Pipeline holding a skdigits estimator. A look for skl2onnx before it is
    imported (``importlib.util.find_spec``, as a library checking for an
    optional package does) does not stop the registration."""
    code = """
import importlib.util
import sys
if sys.argv[1] == "io-first":
    import skdigits.io
    assert "skl2onnx" not in sys.modules and "onnx" not in sys.modules
    assert importlib.util.find_spec("skl2onnx") is not None
    assert importlib.util.find_spec("skl2onnx") is not None
    import skl2onnx
else:
    import skl2onnx
    import skdigits.io
import numpy as np, onnxruntime as ort
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skdigits import SoftmaxRegression
rng = np.random.default_rng(0)
X = rng.random((40, 4)).astype(np.float32)
y = rng.integers(0, 3, 40)
pipe = make_pipeline(StandardScaler(), SoftmaxRegression(max_iter=2)).fit(X, y)
model = skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False})
labels, proba = ort.InferenceSession(model.SerializeToString()).run(None, {"X": X})
assert (labels == pipe.predict(X)).all()
assert abs(proba - pipe.predict_proba(X)).max() < 1e-5
print("ok")
"""
    for order in ("io-first", "skl2onnx-first"):
        out = subprocess.run([sys.executable, "-c", code, order],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0 and out.stdout.strip() == "ok", (order, out.stderr)


@pytest.fixture(scope="module")
def kinds(small):
    """One fitted model of each output kind, float64, on ``small``."""
    X, y = small
    Y = np.column_stack([y == 0, y == 1, X[:, 5] > 0]).astype(int)
    soft = dict(max_iter=5, random_state=0)
    return {
        "multinomial": SoftmaxRegression(**soft).fit(X, y),
        "ovr": SoftmaxRegression(multi_class="ovr", **soft).fit(X, y),
        "binary": SoftmaxRegression(**soft).fit(X, y == 1),
        "multi-label": SoftmaxRegression(multi_class="ovr", **soft).fit(X, Y),
        "mlp": MLPClassifier((7,), dtype="float64", **soft).fit(X, y),
    }


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(["multinomial", "ovr", "binary", "multi-label", "mlp"]),
       exponent=st.integers(-30, 150), row=st.integers(0, 239))
def test_far_away_inputs_give_predicts_probabilities(kinds, small, kind, exponent,
                                                     row):
    """Rows scaled by up to 1e150: the float64 graph agrees with
    predict_proba (one-vs-rest's normalised sigmoids too, whose logits all
    lie far below zero on such rows), and the float32 graph's probabilities
    stay finite and sum to 1 where its arithmetic does not overflow."""
    est = kinds[kind]
    X = small[0][row:row + 8] * 10.0 ** exponent
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        dp, wrong, tied, untied_wrong = _agreement(est, to_onnx(est, X), X)
    assert dp <= TOL64 and untied_wrong == 0, (dp, wrong, tied)
    if exponent <= 30:  # float32 rows and weights hold the logits
        X32 = X.astype(np.float32)
        _, proba = _run(to_onnx(est, X32, float64=False), X32)
        assert np.isfinite(proba).all()
        if kind != "multi-label":
            assert np.abs(proba.sum(axis=1) - 1).max() <= TOL32


# ---------------------------------------------------------------- refusals


@pytest.fixture(scope="module")
def soft(small):
    X, y = small
    return SoftmaxRegression(max_iter=2, random_state=0).fit(X.astype(np.float32), y)


def test_a_sparse_sample_is_refused_in_one_line(soft, small):
    from scipy.sparse import csr_matrix

    with pytest.raises(TypeError, match="dense tensor") as exc:
        to_onnx(soft, csr_matrix(small[0]))
    assert "\n" not in str(exc.value)


def test_a_model_fitted_on_sparse_data_exports_for_dense_rows(small):
    from scipy.sparse import csr_matrix

    X, y = small
    Xs = csr_matrix(np.where(np.abs(X) > 1, X, 0.0))
    mlp = MLPClassifier((6,), dtype="float64", max_iter=5,
                        random_state=0).fit(Xs, y)
    _check(mlp, Xs.toarray(), TOL64)


def test_a_step_without_converter_is_refused_in_one_line(small):
    from sklearn.base import BaseEstimator, TransformerMixin
    from sklearn.pipeline import make_pipeline

    class Mine(TransformerMixin, BaseEstimator):
        def fit(self, X, y=None):
            return self

        def transform(self, X):
            return X

    X, y = small
    pipe = make_pipeline(Mine(), SoftmaxRegression(max_iter=2)).fit(X, y)
    with pytest.raises(TypeError, match="Mine") as exc:
        to_onnx(pipe, X)
    assert "\n" not in str(exc.value) and "converter" in str(exc.value)


def test_zipmap_of_float64_probabilities_is_refused(soft, small, kinds):
    with pytest.raises(ValueError, match="ZipMap takes float32 only"):
        to_onnx(soft, small[0], zipmap=True)
    # zipmap="columns" needs no ZipMap: one float64 output per class
    est, X = kinds["ovr"], small[0]
    labels, *columns = _run(to_onnx(est, X, zipmap="columns"), X)
    assert all(c.dtype == np.float64 for c in columns)
    assert np.abs(np.column_stack(columns) - est.predict_proba(X)).max() <= TOL64


def test_unfitted_and_mislabelled_models_are_refused(soft, small):
    import copy

    from sklearn.exceptions import NotFittedError
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    with pytest.raises(NotFittedError):
        to_onnx(MLPClassifier(), small[0])
    # a pipeline failed inside skl2onnx on its unfitted first step
    with pytest.raises(NotFittedError):
        to_onnx(make_pipeline(MinMaxScaler(), SoftmaxRegression()), small[0])
    with pytest.raises(NotFittedError):  # the last step fitted: not enough
        to_onnx(make_pipeline(MinMaxScaler(), soft), small[0])
    with pytest.raises(TypeError, match="not an estimator"):
        to_onnx("hello", small[0])
    odd = copy.deepcopy(soft)
    odd.classes_ = np.array([0.5, 1.5, 2.5])
    with pytest.raises(ValueError, match="not whole numbers"):
        to_onnx(odd, small[0])
    odd.classes_ = np.array([0.0, 1.0, 2.0**64])  # fit refuses such labels
    with pytest.raises(ValueError, match="beyond the int64 range"):
        to_onnx(odd, small[0])
    with pytest.raises(ValueError, match="takes 12 features"):
        to_onnx(soft, small[0][:, :5])
    edited = copy.deepcopy(soft)
    edited.coef_ = edited.coef_ * 2  # no longer the weights it predicts with
    with pytest.raises(ValueError, match="cannot export"):
        to_onnx(edited, small[0])


def test_target_opset(soft, small):
    from skdigits._onnx import MIN_OPSET

    X = small[0].astype(np.float32)
    model = _check(soft, X, TOL32, target_opset=MIN_OPSET)
    assert [op.version for op in model.opset_import if op.domain == ""] == [MIN_OPSET]
    for opset in (MIN_OPSET - 1, 99):
        with pytest.raises(ValueError, match=f"target_opset={opset} is out of range"):
            to_onnx(soft, X, target_opset=opset)


def test_missing_packages_name_the_extra(soft, small, monkeypatch, capsys, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: (
        None if name == "skl2onnx" else real(name, *a)))
    with pytest.raises(ImportError, match=r'skl2onnx.*pip install "skdigits\[onnx\]"'):
        to_onnx(soft, small[0])
    path = tmp_path / "m.skops"
    dump(soft, path)
    assert main(["export", str(path), str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'pip install "skdigits[onnx]"' in err[0]
    assert not (tmp_path / "m.onnx").exists()


# ---------------------------------------------------------------- the command


def test_export_command_writes_a_graph_that_agrees(soft, small, tmp_path, capsys):
    X, y = small
    path, out = tmp_path / "m.skops", tmp_path / "m.onnx"
    dump(soft, path)
    assert main(["export", str(path), str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(f"{path} -> {out}: ")
    assert "float64 arithmetic" in lines[0]
    assert f"{os.path.getsize(out)} bytes" in lines[0]  # a 12 x 3 model
    assert lines[1].split() == ["input", "X", "float", "[N,", "12]"]
    assert lines[2].split() == ["output", "label", "int64", "[N]"]
    assert lines[3].split() == ["output", "probabilities", "float", "[N,", "3]"]
    assert sorted(os.listdir(tmp_path)) == ["m.onnx", "m.skops"]  # no temp file left
    import onnx

    dp, wrong, tied, untied = _agreement(soft, onnx.load(str(out)),
                                         X.astype(np.float32))
    assert dp <= TOL32 and untied == 0
    # float64 input: float64 probabilities
    assert main(["export", str(path), str(out), "--input-dtype", "float64"]) == 0
    assert "double [N, 3]" in capsys.readouterr().out
    dp, *_ = _agreement(soft, onnx.load(str(out)), X)
    assert dp <= TOL32  # a float32 model


def test_export_command_keeps_the_safety_rules(soft, tmp_path, capsys):
    import joblib

    pkl, out = tmp_path / "m.joblib", tmp_path / "m.onnx"
    joblib.dump(soft, pkl)
    assert main(["export", str(pkl), str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--trust-pickle" in err[0] and not out.exists()
    assert main(["export", str(pkl), str(out), "--trust-pickle"]) == 0
    capsys.readouterr()
    assert main(["export", str(pkl), str(tmp_path)]) == 1
    assert "is a folder" in capsys.readouterr().err
    assert main(["export", str(pkl), str(pkl), "--trust-pickle"]) == 1
    assert "the model file itself" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["export", str(pkl), str(out), "--zipmap", "--input-dtype", "float64"])
    assert exc.value.code == 2


def test_export_command_bad_arguments_exit_2(soft, tmp_path, capsys):
    """An empty OUTPUT and an opset the graphs cannot have are bad arguments:
    usage and exit code 2, before anything is read or written."""
    from skdigits._onnx import MIN_OPSET

    path = tmp_path / "m.skops"
    dump(soft, path)
    for argv in (["export", str(path), ""],
                 ["export", str(path), str(tmp_path / "m.onnx"), "--opset",
                  str(MIN_OPSET - 1)],
                 ["export", str(path), str(tmp_path / "m.onnx"), "--opset", "99"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("skdigits") and "error:" in err[-1], argv
    assert sorted(os.listdir(tmp_path)) == ["m.skops"]


def test_export_command_of_a_scikit_learn_model(small, tmp_path, capsys):
    """A model file holding no skdigits estimator exports through skl2onnx;
    the command claims nothing of skdigits' float64 arithmetic for it."""
    from sklearn.linear_model import LogisticRegression

    X, y = small
    path, out = tmp_path / "lr.skops", tmp_path / "lr.onnx"
    dump(LogisticRegression().fit(X, y), path)
    assert main(["export", str(path), str(out)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"{path} -> {out}: ") and "arithmetic" not in first


def test_export_help_exits_0(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["export", "--help"])
    assert exc.value.code == 0
    assert "--trust-pickle" in capsys.readouterr().out


def test_no_warning_on_export(soft, small):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        to_onnx(soft, small[0].astype(np.float32))
