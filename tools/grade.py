"""Grade exercise notebooks with otter-grader, locally and without Docker.

    python tools/grade.py                        # the notebooks in exercises/: a score table
    python tools/grade.py path/to/01_x.ipynb     # these notebooks
    python tools/grade.py --folder SUBMISSIONS --csv scores.csv [--force]   # a folder -> CSV

Each notebook is graded by `otter.api.grade_submission` against its exercise's autograder zip
(rebuilt from exercises/source/ when missing or stale), in a subprocess of its own with a
wall-clock limit (--timeout): a notebook that loops forever or kills its kernel gets 0 and a
status saying why, and the others are graded all the same. Submissions are copied before
grading and never modified; an existing CSV is only replaced with --force.

Grading runs the notebook from the top, so its experiments run again: under NIN_COURSE_PROFILE,
`smoke` unless it is set (the checks never depend on how long a model trained). Each check has
its own time limit too (NIN_COURSE_CHECK_SECONDS, see nin_course/grading.py).
"""
import argparse
import concurrent.futures
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import assign  # noqa: E402  (tools/assign.py: builds the autograder zips)

DEFAULT_TIMEOUT = 900  # seconds per notebook: a smoke run of the longest solution takes ~2 min


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def exercise_of(notebook):
    """The exercise a notebook belongs to: otter's assignment name in its metadata, else its name."""
    stems = {source.stem for source in assign.sources()}
    try:
        name = read_json(notebook).get("metadata", {}).get("otter", {}).get("assignment_name")
    except (OSError, ValueError):
        name = None
    if name in stems:
        return name
    return notebook.stem if notebook.stem in stems else None


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


def possible_points(zip_path):
    """{question: points} of the test files in an autograder zip."""
    from otter.test_files.exception_test import ExceptionTestFile
    points = {}
    with zipfile.ZipFile(zip_path) as zf:
        for name in sorted(zf.namelist()):
            if name.startswith("tests/") and name.endswith(".py"):
                test_file = ExceptionTestFile.from_string(zf.read(name).decode(), path=name)
                points[test_file.name] = test_file.possible
    return points


def grade_in_subprocess(notebook, zip_path, timeout):
    """Grade one notebook (a copy of it) in a child process; returns a result dict."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nin-grade-") as tmp:
        copy = Path(tmp) / "submission" / notebook.name
        copy.parent.mkdir()
        shutil.copyfile(notebook, copy)
        out = Path(tmp) / "result.json"
        env = dict(os.environ)
        env.setdefault("NIN_COURSE_PROFILE", "smoke")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(copy), str(zip_path), str(out)]
        # A session of its own, so that a timeout kills the kernel that otter starts as well.
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return {"status": f"timed out after {timeout:g} s", "questions": {},
                    "seconds": time.perf_counter() - start}
        if proc.returncode != 0 or not out.exists():
            last = (stderr.strip().splitlines() or ["no output"])[-1]
            return {"status": f"error: {last}", "questions": {},
                    "seconds": time.perf_counter() - start}
        result = read_json(out)
    result["seconds"] = time.perf_counter() - start
    return result


def worker(notebook, zip_path, out):
    """In the child: grade with otter and write {status, questions: {name: {...}}} as JSON."""
    import otter.api
    results = otter.api.grade_submission(notebook, zip_path, quiet=True)
    questions = {}
    for name in results.test_files:
        test_file = results.get_result(name)
        failed = [{"case": r.test_case.name, "hidden": r.test_case.hidden,
                   "message": (r.message or "").strip()}
                  for r in test_file.test_case_results if not r.passed]
        questions[name] = {"score": test_file.score, "possible": test_file.possible,
                           "failed": failed}
    error = results.catastrophic_error
    status = "ok" if error is None else f"error: {type(error).__name__}: {error}"
    Path(out).write_text(json.dumps({"status": status, "questions": questions}))
    return 0


def grade_all(notebooks, timeout, jobs=1, progress=True, autograders=None):
    """{notebook: result} for every notebook.

    The autograder zips come from the folder `autograders` as they are (private tests, see the
    README), else from exercises/autograder/, built or rebuilt from exercises/source/ first.
    """
    if autograders is None:
        zips = assign.ensure_autograders()
    else:
        zips = {path.stem: path for path in Path(autograders).glob("*.zip")}
    results = {}

    def one(notebook):
        exercise = exercise_of(notebook)
        if exercise is None:
            return {"status": "unknown exercise: no otter assignment name, no known file name",
                    "questions": {}, "seconds": 0.0}
        if exercise not in zips:
            return {"status": f"no autograder {exercise}.zip", "questions": {}, "seconds": 0.0}
        result = grade_in_subprocess(notebook, zips[exercise], timeout)
        result["exercise"] = exercise
        if not result["questions"]:  # timed out or failed: 0 for every question
            result["questions"] = {name: {"score": 0, "possible": points, "failed": []}
                                   for name, points in possible_points(zips[exercise]).items()}
        return result

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(one, nb): nb for nb in notebooks}
        for future in concurrent.futures.as_completed(futures):
            notebook = futures[future]
            results[notebook] = future.result()
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


def write_csv(results, path, root):
    """One row per submission: its path, exercise, status, score, possible, seconds, questions."""
    questions = []
    for result in results.values():
        questions += [q for q in result["questions"] if q not in questions]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["submission", "exercise", "status", "score", "possible", "seconds",
                         *questions])
        for notebook, result in results.items():
            score, possible = totals(result)
            by_name = result["questions"]
            writer.writerow([Path(os.path.relpath(notebook, root)).as_posix(), result.get("exercise", ""),
                             result["status"], f"{score:g}", f"{possible:g}",
                             f"{result['seconds']:.1f}",
                             *(f"{by_name[q]['score']:g}" if q in by_name else "" for q in questions)])


def find_submissions(folder):
    """Every notebook under `folder`, except Jupyter's checkpoints."""
    return sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to grade (default: exercises/NN_*.ipynb)")
    parser.add_argument("--folder", type=Path, help="grade every notebook in this folder")
    parser.add_argument("--csv", type=Path, help="write one row per submission to this CSV")
    parser.add_argument("--force", action="store_true", help="replace an existing CSV")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help=f"seconds per notebook (default {DEFAULT_TIMEOUT})")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks graded at once")
    parser.add_argument("--autograders", type=Path,
                        help="folder of autograder zips to use as they are (default: "
                             "exercises/autograder/, rebuilt from exercises/source/ when stale)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print the message of every failing check")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(*args.worker)
    if args.csv and args.csv.exists() and not args.force:
        parser.error(f"{args.csv} exists: pass --force to replace it, or choose another file")
    if args.folder:
        if not args.folder.is_dir():
            parser.error(f"{args.folder} is not a folder")
        notebooks, root = find_submissions(args.folder), args.folder
    else:
        notebooks = args.notebooks or sorted(assign.EXERCISES.glob("[0-9][0-9]_*.ipynb"))
        root = Path.cwd()
    if not notebooks:
        parser.error("no notebooks to grade")
    notebooks = [nb.resolve() for nb in notebooks]
    root = root.resolve()
    if args.autograders and not args.autograders.is_dir():
        parser.error(f"{args.autograders} is not a folder")
    results = grade_all(notebooks, args.timeout, args.jobs, autograders=args.autograders)
    print_table(results, args.verbose)
    if args.csv:
        write_csv(results, args.csv, root)
        print(f"wrote {args.csv}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
