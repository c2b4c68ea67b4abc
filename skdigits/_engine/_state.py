"""What training hands back to the estimator.

The engine never sets an estimator's attributes. ``TrainState`` holds
everything a ``fit`` or ``partial_fit`` call updates (the weights, the
optimizer moments and step count, the shuffle's random state, the counters,
the early-stopping figures, every curve, and the public weights unpacked
from the parameters), under the names of the fitted attributes they become.
It starts from the estimator's own values (a first fit's initial weights, or
the state a warm start continues), the engine updates it epoch by epoch, and
the estimator copies it into its attributes in one step (``publish``): after
every recorded epoch, so that callbacks see the model of that epoch, and
once training ends.
"""

from ._history import _CURVES, _VALUES

__all__ = ["TrainState"]

#: The fitted attributes training updates: the arrays the kernels update in
#: place, the values, the curves, why it stopped and (lbfgs, MLP) the final
#: objective.
NAMES = ("_theta", "_opt_state", "_rng_state", *_VALUES, *_CURVES, "_stopped_by",
         "loss_")


class TrainState:
    """The training state of one call, under the fitted attributes' names.

    Parameters
    ----------
    estimator : object
        The estimator whose fitted values training starts from (read, never
        written). Its arrays are shared, not copied: the kernels update them
        in place, as training always did.

    Attributes
    ----------
    weights : list of (W, b) or None
        The public weights of the parameters, as the model unpacks them
        (set by the engine whenever the parameters are recorded).
    """

    def __init__(self, estimator):
        d = estimator.__dict__
        for name in NAMES:
            if name in d:
                self.__dict__[name] = d[name]
        self.weights = None

    def fitted(self):
        """``(values, absent)``: the attributes to set, by name, and the
        names of the curves this state does not have (a fit without
        validation has no validation loss curves), to remove."""
        values = {name: value for name, value in self.__dict__.items()
                  if name in NAMES}
        absent = [name for name in _CURVES if name not in values]
        return values, absent
