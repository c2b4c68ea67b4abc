"""Plots of data, predictions and training curves, as display objects.

Each display follows scikit-learn's ``ConfusionMatrixDisplay``: build it with
``from_estimator`` (or ``from_predictions`` / ``from_dataset``), which draws
it; or build it from precomputed values and call ``plot(ax=...)``. After
drawing it holds ``figure_``, ``ax_`` and the artists it made.

- :class:`DigitGridDisplay`: a grid of images with their labels, or with a
  classifier's predictions and its mistakes marked.
- :class:`PerClassLossDisplay`: the loss of each class against the epoch.
- :class:`TrainingCurveDisplay`: the loss or accuracy against the epoch,
  training and validation, with a zoom on the late epochs.
- :func:`plot_training_curves`: loss and accuracy side by side, optionally
  with zoomed panels.

For the confusion matrix use scikit-learn's
:class:`sklearn.metrics.ConfusionMatrixDisplay`, and
:func:`skdigits.metrics.most_confused_pairs` for the pairs of classes most
often confused.

matplotlib is imported only when something is drawn.
"""

from ._digits import DigitGridDisplay
from ._training import PerClassLossDisplay, TrainingCurveDisplay, plot_training_curves

__all__ = [
    "DigitGridDisplay",
    "PerClassLossDisplay",
    "TrainingCurveDisplay",
    "plot_training_curves",
]
