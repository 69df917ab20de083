"""A submitted notebook read defensively, and the copy of it that is graded.

Anything that is not a notebook (binary, JSON that is not a notebook object, `metadata: null`,
an assignment name that is not a string) raises `Unreadable` with a one-line reason, which
becomes the submission's status; it never stops the grading of the others.

The graded copy gets back, from the exercise's student notebook (the template), every cell the
template locks (otter's setup and check cells: `editable: false` or `deletable: false`), as
nbgrader restores its locked cells: a learner can add cells, but not change or delete these.
"""
import copy
import json

import nbformat

MAX_BYTES = 50 * 2**20  # a notebook with its outputs; more is not a submission


class Unreadable(Exception):
    """A file that cannot be graded as a notebook; the message says why, in one line."""


def _kind(value):
    return "null" if value is None else type(value).__name__


def read_submission(path):
    """The notebook at `path` (nbformat 4), or Unreadable."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise Unreadable(f"not graded: larger than {MAX_BYTES // 2**20} MiB")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise Unreadable("not a notebook: not UTF-8 text (a binary file?)") from None
    except OSError as err:
        raise Unreadable(f"cannot read it: {err.strerror}") from None
    try:
        obj = json.loads(text)
    except ValueError as err:
        raise Unreadable(f"not a notebook: not JSON ({err})") from None
    if not isinstance(obj, dict):
        raise Unreadable(f"not a notebook: JSON {_kind(obj)}, not a notebook object")
    if not isinstance(obj.get("metadata"), dict):
        raise Unreadable(f"not a notebook: its metadata is {_kind(obj.get('metadata'))}, not an object")
    if not isinstance(obj.get("cells"), list) or obj.get("nbformat") != 4:
        raise Unreadable("not a notebook: no list of cells, or not nbformat 4")
    try:
        nb = nbformat.from_dict(obj)
        nbformat.validate(nb)
    except Exception as err:  # nbformat's ValidationError and what a malformed cell raises
        first = str(err).strip().splitlines() or [type(err).__name__]
        raise Unreadable(f"not a valid notebook: {first[0][:200]}") from None
    return nb


def exercise_of(nb, path, exercises):
    """The exercise (one of `exercises`) that nb answers: otter's assignment name, else the file's."""
    otter = nb.metadata.get("otter", {})
    name = otter.get("assignment_name") if isinstance(otter, dict) else None
    if name is not None and not isinstance(name, str):
        raise Unreadable(f"its otter assignment_name is a {_kind(name)} ({str(name)[:40]}), not a name")
    if name in exercises:
        return name
    if path.stem in exercises:
        return path.stem
    raise Unreadable("unknown exercise: no otter assignment name, no known file name")


def locked(cell):
    """True for a cell the template does not let a learner change (otter's setup and check cells)."""
    meta = cell.get("metadata", {})
    return meta.get("editable") is False or meta.get("deletable") is False


def restore_template(nb, template):
    """A copy of nb with the template's locked cells as the template has them, in their places
    (a deleted one is put back after the cell that precedes it in the template), and the
    template's notebook metadata."""
    cells = {c.get("id"): c for c in template.cells if locked(c)}
    out = [_fresh(cells[c.get("id")]) if c.get("id") in cells else copy.deepcopy(c) for c in nb.cells]
    present = {c.get("id") for c in out}
    for i, cell in enumerate(template.cells):
        if cell.get("id") in cells and cell.get("id") not in present:
            before = [t.get("id") for t in template.cells[:i]]
            place = max((j + 1 for j, c in enumerate(out) if c.get("id") in before), default=0)
            out.insert(place, _fresh(cell))
            present.add(cell.get("id"))
    restored = copy.deepcopy(template)
    restored.cells = out
    return restored


def _fresh(cell):
    """A template cell as it is run: without outputs."""
    cell = copy.deepcopy(cell)
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    return cell
