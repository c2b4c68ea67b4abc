"""
Speed: skdigits against scikit-learn (and PyTorch, where installed)
===================================================================

The same network (784-128-10, ReLU), the same optimizer (Adam, learning rate
1e-3, batches of 128) and the same number of epochs, fitted one after the
other in this process on the bundled sample. Compile time is kept out by a
warm-up fit. The full-data figures are in the README and ``benchmarks/``;
``skdigits benchmark`` prints the same table on the full datasets.
"""

# %%
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from skdigits import MLPClassifier
from skdigits.benchmark import (
    TorchMLP,
    fit_quietly,
    import_torch,
    skdigits_mlp,
    sklearn_mlp,
)
from skdigits.datasets import load_mnist

X, y = load_mnist("digits", "train", sample=True, return_X_y=True)
Xt, yt = load_mnist("digits", "test", sample=True, return_X_y=True)
X, Xt = X.astype(np.float32) / 255, Xt.astype(np.float32) / 255
EPOCHS, HIDDEN = 10, (128,)

MLPClassifier(hidden_layer_sizes=(8,), max_iter=1).fit(X[:200], y[:200])  # compile
ours = skdigits_mlp(HIDDEN, batch_size=128, learning_rate_init=1e-3, epochs=EPOCHS)
results = {"skdigits": (fit_quietly(ours, X, y), ours.score(Xt, yt))}
peer = sklearn_mlp(HIDDEN, batch_size=128, learning_rate_init=1e-3, epochs=EPOCHS)
results["scikit-learn"] = (fit_quietly(peer, X, y), peer.score(Xt, yt))
torch, why = import_torch()
if torch is not None:
    net = TorchMLP(torch, 784, 10, HIDDEN)
    Xtr, ytr = net.tensors(X, y)
    tic = time.perf_counter()
    for _ in range(EPOCHS):
        net.epoch(Xtr, ytr)
    results["PyTorch"] = (time.perf_counter() - tic, net.accuracy(*net.tensors(Xt, yt)))
else:
    print("PyTorch left out:", why)

for name, (sec, acc) in results.items():
    print(f"{name:>12}: {sec:6.2f} s for {EPOCHS} epochs, test accuracy {acc:.3f}")

# %%
fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
names = list(results)
ax.barh(names, [results[n][0] for n in names], color=["C2", "C0", "C1"][:len(names)])
ax.set_xlabel(f"seconds for {EPOCHS} epochs ({len(X)} images)")
ax.set_title("Same MLP, same training, one process")

# %%
# Run as a script, the example shows its figures in a window, or saves them as
# PNG files in the current folder on a machine without a display. (The gallery
# and notebooks, where ``__file__`` is not defined, draw them inline.)
if "__file__" in globals():
    if plt.gcf().canvas.required_interactive_framework:
        plt.show()
    else:
        for number in plt.get_fignums():
            plt.figure(number).savefig(f"{Path(__file__).stem}_{number}.png")
