"""The command line, end to end through main(argv)."""

import os
import re

import joblib
import numpy as np
import pytest

from skdigits.cli import main
from skdigits.io import load


def test_fit_on_sample_saves_a_working_model(tmp_path, capsys):
    path = tmp_path / "m.skops"
    assert main(["fit", "--sample", "--dataset", "fashion", "--multi-class", "ovr",
                 "--max-iter", "4", "-o", str(path)]) == 0
    out = capsys.readouterr().out
    assert "3000 train / 1000 test" in out and "4 epochs" in out
    assert "Shirt" in out  # class names in the per-class line
    model, meta = load(path, return_metadata=True)
    assert meta["dataset"] == "fashion" and meta["data"] == "bundled sample"
    assert model.n_iter_ == 4 and model.multi_class == "ovr"
    assert model.predict(np.zeros((2, 784), np.float32)).shape == (2,)


def test_missing_data_is_one_line_and_exit_1(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SKDIGITS_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr("skdigits.datasets._base.SYSTEM_DATA_DIRS", ())
    assert main(["fit", "--data-home", str(tmp_path / "nowhere")]) == 1
    captured = capsys.readouterr()
    err_lines = captured.err.strip().splitlines()
    assert len(err_lines) == 1 and err_lines[0].startswith("skdigits fit: error:")
    assert "nowhere" in err_lines[0] and "Traceback" not in captured.err


@pytest.mark.parametrize("argv", [[], ["fit", "--max-iter", "0"],
                                  ["fit", "--dataset", "cifar"], ["nope"]])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["fit", "report", "evaluate", "benchmark"])
def test_help_exits_0(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "--sample" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["evaluate", "export", "compile"])
def test_commands_that_train_nothing_do_not_offer_to_log_epochs(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    verbose = capsys.readouterr().out.split("--verbose")[1].split("\n  -")[0]
    assert "epoch" not in verbose and "debug" in verbose


@pytest.fixture
def no_full_data(tmp_path, monkeypatch):
    """No full dataset anywhere: only the bundled sample is available."""
    monkeypatch.delenv("SKDIGITS_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr("skdigits.datasets._base.SYSTEM_DATA_DIRS", ())


# ---------------------------------------------------------------- report


def test_report_writes_every_plot_and_a_page_that_shows_them(tmp_path, capsys):
    import json
    import re

    out = tmp_path / "rep"
    assert main(["report", "--sample", "--out", str(out), "--max-iter", "3",
                 "--quiet", "--seed", "1"]) == 0
    stdout = capsys.readouterr().out
    assert "bundled sample" in stdout and "report written" in stdout
    pngs = sorted(p.name for p in out.glob("*.png"))
    kinds = ["samples", "ovr_loss_per_class", "predictions", "mlp_curves",
             "mlp_loss_per_class", "confusion"]
    assert pngs == sorted(f"{d}_{k}.png" for d in ("digits", "fashion") for k in kinds)
    for p in out.glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000
    page = (out / "index.html").read_text()
    assert sorted(re.findall(r'<img src="([^"]+)"', page)) == pngs
    assert "<script" not in page and "http" not in page  # self-contained
    report = json.loads((out / "report.json").read_text())
    assert report["seed"] == 1
    digits, fashion = report["datasets"]
    for r in (digits, fashion):
        assert r["n_train"] == 3000 and r["n_test"] == 1000
        assert {m["epochs"] for m in r["models"].values()} == {3}
        for key, m in r["models"].items():
            assert 0.5 < m["test_accuracy"] <= 1
            assert report["timings"]["fit_seconds"][r["dataset"]][key] > 0
            assert f"{m['test_accuracy']:.4f}" in page
        # observations are computed: they name classes of this dataset
        assert r["confused_pairs"] and len(r["observations"]) >= 4
        for obs in r["observations"][:2]:
            assert obs in page.replace("&#x27;", "'")
    fashion_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                     "Shirt", "Sneaker", "Bag", "Ankle boot"}
    assert set(fashion["ovr_hardest"]) <= fashion_names
    assert {a for a, _, _ in fashion["confused_pairs"]} <= fashion_names
    assert set(digits["ovr_hardest"]) <= {str(d) for d in range(10)}


def test_report_falls_back_to_the_sample_and_says_so(tmp_path, capsys, no_full_data,
                                                      monkeypatch):
    import skdigits._fileio

    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(skdigits._fileio.os, "replace", lambda a, b: (
        replaced.append(os.path.basename(b)), real_replace(a, b))[1])
    assert main(["report", "--dataset", "digits", "--out", str(tmp_path / "r"),
                 "--max-iter", "2", "--quiet"]) == 0
    # every file is written atomically, and no temporary file is left
    assert sorted(set(replaced)) == sorted(p.name for p in (tmp_path / "r").iterdir())
    # 6 PNGs, the page, report.json, and the marker before and after the run
    assert len(replaced) == 10 and replaced.count(".skdigits-report") == 2
    out = capsys.readouterr().out
    assert "bundled sample, as the full files were not found" in out
    assert "((" not in out and "))" not in out  # no nested parentheses
    assert len(list((tmp_path / "r").glob("digits_*.png"))) == 6
    assert not list((tmp_path / "r").glob("fashion_*.png"))


def test_report_with_a_wrong_data_home_is_one_line(tmp_path, capsys, no_full_data):
    assert main(["report", "--data-home", str(tmp_path / "nowhere"),
                 "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("skdigits report: error:")


# ---------------------------------------------------------------- fit / evaluate


def test_fit_mlp_with_params_then_evaluate(tmp_path, capsys):
    path = tmp_path / "mlp.skops"
    assert main(["fit", "--sample", "--model", "mlp", "--param",
                 "hidden_layer_sizes=(32, 16)", "--param", "activation=tanh",
                 "--max-iter", "5", "-o", str(path)]) == 0
    out = capsys.readouterr().out
    # the parameters set with --param are named (activation was left out)
    assert ("MLPClassifier(hidden_layer_sizes=(32, 16), activation='tanh'): "
            "5 epochs") in out
    model = load(path)
    assert model.activation == "tanh"
    assert [w.shape[1] for w in model.coefs_] == [32, 16, 10]
    assert main(["evaluate", str(path), "--sample", "--top", "3"]) == 0
    out = capsys.readouterr().out
    acc = float(out.split("accuracy ")[1].split(",")[0])
    assert acc == pytest.approx(model.score(
        __import__("skdigits.datasets", fromlist=["x"]).load_mnist(
            "digits", "test", sample=True).data / 255.0,
        __import__("skdigits.datasets", fromlist=["x"]).load_mnist(
            "digits", "test", sample=True).target), abs=1e-4)
    assert "precision" in out and "recall" in out  # classification report
    pairs = out.split("most confused (true -> predicted: count): ")[1]
    assert pairs.count("->") == 3


@pytest.mark.parametrize("argv,needle", [
    (["--param", "no_such=1"], "has no parameter no_such"),
    (["--param", "alpha=-1"], "alpha"),
    (["--model", "mlp", "--param", "hidden_layer_sizes=()"], "hidden_layer_sizes"),
])
def test_fit_bad_parameters_are_one_line(argv, needle, capsys):
    assert main(["fit", "--sample", "--max-iter", "1", *argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert err[0].startswith("skdigits fit: error:")


def _one_error_line(capsys, command):
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1, captured.err
    assert err[0].startswith(f"skdigits {command}: error:")
    assert "Traceback" not in captured.err
    return err[0]


@pytest.mark.parametrize("command", [["fit", "--sample"],
                                     ["search", "--sample", "--grid", "alpha=1e-4"]])
@pytest.mark.parametrize("pair", ["oops", "=1"])
def test_a_param_that_is_not_key_value_exits_2(command, pair, capsys):
    """A bad argument: fit exited 1 here, where search's --grid exits 2."""
    with pytest.raises(SystemExit) as exc:
        main([*command, "--param", pair])
    assert exc.value.code == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_evaluate_refuses_unreadable_files_in_one_line(tmp_path, capsys):
    garbage = tmp_path / "garbage.joblib"
    garbage.write_bytes(b"this is not a pickle")
    not_a_model = tmp_path / "list.joblib"
    joblib.dump([1, 2, 3], not_a_model)
    (tmp_path / "empty.skops").write_bytes(b"")
    for path, flags, needle in [
            (garbage, [], "runs code from the file"),
            (garbage, ["--trust-pickle"], "cannot read model file"),
            (not_a_model, ["--trust-pickle"], "does not hold a fitted classifier"),
            (tmp_path / "missing.skops", [], "model file not found"),
            (tmp_path / "empty.skops", [], "is empty"),
            (tmp_path, [], "is a folder; name a model file")]:
        assert main(["evaluate", str(path), "--sample", *flags]) == 1
        assert needle in _one_error_line(capsys, "evaluate")


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_evaluate_runs_no_code_from_a_pickle_without_the_flag(tmp_path, capsys):
    marker = tmp_path / "exploited"
    evil = tmp_path / "evil.joblib"
    joblib.dump(_Exploit(str(marker)), evil)
    assert main(["evaluate", str(evil), "--sample"]) == 1
    line = _one_error_line(capsys, "evaluate")
    assert "runs code from the file" in line and "--trust-pickle" in line
    assert not marker.exists()


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    """A SoftmaxRegression fitted on the digits sample, as skops and joblib."""
    from skdigits import SoftmaxRegression
    from skdigits.datasets import load_mnist
    from skdigits.io import dump

    X, y = load_mnist("digits", "train", sample=True, return_X_y=True)
    model = SoftmaxRegression(max_iter=2, random_state=0).fit(X / 255.0, y)
    folder = tmp_path_factory.mktemp("models")
    dump(model, folder / "digits.skops", metadata={"dataset": "digits"})
    joblib.dump(model, folder / "digits.joblib")
    strings = SoftmaxRegression(max_iter=2, random_state=0).fit(
        X / 255.0, np.array(list("abcdefghij"))[y])
    dump(strings, folder / "letters.skops")
    return folder


def test_evaluate_loads_pickles_only_with_the_flag(digits_model, capsys):
    path = str(digits_model / "digits.joblib")
    assert main(["evaluate", path, "--sample"]) == 1
    assert "--trust-pickle" in _one_error_line(capsys, "evaluate")
    assert main(["evaluate", path, "--sample", "--trust-pickle"]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_evaluate_on_the_wrong_dataset_is_refused(digits_model, capsys):
    path = str(digits_model / "digits.skops")
    assert main(["evaluate", path, "--sample", "--dataset", "fashion"]) == 1
    line = _one_error_line(capsys, "evaluate")
    assert "trained on digits" in line and "--dataset digits" in line
    # without --dataset the file's own dataset is used
    assert main(["evaluate", path, "--sample"]) == 0
    assert " on digits test " in capsys.readouterr().out


def test_evaluate_with_other_classes_is_refused(digits_model, capsys):
    assert main(["evaluate", str(digits_model / "letters.skops"), "--sample"]) == 1
    line = _one_error_line(capsys, "evaluate")
    assert "classes ['a', 'b'" in line and "not the digits labels" in line


def test_fit_checks_the_output_before_training(tmp_path, capsys, monkeypatch):
    import skdigits._report

    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking the output")

    monkeypatch.setattr(skdigits._report, "fit_model", no_training)
    (tmp_path / "a_file").write_text("")
    for output, needle in [(tmp_path / "missing" / "m.skops", "does not exist"),
                           (tmp_path / "a_file" / "m.skops", "is not a folder"),
                           (tmp_path, "is a folder; name a file")]:
        assert main(["fit", "--sample", "-o", str(output)]) == 1
        line = _one_error_line(capsys, "fit")
        assert needle in line and str(output.parent if needle != "is a folder; "
                                      "name a file" else output) in line


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_fit_refuses_outputs_it_could_never_write_before_training(
        tmp_path, capsys, monkeypatch):
    """A pipe (or a device: -o /dev/null) was replaced by a regular file once
    the fit ended; a name ending in a separator, or one too long for the
    temporary name beside it, failed only after training, naming the
    temporary file."""
    import skdigits._report

    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking the output")

    monkeypatch.setattr(skdigits._report, "fit_model", no_training)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    too_long = tmp_path / ("m" * 256)
    for output, needle in [(fifo, "is a pipe"),
                           (str(tmp_path / "new") + os.sep, "names a folder"),
                           (too_long, "bytes long")]:
        assert main(["fit", "--sample", "-o", str(output)]) == 1, output
        assert needle in _one_error_line(capsys, "fit")
    assert fifo.is_fifo()


@pytest.mark.parametrize("argv,option", [
    (["fit", "--sample", "-o", ""], "--output"),
    (["search", "--sample", "--grid", "alpha=1e-4", "-o", ""], "--save-model"),
    (["report", "--sample", "--out", ""], "--out"),
    (["search", "--sample", "--grid", "alpha=1e-4", "--out", ""], "--out"),
    (["report", "--sample", "--seed", "-1"], "--seed"),
    (["fit", "--sample", "--seed", str(2**32)], "--seed"),
    (["benchmark", "--sample", "--seed", "-1"], "--seed"),
])
def test_empty_names_and_seeds_out_of_range_exit_2(argv, option, tmp_path, capsys,
                                                    monkeypatch):
    """-o "" saved nothing and said nothing; --out "" failed with a bare
    [Errno 2]; a seed outside NumPy's range failed after the work began, with
    exit code 1 and without naming the option."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert option in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no folder made, nothing written


@pytest.mark.parametrize("command", [
    ["report", "--data-home"], ["search", "--grid", "alpha=1e-4", "--data-home"]])
def test_a_command_that_fails_early_leaves_no_new_folder(command, tmp_path, capsys):
    """A missing data folder was found only after the output folder was made
    and marked: the failed run left an empty report folder behind. A folder
    that existed before stays."""
    out = tmp_path / "new"
    argv = [*command, str(tmp_path / "nowhere"), "--out", str(out)]
    assert main(argv) == 1
    assert "nowhere" in _one_error_line(capsys, command[0])
    assert not out.exists()
    out.mkdir()
    assert main(argv) == 1
    capsys.readouterr()
    assert out.is_dir()


def test_report_out_naming_a_file_fails_before_training(tmp_path, capsys,
                                                        monkeypatch):
    import skdigits._report

    monkeypatch.setattr(skdigits._report, "study", None)  # never reached
    target = tmp_path / "taken"
    target.write_text("mine")
    assert main(["report", "--sample", "--out", str(target)]) == 1
    line = _one_error_line(capsys, "report")
    assert f"--out {target} is a file" in line
    assert target.read_text() == "mine"


def test_report_never_ignores_an_explicit_data_home(tmp_path, capsys, monkeypatch):
    # full-looking files in $SKDIGITS_DATA must not stand in for a wrong folder
    from skdigits.datasets import write_idx

    for sub in ("mnist", "fashion-mnist"):
        (tmp_path / "env" / sub).mkdir(parents=True)
        for split, n in (("train", 20), ("t10k", 10)):
            write_idx(tmp_path / "env" / sub / f"{split}-images-idx3-ubyte.gz",
                      np.zeros((n, 28, 28), np.uint8))
            write_idx(tmp_path / "env" / sub / f"{split}-labels-idx1-ubyte.gz",
                      (np.arange(n) % 10).astype(np.uint8))
    monkeypatch.setenv("SKDIGITS_DATA", str(tmp_path / "env"))
    nowhere = tmp_path / "no" / "such" / "dir"
    assert main(["report", "--data-home", str(nowhere), "--quiet",
                 "--out", str(tmp_path / "r")]) == 1
    line = _one_error_line(capsys, "report")
    assert f"{nowhere} does not exist" in line


@pytest.mark.parametrize("exc", [MemoryError(), RuntimeError("kernel went away"),
                                 OverflowError("(34, 'Numerical result out of "
                                               "range')")])
def test_any_failure_is_one_line_and_debug_shows_the_traceback(exc, capsys,
                                                                monkeypatch):
    import skdigits._report

    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(skdigits._report, "fit_model", fail)
    assert main(["fit", "--sample", "--max-iter", "1"]) == 1
    line = _one_error_line(capsys, "fit")
    assert type(exc).__name__ in line or "out of memory" in line
    assert main(["fit", "--sample", "--max-iter", "1", "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith(
        "skdigits fit: error:")


@pytest.mark.parametrize("param,needle", [
    ("hidden_layer_sizes=(1000000000,)", "memory"),
    ("learning_rate_init=1e308", "learning_rate_init"),
])
def test_extreme_parameters_are_one_line(param, needle, capsys):
    model = "softmax" if "learning" in param else "mlp"
    argv = ["fit", "--sample", "--model", model, "--max-iter", "1", "--param", param]
    if "power_t" in param or "1e308" in param:
        argv += ["--param", "learning_rate=invscaling"]
    assert main(argv) == 1
    assert needle in _one_error_line(capsys, "fit")


def test_overflowing_schedule_is_one_line(capsys):
    assert main(["fit", "--sample", "--model", "softmax", "--max-iter", "3",
                 "--param", "learning_rate=invscaling",
                 "--param", "power_t=1e6"]) == 1
    assert "power_t" in _one_error_line(capsys, "fit")


# ---------------------------------------------------------------- benchmark


def test_benchmark_prints_the_side_by_side_table(capsys):
    assert main(["benchmark", "--sample", "--epochs", "1", "--hidden", "16"]) == 0
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.startswith(("softmax ", "mlp "))]
    impls = " ".join(rows)
    for name in ("skdigits SoftmaxRegression()", "sklearn LogisticRegression()",
                 "skdigits MLPClassifier", "sklearn MLPClassifier"):
        assert name in impls
    try:
        import torch  # noqa: F401
        assert "PyTorch" in impls
    except ImportError:
        assert "PyTorch column skipped" in out
    for row in rows:
        ratio = float(row.split()[-1].rstrip("x*"))  # *: taken under load
        acc = float(row.split()[-2])
        assert ratio > 0 and 0 < acc <= 1
    # skdigits' own rows have ratio 1
    assert all(r.split()[-1] == "1.00x" for r in rows if "skdigits" in r)


def test_benchmark_gives_the_peers_skdigits_thread_budget(capsys, monkeypatch):
    # the old benchmark let scikit-learn run with BLAS's default threads
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_info

    def blas_threads():
        return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}

    before = blas_threads()
    seen = []
    fit = LogisticRegression.fit

    def spy(self, X, y, *args, **kwargs):
        seen.append(blas_threads())
        return fit(self, X, y, *args, **kwargs)

    monkeypatch.setattr(LogisticRegression, "fit", spy)
    assert main(["benchmark", "--sample", "--models", "softmax", "--n-jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert seen == [{1}]
    assert blas_threads() == before  # the process's limits are restored
    machine = [ln for ln in out.splitlines() if ln.startswith("machine: ")]
    assert len(machine) == 1 and "thread budget 1 for every side" in machine[0]
    assert "cores" in machine[0] and "BLAS" in machine[0]


@pytest.mark.parametrize("command", ["report", "fit", "evaluate", "benchmark"])
def test_sample_with_a_data_home_exits_2(command, tmp_path, capsys):
    # --sample silently ignored an explicit --data-home
    args = [command, "--sample", "--data-home", str(tmp_path)]
    if command == "evaluate":
        args.insert(1, str(tmp_path / "model.skops"))
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--sample and --data-home" in err
    assert f"usage: skdigits {command} " in err  # the subcommand's, not the top's


def test_benchmark_zero_threads_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["benchmark", "--sample", "--n-jobs", "0"])
    assert exc.value.code == 2
    assert "0 threads" in capsys.readouterr().err


def test_benchmark_bad_model_list_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["benchmark", "--models", "svm"])
    assert exc.value.code == 2


def test_fit_summary_follows_the_model_params(tmp_path, capsys):
    path = tmp_path / "m.skops"
    assert main(["fit", "--sample", "--model", "mlp", "--max-iter", "2",
                 "--param", "hidden_layer_sizes=16", "-o", str(path)]) == 0
    assert "MLPClassifier(hidden_layer_sizes=(16,))" in capsys.readouterr().out
    assert load(path).coefs_[0].shape == (784, 16)
    assert main(["fit", "--sample", "--max-iter", "2",
                 "--param", "multi_class=ovr"]) == 0
    assert "SoftmaxRegression(multi_class='ovr')" in capsys.readouterr().out


#: How ``fit --progress`` says a fit of the MLP with early stopping ended.
_ENDED = re.compile(r"MLPClassifier: stopped early at epoch (\d+), keeps epoch "
                    r"(\d+) \(\d+\.\d\d s\)")
_FIT_EARLY = ["fit", "--sample", "--model", "mlp", "--param", "early_stopping=True",
              "--progress"]


def _on_a_terminal(argv, columns=80):
    """Run ``skdigits argv`` in a subprocess whose stdout and stderr are a
    pseudo-terminal ``columns`` wide; returns what it wrote there."""
    pty = pytest.importorskip("pty")
    fcntl = pytest.importorskip("fcntl")
    termios = pytest.importorskip("termios")
    import struct
    import subprocess
    import sys

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "skdigits.cli", *argv],
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                data = os.read(master, 1 << 16)
            except OSError:  # the terminal closed: the process ended
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    assert proc.wait(timeout=600) == 0
    return b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


def test_fit_progress_on_a_terminal_ends_where_training_stopped():
    text = _on_a_terminal(_FIT_EARLY)
    draws = [p.rstrip() for ln in text.split("\n") for p in ln.split("\r")
             if p.strip()]
    bars = [p for p in draws if "%|" in p]
    assert bars and all(len(p) <= 80 for p in bars), bars
    assert all(len(p.split("|")[1]) >= 10 for p in bars), bars  # a readable bar
    # the bar's line ends saying where and why training stopped, not part way
    screen = [ln.split("\r")[-1].rstrip() for ln in text.split("\n")]
    ended = [m for m in map(_ENDED.fullmatch, screen) if m]
    assert len(ended) == 1, screen
    stopped, kept = map(int, ended[0].groups())
    assert kept < stopped and not [ln for ln in screen if "%|" in ln]
    assert f": {stopped} epochs in " in text


def test_a_record_logged_under_a_bar_gets_a_line_of_its_own(monkeypatch):
    # on a cold cache, `fit --progress` drew its bar, then the compile
    # notice ran on from the bar's line ("...| 0/191 [00:00<?]Compiling
    # skdigits' kernels..."), past 80 columns
    import io
    import logging

    from tqdm.auto import tqdm

    from skdigits._logging import BarAwareHandler

    stream = io.StringIO()
    handler = BarAwareHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("skdigits.test_bar_aware")
    monkeypatch.setattr(log, "propagate", False)
    log.addHandler(handler)
    try:
        bar = tqdm(total=10, file=stream, desc="fit", mininterval=0,
                   bar_format="{desc}: {n}/{total}")
        bar.update(3)
        log.warning("Compiling skdigits' kernels for this CPU, once (about 9 s)")
        bar.update(2)
        bar.close()
        log.warning("after the bar")
    finally:
        log.removeHandler(handler)
    lines = [ln.split("\r")[-1] for ln in stream.getvalue().split("\n")]
    # the notice on a line of its own, the bar drawn again below it
    assert "Compiling skdigits' kernels for this CPU, once (about 9 s)" in lines
    assert lines[-3:] == ["fit: 5/10", "after the bar", ""]


def test_fit_progress_without_a_terminal_is_one_line(capsys):
    assert main(_FIT_EARLY) == 0
    out, err = capsys.readouterr()
    assert "\r" not in err and "%|" not in err
    ended = [m for m in map(_ENDED.fullmatch, err.splitlines()) if m]
    assert len(ended) == 1, err
    stopped, kept = map(int, ended[0].groups())
    assert kept < stopped and f": {stopped} epochs in " in out


@pytest.mark.parametrize("command", [["fit"], ["report", "--dataset", "digits"]])
def test_ctrl_c_stops_the_command_with_exit_130(command, tmp_path, capsys, monkeypatch):
    from skdigits._engine._models import LinearModel

    original = LinearModel.run_epoch
    calls = []

    def interrupt_in_second_epoch(self, *args):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(LinearModel, "run_epoch", interrupt_in_second_epoch)
    argv = [*command, "--sample", "--max-iter", "3"]
    if command[0] == "report":
        argv += ["--out", str(tmp_path / "r"), "--quiet"]
    assert main(argv) == 130
    captured = capsys.readouterr()
    assert captured.err.strip().endswith("interrupted")
    assert not (tmp_path / "r" / "index.html").exists()


def test_version_prints_the_package_version(capsys):
    import skdigits

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"skdigits {skdigits.__version__}"


def test_missing_data_speaks_the_command_line(capsys, no_full_data):
    """``benchmark`` needs the full files: the message names the command's own
    options, not load_mnist's arguments, on one line."""
    assert main(["benchmark"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    for option in ("--data-home", "--download", "--sample", "SKDIGITS_DATA"):
        assert option in err[0]
    assert "load_mnist" not in err[0] and "download_if_missing" not in err[0]


def test_fit_and_evaluate_fall_back_to_the_sample_and_say_so(tmp_path, capsys,
                                                             no_full_data):
    """As ``report`` does: missing full files give the bundled sample, and
    the output and the saved metadata say so."""
    path = tmp_path / "m.skops"
    assert main(["fit", "--max-iter", "2", "-o", str(path)]) == 0
    out = capsys.readouterr().out
    assert "3000 train / 1000 test images (bundled sample, as the full files were " \
           "not found)" in out
    assert load(path, return_metadata=True)[1]["data"].startswith("bundled sample")
    assert main(["evaluate", str(path)]) == 0
    assert "the full files were not found" in capsys.readouterr().out


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_load_neither_numba_nor_sklearn(flag):
    """``skdigits --help`` and ``--version`` took 1.5-2 s: ``import skdigits``
    imported the estimators, so Numba, scikit-learn and SciPy. They are now
    imported on first use (issue 21, item 4)."""
    import subprocess
    import sys

    code = ("import sys, runpy\n"
            f"sys.argv = ['skdigits', {flag!r}]\n"
            "try:\n"
            "    runpy.run_module('skdigits', run_name='__main__')\n"
            "except SystemExit as exc:\n"
            "    assert exc.code == 0, exc.code\n"
            "heavy = ('numba', 'sklearn', 'scipy', 'matplotlib', 'llvmlite')\n"
            "print(sorted(m for m in heavy if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_estimators_load_on_first_use():
    import skdigits

    assert {"MLPClassifier", "SoftmaxRegression", "__version__"} <= set(dir(skdigits))
    from skdigits import MLPClassifier, SoftmaxRegression
    from skdigits.linear_model import SoftmaxRegression as S
    from skdigits.neural_network import MLPClassifier as M

    assert MLPClassifier is M and SoftmaxRegression is S
    with pytest.raises(AttributeError, match="no attribute 'MLPRegressor'"):
        skdigits.MLPRegressor  # noqa: B018
