"""The package as a whole (`nin_course/__init__.py`): its lazy re-exports, and its layout.

- `import nin_course.layers, nin_course.models` imports none of ipywidgets, matplotlib, pandas,
  tqdm beyond what `import torch` itself imports (torch.hub imports tqdm when it is installed).
- Every name in `nin_course.__all__` resolves to the object its module defines; `dir()` lists
  them; an unknown name raises the usual AttributeError.
- Each subpackage's docstring names every module in it (the folder's table of contents), and
  every module has its test file at the same place under tests/.
"""
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nin_course

HEAVY = ("ipywidgets", "matplotlib", "pandas", "tqdm")


def loaded_after(statement):
    """Which of HEAVY are in sys.modules after `statement`, run in a fresh interpreter."""
    code = (f"{statement}\nimport json, sys\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_layers_and_models_do_not_import_heavy_libraries():
    by_torch = loaded_after("import torch")
    assert not by_torch & {"ipywidgets", "matplotlib", "pandas"}, by_torch
    extra = loaded_after("import nin_course.layers, nin_course.models") - by_torch
    assert not extra, f"import nin_course.layers/models pulled in {sorted(extra)}: make it lazy"


def test_the_whole_package_does_import_them():
    # the check above can fail: the eager modules do pull these in
    assert {"ipywidgets", "matplotlib"} <= loaded_after("import nin_course.ui.widgets, "
                                                        "nin_course.ui.plots")


@pytest.mark.parametrize("name", nin_course.__all__)
def test_every_public_name_resolves_to_its_module(name):
    module = importlib.import_module(f"nin_course.{nin_course._MODULE_OF[name]}")
    assert getattr(nin_course, name) is getattr(module, name)


def test_public_names():
    assert len(set(nin_course.__all__)) == len(nin_course.__all__), "a name exported twice"
    assert set(nin_course.__all__) <= set(dir(nin_course))
    namespace = {}
    exec("from nin_course import *", namespace)  # noqa: S102 (a star import needs module scope)
    assert {"NiN", "fit", "load_run", "MLPConv"} <= set(namespace)


def test_submodules_and_unknown_names():
    assert nin_course.train is importlib.import_module("nin_course.train")  # a subpackage
    assert nin_course.models is importlib.import_module("nin_course.models")
    with pytest.raises(AttributeError, match="module 'nin_course' has no attribute 'NIN'"):
        nin_course.NIN  # noqa: B018 (the look-up is the test)
    with pytest.raises(ImportError, match="cannot import name 'no_such_name'"):
        from nin_course import no_such_name  # noqa: F401


PACKAGE = Path(nin_course.__file__).parent
MODULES = sorted(p.relative_to(PACKAGE) for p in PACKAGE.rglob("*.py")
                 if p.stem not in ("__init__", "__main__"))


@pytest.mark.parametrize("folder", sorted({m.parent for m in MODULES if m.parent != Path(".")}))
def test_each_subpackage_docstring_lists_its_modules(folder):
    doc = importlib.import_module(f"nin_course.{folder.as_posix().replace('/', '.')}").__doc__
    listed = set(re.findall(r"^- `(\w+)`", doc, flags=re.M))
    assert listed == {m.stem for m in MODULES if m.parent == folder}, doc


@pytest.mark.parametrize("module", MODULES, ids=str)
def test_every_module_has_a_test_file_in_the_same_place(module):
    test_file = Path(__file__).parent / module.parent / f"test_{module.stem}.py"
    assert test_file.is_file(), f"nin_course/{module} has no tests/{module.parent}/{test_file.name}"


def test_the_tests_have_one_conftest():
    """Test modules import helpers with `from conftest import ...`; a second conftest.py in a
    test folder would be found first for the modules beside it, and their collection fail."""
    tests = Path(__file__).parent
    assert [p.relative_to(tests) for p in tests.rglob("conftest.py")] == [Path("conftest.py")]
