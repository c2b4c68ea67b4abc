"""The tests run against the installed package, not the source tree: a file
left out of the wheel (a module, the bundled sample, the descriptions) shows
here instead of on a user's machine."""

import json
from importlib.metadata import distribution
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_tests_import_the_installed_package():
    import skdigits

    here = Path(skdigits.__file__).resolve().parent
    dist = distribution("skdigits")
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    if direct.get("dir_info", {}).get("editable"):
        # a development install: the installed package is the source tree
        assert here == ROOT / "skdigits"
    else:
        assert here != ROOT / "skdigits"
        assert here == Path(dist.locate_file("skdigits")).resolve()


def test_the_wheel_holds_every_module_and_data_file():
    import skdigits

    here = Path(skdigits.__file__).resolve().parent
    source = ROOT / "skdigits"
    wanted = {p.relative_to(source) for p in source.rglob("*")
              if p.is_file() and "__pycache__" not in p.parts
              and p.suffix in (".py", ".gz", ".rst")}
    assert wanted, "no source tree beside the tests"
    missing = sorted(str(p) for p in wanted if not (here / p).is_file())
    assert not missing, f"not installed: {missing}"
