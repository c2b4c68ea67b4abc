"""``skdigits search``: the grid syntax, the checks made before any fit, and a
real search whose files match a direct GridSearchCV run. The run on a dask
cluster is in test_dask.py, beside the cluster it uses."""

import argparse
import json
import os
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.model_selection import GridSearchCV

from skdigits import MLPClassifier
from skdigits._search import parse_grid_option, plot_param_scores
from skdigits.cli import CLIError
from skdigits.cli import add_search_parser as add_parser
from skdigits.datasets import load_mnist
from skdigits.io import load


def _parser():
    parser = argparse.ArgumentParser(prog="skdigits")
    sub = parser.add_subparsers()
    add_parser(sub)
    return parser


def run_search(argv):
    """``skdigits search ARGV`` through the sub-command's own parser."""
    args = _parser().parse_args(["search", *argv])
    return args.func(args)


# ---------------------------------------------------------------- the grid

# values as a user writes them: (text, the value it means)
_words = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8).filter(
    lambda w: w not in {"and", "or", "not", "if", "else", "in", "is", "lambda"})
_literals = st.one_of(
    st.integers(-10**6, 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.text(st.characters(codec="ascii"), max_size=6),  # quoted: commas, quotes
    st.tuples(st.integers(0, 9), st.floats(-1, 1)),
)
_values = st.one_of(_literals.map(lambda v: (repr(v), v)), _words.map(lambda w: (w, w)))


@given(st.sampled_from(["alpha", "solver", "x1"]),
       st.lists(_values, min_size=1, max_size=5, unique_by=lambda tv: repr(tv[1])))
def test_grid_values_are_literals_or_words_split_at_top_level_commas(name, items):
    text = f"{name}={','.join(t for t, _ in items)}"
    parsed_name, values = parse_grid_option(text)
    assert parsed_name == name
    assert [repr(v) for v in values] == [repr(v) for _, v in items]


_layers = st.lists(st.integers(1, 512), min_size=1, max_size=3).map(tuple)


def _spellings(sizes):
    """Every way of writing ``sizes``."""
    out = ["x".join(map(str, sizes)), repr(sizes), repr(list(sizes))]
    if len(sizes) == 1:
        out.append(str(sizes[0]))
    return st.sampled_from(out)


@given(st.lists(_layers, min_size=1, max_size=4, unique=True).flatmap(
    lambda layers: st.tuples(st.just(layers),
                             st.tuples(*[_spellings(s) for s in layers]))))
def test_hidden_layer_sizes_become_tuples_however_written(case):
    layers, texts = case
    name, values = parse_grid_option("hidden_layer_sizes=" + ",".join(texts))
    assert name == "hidden_layer_sizes"
    assert values == list(layers)
    assert all(type(v) is tuple for v in values)


@pytest.mark.parametrize("text,needle", [
    ("alpha", "NAME=V1,V2"),
    ("=1,2", "NAME=V1,V2"),
    ("no way=1", "NAME=V1,V2"),
    ("alpha=", "empty value"),
    ("alpha=1,,2", "empty value"),
    ("hidden_layer_sizes=(128,64", "missing ')'"),
    ("hidden_layer_sizes=128)", "unbalanced"),
    ("solver='adam", "unclosed quote"),
    ("alpha=1e-4,0.0001", "given twice"),
    ("hidden_layer_sizes=128,(128,)", "given twice"),
])
def test_bad_grid_syntax_exits_2_with_one_line(text, needle, capsys):
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(["search", "--grid", text])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert needle in err[-1] and err[-1].startswith("skdigits search: error:")


@pytest.mark.parametrize("argv,needle", [
    (["--grid", "no_such=1,2"], "has no parameter no_such"),
    (["--grid", "hidden_layer_sizes=8,16"], "SoftmaxRegression has no parameter "
                                            "hidden_layer_sizes"),
    (["--model", "mlp", "--grid", "alpha=1,2", "--grid", "alpha=3"], "given twice"),
    (["--grid", "alpha=1e-4,-1"], "alpha=-1 is refused"),
    (["--model", "mlp", "--grid", "hidden_layer_sizes=8,0"], "hidden_layer_sizes"),
    (["--grid", "alpha=1,2", "--param", "alpha=3"], "both searched"),
    (["--grid", "alpha=1,2", "--param", "nope=3"], "has no parameter nope"),
    (["--grid", "max_iter=1,2", "--max-iter", "3"], "both searched"),
])
def test_unknown_or_invalid_parameters_are_refused_before_any_fit(argv, needle,
                                                                  tmp_path):
    out = tmp_path / "out"
    with pytest.raises((CLIError, ValueError)) as exc:
        run_search(["--sample", "--out", str(out), *argv])
    assert needle in str(exc.value) and "\n" not in str(exc.value)
    assert not out.exists()  # refused before the folder, the data and the fits


def _big_grid(n_params, n_values, last="1e-3"):
    """``n_params`` --grid options of ``n_values`` valid values each (the
    last value of the last option: ``last``)."""
    names = ["alpha", "tol", "learning_rate_init", "power_t", "momentum",
             "validation_fraction"][:n_params]
    options = []
    for k, name in enumerate(names):
        values = [repr(0.01 + i / (10 * n_values)) for i in range(n_values)]
        if k == n_params - 1:
            values[-1] = last
        options.append(parse_grid_option(f"{name}={','.join(values)}"))
    return options


@pytest.fixture
def validations(monkeypatch):
    """The estimators' parameter validations, counted; past 1000 they fail
    the test instead of running for minutes."""
    from skdigits._base import BaseMinibatchClassifier

    calls, validate = [], BaseMinibatchClassifier._validate_params

    def counted(self):
        calls.append(1)
        assert len(calls) <= 1000, "validated per candidate"
        return validate(self)

    monkeypatch.setattr(BaseMinibatchClassifier, "_validate_params", counted)
    return calls


def test_a_grid_is_checked_once_per_value_not_per_candidate(validations):
    """A grid of 10^4 candidates was validated candidate by candidate (10^6
    candidates: 6 silent minutes); each value is checked once now."""
    from skdigits import SoftmaxRegression
    from skdigits._search import build_grid

    calls = validations
    grid = build_grid(SoftmaxRegression(), _big_grid(4, 10))
    assert [len(v) for v in grid.values()] == [10] * 4
    assert len(calls) <= 4 * 10
    # a bad value anywhere is still named, with the parameter it belongs to
    with pytest.raises(ValueError, match=r"^the value momentum=-1 is refused: "):
        build_grid(SoftmaxRegression(), _big_grid(5, 10, last="-1"))


def test_an_absurd_grid_is_refused_at_once_in_one_line(tmp_path, capsys,
                                                       validations):
    from skdigits.cli import main

    values = ",".join(repr(0.01 + i / 1000) for i in range(10))
    argv = ["search", "--sample", "--out", str(tmp_path / "s")]
    for name in ("alpha", "tol", "learning_rate_init", "power_t", "momentum",
                 "validation_fraction"):
        argv += ["--grid", f"{name}={values}"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "1000000 candidates" in err[0], err
    assert not (tmp_path / "s").exists()


def test_a_long_grid_check_says_so(caplog):
    import logging

    from skdigits import SoftmaxRegression
    from skdigits._search import build_grid

    with caplog.at_level(logging.INFO, logger="skdigits"):
        build_grid(SoftmaxRegression(), _big_grid(1, 1200))
    assert any("Checking the 1200 values" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("argv", [["--sample"],  # no grid
                                  ["--grid", "alpha=1", "--cv", "1"],
                                  ["--grid", "alpha=1", "--n-jobs", "2",
                                   "--scheduler", "tcp://x:1"]])
def test_bad_arguments_exit_2(argv):
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(["search", *argv])
    assert exc.value.code == 2


def test_a_score_plot_draws_one_line_per_setting_of_the_others_or_their_best():
    from matplotlib.figure import Figure
    from sklearn.model_selection import ParameterGrid

    grid = {"alpha": [1e-4, 1e-3], "tol": list(range(9))}
    params = list(ParameterGrid(grid))
    mean = np.array([(p["alpha"] == 1e-3) * 10 + p["tol"] for p in params], float)
    cv = {"params": params, "mean_test_score": mean,
          "std_test_score": np.full(len(mean), 0.5)}
    ax = plot_param_scores(cv, grid, "tol", ax=Figure().add_subplot())
    assert len(ax.containers) == 2  # one line per alpha
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(t) for t in range(9)]
    # nine settings of tol: one line, the best of them for each alpha
    ax = plot_param_scores(cv, grid, "alpha", ax=Figure().add_subplot())
    assert len(ax.containers) == 1
    np.testing.assert_array_equal(ax.containers[0].lines[0].get_ydata(), [8, 18])
    assert ax.get_legend().get_texts()[0].get_text() == "best over tol"


# ---------------------------------------------------------------- a real run

GRID = {"alpha": [1e-5, 1e-2], "hidden_layer_sizes": [(8,), (16,)]}
ARGV = ["--sample", "--model", "mlp", "--grid", "alpha=1e-5,1e-2",
        "--grid", "hidden_layer_sizes=8,16", "--max-iter", "3", "--cv", "2"]


@pytest.fixture(scope="module")
def direct():
    """The same search, run directly in this process."""
    X, y = load_mnist(sample=True, return_X_y=True)
    Xt, yt = load_mnist(subset="test", sample=True, return_X_y=True)
    X, Xt = X.astype(np.float32) / 255, Xt.astype(np.float32) / 255
    search = GridSearchCV(MLPClassifier(max_iter=3, random_state=0), GRID,
                          cv=2).fit(X, y)
    return search, Xt, yt


def check_results(results, search, Xt, yt):
    """``results.json`` holds ``search``'s scores and choice, exactly."""
    cv = results["cv_results"]
    for key in ("mean_test_score", "std_test_score", "rank_test_score",
                "split0_test_score", "split1_test_score"):
        assert cv[key] == search.cv_results_[key].tolist(), key
    assert cv["params"] == [{k: list(v) if isinstance(v, tuple) else v
                             for k, v in p.items()}
                            for p in search.cv_results_["params"]]
    assert results["best_params"] == {"alpha": search.best_params_["alpha"],
                                      "hidden_layer_sizes": list(
                                          search.best_params_["hidden_layer_sizes"])}
    assert results["best_score"] == search.best_score_
    assert results["test_accuracy"] == search.score(Xt, yt)


def _shown_images(page):
    return re.findall(r'<img src="([^"]+)"', page.read_text(encoding="utf-8"))


def test_a_local_search_writes_the_direct_runs_results(tmp_path, capsys, direct):
    search, Xt, yt = direct
    out, model = tmp_path / "out", tmp_path / "best.skops"
    assert run_search([*ARGV, "--n-jobs", "2", "--out", str(out),
                       "-o", str(model)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) <= 4 and "best of 4 candidates" in printed[-3]

    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    check_results(results, search, Xt, yt)
    assert results["where"] == {"backend": "loky", "processes": 2}
    assert sorted(os.listdir(out)) == sorted(results["files"])
    # the page shows every PNG written, and they are PNGs
    shown = _shown_images(out / "index.html")
    pngs = sorted(f for f in results["files"] if f.endswith(".png"))
    assert sorted(shown) == pngs == ["best_loss_per_class.png", "score_alpha.png",
                                     "score_hidden_layer_sizes.png"]
    for name in pngs:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the saved model is the refitted best one
    best = load(model)
    np.testing.assert_array_equal(best.predict_proba(Xt),
                                  search.best_estimator_.predict_proba(Xt))

    # in one process instead of two: the same scores, the same PNGs
    again = tmp_path / "again"
    assert run_search([*ARGV, "--n-jobs", "1", "--out", str(again), "-q"]) == 0
    second = json.loads((again / "results.json").read_text(encoding="utf-8"))
    assert second["cv_results"] == results["cv_results"]
    for name in pngs:
        assert (again / name).read_bytes() == (out / name).read_bytes(), name

    # a later search in the folder removes the files that no longer belong,
    # and with --force leaves alone the files it did not write
    (out / "notes.txt").write_text("mine")
    assert run_search(["--sample", "--model", "mlp", "--grid", "alpha=1e-5,1e-2",
                       "--max-iter", "1", "--cv", "2", "--n-jobs", "1",
                       "--out", str(out), "-q", "--force"]) == 0
    assert sorted(os.listdir(out)) == [".skdigits-search", "best_loss_per_class.png",
                                       "index.html", "notes.txt", "results.json",
                                       "score_alpha.png"]
    assert sorted(_shown_images(out / "index.html")) == [
        "best_loss_per_class.png", "score_alpha.png"]


def test_a_folder_with_other_files_is_refused_before_any_fit(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="notes.txt.*--force"):
        run_search([*ARGV, "--n-jobs", "1", "--out", str(tmp_path)])
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_force_twice_never_removes_a_file_named_like_the_searchs(tmp_path, capsys):
    """A user's score_final.png in a folder written with --force was taken
    for a stale score plot by the second --force run, and deleted."""
    out = tmp_path / "s"
    out.mkdir()
    (out / "score_final.png").write_bytes(b"mine")
    argv = ["--sample", "--model", "softmax", "--grid", "alpha=1e-4,1e-3",
            "--max-iter", "1", "--cv", "2", "--n-jobs", "1", "-q", "--force",
            "--out", str(out)]
    for _ in range(2):
        assert run_search(argv) == 0
    assert (out / "score_final.png").read_bytes() == b"mine"


@pytest.mark.parametrize("address", ["foo", "", "tcp://host", "host:port"])
def test_a_malformed_scheduler_address_is_a_usage_error(address, capsys):
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(["search", "--sample", "--grid", "alpha=1e-4",
                              "--scheduler", address])
    assert exc.value.code == 2
    assert "scheduler address" in capsys.readouterr().err


def test_the_model_file_may_not_go_inside_the_output_folder(tmp_path, capsys):
    from skdigits.cli import CLIError

    out = tmp_path / "s"
    args = _parser().parse_args(["search", "--sample", "--grid", "alpha=1e-4",
                                 "--out", str(out), "-o", str(out / "best.skops")])
    with pytest.raises(CLIError, match="inside --out"):
        args.func(args)
    assert not out.exists()


@pytest.mark.parametrize("interrupted_fit", [1, 5], ids=["cv-fit", "refit"])
def test_ctrl_c_in_a_fit_or_the_refit_stops_the_search_with_exit_130(
        interrupted_fit, tmp_path, capsys, monkeypatch):
    """The fits in the search's own process (--n-jobs 1, and the refit)
    turned Ctrl-C into a warning and kept a truncated model: the search went
    on, exited 0 and saved results and a best model of one epoch."""
    from skdigits._engine._models import LinearModel
    from skdigits._engine._train import _Run
    from skdigits.cli import main

    fits, start, run_epoch = [], _Run.start, LinearModel.run_epoch

    def counting_start(self):
        fits.append(0)
        return start(self)

    def interrupt_in_second_epoch(self, *args):
        fits[-1] += 1
        if len(fits) == interrupted_fit and fits[-1] == 2:
            raise KeyboardInterrupt
        return run_epoch(self, *args)

    monkeypatch.setattr(_Run, "start", counting_start)
    monkeypatch.setattr(LinearModel, "run_epoch", interrupt_in_second_epoch)
    out, model = tmp_path / "s", tmp_path / "best.skops"
    # 2 candidates x 2 folds: fits 1-4, then the refit (fit 5)
    assert main(["search", "--sample", "--grid", "alpha=1e-4,1e-3", "--cv", "2",
                 "--max-iter", "3", "--n-jobs", "1", "-q", "--out", str(out),
                 "-o", str(model)]) == 130
    assert len(fits) == interrupted_fit  # stopped at once, not after the search
    assert capsys.readouterr().err.strip().endswith("interrupted")
    assert not (out / "results.json").exists() and not (out / "index.html").exists()
    assert not model.exists()


def test_files_named_like_temporaries_are_the_users(tmp_path, capsys):
    """A user's .results.json.v2.part in a search folder was taken for an
    interrupted write of results.json and removed, without --force."""
    out = tmp_path / "s"
    argv = ["--sample", "--grid", "alpha=1e-4,1e-3", "--max-iter", "1", "--cv", "2",
            "--n-jobs", "1", "-q", "--out", str(out)]
    assert run_search(argv) == 0
    mine = [".index.html.backup.part", ".results.json.v2.part",
            ".score_alpha.png.0a1b2c3d.part"]
    for name in mine:
        (out / name).write_text("mine")
    with pytest.raises(ValueError, match=r"\.index\.html\.backup\.part.*--force"):
        run_search(argv)  # not the search's: refused
    assert run_search([*argv, "--force"]) == 0
    for name in mine:
        assert (out / name).read_text() == "mine", name
    listed = json.loads((out / ".skdigits-search").read_text())["files"]
    assert not set(mine) & set(listed)


def test_concurrent_searches_into_one_folder_leave_only_listed_files(tmp_path):
    """Two searches into one folder at once: the second used to run beside
    the first, and the folder kept a score plot its marker did not list.
    Now every file is listed, or a search refuses in one line (exit 1)."""
    import subprocess
    import sys

    out = tmp_path / "s"
    runs = [subprocess.Popen(
        [sys.executable, "-m", "skdigits", "search", "--sample", "--grid", grid,
         "--max-iter", "2", "--cv", "2", "--n-jobs", "1", "-q", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for grid in ("alpha=1e-4,1e-3", "tol=1e-4,1e-3")]
    results = [(run.wait(timeout=300), run.stderr.read()) for run in runs]
    for run in runs:
        run.stdout.close()
        run.stderr.close()
    assert 0 in [rc for rc, _ in results]
    for rc, err in results:
        assert rc == 0 or (rc == 1 and len(err.strip().splitlines()) == 1
                           and "in use" in err), err
    listed = json.loads((out / ".skdigits-search").read_text())["files"]
    assert set(os.listdir(out)) - {".skdigits-search"} <= set(listed)
