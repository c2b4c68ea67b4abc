"""How many BLAS threads an epoch kernel gets, chosen by measuring.

An epoch's matrix products are per minibatch (128 x 784 by 784 x 256 with the
MLP defaults). On an idle 2-core machine two OpenBLAS threads run an MNIST
epoch in 0.5 s against 0.77 s for one; but OpenBLAS threads spin-wait for each
other, so when another process holds a core the same epoch takes 16 s with
two threads and 0.8 s with one. Neither fixed choice is right, so a large
epoch is run in chunks of minibatches and each chunk uses the setting that has
been faster per minibatch so far, trying the other one now and then on a short
chunk. Results do not depend on the choice: the chunks hold the same
minibatches in the same order, with the same learning rates.

Small epochs (fewer than ``MIN_BATCHES_TO_TUNE`` minibatches) run in one call
with one BLAS thread: there is little to gain and nothing to measure.

The minibatches are the same either way, but a float32 product can round its
last bit differently with another thread count, and a learning rate
interpolated within a chunk can differ from the whole-epoch one in its last
bit, so two tuned fits with the same ``random_state`` may differ at the
rounding level (their accuracies by about 0.001 after 13 MNIST epochs). Setting the environment variable
``SKDIGITS_BLAS_THREADS`` to a number fixes the thread count instead, which
makes repeated fits bit-identical; ``auto`` (or unset) tunes.
"""

import math
import os
import threading
import time

#: Minibatches per chunk while exploiting, and per exploratory chunk.
CHUNK_BATCHES = 48
PROBE_BATCHES = 8
#: Explore the other setting after this many chunks: soon while the two
#: measured within ``CLOSE`` of each other (a short probe is noisy), rarely
#: once the loser is far behind (each probe of it costs that much).
EXPLORE_EVERY = 24
EXPLORE_EVERY_CLOSE = 4
CLOSE = 1.5
MIN_BATCHES_TO_TUNE = 4 * CHUNK_BATCHES

#: The settings compared: one thread, or the library's own default.
SINGLE, DEFAULT = 1, None

_CONTROLLER = None
_LOCK = threading.Lock()
_ACTIVE = 0          # epoch chunks running now, in all threads
_ORIGINAL = None     # the limiter that knows the limits from before them


class blas_limit:
    """Context manager: BLAS at ``limit`` threads (``None``: the library's
    default) while a chunk runs.

    The thread count is a process-wide setting, so concurrent fits (in
    threads: the kernels release the GIL) share one bookkeeping: the first
    chunk to start records the limits in force, chunks that overlap another
    one run with a single thread each (two fits on two cores), and the last
    to finish puts the recorded limits back.
    """

    def __init__(self, limit):
        self.limit = limit

    def __enter__(self):
        global _CONTROLLER, _ACTIVE, _ORIGINAL
        with _LOCK:
            if _CONTROLLER is None:  # inspects the loaded libraries once
                from threadpoolctl import ThreadpoolController

                _CONTROLLER = ThreadpoolController()
            _ACTIVE += 1
            limit = self.limit if _ACTIVE == 1 else SINGLE
            limiter = _CONTROLLER.limit(limits=limit, user_api="blas")
            if _ACTIVE == 1:
                _ORIGINAL = limiter
        return self

    def __exit__(self, *exc):
        global _ACTIVE, _ORIGINAL
        with _LOCK:
            _ACTIVE -= 1
            if _ACTIVE == 0 and _ORIGINAL is not None:
                _ORIGINAL.restore_original_limits()
                _ORIGINAL = None
        return False


ENV_VAR = "SKDIGITS_BLAS_THREADS"


def fixed_threads():
    """The thread count fixed by ``SKDIGITS_BLAS_THREADS``, or None to tune."""
    text = os.environ.get(ENV_VAR, "auto").strip().lower()
    if text in ("", "auto"):
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{ENV_VAR} must be 'auto' or a positive integer, got {text!r}")
    return value


class BlasTuner:
    """Per-estimator memory of how fast each setting ran (seconds per
    minibatch, exponentially averaged), and the chunk schedule."""

    def __init__(self):
        self.cost = {SINGLE: None, DEFAULT: None}
        self.chunks_since_explore = 0

    def _choice(self):
        if self.cost[SINGLE] is None:
            return SINGLE, True
        if self.cost[DEFAULT] is None:
            return DEFAULT, True
        best = min(self.cost, key=self.cost.get)
        other = DEFAULT if best == SINGLE else SINGLE
        close = self.cost[other] < CLOSE * self.cost[best]
        if self.chunks_since_explore >= (EXPLORE_EVERY_CLOSE if close else EXPLORE_EVERY):
            return (DEFAULT if best == SINGLE else SINGLE), True
        return best, False

    def _record(self, setting, seconds, n_batches, explored):
        per_batch = seconds / max(n_batches, 1)
        old = self.cost[setting]
        self.cost[setting] = per_batch if old is None else 0.5 * old + 0.5 * per_batch
        self.chunks_since_explore = 0 if explored else self.chunks_since_explore + 1

    def run_epoch(self, run_chunk, n_rows, batch_size, lr0, lr1):
        """Run one epoch through ``run_chunk(start, stop, lr_a, lr_b)``, which
        trains on rows ``order[start:stop]`` with the learning rate moving from
        ``lr_a`` to ``lr_b``, under the BLAS setting chosen for each chunk."""
        n_batches = math.ceil(n_rows / batch_size)
        fixed = fixed_threads()
        if fixed is not None:
            with blas_limit(fixed):
                run_chunk(0, n_rows, lr0, lr1)
            return
        if n_batches < MIN_BATCHES_TO_TUNE:
            with blas_limit(SINGLE):
                run_chunk(0, n_rows, lr0, lr1)
            return
        k = 0
        while k < n_batches:
            setting, explore = self._choice()
            size = PROBE_BATCHES if explore else CHUNK_BATCHES
            k1 = min(n_batches, k + size)
            if n_batches - k1 < PROBE_BATCHES:  # no tiny tail chunk
                k1 = n_batches
            lr_a = lr0 + (lr1 - lr0) * k / n_batches
            lr_b = lr0 + (lr1 - lr0) * k1 / n_batches
            tic = time.perf_counter()
            with blas_limit(setting):
                run_chunk(k * batch_size, min(k1 * batch_size, n_rows), lr_a, lr_b)
            self._record(setting, time.perf_counter() - tic, k1 - k, explore)
            k = k1
