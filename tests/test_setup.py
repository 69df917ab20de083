"""The Makefile's setup: which Python builds the virtual environment, and the kernel it installs.

- `make setup PYTHON=...` stops, saying what to do, when the existing venv was built with
  another Python (instead of reusing it with "Nothing to be done"), when the venv's Python no
  longer runs, or when PYTHON is not a command; it reuses a venv that matches, and one built
  with another Python when PYTHON is not given (tools/check_python.py, run by `python-check`).
- An interpreter outside 3.11-3.13 is refused before a venv is built.
- The kernel that setup installs has the name and display name that every notebook stores as
  its kernelspec, so that JupyterLab does not rewrite that metadata when it opens one.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools import check_python

ROOT = Path(__file__).resolve().parents[1]

THIS = "%d.%d" % sys.version_info[:2]
OTHER = "3.13" if THIS != "3.13" else "3.12"


def git(*args):
    """stdout of git run in the repository; None without git, a checkout or a success."""
    try:
        result = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                                timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


def course_notebooks():
    """The lessons' and exercises' notebooks that git tracks (outside git: those on disk, without
    JupyterLab's checkpoints), relative to the repository."""
    tracked = git("ls-files", "--", "notebooks/*.ipynb", "exercises/*.ipynb")
    if tracked:
        return sorted(tracked.splitlines())
    paths = [*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("exercises/**/*.ipynb")]
    return sorted(str(p.relative_to(ROOT)) for p in paths if ".ipynb_checkpoints" not in p.parts)


NOTEBOOKS = course_notebooks()

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def fake_venv(folder, prints=None):
    """A venv folder whose bin/python prints `prints` (a version), or fails if None."""
    python = folder / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\necho {prints}\n" if prints else "#!/bin/sh\nexit 1\n")
    python.chmod(0o755)
    return folder


def python_check(venv, python=None):
    """`make python-check` with VENV=venv (and PYTHON=python if given): (exit code, stderr)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "MAKEFLAGS", "MAKELEVEL")}
    args = ["make", "-s", "-C", str(ROOT), "python-check", f"VENV={venv}"]
    if python:
        args.append(f"PYTHON={python}")
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    return result.returncode, result.stderr


@needs_make
def test_a_venv_built_with_another_python_is_not_reused_silently(tmp_path):
    venv = fake_venv(tmp_path / "venv", OTHER)
    code, err = python_check(venv, sys.executable)
    assert code != 0
    assert f"{venv} was built with Python {OTHER}, but PYTHON={sys.executable} is Python {THIS}" in err
    assert f"make clean-venv VENV={venv}" in err and f"make setup PYTHON={sys.executable}" in err


@needs_make
def test_a_matching_venv_is_reused_and_any_venv_when_python_is_not_given(tmp_path):
    assert python_check(fake_venv(tmp_path / "same", THIS), sys.executable) == (0, "")
    if shutil.which("python3"):  # the Makefile's default PYTHON
        assert python_check(fake_venv(tmp_path / "other", OTHER)) == (0, "")


@needs_make
def test_a_venv_whose_python_does_not_run_says_so(tmp_path):
    venv = fake_venv(tmp_path / "venv")
    code, err = python_check(venv, sys.executable)
    assert code != 0 and "does not run" in err and f"make clean-venv VENV={venv}" in err


@needs_make
def test_a_python_that_is_not_a_command_says_so(tmp_path):
    code, err = python_check(tmp_path / "venv", "python3.99")
    assert code != 0 and "PYTHON=python3.99 is not a command" in err


def test_an_unsupported_python_is_refused_before_a_venv_is_built(tmp_path):
    message = check_python.problem(tmp_path / "none", requested=False, this=(3, 10))
    assert "needs Python 3.11, 3.12 or 3.13" in message and "is Python 3.10" in message
    assert check_python.problem(tmp_path / "none", requested=True, this=(3, 13)) is None


def installed_kernelspec():
    """{name, display_name} of the kernel that the Makefile's setup installs."""
    makefile = (ROOT / "Makefile").read_text()
    found = re.findall(r'ipykernel install .*--name (\S+) --display-name "([^"]+)"', makefile)
    assert len(found) == 1, "the Makefile should install one kernel, with --name and --display-name"
    return {"name": found[0][0], "display_name": found[0][1]}


def stored_kernelspecs(path):
    """The kernelspec of the notebook at `path` as committed (git HEAD) and in the working copy:
    a learner's JupyterLab may have rewritten the latter, a maintainer may not have committed yet."""
    texts = [git("show", f"HEAD:./{path}")]
    if (ROOT / path).exists():
        texts.append((ROOT / path).read_text())
    return [json.loads(text)["metadata"].get("kernelspec", {}) for text in texts if text]


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_every_notebook_stores_the_kernelspec_that_setup_installs(path):
    expected = {**installed_kernelspec(), "language": "python"}
    stored = stored_kernelspecs(path)
    assert expected in stored, (f"{path} stores kernelspec {stored[0]}; `make setup` installs "
                                f"{expected}: JupyterLab would rewrite it on opening")
