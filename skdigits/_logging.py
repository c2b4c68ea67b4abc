"""Logging and progress reporting for ``verbose`` estimators (library code never
prints)."""

import logging
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
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(handler)
    return log


class Progress:
    """Epoch progress bar (tqdm on stderr) when ``enabled``; a no-op otherwise."""

    def __init__(self, total, enabled, desc):
        self._bar = None
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="epoch", leave=True,
                             file=sys.stderr)

    def update(self, **postfix):
        if self._bar is not None:
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()},
                                  refresh=False)
            self._bar.update(1)

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
