"""Reach the fitted skdigits estimator inside what a user passes around:
a pipeline (its last step) or a hyper-parameter search (its
``best_estimator_``). Shared by the displays and the command line."""

from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

__all__ = ["fitted_final_estimator"]

_ESTIMATORS = (
    "a fitted skdigits estimator (SoftmaxRegression, MLPClassifier), alone, as "
    "the last step of a Pipeline, or as the best_estimator_ of a GridSearchCV "
    "or RandomizedSearchCV"
)


def fitted_final_estimator(estimator, required, caller):
    """The fitted estimator that holds the training curves.

    Unwraps pipelines (their last step) and hyper-parameter searches (their
    ``best_estimator_``), as often as they are nested, then checks that the
    result is fitted and has the attributes ``required``.

    Raises
    ------
    NotFittedError
        If the estimator (or the search) is not fitted.
    ValueError
        If a search was fitted with ``refit=False``, or a pipeline ends in
        ``"passthrough"``.
    TypeError
        If the fitted estimator records no such curves.
    """
    est = estimator
    while True:
        if isinstance(est, Pipeline):
            est = est.steps[-1][1]
            if est is None or (isinstance(est, str) and est == "passthrough"):
                raise ValueError(
                    f"{caller}: the pipeline's last step is {est!r}; it needs "
                    f"{_ESTIMATORS}."
                )
            continue
        if hasattr(est, "best_estimator_"):
            est = est.best_estimator_
            continue
        if hasattr(est, "cv_results_") or (
                hasattr(est, "param_grid") or hasattr(est, "param_distributions")):
            # a search without best_estimator_: not fitted, or refit=False
            try:
                check_is_fitted(est, "cv_results_")
            except NotFittedError as exc:
                raise NotFittedError(f"{caller} needs {_ESTIMATORS}: {exc}") from exc
            raise ValueError(
                f"{caller}: {type(est).__name__} has no best_estimator_ (it was "
                "fitted with refit=False); refit it, or pass a fitted estimator "
                "with the best parameters."
            )
        break
    try:
        check_is_fitted(est)
    except NotFittedError as exc:
        raise NotFittedError(f"{caller} needs {_ESTIMATORS}: {exc}") from exc
    missing = [name for name in required if not hasattr(est, name)]
    if missing:
        raise TypeError(
            f"{caller}: {type(est).__name__} has no {', '.join(missing)}; it "
            f"needs {_ESTIMATORS}."
        )
    return est
