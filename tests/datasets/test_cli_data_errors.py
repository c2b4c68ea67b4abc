"""The command line when the data is missing or cannot be downloaded (issue 21,
item 7): one line of at most 300 characters, in the command's words (its
options ``--data-home``, ``--download``, ``--sample`` and ``SKDIGITS_DATA``,
not load_mnist's arguments), exit code 1, and no raw scikit-learn or urllib
warning.

The download is the real one, against a closed local port (``offline_openml``):
nothing leaves the machine.
"""

import socket
import tempfile
import urllib.error
from http.client import IncompleteRead
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skdigits.cli import _one_line, main
from skdigits.datasets import DataNotFoundError


@pytest.fixture
def short_path():
    """A folder with a short name (pytest's are long enough to be cut)."""
    with tempfile.TemporaryDirectory(prefix="d") as folder:
        yield Path(folder)


PYTHON_WORDS = ("download_if_missing", "data_home", "load_mnist", "sample=True")


def _the_error_line(capsys, command):
    """The command's error line, checked; the lines before it (logs) too."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith(f"skdigits {command}: error:")]
    assert len(errors) == 1, err
    line = errors[0]
    assert len(line) <= 300, line
    for python in PYTHON_WORDS:
        assert python not in line
    assert "Warning" not in err and "Retrying" not in err and "Traceback" not in err
    return line, [ln for ln in lines if ln != line]


@pytest.mark.parametrize("command", [["fit"], ["benchmark", "--dataset", "fashion"]])
def test_offline_download_is_one_line_in_the_commands_words(command, offline_openml,
                                                             capsys):
    # before: scikit-learn's retry warning, then a line of about 900 characters
    # naming download_if_missing and data_home
    assert main([*command, "--download"]) == 1
    line, others = _the_error_line(capsys, command[0])
    title = "Fashion-MNIST" if "fashion" in command else "MNIST"
    assert f"could not download the {title} files from OpenML (Connection " \
           "refused)" in line
    for words in ("--data-home", "SKDIGITS_DATA", "--sample"):
        assert words in line
    # the one line before it says what was being tried (INFO, gone with -q)
    assert len(others) == 1 and others[0].startswith(f"Downloading {title} from")
    assert main([*command, "--download", "-q"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [line]


def test_offline_download_fails_the_report_instead_of_falling_back(
        offline_openml, tmp_path, capsys):
    # before: the report said "full files not found, using the bundled
    # sample" and exited 0, after the download the user asked for had failed
    out = tmp_path / "report"
    assert main(["report", "--download", "--out", str(out), "-q"]) == 1
    line, others = _the_error_line(capsys, "report")
    assert "could not download the MNIST files from OpenML" in line
    assert not any("bundled sample" in ln for ln in others)
    assert not (out / "index.html").exists()


@pytest.mark.parametrize("kind, title", [("digits", "MNIST digits"),
                                         ("fashion", "Fashion-MNIST")])
def test_the_report_says_how_to_get_the_full_files(kind, title, tmp_path, monkeypatch,
                                                   caplog):
    # before: "digits: full files not found, using the bundled sample": the
    # dataset by its CLI name, and no word on how to get the files
    from skdigits._report import load_study_data

    monkeypatch.delenv("SKDIGITS_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    with caplog.at_level("INFO", logger="skdigits"):
        train, _, source = load_study_data(kind)
    assert len(train.data) == 3000 and source.startswith("bundled sample")
    (line,) = [r.getMessage() for r in caplog.records if "not found" in r.getMessage()]
    assert line == (f"{title}: full files not found, using the sample (--download "
                    "gets them)")
    assert len(line) <= 80


def test_offline_download_into_a_given_folder(offline_openml, tmp_path, capsys):
    assert main(["fit", "--download", "--data-home", str(tmp_path), "-q"]) == 1
    line, others = _the_error_line(capsys, "fit")
    assert others == [] and "could not download the MNIST files" in line


def test_a_folder_that_does_not_exist(short_path, capsys):
    nowhere = short_path / "nowhere"
    assert main(["fit", "--data-home", str(nowhere), "-q"]) == 1
    line, _ = _the_error_line(capsys, "fit")
    assert f"--data-home {nowhere} does not exist" in line


@pytest.mark.parametrize("command", ["fit", "report"])
def test_a_folder_without_the_files(command, short_path, capsys):
    # report goes through main's one-line rendering, fit through _load
    argv = [command, "--data-home", str(short_path), "-q"]
    if command == "report":
        argv += ["--dataset", "digits", "--out", str(short_path / "out")]
    assert main(argv) == 1
    line, _ = _the_error_line(capsys, command)
    assert f"the MNIST files are not in {short_path / 'mnist'}, {short_path};" in line
    assert "--download" in line and "--sample" in line


CAUSES = st.one_of(
    st.builds(lambda text: urllib.error.URLError(socket.gaierror(-2, text)),
              st.text(min_size=1, max_size=400)),
    st.builds(urllib.error.URLError, st.text(max_size=400)),
    st.builds(lambda code, text: urllib.error.HTTPError(
        "https://www.openml.org", code, text, {}, None),
        st.integers(400, 599), st.text(max_size=400)),
    st.builds(TimeoutError, st.text(max_size=400)),
    st.builds(lambda n: IncompleteRead(b"x" * n), st.integers(0, 50)),
    st.builds(EOFError),
)


@given(cause=CAUSES, kind=st.sampled_from(["digits", "fashion"]),
       reason=st.sampled_from(["download_failed", "not_found",
                               "missing_data_home"]),
       folders=st.lists(st.text(st.characters(exclude_categories=("Cc", "Cs")),
                                min_size=1, max_size=200), min_size=1, max_size=4))
def test_any_data_error_is_one_short_line(cause, kind, reason, folders):
    error = DataNotFoundError("a long message\nof many lines\n  - in Python's words",
                              folders, kind=kind, reason=reason)
    error.__cause__ = cause
    line = "skdigits benchmark: error: " + _one_line(error)
    assert "\n" not in line and "many lines" not in line
    assert len(line) <= 300
    assert "--data-home" in line and "load_mnist" not in line
