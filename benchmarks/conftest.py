"""The benchmarks run in one process.

setup.cfg's ``addopts`` spread the tests over one pytest-xdist worker per
core (``--numprocesses=auto``), which the benchmarks must not inherit: each
times its sides one after the other with the whole thread budget, so a
second worker running another benchmark on the other core would slow some
sides and not others, and each worker would print half of the table.
"""

import pytest


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """``--numprocesses=auto`` means no workers here (an explicit ``-n 2``
    still starts two). Optional: without pytest-xdist nothing calls it."""
    return 0
