"""The README's set-up commands are the ones CI runs, and they work."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _bash_blocks(text):
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def _setup_blocks():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return [b.strip() for b in _bash_blocks(section)]


def test_setup_is_two_commands_and_ci_runs_the_test_command():
    blocks = _setup_blocks()
    assert len(blocks) == 2
    main_job, test_cmd = blocks
    assert main_job.endswith("skdigits report") and "pip install ." in main_job
    assert "pytest" in test_cmd
    ci_lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_cmd in ci_lines


def test_readme_is_short_and_starts_with_the_set_up():
    """Issue 21, item 1: a README for users, the install-and-run command and
    what it produces on the first screen."""
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250
    first = "\n".join(lines[:40])
    main_job = _setup_blocks()[0]
    assert main_job in first
    assert "skdigits-report/" in first and "index.html" in first


def test_get_the_full_data_names_the_real_options():
    """The section names --download, SKDIGITS_DATA and --data-home, and every
    option the README names (but pytest's and Sphinx's) is one the command
    accepts."""
    from skdigits.cli import build_parser

    text = (ROOT / "README.md").read_text()
    section = text.split("## Get the full data", 1)[1].split("\n## ", 1)[0]
    for name in ("--download", "SKDIGITS_DATA", "--data-home"):
        assert name in section
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    known = {opt for p in [parser, *sub.choices.values()]
             for a in p._actions for opt in a.option_strings}
    ours = "\n".join(ln for ln in text.splitlines()
                     if "pytest" not in ln and "sphinx" not in ln)
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", ours))
    assert named and named <= known, named - known


def test_main_job_runs_on_the_bundled_sample(tmp_path):
    out = subprocess.run([sys.executable, "-m", "skdigits", "report", "--sample",
                          "--max-iter", "2", "--quiet", "--out", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    assert "bundled sample" in out.stdout and "report written" in out.stdout
    assert (tmp_path / "index.html").exists()
    assert len(list(tmp_path.glob("*.png"))) == 12
    assert out.stderr == ""


def test_a_passing_run_of_the_tests_prints_a_few_lines():
    # issue 21, item 11: the README's test command printed about 124 lines
    # when everything passed (a line of dots per 72 tests, the 21 expected
    # failures' reasons, a summary of the warnings); passing tests now print
    # nothing, expected failures their letter, and the summary one line
    nodes = [f"tests/test_engine.py::{name}" for name in (
        "test_constant_and_step_schedules_by_hand", "test_invscaling_schedule_by_hand",
        "test_cosine_schedule_by_hand", "test_history_appends_and_exports_every_curve")]
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
         *nodes], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
    assert re.fullmatch(r"4 passed in [\d.]+s", lines[-1]), lines
    assert len(lines) <= 2 and "." not in "".join(lines[:-1]), lines  # [100%]
    verbose = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-n", "0", "-p", "no:cacheprovider",
         nodes[0]], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "PASSED" in verbose.stdout  # -v still names every test
