"""Prediction: the model's outputs for every row, through the kernels."""

import numpy as np
from scipy.sparse import issparse

from .._cores import CoreShare
from ._models import predict_blocks
from ._team import Team

__all__ = ["predict_rows"]


def predict_rows(model, theta, X, transform, n_jobs=None):
    """``transform(logits)`` of every row of ``X`` (validated), for the
    parameters ``theta`` of ``model`` (``_engine._models``), in float64.

    The logits are computed in float64 by the kernels, each row on its own,
    so a row's result never depends on its neighbours, the thread count or
    the dtype the model was trained in. A row whose float64 logits are not
    finite (huge but finite inputs) is computed again in extended precision,
    ``transform`` included, and only then rounded to float64.
    """
    if X.shape[1] != model.n_features:  # never reached: n_features_in_ checked
        raise ValueError(f"X has {X.shape[1]} features, the model "
                         f"{model.n_features}.")
    rows = np.arange(X.shape[0], dtype=np.int64)
    n_blocks = predict_blocks(X.shape[0])
    with Team() as team, np.errstate(over="ignore", invalid="ignore"):
        if n_blocks == 1:  # one thread's work: no claim on the cores, no helper
            Z = model.logits(team, 1, X, rows, theta)
        else:
            with CoreShare(n_jobs) as share:
                Z = model.logits(team, min(share.threads(), n_blocks), X, rows,
                                 theta)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.asarray(transform(Z), dtype=np.float64)
        bad = ~np.isfinite(Z).all(axis=1)
        if bad.any():
            rows = X[bad].toarray() if issparse(X) else X[bad]  # a few rows
            exact = model.logits_exact(rows.astype(np.longdouble), theta)
            out[bad] = transform(exact)
    return out
