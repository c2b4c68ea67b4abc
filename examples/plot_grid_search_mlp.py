"""
Grid search over MLP sizes, then the per-class curves of the best model
=======================================================================

``MLPClassifier`` is a scikit-learn estimator, so it goes into a ``Pipeline``
and a ``GridSearchCV`` unchanged. The displays accept the fitted search
itself: they unwrap ``best_estimator_`` and the pipeline's last step.
"""

# %%
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

pipe = make_pipeline(
    FunctionTransformer(lambda X: np.asarray(X, dtype=np.float32) / 255.0),
    MLPClassifier(max_iter=25, random_state=0),
)
grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(32,), (128,), (128, 64)]},
                    cv=3, n_jobs=2).fit(X, y)
for params, score in zip(grid.cv_results_["params"], grid.cv_results_["mean_test_score"]):
    print(params["mlpclassifier__hidden_layer_sizes"], f"{score:.3f}")
print("best:", grid.best_params_, "test accuracy", f"{grid.score(Xt, yt):.3f}")

# %%
# The per-class loss of the refitted best model; the hardest digits in bold
# (each legend sits beside its axes; the constrained layout makes room for it)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4), layout="constrained")
PerClassLossDisplay.from_estimator(grid, highlight=3, ax=ax1)
ax1.set_title("all epochs")
PerClassLossDisplay.from_estimator(grid, highlight=3, start=-10, ax=ax2)
ax2.set_title("last 10 epochs")
plt.show()
