"""Logging and progress reporting for ``verbose`` estimators (library code never
prints)."""

import logging
import os
import sys

logger = logging.getLogger("skdigits")
logger.addHandler(logging.NullHandler())


def _has_real_handler(log):
    while log is not None:
        if any(not isinstance(h, logging.NullHandler) for h in log.handlers):
            return True
        if not log.propagate:
            return False
        log = log.parent
    return False


class BarAwareHandler(logging.StreamHandler):
    """A stream handler that writes around the progress bars on its stream:
    a record logged while a bar is drawn (the one-time compile notice, a
    warning) gets a line of its own, and the bar is drawn again below it,
    instead of the record running on from the bar's line (tqdm's ``write``)."""

    def emit(self, record):
        tqdm_module = sys.modules.get("tqdm")  # no tqdm loaded: no bar drawn
        if tqdm_module is not None and getattr(tqdm_module.tqdm, "_instances", None):
            try:
                tqdm_module.tqdm.write(self.format(record), file=self.stream)
                self.flush()
            except Exception:  # as logging does: never raise from a handler
                self.handleError(record)
            return
        super().emit(record)


def verbose_logger(name, verbose):
    """Logger ``name`` (below ``skdigits``) that shows INFO records when ``verbose``.

    With ``verbose`` and no handler configured by the application, a stderr
    handler is attached to the ``skdigits`` logger once, so ``verbose=1`` shows
    its lines as users of scikit-learn expect. An application that configures
    logging itself keeps full control.
    """
    log = logging.getLogger(name)
    if verbose:
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
        if not _has_real_handler(log):
            handler = BarAwareHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(handler)
    return log


def on_terminal(stream=None):
    """Whether ``stream`` (default: ``sys.stderr``) shows a progress bar as
    one line redrawn in place: a terminal, or a Jupyter kernel's output.
    A pipe, a file or CI's log would keep every redraw."""
    stream = sys.stderr if stream is None else stream
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    return type(stream).__module__.startswith("ipykernel")


def kept_epoch(est):
    """The epoch whose weights ``est`` keeps (1-based, on its curves): the
    best validation score's with early stopping, else the last."""
    scores = getattr(est, "validation_scores_", None)
    if scores:
        return max(range(len(scores)), key=scores.__getitem__) + 1
    return len(getattr(est, "loss_curve_", None) or [])


def stopping_target(est):
    """What early stopping watched, in words (``"validation accuracy"``,
    ``"validation loss"``, ``"validation f1_macro"``...): the estimator's
    ``scoring``; None when it kept no validation scores."""
    if not getattr(est, "validation_scores_", None):
        return None
    name = getattr(est, "_validation_scoring", None) or "accuracy"
    return f"validation {name}"


def fit_outcome(est, planned, ran):
    """How a fit ended, in a few words for the end of its progress bar or
    its one line: ``ran`` of ``planned`` epochs this call; why it stopped
    sooner (``est._stopped_by``); the epoch it keeps when not the last.
    E.g. ``"stopped early at epoch 16, keeps epoch 5"``."""
    last = len(getattr(est, "loss_curve_", None) or []) or ran
    kept = kept_epoch(est) or last
    why = getattr(est, "_stopped_by", None)
    if why == "tol" and getattr(est, "validation_scores_", None):
        text = f"stopped early at epoch {last}"
    elif why == "tol":
        text = f"stopped at epoch {last}, the training loss no longer falls"
    elif why == "callback":
        text = f"stopped by a callback at epoch {last}"
    elif ran < planned:
        text = f"stopped after {ran} of {planned} epochs"
    else:
        text = f"{ran} epochs"
    if kept != last:
        text += f", keeps epoch {kept}"
    return text


def terminal_width(stream=None):
    """Columns of the terminal ``stream`` (default: ``sys.stderr``) shows:
    its size, else ``$COLUMNS``, else 80 (a pseudo-terminal may report 0)."""
    stream = sys.stderr if stream is None else stream
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        columns = 0
    if columns <= 0:
        try:
            columns = int(os.environ.get("COLUMNS", ""))
        except ValueError:
            columns = 0
    return columns if columns > 0 else 80


#: The bar while it runs: short enough for a bar of 10 or more characters
#: at 80 columns with a description of up to 34 characters.
BAR_FORMAT = ("{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
              "[{elapsed}<{remaining}{postfix}]")


class Progress:
    """Epoch progress bar (tqdm on stderr) when ``enabled`` and stderr is a
    terminal (see :func:`on_terminal`); a no-op otherwise.

    ``update`` shows the validation accuracy when given, else the loss;
    ``finish`` replaces the bar by one line that says how the fit ended, so a
    fit that stops early does not leave a bar frozen part way.
    """

    def __init__(self, total, enabled, desc):
        self._bar = None
        self.desc = desc
        self.total = total
        self.n = 0
        if enabled and on_terminal():
            from tqdm.auto import tqdm

            # a terminal's size in characters, as tqdm's guess may be 0 or
            # -1 on a pseudo-terminal and then hide the bar (a notebook's bar
            # sizes itself); the rows only matter for stacked bars
            size = {"ncols": terminal_width(), "nrows": 24} \
                if sys.stderr.isatty() else {}
            self._bar = tqdm(total=total, desc=desc, unit="epoch", leave=True,
                             file=sys.stderr, bar_format=BAR_FORMAT, **size)

    @property
    def shown(self):
        """Whether a bar is drawn."""
        return self._bar is not None

    def update(self, **figures):
        self.n += 1
        if self._bar is not None:
            if figures.get("val_accuracy") is not None:
                shown = f"val acc {figures['val_accuracy']:.4f}"
            elif figures.get("loss") is not None:
                shown = f"loss {figures['loss']:.4g}"
            else:
                shown = ""
            self._bar.set_postfix_str(shown, refresh=False)
            self._bar.update(1)

    def finish(self, text):
        """End the bar with ``desc: text`` in place of the bar."""
        if self._bar is not None:
            self._bar.bar_format = "{desc}"
            self._bar.set_description_str(f"{self.desc}: {text}", refresh=False)
        self.close()

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def caller_stacklevel():
    """The ``stacklevel`` that makes a warning name the first frame outside
    skdigits, scikit-learn and joblib: the user's line that called ``fit``
    (or ``GridSearchCV.fit``), however many wrappers (scikit-learn's
    ``_fit_context``, joblib's loop, the estimator's own layers) lie
    between. Call it from the function that warns."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not (module in ("skdigits", "sklearn", "joblib", "contextlib")
                or module.startswith(("skdigits.", "sklearn.", "joblib."))):
            return level
        frame = frame.f_back
        level += 1
    return 1
