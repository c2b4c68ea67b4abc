"""
Grid search over MLP sizes, then the per-class curves of the best model
=======================================================================

``MLPClassifier`` is a scikit-learn estimator, so it goes into a ``Pipeline``
and a ``GridSearchCV`` unchanged. The displays accept the fitted search
itself: they unwrap ``best_estimator_`` and the pipeline's last step.
"""

# %%
# The search
# ----------
# Three network sizes, three folds. Each fit already runs on every core the
# process may use (``n_jobs`` of the estimator counts kernel threads), so the
# search itself runs its fits one after the other; on a larger machine,
# ``GridSearchCV(..., n_jobs=k)`` runs ``k`` fits at a time and each fit takes
# its share of the cores.
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skdigits import MLPClassifier
from skdigits.datasets import load_mnist
from skdigits.plotting import PerClassLossDisplay

X, y = load_mnist("digits", "train", sample=True, return_X_y=True)
Xt, yt = load_mnist("digits", "test", sample=True, return_X_y=True)


def scale_pixels(X):
    return np.asarray(X, dtype=np.float32) / 255.0


pipe = make_pipeline(
    FunctionTransformer(scale_pixels),
    MLPClassifier(max_iter=25, random_state=0),
)
sizes = [(32,), (128,), (128, 64)]
grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": sizes}, cv=3)
grid.fit(X, y)
results = zip(grid.cv_results_["params"], grid.cv_results_["mean_test_score"])
for params, score in results:
    print(params["mlpclassifier__hidden_layer_sizes"], f"{score:.3f}")
print("best:", grid.best_params_, "test accuracy", f"{grid.score(Xt, yt):.3f}")

# %%
# The per-class loss of the best model
# ------------------------------------
# The search refits the best model on all the training data; the display
# finds it inside the search and the pipeline. The hardest digits are drawn
# in bold; each legend sits beside its axes, and the constrained layout makes
# room for it.
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4), layout="constrained")
PerClassLossDisplay.from_estimator(grid, highlight=3, ax=ax1)
ax1.set_title("all epochs")
PerClassLossDisplay.from_estimator(grid, highlight=3, start=-10, ax=ax2)
ax2.set_title("last 10 epochs")

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
