"""The command line, end to end through main(argv)."""

import joblib
import numpy as np
import pytest

from skdigits.cli import main


def test_fit_on_sample_saves_a_working_model(tmp_path, capsys):
    path = tmp_path / "m.joblib"
    assert main(["fit", "--sample", "--dataset", "fashion", "--multi-class", "ovr",
                 "--max-iter", "4", "-o", str(path)]) == 0
    out = capsys.readouterr().out
    assert "3000 train / 1000 test" in out and "4 epochs" in out
    assert "Shirt" in out  # class names in the per-class line
    model = joblib.load(path)
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
        for m in r["models"].values():
            assert 0.5 < m["test_accuracy"] <= 1 and m["fit_seconds"] > 0
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


def test_report_falls_back_to_the_sample_and_says_so(tmp_path, capsys, no_full_data):
    assert main(["report", "--dataset", "digits", "--out", str(tmp_path / "r"),
                 "--max-iter", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "bundled sample (the full files were not found)" in out
    assert len(list((tmp_path / "r").glob("digits_*.png"))) == 6
    assert not list((tmp_path / "r").glob("fashion_*.png"))


def test_report_with_a_wrong_data_home_is_one_line(tmp_path, capsys, no_full_data):
    assert main(["report", "--data-home", str(tmp_path / "nowhere"),
                 "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("skdigits report: error:")


# ---------------------------------------------------------------- fit / evaluate


def test_fit_mlp_with_params_then_evaluate(tmp_path, capsys):
    path = tmp_path / "mlp.joblib"
    assert main(["fit", "--sample", "--model", "mlp", "--param",
                 "hidden_layer_sizes=(32, 16)", "--param", "activation=tanh",
                 "--max-iter", "5", "-o", str(path)]) == 0
    out = capsys.readouterr().out
    assert "MLPClassifier(hidden_layer_sizes=(32, 16)): 5 epochs" in out
    model = joblib.load(path)
    assert model.activation == "tanh" and [w.shape[1] for w in model.coefs_] == [32, 16, 10]
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
    (["--param", "oops"], "KEY=VALUE"),
    (["--model", "mlp", "--param", "hidden_layer_sizes=()"], "hidden_layer_sizes"),
])
def test_fit_bad_parameters_are_one_line(argv, needle, capsys):
    assert main(["fit", "--sample", "--max-iter", "1", *argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and err[0].startswith("skdigits fit: error:")


def test_evaluate_refuses_unreadable_files_in_one_line(tmp_path, capsys):
    garbage = tmp_path / "garbage.joblib"
    garbage.write_bytes(b"this is not a pickle")
    not_a_model = tmp_path / "list.joblib"
    joblib.dump([1, 2, 3], not_a_model)
    for path, needle in [(garbage, "cannot read model file"),
                         (not_a_model, "does not hold a fitted classifier"),
                         (tmp_path / "missing.joblib", "model file not found")]:
        assert main(["evaluate", str(path), "--sample"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err


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
        ratio = float(row.split()[-1].rstrip("x"))
        acc = float(row.split()[-2])
        assert ratio > 0 and 0 < acc <= 1
    # skdigits' own rows have ratio 1
    assert all(r.split()[-1] == "1.00x" for r in rows if "skdigits" in r)


def test_benchmark_bad_model_list_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["benchmark", "--models", "svm"])
    assert exc.value.code == 2


def test_fit_summary_follows_the_model_params(tmp_path, capsys):
    path = tmp_path / "m.joblib"
    assert main(["fit", "--sample", "--model", "mlp", "--max-iter", "2",
                 "--param", "hidden_layer_sizes=16", "-o", str(path)]) == 0
    assert "MLPClassifier(hidden_layer_sizes=(16,))" in capsys.readouterr().out
    assert joblib.load(path).coefs_[0].shape == (784, 16)
    assert main(["fit", "--sample", "--max-iter", "2", "--param", "multi_class=ovr"]) == 0
    assert "SoftmaxRegression(multi_class='ovr')" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["fit"], ["report", "--dataset", "digits"]])
def test_ctrl_c_stops_the_command_with_exit_130(command, tmp_path, capsys, monkeypatch):
    from skdigits import SoftmaxRegression

    original = SoftmaxRegression._run_epoch
    calls = []

    def interrupt_in_second_epoch(self, *args):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(SoftmaxRegression, "_run_epoch", interrupt_in_second_epoch)
    argv = [*command, "--sample", "--max-iter", "3"]
    if command[0] == "report":
        argv += ["--out", str(tmp_path / "r"), "--quiet"]
    assert main(argv) == 130
    captured = capsys.readouterr()
    assert captured.err.strip().endswith("interrupted")
    assert not (tmp_path / "r" / "index.html").exists()
