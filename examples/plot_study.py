"""
The MNIST / Fashion-MNIST study, plot by plot
=============================================

Everything the ``skdigits report`` command draws, one display at a time, on
the bundled Fashion-MNIST sample: 100 random samples with their labels, the
loss of each label's one-vs-rest model, the MLP's predictions with its
mistakes in red, its loss and accuracy curves with a zoom on the late
epochs, and the confusion matrix with the most confused pairs.
"""

# %%
# Data: the bundled sample, pixels scaled to [0, 1]
# -------------------------------------------------
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import ConfusionMatrixDisplay

from skdigits import MLPClassifier, SoftmaxRegression
from skdigits.datasets import load_mnist
from skdigits.metrics import most_confused_pairs
from skdigits.plotting import (
    DigitGridDisplay,
    PerClassLossDisplay,
    plot_training_curves,
)

train = load_mnist("fashion", "train", sample=True)
test = load_mnist("fashion", "test", sample=True)
names = train.target_names
X = train.data.astype(np.float32) / 255.0
Xt = test.data.astype(np.float32) / 255.0

# %%
# 100 random training samples with their labels
# ---------------------------------------------
DigitGridDisplay.from_dataset(train.data, train.target, label_names=names,
                              random_state=0)

# %%
# The loss of each label's one-vs-rest model
# ------------------------------------------
# A one-vs-rest logistic regression; the three labels with the highest final
# loss are drawn in bold.
ovr = SoftmaxRegression(multi_class="ovr", max_iter=40, random_state=0)
ovr.fit(X, train.target)
per_class = PerClassLossDisplay.from_estimator(ovr, class_names=names, highlight=3)
print("hardest labels:", per_class.hardest_[:3])
print("converged first:", per_class.converged_first_[:3])

# %%
# The MLP's predictions, mistakes in red
# --------------------------------------
# An MLP with a validation split, and 100 test images with its predictions;
# the mistakes read "predicted (true)".
mlp = MLPClassifier(hidden_layer_sizes=(128,), max_iter=30, early_stopping=True,
                    random_state=0).fit(X, train.target)
grid = DigitGridDisplay.from_estimator(mlp, Xt, test.target, label_names=names,
                                       random_state=0)
print(f"{grid.mistakes_.sum()} mistakes in the grid, test accuracy "
      f"{mlp.score(Xt, test.target):.3f}")

# %%
# Loss and accuracy against the epoch
# -----------------------------------
# Training and validation, and the same curves zoomed on the second half of
# training.
plot_training_curves(mlp, zoom_start=mlp.n_iter_ // 2)

# %%
# The confusion matrix and the most confused pairs
# ------------------------------------------------
# scikit-learn's display, and the pairs of classes most often confused,
# counted in both directions.
y_pred = mlp.predict(Xt)
fig, ax = plt.subplots(figsize=(7, 6), layout="constrained")
ConfusionMatrixDisplay.from_predictions(test.target, y_pred, display_labels=names,
                                        ax=ax, xticks_rotation=45, colorbar=False)
for a, b, n in most_confused_pairs(test.target, y_pred, k=3, symmetric=True):
    print(f"{names[a]} / {names[b]}: {n} test images")

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
