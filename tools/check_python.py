"""Check the Python that `make setup` builds the virtual environment with, before it does.

    python3 -m tools.check_python VENV [--requested]

Run by the Makefile with $(PYTHON). Exits with a message that says what to do when
- VENV does not exist yet and this Python is not 3.11, 3.12 or 3.13;
- VENV exists but its interpreter no longer runs (the Python that built it was removed);
- VENV exists, was built with another Python than this one, and PYTHON was given
  (--requested): without this check `make setup PYTHON=python3.12` would reuse a 3.11 .venv
  and say "Nothing to be done".
Written for Python 3.7 and newer, so that an old Python gets the message, not a SyntaxError.
"""
import argparse
import subprocess
import sys
from pathlib import Path

SUPPORTED = ((3, 11), (3, 12), (3, 13))
VERSION_CODE = "import sys; print('%d.%d' % sys.version_info[:2])"


def dotted(version):
    """(3, 12) -> '3.12'."""
    return "%d.%d" % tuple(version)


def venv_version(venv):
    """The (major, minor) of the Python in `venv`; None if it has none; raises if it won't run."""
    python = Path(venv) / "bin" / "python"
    if not python.exists():
        return None
    try:
        out = subprocess.run([str(python), "-c", VERSION_CODE], capture_output=True, text=True,
                             timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        raise RuntimeError(f"{python} does not run (was the Python that built {venv} removed?): "
                           f"run `make clean-venv VENV={venv}`, then `make setup` again")
    return tuple(int(part) for part in out.strip().split("."))


def problem(venv, requested, this=tuple(sys.version_info[:2])):
    """What is wrong with building or reusing `venv` with this Python; None if nothing."""
    try:
        built_with = venv_version(venv)
    except RuntimeError as err:
        return str(err)
    if built_with is None and this not in SUPPORTED:
        return (f"nin-course needs Python 3.11, 3.12 or 3.13, but PYTHON={sys.executable} is "
                f"Python {dotted(this)}: run `make setup PYTHON=python3.12` (or another of them)")
    if built_with is not None and requested and built_with != this:
        return (f"{venv} was built with Python {dotted(built_with)}, but PYTHON={sys.executable} "
                f"is Python {dotted(this)}. To rebuild it with {dotted(this)}: "
                f"`make clean-venv VENV={venv}`, then `make setup PYTHON={sys.executable}`. "
                f"To keep it, leave PYTHON out, or give the other Python a folder of its own: "
                f"`make setup PYTHON={sys.executable} VENV=../venv-{dotted(this)}` (and the same "
                f"VENV= for make lab and make test)")
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.check_python",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("venv", help="the virtual environment's folder (the Makefile's VENV)")
    parser.add_argument("--requested", action="store_true",
                        help="PYTHON was given: the venv must have been built with this Python")
    args = parser.parse_args(argv)
    message = problem(args.venv, args.requested)
    if message:
        print(f"make setup: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
