"""``skdigits benchmark`` as it runs (issue 21, item 6): a status line per side
on a terminal, one log line per side elsewhere, nothing with ``-q``; the load
other processes put on the CPUs, read through the core budget's meter, marks
the ratios taken under it.

The fits are cut to two iterations on a few hundred rows and the settling
pauses to nothing: what is tested is what the command says, not the timings.
"""

import logging
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skdigits import _cores, benchmark
from skdigits.cli import main

SIDE_LINE = "benchmark {}/{}: {}"


@pytest.fixture
def fast(monkeypatch):
    """No settling pauses; every timed fit is two iterations on its rows."""
    monkeypatch.setattr(benchmark, "SETTLE_SECONDS", 0.0)

    def two_iterations(model, X, y):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.set_params(max_iter=2).fit(X, y)
        return 0.5

    monkeypatch.setattr(benchmark, "fit_quietly", two_iterations)


class FakeMeter:
    """The core budget's meter on a 2-CPU machine beside a neighbour that keeps
    ``busy`` CPUs busy: always, or for a moment (a test calls ``ran()``)."""

    busy = 1.8
    always = False
    _ran = False

    def __init__(self):
        self.cpus = 2

    @classmethod
    def ran(cls):
        cls._ran = True

    def others(self):  # the CPUs busy since the last reading
        ran, FakeMeter._ran = FakeMeter._ran, False
        return FakeMeter.busy if (ran or FakeMeter.always) else 0.0


@pytest.fixture
def meter(monkeypatch):
    monkeypatch.setattr(FakeMeter, "always", False)
    monkeypatch.setattr(FakeMeter, "_ran", False)
    monkeypatch.setattr(_cores, "_CpuMeter", FakeMeter)
    return FakeMeter


def _small():
    from skdigits.datasets import load_mnist

    X, y = load_mnist(sample=True, return_X_y=True)
    return X[:300] / 255.0, y[:300], X[300:400] / 255.0, y[300:400]


def _sides(n, names):
    return [SIDE_LINE.format(i, n, name) for i, name in enumerate(names, 1)]


SOFTMAX = ["skdigits SoftmaxRegression()", "sklearn LogisticRegression()"]


# ---------------------------------------------------------------- progress


def test_each_side_logs_one_line_as_it_starts(fast, meter, caplog, capsys):
    # before: nothing at all until the table, up to two minutes later
    with caplog.at_level(logging.INFO, logger="skdigits.benchmark"):
        rows = benchmark.run_benchmark(*_small(), models=["softmax"], n_jobs=1,
                                       progress=True)
    lines = [r.getMessage() for r in caplog.records
             if r.name == "skdigits.benchmark"]
    assert lines == [f"{side} ..." for side in _sides(2, SOFTMAX)]
    assert [r["implementation"] for r in rows] == SOFTMAX
    assert capsys.readouterr().err == ""  # no bar without a terminal


def test_a_terminal_gets_a_status_line_per_side(fast, meter, caplog, capsys,
                                                monkeypatch):
    monkeypatch.setattr(benchmark, "_on_terminal", lambda: True)
    with caplog.at_level(logging.INFO, logger="skdigits.benchmark"):
        benchmark.run_benchmark(*_small(), models=["softmax"], n_jobs=1,
                                progress=True)
    err = capsys.readouterr().err
    shown = [part.strip() for part in err.split("\r") if part.strip()]
    for side in _sides(2, SOFTMAX):
        final = [s for s in shown if s.startswith(side + ": ")][-1]
        assert final.endswith(", fit 0.50 s")  # the status line's last state
    assert err.count("\n") == 2  # one line left per side
    assert not [r for r in caplog.records if r.name == "skdigits.benchmark"]


def test_without_progress_a_terminal_gets_no_bar(fast, meter, capsys, monkeypatch):
    monkeypatch.setattr(benchmark, "_on_terminal", lambda: True)
    benchmark.run_benchmark(*_small(), models=["softmax"], n_jobs=1)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("quiet", [False, True])
def test_the_command_says_each_side_and_quiet_says_none(fast, meter, capsys,
                                                        quiet):
    argv = ["benchmark", "--sample", "--models", "softmax", "--n-jobs", "1"]
    assert main(argv + ["-q"] * quiet) == 0
    captured = capsys.readouterr()
    said = [ln for ln in captured.err.splitlines() if ln.startswith("benchmark ")]
    assert said == ([] if quiet else [f"{s} ..." for s in _sides(2, SOFTMAX)])
    assert "load: other processes kept 0.00 of the 2 CPUs" in captured.out


# ---------------------------------------------------------------- load


def test_a_side_run_beside_a_busy_neighbour_is_marked(fast, meter, monkeypatch,
                                                      capsys):
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression.fit

    def beside_a_neighbour(self, *args, **kwargs):
        FakeMeter.ran()
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(LogisticRegression, "fit", beside_a_neighbour)
    assert main(["benchmark", "--sample", "--models", "softmax,mlp",
                 "--n-jobs", "2", "--hidden", "8", "--epochs", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = {ln.split()[1] + " " + ln.split()[2]: ln for ln in out
            if ln.startswith(("softmax ", "mlp "))}
    assert rows["sklearn LogisticRegression()"].endswith("x*")  # under load
    assert rows["skdigits SoftmaxRegression()"].endswith("1.00x")
    assert rows["sklearn MLPClassifier"].endswith("x")  # a quiet side
    load = out[-1]
    assert load.startswith("load: other processes kept 0.00 of the 2 CPUs busy "
                           "before the fits, up to 1.80 during them, 0.00 after")
    assert "* taken under load" in load


def test_a_machine_busy_before_marks_every_ratio(fast, meter):
    meter.always = True  # busy from the start
    rows = benchmark.run_benchmark(*_small(), models=["softmax"], n_jobs=2)
    assert all(r["under_load"] for r in rows)
    assert rows[0]["load_before"] == rows[0]["load_after"] == 1.8
    assert benchmark.format_table(rows)[3].endswith("x*")


def test_a_load_the_budget_leaves_room_for_is_not_busy(fast, meter,
                                                      monkeypatch):
    monkeypatch.setattr(FakeMeter, "busy", 1.0)
    # one thread of two CPUs: a neighbour on the other one costs nothing
    meter.always = True
    rows = benchmark.run_benchmark(*_small(), models=["softmax"], n_jobs=1)
    assert not any(r["under_load"] for r in rows)
    assert benchmark.format_table(rows)[-1].endswith(": a quiet machine")


def test_the_load_is_read_from_proc_stat_of_this_process_cpus(fast):
    # the real meter of the core budget, on this machine
    rows = benchmark.run_benchmark(*_small(), models=["softmax"], n_jobs=1)
    assert rows[0]["cpus"] == _cores._CpuMeter().cpus >= 1
    assert all(r["load"] >= 0 and r["load_before"] >= 0 for r in rows)


@given(flags=st.lists(st.booleans(), min_size=2, max_size=6),
       seconds=st.lists(st.floats(0.01, 100), min_size=6, max_size=6))
def test_a_ratio_is_marked_when_either_of_its_times_was_under_load(flags, seconds):
    groups = ["softmax", "mlp"]
    rows = []
    for i, flag in enumerate(flags):
        group = groups[i % 2]
        first = not any(r["group"] == group for r in rows)
        rows.append({"group": group, "seconds": seconds[i], "epochs": 1,
                     "accuracy": 0.5, "under_load": flag, "load": 0.0,
                     "load_before": 0.0, "load_after": 0.0, "cpus": 2,
                     "implementation": ("skdigits " if first else "peer ") + str(i)})
    body = [ln for ln in benchmark.format_table(rows)
            if ln.startswith(("softmax ", "mlp "))]
    by_name = {" ".join(ln.split()[1:3]): ln for ln in body}
    for r in rows:
        ref = next(q for q in rows if q["group"] == r["group"])
        expected = r is not ref and (r["under_load"] or ref["under_load"])
        assert by_name[r["implementation"]].endswith("x*") == expected
    assert ("* taken under load" in benchmark.format_table(rows)[-1]) == any(flags)
