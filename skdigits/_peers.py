"""Former name of :mod:`skdigits.benchmark`, kept until the example that
imports it moves to the public module."""

from .benchmark import *  # noqa: F401,F403
from .benchmark import SETTLE_SECONDS  # noqa: F401
