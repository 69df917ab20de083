"""Re-execute notebooks in place, top to bottom, so their stored outputs match the code.

    python -m tools.execute_notebooks notebooks/*.ipynb

Each notebook runs in a fresh kernel from its own folder. A notebook is written back only when
every cell ran; on an error the file on disk is left as it was. Execution noise (timestamps,
widget state) is dropped so that a re-run changes nothing but real outputs. A tqdm progress bar
is stored as the text of its final state ("epoch 2/2: 100%|██████████| 40/40 [...]"), which
every reader shows, rather than as a widget that no reader can draw without the widget state.
"""
import argparse
import html
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from tqdm.std import Bar

KEEP_METADATA = ("kernelspec", "language_info", "otter")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
TQDM_PARTS = ("HTMLModel", "FloatProgressModel", "HTMLModel")  # tqdm.notebook's HBox children
BAR_WIDTH = 10  # characters: the width of tqdm's own text for a notebook bar


def widget_models(nb):
    """model_id -> final state of every widget model that nbclient recorded in nb.metadata."""
    saved = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    return {model_id: entry.get("state", {}) for model_id, entry in saved.items()}


def tqdm_text(model_id, models):
    """The text of the tqdm bar drawn by widget `model_id`, in its final state; None if that
    widget is not a tqdm bar (an HBox of HTML description, FloatProgress and HTML counts)."""
    box = models.get(model_id, {})
    children = [models.get(ref.removeprefix("IPY_MODEL_"), {}) for ref in box.get("children", [])]
    if (box.get("_model_name") != "HBoxModel"
            or tuple(child.get("_model_name") for child in children) != TQDM_PARTS):
        return None
    left, progress, right = children
    left, right = unhtml(left.get("value", "")), unhtml(right.get("value", ""))
    if not left:  # no total: tqdm draws no bar, only the counts
        return right
    low, high = progress.get("min", 0), progress.get("max", 1)
    frac = min(max((progress.get("value", 0) - low) / (high - low), 0), 1) if high > low else 0
    return f"{left}|{format(Bar(frac, default_len=BAR_WIDTH))}|{right}"


def unhtml(value):
    """Undo tqdm.notebook's escaping: HTML entities, and spaces drawn as figure spaces."""
    return html.unescape(value).replace("\u2007", " ") if isinstance(value, str) else ""


def freeze_progress_bars(nb):
    """Store every tqdm bar output as the text of its final state, in place; returns nb.

    Without the widget state, JupyterLab draws a widget view as "Error displaying widget: model
    not found" and static readers (GitHub, nbviewer) as nothing or as the text taken when the bar
    was created ("0%| | 0/40"). So the widget view goes and the text is what ran. Other widgets
    are left as they are.
    """
    models = widget_models(nb)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            text = None if view is None else tqdm_text(view.get("model_id"), models)
            if text is not None:
                output.data = {"text/plain": text}
    return nb


def clean(nb):
    """Freeze progress bars (which needs the widget state), then drop execution noise:
    per-cell timing metadata, widget state, volatile language info."""
    freeze_progress_bars(nb)
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
                            store_widget_state=True,  # read by freeze_progress_bars
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    nbformat.write(clean(nb), path)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.execute_notebooks",
                                     description=__doc__.splitlines()[0])
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
