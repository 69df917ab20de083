"""Inside the sandbox: run one submission in a kernel, then its autograder's tests; write the result.

    python /path/to/tools/grade_worker.py GRADER_DIR NOTEBOOK

Unlike the other tools, tools/grade.py starts this one by its file path, not with `-m` (WORKER
there says why), so it imports nothing from tools/ and nothing relative: only the standard
library, nbformat and nbclient. `python -m tools.grade_worker` from the repository root works
too, by hand.

GRADER_DIR (read-only) holds job.json: {"tests": {question: source of its otter test file}}.
The notebook's cells run in order in a fresh kernel (nbclient; a cell that raises does not stop
the others). Then one more cell, which the submission never sees before it runs, checks that
the grading code in the kernel is still the original (`CHECKED_MODULES`, compared function by
function with a copy loaded afresh from its file, and a few builtins), runs every test, and
publishes what passed under a random nonce. The kernel reports only which test cases passed:
tools/grade.py computes the scores and possible points from the autograder itself.

Writes result.json beside the notebook: {"status", "tampered": [...], "questions": {question:
[{"case", "passed", "message"}]}}, after killing every other process of the sandbox.
"""
import importlib.machinery
import importlib.util
import json
import os
import secrets
import signal
import sys
from pathlib import Path

MIME = "application/x.nin-course-grade+json"
# The grading code that a submission could replace to pass blank answers.
CHECKED_MODULES = ("nin_course.grading", "nin_course.analysis",
                   "otter.test_files.abstract_test", "otter.test_files.exception_test",
                   "IPython.core.display_functions")

FINAL_CELL = r'''
def __nin_course_grade(nonce, tests, modules, mime):
    import builtins, importlib, importlib.util, sys, types
    tampered = []

    def key(code):
        return (code.co_code, code.co_names, tuple(
            key(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts))

    def plain(value):
        if isinstance(value, (staticmethod, classmethod)):
            return value.__func__
        return value.fget if isinstance(value, property) else value

    def unwrap(value):
        for _ in range(10):
            value = getattr(value, "__wrapped__", value) if not isinstance(value, type) else value
        return value

    def same(got, want, where, defined_in, depth):
        g, w = unwrap(got), unwrap(want)
        if isinstance(w, types.FunctionType) and w.__module__ == defined_in:
            return (type(got) is type(want) and isinstance(g, types.FunctionType)
                    and key(g.__code__) == key(w.__code__) and g.__defaults__ == w.__defaults__)
        if isinstance(w, type) and w.__module__ == defined_in:
            return isinstance(g, type) and (depth > 2 or compare(g, w, where, defined_in, depth + 1))
        if isinstance(w, (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType)):
            return got is want
        return True

    def compare(live, fresh, where, defined_in, depth=0):
        for name, want in vars(fresh).items():
            if name.startswith("__") and name not in ("__init__", "__call__"):
                continue
            got = plain(vars(live).get(name))
            if not same(got, plain(want), f"{where}.{name}", defined_in, depth):
                tampered.append(f"{where}.{name}")
        return True

    for name, path in modules.items():
        try:
            live = importlib.import_module(name)
        except Exception:
            live = None
        parent, _, child = name.rpartition(".")
        if (live is None or getattr(live, "__file__", None) != path
                or getattr(sys.modules.get(parent), child, live) is not live):
            tampered.append(f"{name} (the module)")
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        fresh = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(fresh)
        compare(live, fresh, name, name)
    for name in ("isinstance", "getattr", "hasattr", "len", "sum", "abs", "callable", "type",
                 "repr", "str", "int", "float", "round", "max", "min", "all", "any", "print",
                 "__import__", "exec", "compile", "zip", "sorted", "range", "tuple", "list"):
        if not isinstance(getattr(builtins, name, None), (types.BuiltinFunctionType, type)):
            tampered.append(f"builtins.{name}")
    if sys.gettrace() is not None or sys.getprofile() is not None:
        tampered.append("sys.settrace/setprofile")

    from otter.test_files.exception_test import ExceptionTestFile
    questions = {}
    for question, source in tests.items():
        test_file = ExceptionTestFile.from_string(source, path=f"{question}.py")
        cases = []
        for tc in test_file.test_cases:  # as otter's ExceptionTestFile.run, but a learner's
            try:                         # KeyboardInterrupt or SystemExit fails one case only
                tc.body.call_func(globals())
                cases.append({"case": tc.name, "passed": True, "message": ""})
            except BaseException as err:
                try:
                    message = "Test case failed\n" + test_file._generate_error_message(err)
                except Exception:
                    message = f"Test case failed\n{type(err).__name__}: {err}"
                cases.append({"case": tc.name, "passed": False, "message": message[-4000:]})
        questions[question] = cases
    from IPython.display import publish_display_data
    publish_display_data({mime: {"nonce": nonce, "tampered": tampered, "questions": questions}})


__nin_course_grade({nonce!r}, {tests!r}, {modules!r}, {mime!r})
'''


def module_file(name):
    """The file of module `name`, found without importing it or its packages (torch is slow)."""
    top, *parts = name.split(".")
    spec = importlib.util.find_spec(top)
    for part in parts:
        spec = importlib.machinery.PathFinder.find_spec(part, spec.submodule_search_locations)
    return spec.origin


def module_files():
    """{module: its file} for CHECKED_MODULES, found here (a process the submission never ran in)."""
    return {name: module_file(name) for name in CHECKED_MODULES}


def final_cell(nonce, tests):
    return FINAL_CELL.replace("{nonce!r}", repr(nonce)).replace("{tests!r}", repr(tests)) \
        .replace("{modules!r}", repr(module_files())).replace("{mime!r}", repr(MIME))


def published(cell, nonce):
    """What the final cell published under `nonce`; None if nothing, or more than one thing."""
    found = [out["data"][MIME] for out in cell.get("outputs", [])
             if out.get("output_type") == "display_data" and MIME in out.get("data", {})]
    found = [f for f in found if isinstance(f, dict) and f.get("nonce") == nonce]
    return found[0] if len(found) == 1 else None


def run(notebook, tests, cell_timeout):
    """Execute the notebook and the final cell; returns the result dict.

    A cell that runs longer than `cell_timeout` s is interrupted (KeyboardInterrupt) and the
    next one runs: a learner function that loops forever, called at the top level of its answer
    cell, then costs only the questions that use it (each test has its own limit,
    nin_course.grading.time_limit). The final cell has no limit here; the sandbox has one."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    nb = nbformat.read(notebook, as_version=4)
    nonce = secrets.token_hex(16)
    nb.cells.append(nbformat.v4.new_code_cell(final_cell(nonce, tests)))
    client = NotebookClient(nb, timeout=cell_timeout, interrupt_on_timeout=True, startup_timeout=600,
                            allow_errors=True, kernel_name="python3",
                            resources={"metadata": {"path": str(notebook.parent)}})
    try:
        client.reset_execution_trackers()
        with client.setup_kernel():
            client.wait_for_reply(client.kc.kernel_info())  # the kernel is ready
            for index, cell in enumerate(nb.cells):
                if index == len(nb.cells) - 1:
                    client.timeout = None
                client.execute_cell(cell, index, execution_count=index + 1)
    except DeadKernelError:
        return {"status": "error: the kernel died (a cell ended it)", "tampered": [], "questions": {}}
    result = published(nb.cells[-1], nonce)
    if result is None:
        return {"status": "tampered: the grading results were not published once, as sent",
                "tampered": ["results"], "questions": {}}
    return {"status": "ok", "tampered": list(result["tampered"]), "questions": result["questions"]}


def kill_the_rest():
    """In the sandbox's PID namespace: kill every process but its init (1) and this one."""
    if os.getpid() == 1 or "bwrap" not in Path("/proc/1/comm").read_text():
        return  # not in a bwrap sandbox: tools/grade_sandbox.py cleans up from outside
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in (1, os.getpid()):
            try:
                os.kill(int(entry), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def main(grader_dir, notebook):
    notebook = Path(notebook)
    job = json.loads((Path(grader_dir) / "job.json").read_text())
    result = run(notebook, job["tests"], int(job["cell_timeout"]))
    kill_the_rest()
    out = notebook.parent / "result.json"
    out.unlink(missing_ok=True)
    out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
