"""The README's set-up commands are the ones CI runs, and they work."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _bash_blocks(text):
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_ci_runs_the_readme_test_command():
    blocks = _bash_blocks((ROOT / "README.md").read_text())
    test_cmd = blocks[1].strip()
    assert "pytest" in test_cmd
    ci_lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_cmd in ci_lines


def test_main_job_runs_on_the_bundled_sample():
    out = subprocess.run([sys.executable, "-m", "skdigits", "fit", "--sample",
                          "--max-iter", "5"], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert "test accuracy" in out.stdout and "bundled sample" in out.stdout
    assert out.stderr == ""
