"""Where the runtime's pieces live: the front ends count cores through the
core budget (skdigits._cores), never through the engine's internals."""

import ast
from pathlib import Path

import pytest

import skdigits

PACKAGE = Path(skdigits.__file__).parent
FRONT_ENDS = ["cli.py", "_report.py", "_search.py", "benchmark.py", "_system.py"]


def _imported_modules(path):
    """Every module a file imports, anywhere in it (function bodies too),
    as an absolute dotted name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = "skdigits"  # the front ends sit at the package's top level
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1]
            module = ".".join(base) if node.level else ""
            if node.module:
                module = f"{module}.{node.module}" if module else node.module
            names += [module] + [f"{module}.{alias.name}" for alias in node.names]
    return names


@pytest.mark.parametrize("name", FRONT_ENDS)
def test_front_ends_do_not_import_the_engine(name):
    imported = _imported_modules(PACKAGE / name)
    engine = [m for m in imported if m.startswith("skdigits._engine")]
    assert not engine, f"{name} imports engine internals: {engine}"


def test_the_core_budget_does_not_import_the_engine():
    imported = _imported_modules(PACKAGE / "_cores.py")
    assert not [m for m in imported if m.startswith("skdigits._engine")]
