"""Shared fixtures: full-data location, matplotlib, small random problems."""

import os
from pathlib import Path

# sklearn's array-API check (NumPy namespace) runs only when scipy is imported
# with this set; without it the check would be skipped.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np
import pytest

_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def full_data_home():
    """Folder named by ``SKDIGITS_DATA`` when it holds both full datasets, else None."""
    root = os.environ.get("SKDIGITS_DATA")
    if not root:
        return None
    root = Path(root).expanduser()
    for sub in ("mnist", "fashion-mnist"):
        for name in _FILES:
            if not ((root / sub / name).exists()
                    or (root / sub / (name + ".gz")).exists()):
                return None
    return root


def pytest_collection_modifyitems(config, items):
    if full_data_home() is not None:
        return
    skip = pytest.mark.skip(
        reason="full MNIST/Fashion-MNIST IDX files not found: set SKDIGITS_DATA to a "
        "folder holding mnist/ and fashion-mnist/ (CI sets it to ../shared/data)"
    )
    for item in items:
        if "full_data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def data_home():
    """Path of the full datasets (tests using it must be marked ``full_data``)."""
    return full_data_home()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def pyplot():
    """matplotlib.pyplot on the Agg backend, all figures closed before and after."""
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.close("all")
    yield plt
    plt.close("all")


#: What each pytest-xdist worker found: its signatures and its complaints.
_WORKERS = []


def _outside_lines(bad):
    lines = []
    if bad:
        lines.append(f"{len(bad)} kernel signature(s) outside the table of "
                     "skdigits/_kernels/_signatures.py (a new specialisation "
                     "compiled: make the input canonical in Python, or add it to "
                     "ALLOWED):")
    for key, sig, why in bad:
        lines.append(f"  {key}({', '.join(sig)})")
        lines.append(f"    not allowed: {why}")
    return lines


@pytest.hookimpl(optionalhook=True)
def pytest_report_teststatus(report, config):
    """A passing test prints nothing unless ``-v``: the README's command
    ran 2,000 tests as 30 lines of dots; now a passing run prints its
    summary line (issue 21: at most 30 lines). Failures, errors, skips and
    expected failures keep their letters, so a problem still shows as it
    happens."""
    if (report.when == "call" and report.passed and not hasattr(report, "wasxfail")
            and config.get_verbosity() <= 0):
        return "passed", "", "PASSED"
    return None


def pytest_testnodedown(node, error):
    """pytest-xdist, in the controller: keep what a worker found."""
    import json

    out = getattr(node, "workeroutput", None) or {}
    if "skdigits_signatures" in out:
        _WORKERS.append((json.loads(out["skdigits_signatures"]),
                         json.loads(out["skdigits_outside"])))


def pytest_sessionfinish(session, exitstatus):
    """Fail the run when a kernel entry point holds a signature outside the
    table of ``skdigits._kernels._signatures``, or two for one value of its
    axes (only what this run compiled or loaded is checked, so any subset of
    the suite can run). Under pytest-xdist each worker checks its own
    signatures against the table (as the tests there may have left it) and
    hands them to the controller, which looks for repeats across all of
    them and fails the run. ``SKDIGITS_SIGNATURES_DUMP=path`` writes the
    signatures held to ``path`` (JSON), to rebuild the table."""
    import json

    if exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.USAGE_ERROR,
                      pytest.ExitCode.NO_TESTS_COLLECTED):
        return
    from skdigits._kernels import _signatures

    observed = _signatures.observed()
    lines = _outside_lines(_signatures.outside_table())
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller decides
        workeroutput["skdigits_signatures"] = json.dumps(observed)
        workeroutput["skdigits_outside"] = json.dumps(lines)
        return
    for signatures, outside in _WORKERS:
        for key, sigs in signatures.items():
            held = observed.setdefault(key, [])
            held.extend(tuple(sig) for sig in sigs if tuple(sig) not in held)
        lines.extend(line for line in outside if line not in lines)
    dump = os.environ.get("SKDIGITS_SIGNATURES_DUMP")
    if dump:
        with open(dump, "w") as f:
            json.dump(observed, f, indent=1)
    twice = _signatures.repeated(observed)
    if not lines and not twice:
        return
    for key, axes, sigs in twice:
        lines.append(f"{key} holds {len(sigs)} signatures for {axes} (one per "
                     "model dtype and kind of data: make the others canonical):")
        lines.extend(f"  {key}({', '.join(sig)})" for sig in sigs)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "kernel signatures outside the table", red=True)
        for line in lines:
            reporter.write_line(line)
    else:
        print("\n".join(lines))
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
