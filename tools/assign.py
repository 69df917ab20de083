"""Generate the graded exercises from their one source, `exercises/source/*.ipynb`, with otter.

    python -m tools.assign                    # every source: notebooks and autograders
    python -m tools.assign --out DIR          # write into DIR/ instead of exercises/
    python -m tools.assign --autograder-only  # only the autograder zips (what grading needs)
    python -m tools.assign --run-tests        # also let otter run every test against the solutions
    python -m tools.assign --check            # write nothing; fail if exercises/ is not what
                                              # the sources generate with this Python

For each instructor notebook `exercises/source/NN_name.ipynb`, `otter assign` writes a student
notebook (solutions and hidden tests stripped, tests in its metadata) and an autograder (the
solution notebook, and a zip holding every test). This script puts them in place:

- `exercises/NN_name.ipynb`: the student notebook, what a learner opens;
- `exercises/solutions/NN_name.ipynb`: the solution notebook (same file name, so that its
  `grader.check` cells find their tests), without otter's solution markers and answer
  placeholders. Its outputs come from `make solutions` (which runs it in place); they are kept
  here while its code is unchanged and dropped when the code changes, so that a stale output
  can never survive a regeneration;
- `exercises/autograder/NN_name.zip` (not committed): otter's autograder, under a fixed name.

Cell ids are made deterministic (a hash of the cell's type and source) and otter's init cell
moves below the title, so regenerating an unchanged source changes no byte: CI regenerates and
compares. otter reprints every test with Python's own code printer (ast.unparse), which on
Python 3.12+ writes an f-string holding a string in its braces with nested quotes
(f'{g('x')}'), a SyntaxError on 3.11: the tests in exercises/source/ keep strings out of
f-string braces, so that 3.11, 3.12 and 3.13 generate the same files (tests/test_exercises.py
checks). `--run-tests` makes otter run the solution notebook and every test, hidden ones
included, and fail if any fails (slow: it runs the experiments).
"""
import argparse
import copy
import hashlib
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import nbformat

from .execute_notebooks import KEEP_METADATA  # the metadata a notebook keeps

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ROOT / "exercises"
SOURCES = EXERCISES / "source"
PLACEHOLDER = "_Type your answer here, replacing this text._"
MARKER_LINE = re.compile(r"^\s*# (BEGIN|END) SOLUTION( NO PROMPT)?\s*$")
MARKER_SUFFIX = re.compile(r"\s*# SOLUTION( NO PROMPT)?\s*$")


def sources(names=None):
    """The instructor notebooks to generate: all of exercises/source/, or those named."""
    if names:
        return [Path(n).resolve() for n in names]
    return sorted(SOURCES.glob("[0-9][0-9]_*.ipynb"))


def source_digest(path):
    """A hash of a source notebook, stored in its autograder zip to tell when it is stale."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_otter(source, workdir, run_tests=False):
    """`otter assign` on `source` into workdir; returns (student nb, solution nb, zip path)."""
    from otter.assign import main as otter_assign
    logging.getLogger("otter").setLevel(logging.WARNING)
    otter_assign(str(source), str(workdir), no_pdfs=True, no_run_tests=not run_tests)
    student = nbformat.read(workdir / "student" / source.name, as_version=4)
    solution = nbformat.read(workdir / "autograder" / source.name, as_version=4)
    zips = sorted((workdir / "autograder").glob("*.zip"))
    if len(zips) != 1:
        raise RuntimeError(f"otter assign wrote {len(zips)} zips for {source.name}")
    return student, solution, zips[0]


def set_cell_ids(nb, stem):
    """Ids from a hash of each cell's type and source (numbered when two cells are equal)."""
    seen = {}
    for cell in nb.cells:
        digest = hashlib.sha1(f"{stem}\0{cell.cell_type}\0{cell.source}".encode()).hexdigest()[:10]
        seen[digest] = seen.get(digest, 0) + 1
        cell["id"] = digest if seen[digest] == 1 else f"{digest}-{seen[digest]}"


def move_init_cell_below_title(nb):
    """otter puts its init cell first; the house style puts the title first."""
    first = nb.cells[0]
    if first.cell_type == "code" and "otter.Notebook(" in first.source \
            and len(nb.cells) > 1 and nb.cells[1].cell_type == "markdown":
        nb.cells[0], nb.cells[1] = nb.cells[1], first


def clean_solution(nb):
    """Drop otter's markers (# BEGIN SOLUTION ...) and the students' answer placeholders."""
    cells = []
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "markdown" and "otter_answer_cell" in tags \
                and cell.source.strip() == PLACEHOLDER:
            continue
        if cell.cell_type == "code":
            lines = [MARKER_SUFFIX.sub("", line) for line in cell.source.split("\n")
                     if not MARKER_LINE.match(line)]
            cell.source = "\n".join(lines)
        if "otter_assign_solution_cell" in tags:
            tags.remove("otter_assign_solution_cell")
            if not tags:
                del cell.metadata["tags"]
        cells.append(cell)
    nb.cells = cells


def finish(nb, stem):
    """Common to both versions: title first, deterministic ids, little metadata."""
    move_init_cell_below_title(nb)
    nb.metadata = {k: v for k, v in nb.metadata.items() if k in KEEP_METADATA}
    set_cell_ids(nb, stem)
    return nb


def code_sources(nb):
    return [c.source for c in nb.cells if c.cell_type == "code"]


def read_notebook(path):
    """The notebook at `path`, or None if there is none."""
    return nbformat.read(path, as_version=4) if Path(path).exists() else None


def keep_outputs(new, old):
    """Copy outputs and execution counts from notebook `old` (or None) if its code is the same.

    Returns True if outputs were kept. Any change to any code cell drops them all: a cell's
    output depends on the cells run before it.
    """
    if old is None or code_sources(old) != code_sources(new):
        return False
    old_code = [c for c in old.cells if c.cell_type == "code"]
    for cell, executed in zip((c for c in new.cells if c.cell_type == "code"), old_code):
        cell.outputs, cell.execution_count = executed.outputs, executed.execution_count
    if "language_info" in old.metadata:
        new.metadata["language_info"] = old.metadata["language_info"]
    return True


def notebook_text(nb):
    """The text of `nb` as written to a file (nbformat.write adds the final newline too)."""
    return nbformat.writes(nb) + "\n"


def write_if_changed(nb, path):
    """Write `nb` to `path` unless the file already holds exactly that text."""
    text = notebook_text(nb)
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return True


def write_zip(zip_path, target, digest):
    """Copy otter's timestamped zip to `target`, recording the source's digest as its comment."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(zip_path, target)
    with zipfile.ZipFile(target, "a") as zf:
        zf.comment = digest.encode()


def zip_is_current(zip_path, source):
    """True if zip_path exists and was generated from `source` as it is now."""
    if not zip_path.exists():
        return False
    with zipfile.ZipFile(zip_path) as zf:
        return zf.comment.decode() == source_digest(source)


def generate(source, zip_target, run_tests=False):
    """Run otter on one source: write its autograder zip to `zip_target` and return its student
    and solution notebooks, finished (the solution without outputs: see keep_outputs)."""
    with tempfile.TemporaryDirectory() as tmp:
        student, solution, zip_path = run_otter(source, Path(tmp) / "out", run_tests)
        write_zip(zip_path, zip_target, source_digest(source))
    clean_solution(solution)
    return finish(student, source.stem), finish(solution, source.stem)


def assign(source, out=EXERCISES, run_tests=False, autograder_only=False):
    """Generate one exercise; returns a list of what changed (paths relative to `out`)."""
    stem, changed = source.stem, []
    student, solution = generate(source, out / "autograder" / f"{stem}.zip", run_tests)
    if autograder_only:
        return changed
    committed = EXERCISES / "solutions" / source.name
    kept = keep_outputs(solution, read_notebook(committed))
    for nb, path in ((student, out / source.name), (solution, out / "solutions" / source.name)):
        if write_if_changed(nb, path):
            changed.append(str(path.relative_to(out)))
    if not kept:
        why = "its code changed, so its outputs were dropped" if committed.exists() else "it is new"
        print(f"{stem}: the solution is not executed ({why}): run `make solutions`",
              file=sys.stderr)
    return changed


def git_show(rel):
    """The text of exercises/<rel> as committed (git HEAD); None outside a git checkout, without
    git, or where HEAD has no such file."""
    try:
        path = f"HEAD:./exercises/{Path(rel).as_posix()}"
        result = subprocess.run(["git", "-C", str(ROOT), "show", path], capture_output=True,
                                encoding="utf-8", timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


def references(rel):
    """What exercises/<rel> may hold: its committed text (git HEAD) and its working copy's, the
    latter so that a maintainer can compare between `make exercises` and the commit."""
    texts = [git_show(rel)]
    if (EXERCISES / rel).exists():
        texts.append((EXERCISES / rel).read_text(encoding="utf-8"))
    return list(dict.fromkeys(text for text in texts if text is not None))


def matches(nb, text, is_solution):
    """True if `text` is exactly notebook `nb` (a solution: with the outputs stored in `text`)."""
    if is_solution:
        nb = copy.deepcopy(nb)
        keep_outputs(nb, nbformat.reads(text, as_version=4))
    return notebook_text(nb) == text


def stale(stem, student, solution):
    """Of the notebooks generated for exercise `stem`, those (paths relative to exercises/) that
    match neither their committed file nor their working copy."""
    generated = ((Path(f"{stem}.ipynb"), student, False),
                 (Path("solutions") / f"{stem}.ipynb", solution, True))
    return [str(rel) for rel, nb, is_solution in generated
            if not any(matches(nb, text, is_solution) for text in references(rel))]


def check(paths=None):
    """Regenerate the exercises in a temporary folder, writing nothing in exercises/: returns
    the notebooks there that this Python does not generate again (see `stale`)."""
    found = []
    with tempfile.TemporaryDirectory() as tmp:
        for source in sources(paths):
            found += stale(source.stem, *generate(source, Path(tmp) / f"{source.stem}.zip"))
    return found


def ensure_autograders(paths=None):
    """Build the autograder zips that are missing or older than their source; returns their paths."""
    zips = {}
    for source in sources(paths):
        target = EXERCISES / "autograder" / f"{source.stem}.zip"
        if not zip_is_current(target, source):
            assign(source, autograder_only=True)
        zips[source.stem] = target
    return zips


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.assign",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="*", help="source notebooks (default: all)")
    parser.add_argument("--out", type=Path, default=EXERCISES,
                        help="folder to write into (default: exercises/)")
    parser.add_argument("--run-tests", action="store_true",
                        help="let otter run all tests against each solution (runs them)")
    parser.add_argument("--autograder-only", action="store_true",
                        help="write only the autograder zips")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; fail if exercises/ is not what the sources generate")
    args = parser.parse_args(argv)
    if args.check:
        return report_check(check(args.sources))
    for source in sources(args.sources):
        changed = assign(source, args.out.resolve(), args.run_tests, args.autograder_only)
        print(f"{source.name}: " + (", ".join(changed) if changed else "up to date"))
    return 0


def report_check(found):
    """Print what `check` found; the exit status."""
    python = "Python %d.%d" % sys.version_info[:2]
    if found:
        print(f"{found} differ from what exercises/source/ generates with {python}: run `make "
              "exercises` (and `make solutions` if a solution's code changed)", file=sys.stderr)
        return 1
    print(f"exercises/: every notebook is what exercises/source/ generates with {python}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
