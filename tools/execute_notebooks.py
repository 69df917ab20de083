"""Re-execute notebooks in place, top to bottom, so their stored outputs match the code.

    python tools/execute_notebooks.py notebooks/*.ipynb

Each notebook runs in a fresh kernel from its own folder. A notebook is written back only when
every cell ran; on an error the file on disk is left as it was. Execution noise (timestamps,
widget state) is dropped so that a re-run changes nothing but real outputs.
"""
import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

KEEP_METADATA = ("kernelspec", "language_info", "otter")


def clean(nb):
    """Drop execution noise: per-cell timing metadata, widget state, volatile language info."""
    nb.metadata = {k: v for k, v in nb.metadata.items() if k in KEEP_METADATA}
    nb.metadata.get("language_info", {}).pop("version", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    return nb


def execute(path, timeout):
    """Run the notebook at `path` and write it back; return seconds taken."""
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    nbformat.write(clean(nb), path)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args(argv)
    failed = []
    for path in args.notebooks:
        try:
            print(f"{path}: {execute(path, args.timeout):.1f} s", flush=True)
        except CellExecutionError as err:
            failed.append(path)
            print(f"{path}: FAILED, left unchanged\n{err}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
