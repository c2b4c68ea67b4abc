"""
Loss per class, epoch by epoch
==============================

Fit a one-vs-rest logistic regression on the bundled MNIST sample and on the
Fashion-MNIST sample, then plot the loss of each label's model against the
epoch. Digits 0 and 1 settle early while 8 and 9 stay hard; on Fashion-MNIST,
Shirt, Pullover and Coat stay high.
"""

# %%
# Fit one model per dataset
# -------------------------
import matplotlib.pyplot as plt
import numpy as np

from skdigits import SoftmaxRegression
from skdigits.datasets import load_mnist

fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=False)
for ax, kind in zip(axes, ["digits", "fashion"]):
    data = load_mnist(kind, sample=True)
    X = data.data.astype(np.float32) / 255.0
    clf = SoftmaxRegression(multi_class="ovr", max_iter=30, random_state=0)
    clf.fit(X, data.target)

    # %%
    # ``loss_curve_per_class_`` has one row per epoch and one column per class
    curves = clf.loss_curve_per_class_
    epochs = np.arange(1, clf.n_iter_ + 1)
    for k, name in enumerate(data.target_names):
        ax.plot(epochs, curves[:, k], label=str(name))
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("binary loss of the label's model")
    ax.set_title(f"{kind}: hardest = {data.target_names[curves[-1].argmax()]}")
    ax.legend(fontsize=7, ncol=2)
fig.tight_layout()
plt.show()
