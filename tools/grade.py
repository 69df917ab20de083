"""Grade exercise notebooks with otter-grader's tests, each submission in a sandbox of its own.

    python -m tools.grade                        # the notebooks in exercises/: a score table
    python -m tools.grade path/to/01_x.ipynb     # these notebooks
    python -m tools.grade --folder SUBMISSIONS --csv scores.csv [--force]   # a folder -> CSV

Each notebook runs in bubblewrap (tools/grade_sandbox.py): it can write only to a scratch folder
of its own, cannot read the other submissions, the autograders or the CSV, has no network and
its own PID namespace; a wall-clock limit (--timeout) and a memory limit (--memory) hold for
everything it starts, kernel included, and when it ends nothing it started is left. Without
bubblewrap (`apt-get install bubblewrap`) notebooks are graded without isolation, after a
warning; --folder then refuses unless --no-sandbox is given.

Inside, tools/grade_worker.py runs the notebook, with the cells that the exercise's template
locks (setup, check cells) restored from it (tools/grade_submission.py), and then the
autograder's tests; the kernel reports only which test cases passed. Scores and possible points
are computed here from the autograder zip, whose contents are checked against a SHA-256 taken
when it was built (or, with --autograders, when grading started). A submission that replaced
the grading code in its kernel (nin_course.grading and .analysis, otter's test runner) is
marked `tampered` and scores 0. Submissions are never modified. The CSV is written before the
first submission is graded and rewritten (atomically) as each one finishes; an existing CSV is
only replaced with --force.

Grading runs the notebook from the top, so its experiments run again: under NIN_COURSE_PROFILE,
`smoke` unless it is set (the checks never depend on how long a model trained). Each check has
its own time limit too (NIN_COURSE_CHECK_SECONDS, see nin_course/grading.py).
"""
import argparse
import concurrent.futures
import csv
import hashlib
import io
import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path

from . import assign  # tools/assign.py: builds the autograder zips
from . import grade_sandbox
from .grade_submission import Unreadable, exercise_of, read_submission, restore_template

DEFAULT_TIMEOUT = 900  # seconds per notebook: a smoke run of the longest solution takes ~2 min
DEFAULT_MEMORY_GIB = 6  # per notebook, kernel included; a smoke run needs about 1.5 GiB
# The worker runs as `python .../tools/grade_worker.py`, by its file path, unlike every other
# tool (`python -m tools.NAME`): `-m` puts the working folder first on the module search path,
# and the worker's working folder is the submission's scratch folder, which the kernel can write
# to. A module that a notebook left there, named as one the worker has yet to import, would be
# imported instead of the real one, and could then write result.json itself. Started from the
# repository root instead, the worker would find nin_course in the checkout while the kernel
# imports it from the environment: with a non-editable install those files differ, and the
# tamper check (grade_worker.module_files) would fail every submission. By file path, the
# worker's search path starts with tools/ (read-only; nothing the kernel imports), then the
# environment's, as the kernel's does; grade_worker.py imports nothing from tools/, so it needs
# no package.
WORKER = Path(__file__).resolve().parent / "grade_worker.py"
RECORD = assign.EXERCISES / "autograder" / "contents.sha256.json"  # see verified_autograders


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def manual_questions(exercise):
    """[(name, points)] of the questions of `exercise` that an instructor grades by hand."""
    import yaml
    found = []
    for cell in read_json(assign.SOURCES / f"{exercise}.ipynb")["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "raw" and text.lstrip().upper().startswith("# BEGIN QUESTION"):
            config = yaml.safe_load(text) or {}
            if config.get("manual"):
                found.append((config["name"], config.get("points", 0)))
    return found


# Autograders: their contents, verified. ------------------------------------------------------

def contents_digest(data):
    """SHA-256 of a zip's members (names and bytes, in order of name): not of its comment or dates."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in sorted(zf.namelist()):
            digest.update(name.encode() + b"\0" + hashlib.sha256(zf.read(name)).digest())
    return digest.hexdigest()


class Autograder:
    """One exercise's autograder zip, read once: its test files and the digest of its contents."""

    def __init__(self, path, expected=None):
        self.path, self.data = Path(path), Path(path).read_bytes()
        self.digest = contents_digest(self.data)
        if expected is not None and self.digest != expected:
            raise ValueError(f"{self.path}: its contents differ from the SHA-256 recorded for it")
        with zipfile.ZipFile(io.BytesIO(self.data)) as zf:
            self.tests = {Path(n).stem: zf.read(n).decode() for n in sorted(zf.namelist())
                          if n.startswith("tests/") and n.endswith(".py")}

    def test_files(self):
        """{question: otter's ExceptionTestFile}, built here (never in a submission's kernel)."""
        from otter.test_files.exception_test import ExceptionTestFile
        return {q: ExceptionTestFile.from_string(source, path=f"{q}.py") for q, source in self.tests.items()}

    def verify(self):
        """Raise ValueError if the zip on disk no longer holds what was read."""
        Autograder(self.path, self.digest)


def verified_autograders(folder=None):
    """{exercise: Autograder}. From `folder` as they are; else exercises/autograder/, built from
    exercises/source/ when missing or stale, and rebuilt when a zip's contents differ from the
    SHA-256 recorded (in RECORD) when it was built here: a zip is never trusted by its comment."""
    if folder is not None:
        return {p.stem: Autograder(p) for p in sorted(Path(folder).glob("*.zip"))}
    zips = assign.ensure_autograders()
    record = read_json(RECORD) if RECORD.exists() else {}
    found = {}
    for stem, path in zips.items():
        source = assign.source_digest(assign.SOURCES / f"{stem}.ipynb")
        entry = record.get(stem, {})
        if entry.get("source") != source or contents_digest(path.read_bytes()) != entry.get("contents"):
            if entry.get("source") == source:
                print(f"{path}: its contents changed since it was built: rebuilt", file=sys.stderr)
            path.unlink()
            assign.ensure_autograders([assign.SOURCES / f"{stem}.ipynb"])
        found[stem] = Autograder(path)
        record[stem] = {"source": source, "contents": found[stem].digest}
    atomic_write(RECORD, json.dumps(record, indent=1, sort_keys=True) + "\n")
    return found


def atomic_write(path, text):
    """Write text to path through a temporary file beside it and a rename."""
    fd, tmp = tempfile.mkstemp(dir=Path(path).parent, prefix=f".{Path(path).name}-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# One submission. ------------------------------------------------------------------------------

def error_result(status, seconds=0.0, exercise=""):
    return {"status": status, "questions": {}, "seconds": seconds, "exercise": exercise}


def scores(autograder, reported):
    """{question: {score, possible, failed}} from the autograder's test files and the cases that
    the kernel reported as passed (a question or case it did not report has failed)."""
    from otter.test_files.abstract_test import TestCaseResult
    questions = {}
    for name, test_file in autograder.test_files().items():
        cases = {c.get("case"): c for c in reported.get(name, []) if isinstance(c, dict)}
        test_file.test_case_results = [
            TestCaseResult(test_case=tc, passed=cases.get(tc.name, {}).get("passed") is True,
                           message=str(cases.get(tc.name, {}).get("message", "not run"))[-4000:])
            for tc in test_file.test_cases]
        failed = [{"case": r.test_case.name, "hidden": r.test_case.hidden, "message": r.message.strip()}
                  for r in test_file.test_case_results if not r.passed]
        questions[name] = {"score": test_file.score, "possible": test_file.possible, "failed": failed}
    return questions


def zero_scores(autograder):
    return {name: {"score": 0, "possible": tf.possible, "failed": []}
            for name, tf in autograder.test_files().items()}


def sandbox_env():
    """The environment inside the sandbox: no secrets of ours, only what grading needs."""
    keep = ("PATH", "LANG", "LC_ALL", "NIN_COURSE_DATA", "NIN_COURSE_CACHE", "NIN_COURSE_PROFILE",
            "NIN_COURSE_CHECK_SECONDS", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.setdefault("NIN_COURSE_PROFILE", "smoke")
    env.update(HOME="/tmp/home", JUPYTER_RUNTIME_DIR="/tmp/home/runtime", IPYTHONDIR="/tmp/home/ipython",
               MPLCONFIGDIR="/tmp/home/mpl", PYTHONDONTWRITEBYTECODE="1", TMPDIR="/tmp")
    return env


def run_in_sandbox(notebook, autograder, limits):
    """Run the prepared notebook and its tests; returns (status, reported questions, seconds)."""
    with tempfile.TemporaryDirectory(prefix="nin-grade-") as tmp:
        scratch, grader = Path(tmp) / "work", Path(tmp) / "grader"
        scratch.mkdir()
        grader.mkdir()
        target = scratch / f"{autograder.path.stem}.ipynb"
        import nbformat
        nbformat.write(notebook, target)
        job = {"tests": autograder.tests, "cell_timeout": max(10, int(limits["timeout"] // 3))}
        (grader / "job.json").write_text(json.dumps(job))
        command = [sys.executable, str(WORKER)]
        if limits["bwrap"]:
            command = grade_sandbox.bwrap_command(
                limits["bwrap"], [*command, grade_sandbox.GRADER, f"{grade_sandbox.SCRATCH}/{target.name}"],
                scratch, grader, hidden=limits["hidden"], env=sandbox_env())
            outcome = grade_sandbox.run_limited(command, limits["timeout"], limits["memory"])
        else:
            env = {**os.environ, **sandbox_env(), "HOME": str(scratch), "TMPDIR": str(scratch),
                   "JUPYTER_RUNTIME_DIR": str(scratch / ".runtime"), "IPYTHONDIR": str(scratch / ".ipython"),
                   "MPLCONFIGDIR": str(scratch / ".mpl")}
            outcome = grade_sandbox.run_limited([*command, str(grader), str(target)], limits["timeout"],
                                                limits["memory"], cwd=scratch, env=env, adopt=True)
        result = scratch / "result.json"
        if outcome.status == "timed out":
            return f"timed out after {limits['timeout']:g} s", {}, outcome.seconds
        if outcome.status == "memory":
            return (f"memory limit: used more than {limits['memory'] / 2**30:g} GiB", {},
                    outcome.seconds)
        if outcome.returncode != 0 or result.is_symlink() or not result.is_file() \
                or result.stat().st_size > 10 * 2**20:
            errors = [line for line in outcome.stderr.splitlines() if "Error" in line]
            why = errors[-1][:300] if errors else f"exit status {outcome.returncode}"
            return f"error: grading ended without a result ({why})", {}, outcome.seconds
        reported = json.loads(result.read_text())
    status = reported.get("status", "error: no status")
    if status == "ok" and reported.get("tampered"):
        status = "tampered: replaced " + ", ".join(map(str, reported["tampered"]))[:300]
    questions = reported.get("questions") if isinstance(reported.get("questions"), dict) else {}
    return status, questions, outcome.seconds


def grade_one(path, autograders, limits):
    """The result of one submission: {status, exercise, questions, seconds}; never raises for
    anything the file holds."""
    try:
        nb = read_submission(path)
        exercise = exercise_of(nb, path, autograders)
    except Unreadable as err:
        return error_result(str(err))
    autograder = autograders[exercise]
    try:
        autograder.verify()
    except (OSError, ValueError, zipfile.BadZipFile):
        return error_result(f"error: {autograder.path.name} changed while grading: not graded",
                            exercise=exercise)
    template = read_notebook(assign.EXERCISES / f"{exercise}.ipynb")
    status, reported, seconds = run_in_sandbox(restore_template(nb, template), autograder, limits)
    questions = scores(autograder, reported) if status == "ok" else zero_scores(autograder)
    return {"status": status, "questions": questions, "seconds": seconds, "exercise": exercise}


def read_notebook(path):
    import nbformat
    return nbformat.read(path, as_version=4)


def grade_all(notebooks, limits, zips, jobs=1, progress=True, on_result=None):
    """{notebook: result} for every notebook, in order; on_result(notebook, result) as each ends.
    zips: {exercise: Autograder}."""
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(grade_one, nb, zips, limits): nb for nb in notebooks}
        for future in concurrent.futures.as_completed(futures):
            notebook = futures[future]
            results[notebook] = future.result()
            if on_result:
                on_result(notebook, results[notebook])
            if progress:
                r = results[notebook]
                score, possible = totals(r)
                print(f"graded {notebook} ({r['seconds']:.0f} s): {score:g}/{possible:g}, "
                      f"{r['status']}", file=sys.stderr, flush=True)
    return {nb: results[nb] for nb in notebooks}


def totals(result):
    qs = result["questions"].values()
    return sum(q["score"] for q in qs), sum(q["possible"] for q in qs)


def print_table(results, verbose=False):
    """The score table: one row per question, a total per notebook, failing checks if verbose."""
    rows = [("notebook", "question", "score", "possible", "")]
    grand = [0.0, 0.0]
    for notebook, result in results.items():
        exercise = os.path.relpath(notebook)  # the first column names each notebook once
        for name, q in result["questions"].items():
            rows.append((exercise, name, f"{q['score']:g}", f"{q['possible']:g}", ""))
            exercise = ""
        if result.get("exercise"):
            for name, points in manual_questions(result["exercise"]):
                rows.append((exercise, name, "-", f"{points:g}", "written: graded by your instructor"))
                exercise = ""
        score, possible = totals(result)
        grand[0], grand[1] = grand[0] + score, grand[1] + possible
        note = "" if result["status"] == "ok" else result["status"]
        rows.append((exercise, "auto-graded total", f"{score:g}", f"{possible:g}", note))
    rows.append(("all notebooks", "auto-graded total", f"{grand[0]:g}", f"{grand[1]:g}", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  "
              f"{r[3]:>{widths[3]}}  {r[4]}".rstrip())
    if verbose:
        for notebook, result in results.items():
            for name, q in result["questions"].items():
                for case in q["failed"]:
                    print(f"\n{notebook.name} {case['case']}"
                          f"{' (hidden)' if case['hidden'] else ''}:\n{case['message']}")


def column_prefix(exercise):
    return exercise.split("_")[0]  # "01_number_of_1x1_convs" -> "01"


class ScoreSheet:
    """The CSV: one row per submission, rewritten atomically as each submission finishes, with
    one column per question of every exercise (`01/q1_block`); a written question's column says
    "graded by hand" in the rows of its exercise."""

    FIXED = ["submission", "exercise", "status", "score", "possible", "seconds"]

    def __init__(self, path, root, zips):
        self.path, self.root, self.rows = Path(path), root, []
        self.columns = {}  # column: (exercise, question or None if written)
        for exercise, autograder in sorted(zips.items()):
            for question in autograder.tests:
                self.columns[f"{column_prefix(exercise)}/{question}"] = (exercise, question)
            written = manual_questions(exercise) if (assign.SOURCES / f"{exercise}.ipynb").exists() else []
            for question, _ in written:
                self.columns[f"{column_prefix(exercise)}/{question}"] = (exercise, None)
        self.flush()  # before the first submission: the location works, or we stop here

    def add(self, notebook, result):
        score, possible = totals(result)
        row = [Path(os.path.relpath(notebook, self.root)).as_posix(), result.get("exercise", ""),
               result["status"], f"{score:g}", f"{possible:g}", f"{result['seconds']:.1f}"]
        for exercise, question in self.columns.values():
            if exercise != result.get("exercise"):
                row.append("")
            elif question is None:
                row.append("graded by hand")
            else:
                q = result["questions"].get(question)
                row.append(f"{q['score']:g}" if q else "")
        self.rows.append(row)
        self.flush()

    def flush(self):
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([*self.FIXED, *self.columns])
        writer.writerows(self.rows)
        atomic_write(self.path, out.getvalue())


def hideable(paths):
    """Of `paths`, those a submission must not see and that the sandbox can cover: not under
    /tmp (a fresh one inside), and not holding the repository, this Python or the data."""
    needed = [assign.ROOT, Path(sys.prefix), *(Path(os.environ[k]) for k in
              ("NIN_COURSE_DATA", "NIN_COURSE_CACHE") if os.environ.get(k))]
    keep = []
    for path in paths:
        path = Path(path).resolve()
        if path.parts[:2] == ("/", "tmp") or path == Path("/"):
            continue
        if any(n.resolve() == path or path in n.resolve().parents for n in needed):
            continue
        keep.append(path)
    return sorted(set(keep), key=lambda p: len(p.parts))


def find_submissions(folder):
    """Every notebook under `folder`, except Jupyter's checkpoints."""
    return sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.grade",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to grade (default: exercises/NN_*.ipynb)")
    parser.add_argument("--folder", type=Path, help="grade every notebook in this folder")
    parser.add_argument("--csv", type=Path, help="write one row per submission to this CSV")
    parser.add_argument("--force", action="store_true", help="replace an existing CSV")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help=f"seconds per notebook (default {DEFAULT_TIMEOUT})")
    parser.add_argument("--memory", type=float, default=DEFAULT_MEMORY_GIB,
                        help=f"GiB per notebook, kernel included (default {DEFAULT_MEMORY_GIB})")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks graded at once")
    parser.add_argument("--autograders", type=Path,
                        help="folder of autograder zips to use as they are (default: "
                             "exercises/autograder/, rebuilt from exercises/source/ when stale)")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="grade a folder without bubblewrap (no isolation between submissions)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print the message of every failing check")
    args = parser.parse_args(argv)
    if args.csv and args.csv.exists() and not args.force:
        parser.error(f"{args.csv} exists: pass --force to replace it, or choose another file")
    if args.csv and (args.csv.is_dir() or not args.csv.resolve().parent.is_dir()):
        parser.error(f"{args.csv}: not a file in an existing folder")
    if args.folder:
        if not args.folder.is_dir():
            parser.error(f"{args.folder} is not a folder")
        notebooks, root = find_submissions(args.folder), args.folder
    else:
        notebooks = args.notebooks or sorted(assign.EXERCISES.glob("[0-9][0-9]_*.ipynb"))
        root = Path.cwd()
    if not notebooks:
        parser.error("no notebooks to grade")
    if args.autograders and not args.autograders.is_dir():
        parser.error(f"{args.autograders} is not a folder")
    if args.timeout <= 0 or args.memory <= 0:
        parser.error("--timeout and --memory must be positive")
    bwrap = grade_sandbox.bwrap_path()
    if bwrap is None:
        if args.folder and not args.no_sandbox:
            parser.error("bubblewrap (bwrap) is missing or cannot create namespaces here, so "
                         "submissions cannot be isolated from each other: install it (Debian, "
                         "Ubuntu: apt-get install bubblewrap), or pass --no-sandbox to grade anyway")
        print("warning: grading without a sandbox (bubblewrap is missing): a notebook can read "
              "and change anything you can", file=sys.stderr)
    notebooks = [nb.resolve() for nb in notebooks]
    root = root.resolve()
    zips = verified_autograders(args.autograders)
    hidden = [args.folder, args.autograders, assign.EXERCISES / "autograder",
              *(nb.parent for nb in notebooks), args.csv and args.csv.resolve()]
    limits = {"bwrap": bwrap, "timeout": args.timeout, "memory": args.memory * 2**30,
              "hidden": hideable(p for p in hidden if p)}
    try:
        sheet = ScoreSheet(args.csv, root, zips) if args.csv else None
    except OSError as err:
        parser.error(f"cannot write {args.csv}: {err.strerror}")
    results = grade_all(notebooks, limits, zips, args.jobs if bwrap else 1,
                        on_result=sheet.add if sheet else None)
    print_table(results, args.verbose or not args.csv)  # a learner sees why a check failed
    if args.csv:
        print(f"wrote {args.csv}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
