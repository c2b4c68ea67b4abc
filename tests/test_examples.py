"""Every example script runs on the bundled sample and draws something."""

import runpy
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("plot_*.py"))


def test_there_are_examples():
    assert EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path, pyplot, monkeypatch, tmp_path):
    """Run as a script on a machine without a display, an example saves each
    figure as a PNG in the current folder and never calls ``plt.show()``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pyplot, "show", lambda *a, **k: pytest.fail("plt.show()"))
    runpy.run_path(str(path), run_name="__main__")
    figures = [pyplot.figure(n) for n in pyplot.get_fignums()]
    assert figures, f"{path.name} drew no figure"
    assert all(fig.axes for fig in figures)
    assert any(ax.lines or ax.images or ax.collections or ax.patches
               for fig in figures for ax in fig.axes)
    saved = sorted(p.name for p in tmp_path.glob("*.png"))
    assert saved == sorted(f"{path.stem}_{n}.png" for n in pyplot.get_fignums())
