"""
Loss per class, epoch by epoch
==============================

Every skdigits estimator records, beside the overall ``loss_curve_``, a
per-class loss history: ``loss_curve_per_class_`` holds one row per epoch and
one column per class. Here a one-vs-rest logistic regression is fitted on the
bundled MNIST sample and on the Fashion-MNIST sample, and the loss of each
label's model is drawn against the epoch. Digits 0 and 1 settle early while 8
and 9 stay hard; on Fashion-MNIST, Shirt, Pullover and Coat stay high.
"""

# %%
# Fit one model per dataset
# -------------------------
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from skdigits import SoftmaxRegression
from skdigits.datasets import load_mnist

models, names = {}, {}
for kind in ["digits", "fashion"]:
    data = load_mnist(kind, sample=True)
    X = data.data.astype(np.float32) / 255.0
    clf = SoftmaxRegression(multi_class="ovr", max_iter=30, random_state=0)
    models[kind] = clf.fit(X, data.target)
    names[kind] = data.target_names

# %%
# Read the history
# ----------------
# Row ``e`` is epoch ``e + 1`` and column ``k`` is class ``classes_[k]``. With
# ``multi_class="ovr"`` each value is the binary cross-entropy of that label's
# model over all training images, measured during the epoch, with no penalty
# and no label smoothing. The last row ranks the labels from hardest to
# easiest.
curves = models["fashion"].loss_curve_per_class_
print("epochs x classes:", curves.shape)
for k in np.argsort(curves[-1])[::-1]:
    print(f"{names['fashion'][k]:>12}: {curves[-1, k]:.3f}")

# %%
# Plot it
# -------
# A log scale separates the labels once the fast first epochs are over.
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
for ax, kind in zip(axes, models):
    curves = models[kind].loss_curve_per_class_
    epochs = np.arange(1, len(curves) + 1)
    for k, name in enumerate(names[kind]):
        ax.plot(epochs, curves[:, k], label=str(name))
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("binary loss of the label's model")
    ax.set_title(f"{kind}: hardest = {names[kind][curves[-1].argmax()]}")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))

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
