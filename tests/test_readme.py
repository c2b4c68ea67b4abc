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


def test_main_job_runs_on_the_bundled_sample(tmp_path):
    out = subprocess.run([sys.executable, "-m", "skdigits", "report", "--sample",
                          "--max-iter", "2", "--quiet", "--out", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    assert "bundled sample" in out.stdout and "report written" in out.stdout
    assert (tmp_path / "index.html").exists()
    assert len(list(tmp_path.glob("*.png"))) == 12
    assert out.stderr == ""
