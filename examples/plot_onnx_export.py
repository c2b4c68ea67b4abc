"""
Deploy a model with ONNX
========================

Train an MLP on the bundled MNIST sample, export it with
:func:`skdigits.io.to_onnx`, run the graph with onnxruntime, check that it
predicts what skdigits predicts, and time both on 10,000 rows. The graph
runs wherever onnxruntime does (C, C++, C#, Java, JavaScript, phones), with
no Python, NumPy or Numba. Needs ``pip install "skdigits[onnx]"`` (onnx,
skl2onnx and onnxruntime).
"""

# %%
# Train
# -----
import statistics
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import onnxruntime as ort

from skdigits import MLPClassifier
from skdigits.datasets import load_mnist
from skdigits.io import to_onnx

X, y = load_mnist("digits", "train", sample=True, return_X_y=True)
Xt, yt = load_mnist("digits", "test", sample=True, return_X_y=True)
X, Xt = X.astype(np.float32) / 255, Xt.astype(np.float32) / 255
clf = MLPClassifier(max_iter=10, random_state=0).fit(X, y)

# %%
# Export
# ------
# ``X[:1]`` tells the graph its input: float32 rows of 784 pixels. The graph
# computes in float64, as skdigits' ``predict_proba`` does, and the
# standardisation the MLP learnt is already folded into its first layer.
# ``float64=False`` gives a float32 graph instead, faster (both files hold the
# float32 weights, so they weigh the same). To deploy, write
# ``model.SerializeToString()`` to a file (``skdigits export MODEL.skops
# MODEL.onnx`` does it from a saved model).
graphs = {"float64": to_onnx(clf, X[:1]), "float32": to_onnx(clf, X[:1], float64=False)}
for name, graph in graphs.items():
    print(f"{name} arithmetic: {len(graph.SerializeToString()) / 1e3:.0f} kB")

# %%
# Run it and compare
# ------------------
# onnxruntime returns the labels and the probabilities; they agree with
# ``predict`` and ``predict_proba`` to rounding: the default MLP keeps its
# weights in float32, so even the float64 graph is a few times 1e-8 away.
sessions = {name: ort.InferenceSession(graph.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
            for name, graph in graphs.items()}
for put in sessions["float64"].get_inputs() + sessions["float64"].get_outputs():
    print(f"{put.name}: {put.type} of shape {put.shape}")
expected_labels, expected_proba = clf.predict(Xt), clf.predict_proba(Xt)
gaps = {}
for name, sess in sessions.items():
    labels, proba = sess.run(None, {"X": Xt})
    gaps[name] = np.abs(proba - expected_proba).max(axis=1)
    print(f"{name} arithmetic: {np.sum(labels != expected_labels)} labels differ "
          f"of {len(Xt)}, largest probability gap {gaps[name].max():.1e}")

# %%
# Time predict on 10,000 rows
# ---------------------------
# The same rows, one process, the median of 5 runs after a warm-up;
# ``benchmarks/bench_onnx.py`` times the same on the full MNIST test set.
rows = np.tile(Xt, (10_000 // len(Xt) + 1, 1))[:10_000]


def median_ms(fn):
    fn()
    times = []
    for _ in range(5):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return 1e3 * statistics.median(times)


timings = {"skdigits predict": median_ms(lambda: clf.predict(rows))}
for name, sess in sessions.items():
    timings[f"onnxruntime, {name}"] = median_ms(
        lambda s=sess: s.run(None, {"X": rows}))
for name, ms in timings.items():
    print(f"{name:>22}: {ms:6.1f} ms")

# %%
# Plot it
# -------
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.5), layout="constrained")
bins = np.logspace(-10, -5, 41)
for name, gap in gaps.items():
    left.hist(np.maximum(gap, bins[0]), bins=bins, alpha=0.6,
              label=f"{name} arithmetic")
left.set_xscale("log")
left.set_xlabel("largest |onnxruntime - predict_proba| of a row")
left.set_ylabel("test images")
left.legend()
right.barh(list(timings), list(timings.values()), color=["C2", "C0", "C1"])
right.invert_yaxis()
right.set_xlabel("milliseconds to predict 10,000 rows")
fig.suptitle("The exported graph predicts what skdigits predicts")

# %%
# Run as a script, the example shows its figure in a window, or saves it as a
# PNG file in the current folder on a machine without a display.
if "__file__" in globals():
    if plt.gcf().canvas.required_interactive_framework:
        plt.show()
    else:
        for number in plt.get_fignums():
            plt.figure(number).savefig(f"{Path(__file__).stem}_{number}.png")
