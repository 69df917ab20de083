"""The package as a whole (`nin_course/__init__.py`): its lazy re-exports.

- `import nin_course.layers, nin_course.models` imports none of ipywidgets, matplotlib, pandas,
  tqdm beyond what `import torch` itself imports (torch.hub imports tqdm when it is installed).
- Every name in `nin_course.__all__` resolves to the object its module defines; `dir()` lists
  them; an unknown name raises the usual AttributeError.
"""
import importlib
import json
import subprocess
import sys

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
    assert {"ipywidgets", "matplotlib"} <= loaded_after("import nin_course.widgets, "
                                                        "nin_course.plots")


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
    assert nin_course.plots is importlib.import_module("nin_course.plots")
    with pytest.raises(AttributeError, match="module 'nin_course' has no attribute 'NIN'"):
        nin_course.NIN  # noqa: B018 (the look-up is the test)
    with pytest.raises(ImportError, match="cannot import name 'no_such_name'"):
        from nin_course import no_such_name  # noqa: F401
