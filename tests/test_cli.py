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


def test_help_exits_0(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--help"])
    assert exc.value.code == 0
    assert "--sample" in capsys.readouterr().out
