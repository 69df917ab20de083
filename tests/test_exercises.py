"""exercises/: generated from exercises/source/ by otter; solutions pass, blanks score 0, hints help.

- Regenerating every exercise (tools/assign.py, otter assign in-process) gives exactly the
  committed student and solution notebooks (git HEAD, or the working copy where it was just
  regenerated): nobody edits them by hand, and a learner's answers or JupyterLab's autosaves in
  the working copies are not a failure. Every check below reads the committed notebooks too.
- The generated tests read the same on Python 3.11, 3.12 and 3.13: otter reprints them with
  ast.unparse, which on 3.12+ writes a string inside an f-string's braces with nested quotes.
- Every committed solution was executed top to bottom (under the `cpu` profile) and its last
  cell, `grader.check_all()`, shows every question of the autograder passed, hidden checks
  included; `make test` re-runs the solutions with nbval under `smoke`, so that output must
  come out the same again.
- Every untouched student notebook runs (its code, in this process) and scores 0 on the real
  test files of the autograder zip.
- For each exercise a deliberately wrong answer fails with a hint that says what is wrong; so
  do code that raises, loops forever (a short time limit) or returns the wrong type.
- tools/grade.py grades a folder of two submissions into a CSV with otter itself, copies them
  untouched, refuses to overwrite the CSV, and stops a notebook that runs forever.
"""
import ast
import csv
import functools
import hashlib
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from otter.test_files.exception_test import ExceptionTestFile
from torch import nn

from nin_course.experiments import experiment_budget

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ROOT / "exercises"
SOURCES = sorted((EXERCISES / "source").glob("[0-9][0-9]_*.ipynb"))
STEMS = [p.stem for p in SOURCES]
sys.path.insert(0, str(ROOT / "tools"))
import assign  # noqa: E402


def git(*args):
    """stdout (bytes) of git run in the repository; None without git, a checkout or a success."""
    try:
        result = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def committed_notebooks():
    """The generated notebooks in git HEAD, as paths relative to exercises/ ([] outside git)."""
    listing = git("ls-tree", "-r", "--name-only", "HEAD", "--", "exercises/") or b""
    names = [Path(n) for n in listing.decode().splitlines()]
    return [n.relative_to("exercises") for n in names if n.suffix == ".ipynb"
            and n.parent in (Path("exercises"), Path("exercises/solutions"))]


def notebook_paths(stem):
    """The student and the solution notebook of one exercise, relative to exercises/."""
    return Path(f"{stem}.ipynb"), Path("solutions") / f"{stem}.ipynb"


@pytest.fixture(scope="module")
def committed(tmp_path_factory):
    """A folder holding exercises/ as committed (git HEAD): what every check here reads, so that
    a learner's answers and JupyterLab's autosaves (in the working copies) change nothing. Where
    HEAD has no such file (a new exercise), or outside a git checkout, the working copy."""
    folder = tmp_path_factory.mktemp("committed")
    for rel in (p for stem in STEMS for p in notebook_paths(stem)):
        text = assign.git_show(rel)
        if text is None and (EXERCISES / rel).exists():
            text = (EXERCISES / rel).read_text(encoding="utf-8")
        if text is not None:
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Every exercise regenerated from its source: its autograder zip in a temporary folder, and
    {exercise: (student, solution)}, the notebooks (the solution without outputs)."""
    out = tmp_path_factory.mktemp("generated")
    notebooks = {s.stem: assign.generate(s, out / "autograder" / f"{s.stem}.zip") for s in SOURCES}
    return out, notebooks


@pytest.fixture(scope="module")
def test_files(generated, tmp_path_factory):
    """{exercise: {question: path of its test file}}, from the freshly built autograder zips."""
    files = {}
    for stem in STEMS:
        folder = tmp_path_factory.mktemp(stem)
        with zipfile.ZipFile(generated[0] / "autograder" / f"{stem}.zip") as zf:
            names = [n for n in zf.namelist() if n.startswith("tests/") and n.endswith(".py")]
            zf.extractall(folder, names)
        files[stem] = {Path(n).stem: folder / n for n in names}
    return files


def run_tests(path, env):
    """Run one otter test file against `env` as otter does; returns the TestFile with results."""
    test_file = ExceptionTestFile.from_file(str(path))
    test_file.run(env)
    return test_file


def failures(test_file):
    return "\n".join(r.message for r in test_file.test_case_results if not r.passed)


def code_cells(path):
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def run_student_code(path):
    """Execute a notebook's code cells in this process (otter's cells skipped): its globals."""
    env = {"__name__": "__main__"}
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        for i, cell in enumerate(code_cells(path)):
            if "otter" in cell.source or "grader." in cell.source:
                continue
            exec(compile(cell.source, f"{path.name}, code cell {i + 1}", "exec"), env)
    finally:
        os.chdir(cwd)
    return env


def test_there_are_six_exercises_with_student_and_solution_notebooks():
    assert STEMS == ["01_number_of_1x1_convs", "02_3x3_micro_layers", "03_fc_head_instead_of_gap",
                     "04_resource_usage", "05_one_step_reduction", "06_vgg_style_family"]


def test_regenerating_changes_nothing(generated):
    """What exercises/source/ generates is what is committed; the working copy counts too, so
    that a maintainer can run this between `make exercises` and the commit."""
    stale = [rel for stem, notebooks in generated[1].items() for rel in assign.stale(stem, *notebooks)]
    assert not stale, (f"{stale} differ from what exercises/source/ generates: run `make exercises`"
                       " (and `make solutions` if a solution's code changed)")
    expected = {p for stem in STEMS for p in notebook_paths(stem)}
    orphans = [str(p) for p in committed_notebooks() if p not in expected
               and (EXERCISES / p).exists()]
    assert not orphans, f"exercises/{orphans} are committed but no source generates them: delete them"


def strings_in_fstring_braces(code):
    """The f-string fields in `code` that hold a string (or bytes, or an f-string): ast.unparse
    on Python 3.12+ writes them with nested quotes, f'{g('x')}', which 3.11 cannot parse."""
    fields = [node for node in ast.walk(ast.parse(code)) if isinstance(node, ast.FormattedValue)]
    return [ast.unparse(field.value) for field in fields for inner in ast.walk(field.value)
            if isinstance(inner, ast.JoinedStr)
            or isinstance(inner, ast.Constant) and isinstance(inner.value, (str, bytes))]


def test_the_fstring_check_finds_a_string_in_braces():
    assert strings_in_fstring_braces("f'{g(x)} {y:>{w}} {z!r}'") == []
    assert strings_in_fstring_braces("f\"a {g(n, 'conv')}\"") == ["g(n, 'conv')"]


@pytest.mark.parametrize("stem", STEMS)
def test_generated_tests_are_the_same_and_valid_on_every_python(stem, test_files, generated):
    """otter writes every test with this Python's ast.unparse: the autograder's test files and the
    tests stored in the student notebook must parse on 3.11 and print alike on 3.11 to 3.13."""
    nb = generated[1][stem][0]
    tests = {f"{stem}.zip: {q}": p.read_text() for q, p in test_files[stem].items()}
    tests.update({f"{stem}.ipynb: {q}": code for q, code in nb.metadata["otter"]["tests"].items()})
    for name, code in tests.items():
        ast.parse(code, filename=name, feature_version=(3, 11))  # raises SyntaxError if invalid
        found = strings_in_fstring_braces(code)
        assert not found, (f"{name}: f-string braces hold a string ({found}), which Python 3.12+ "
                           "reprints with nested quotes (a SyntaxError on 3.11): in "
                           "exercises/source/, compute it into a variable first")


@pytest.mark.parametrize("stem", STEMS)
def test_solution_was_executed_under_cpu_and_passes_every_check(stem, test_files, committed):
    path = committed / "solutions" / f"{stem}.ipynb"
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1)), \
        f"{path.name} was not run top to bottom: `make solutions`"
    assert all(o.output_type != "error" for c in cells for o in c.outputs)
    # The solution carries every test, hidden ones too, so its check_all runs what grading runs.
    assert sorted(nb.metadata["otter"]["tests"]) == sorted(test_files[stem])
    assert cells[-1].source == "grader.check_all()"
    shown = "".join(o.get("data", {}).get("text/plain", "") for o in cells[-1].outputs)
    for question in test_files[stem]:
        assert f"{question} results: All test cases passed!" in shown, (question, shown)
    budget_outputs = [o.get("text", "") for c in cells if "experiment_budget(" in c.source
                      for o in c.outputs]
    cpu = experiment_budget("cpu", train_fraction=0.5).summary()
    assert all(cpu in text for text in budget_outputs), f"{path.name}: run it under the cpu profile"


@pytest.mark.parametrize("stem", STEMS)
def test_untouched_student_notebook_runs_and_scores_zero(stem, test_files, committed):
    env = run_student_code(committed / f"{stem}.ipynb")  # raises if a cell fails
    for question, path in test_files[stem].items():
        result = run_tests(path, env)
        assert result.score == 0 and result.possible > 0, (question, result.summary())
        assert "Traceback" not in failures(result)


# A wrong answer per exercise, and the hint it must get. ---------------------------------------

def block_with_one_more_1x1(in_channels, out_channels, kernel_size, stride, padding, num_1x1):
    layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding), nn.ReLU()]
    for _ in range(num_1x1 + 1):  # one too many
        layers += [nn.Conv2d(out_channels, out_channels, 1), nn.ReLU()]
    return nn.Sequential(*layers)


def block_3x3_without_padding(in_channels, out_channels, kernel_size, stride, padding):
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding),
                         nn.ReLU(), nn.Conv2d(out_channels, out_channels, 3), nn.ReLU(),
                         nn.Conv2d(out_channels, out_channels, 3), nn.ReLU())


def fc_head_sized_for_224(model):
    model.head = nn.Sequential(nn.Flatten(), nn.Linear(10 * 5 * 5, model.num_classes))
    return model


def block_in_one_step(in_channels, num_classes):
    return nn.Sequential(nn.Conv2d(in_channels, num_classes, 3, padding=1), nn.ReLU())


def vgg_without_pooling(arch, ratio, num_classes=10, in_channels=1):
    from nin_course import GlobalAvgPool2d, MLPConv
    from nin_course.models import VGG_ARCHS, VGG_WIDTHS
    layers, c_in = [], in_channels
    for num_convs, width in zip(VGG_ARCHS[arch], VGG_WIDTHS):
        for _ in range(num_convs):
            layers.append(MLPConv(c_in, (width // ratio,) * 2, 3, padding=1))
            c_in = width // ratio
    return nn.Sequential(*layers, nn.Dropout(0.5), MLPConv(c_in, (num_classes,) * 2, 3, padding=1),
                         GlobalAvgPool2d())


WRONG_ANSWERS = {
    "01_number_of_1x1_convs": ("q1_block", {"nin_block_variant": block_with_one_more_1x1},
                               "your nin_block_variant(1, 96, 11, 4, 0, num_1x1=1) has 3 ReLUs; "
                               "a NiN block with one 1x1 convolution has 2"),
    "02_3x3_micro_layers": ("q1_block", {"nin_block_3x3": block_3x3_without_padding},
                            "layer 3 of your nin_block_3x3(1, 96, 11, 4, 0) is Conv2d 96->96 3x3; "
                            "in a NiN block with two 3x3 micro layers it is Conv2d 96->96 3x3 pad 1"),
    "03_fc_head_instead_of_gap": ("q1_head", {"with_fc_head": fc_head_sized_for_224},
                                  "with_fc_head(NiN(input_size=96)) is Linear 250->10; in "
                                  "NiN(head='fc', input_size=96) it is Linear 10->10"),
    "04_resource_usage": ("q1_conv_formulas",
                          {"conv_params": lambda c_in, c_out, k: c_out * c_in * k * k,
                           "conv_flops": lambda c_in, c_out, k, h, w: c_in * k * k * c_out * h * w},
                          "conv_params(1, 96, 11) is 11,616; expected 11,712"),
    "05_one_step_reduction": ("q2_gradual", {"gradual_block": block_in_one_step},
                              "your gradual_block(384, 10) has 1 ReLU; a block 384 -> 96 (3x3) "
                              "-> 24 -> 10 has 3"),
    "06_vgg_style_family": ("q1_family", {"vgg_nin": vgg_without_pooling, "ratio": 8},
                            "your vgg_nin('vgg11', 8) has 0 max-pools; VGGNiN('vgg11', ratio=8) has 5"),
}


@pytest.mark.parametrize("stem", STEMS)
def test_a_wrong_answer_fails_with_a_helpful_hint(stem, test_files):
    question, env, hint = WRONG_ANSWERS[stem]
    result = run_tests(test_files[stem][question], dict(env))
    assert result.score < result.possible, result.summary()
    assert hint in failures(result), failures(result)


def test_the_wrong_flop_formula_gets_its_own_hint(test_files):
    env = dict(WRONG_ANSWERS["04_resource_usage"][1])
    message = failures(run_tests(test_files["04_resource_usage"]["q1_conv_formulas"], env))
    assert "conv_flops(1, 96, 11, 54, 54) is 33,872,256; expected 67,744,512" in message
    assert "a multiply-add counts 2 FLOPs" in message


def test_a_partly_right_answer_gets_partial_marks(test_files):
    """Right counts but a wrong FLOP dict: q2_counts keeps the points of its passing checks."""
    from nin_course import NiN, num_parameters
    env = {"param_counts": {k: num_parameters(NiN(num_1x1=k)) for k in (1, 2, 3)},
           "flop_counts": [1, 2, 3], "extra_per_1x1_384": 384 * 384 + 384}
    result = run_tests(test_files["01_number_of_1x1_convs"]["q2_counts"], env)
    assert 0 < result.score < result.possible
    assert "flop_counts should be a dict {1: ..., 2: ..., 3: ...}, but it is a list" in failures(result)


# Code that raises, runs forever, or returns the wrong type. -------------------------------------

def test_code_that_raises_fails_its_checks_with_the_error(test_files):
    def raises(*args):
        raise ValueError("out_channels must be positive")

    result = run_tests(test_files["01_number_of_1x1_convs"]["q1_block"], {"nin_block_variant": raises})
    assert result.score == 0
    assert ("nin_block_variant(1, 96, 11, 4, 0, 1) raised ValueError: out_channels must be "
            "positive") in failures(result)


def test_code_that_runs_forever_fails_within_the_time_limit(test_files, monkeypatch):
    monkeypatch.setenv("NIN_COURSE_CHECK_SECONDS", "1")

    def forever(*args):
        while True:
            pass

    start = time.perf_counter()
    result = run_tests(test_files["01_number_of_1x1_convs"]["q1_block"], {"nin_block_variant": forever})
    assert time.perf_counter() - start < 30
    assert result.score == 0
    assert "TimeoutError: this check did not finish within 1 s" in failures(result)


def test_the_wrong_type_fails_with_what_was_expected(test_files):
    def layers_as_a_list(*args):
        return [nn.Conv2d(1, 96, 11, 4), nn.ReLU()]

    message = failures(run_tests(test_files["01_number_of_1x1_convs"]["q1_block"],
                                 {"nin_block_variant": layers_as_a_list}))
    assert "should be a torch nn.Module, but it is a list (wrap the layers in nn.Sequential" in message
    message = failures(run_tests(test_files["04_resource_usage"]["q3_memory"],
                                 {"memory": 1.5, "largest_part": "activations"}))
    assert 'memory should be a dict {"training": ..., "inference": ...}, but it is 1.5' in message
    message = failures(run_tests(test_files["01_number_of_1x1_convs"]["q3_experiment"],
                                 {"results": {1: 0.5}, "budget": None}))
    assert "results should be a pandas DataFrame, but it is a dict" in message


# tools/grade.py, end to end with otter. -----------------------------------------------------------

def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@functools.cache
def sandbox_works():
    """Whether tools/grade.py can sandbox here (bubblewrap installed and allowed)."""
    sys.path.insert(0, str(ROOT / "tools"))
    import grade_sandbox
    return grade_sandbox.bwrap_path() is not None


def grade(*args, timeout=900):
    """tools/grade.py with `args`; a folder without bubblewrap is graded with --no-sandbox."""
    if "--folder" in args and not sandbox_works():
        args = (*args, "--no-sandbox")
    return subprocess.run([sys.executable, str(ROOT / "tools" / "grade.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def test_grading_a_folder_into_a_csv(tmp_path, committed):
    folder = tmp_path / "submissions"
    for student, source in (("alice", committed / "04_resource_usage.ipynb"),
                            ("bob", committed / "solutions" / "04_resource_usage.ipynb")):
        (folder / student).mkdir(parents=True)
        (folder / student / source.name).write_bytes(source.read_bytes())
    before = {p: digest(p) for p in folder.rglob("*.ipynb")}
    out = tmp_path / "scores.csv"
    result = grade("--folder", folder, "--csv", out)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {row["submission"]: row for row in csv.DictReader(out.open())}
    alice, bob = rows["alice/04_resource_usage.ipynb"], rows["bob/04_resource_usage.ipynb"]
    assert alice["status"] == bob["status"] == "ok"
    assert (alice["score"], alice["possible"]) == ("0", "9")
    assert (bob["score"], bob["possible"]) == ("9", "9")
    assert bob["04/q1_conv_formulas"] == "3" and alice["04/q1_conv_formulas"] == "0"
    assert {p: digest(p) for p in folder.rglob("*.ipynb")} == before, "a submission was modified"
    assert "q4_discussion" in result.stdout and "graded by your instructor" in result.stdout

    again = grade("--folder", folder, "--csv", out)  # never overwrite without --force
    assert again.returncode == 2 and "pass --force" in again.stderr
    assert {row["submission"] for row in csv.DictReader(out.open())} == set(rows)


def test_a_notebook_that_never_ends_is_stopped_and_scored_zero(tmp_path, committed):
    nb = nbformat.read(committed / "04_resource_usage.ipynb", as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell("while True:\n    pass"))
    path = tmp_path / "04_resource_usage.ipynb"
    nbformat.write(nb, path)
    start = time.perf_counter()
    result = grade(path, "--timeout", 10)
    assert result.returncode == 0, result.stderr[-3000:]
    assert time.perf_counter() - start < 90
    assert re.search(r"auto-graded total\s+0\s+9\s+timed out after 10 s", result.stdout), result.stdout
