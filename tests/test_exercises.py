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
- Every untouched student notebook runs (every cell, otter's too, in this process), its own
  `grader.check` cells report failures, and it scores 0 on the real test files of the
  autograder zip.
- For each exercise a deliberately wrong answer fails with a hint that says what is wrong; so
  do code that raises, loops forever (a short time limit) or returns the wrong type.
- MISTAKES: every check of exercises 01 to 06, as written in its source, fails
  a common wrong answer with its hint in a learner's words; RIGHT_VARIANTS (padding='same' ...)
  pass.
- tools/grade.py grades a folder of two submissions into a CSV with otter itself, copies them
  untouched, refuses to overwrite the CSV, and stops a notebook that runs forever.
"""
import ast
import copy
import csv
import functools
import hashlib
import inspect
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import NamedTuple

import nbformat
import pandas as pd
import pytest
import torch
from otter.test_files.exception_test import ExceptionTestFile
from torch import nn

from nin_course import GlobalAvgPool2d, MLPConv, NiN, VGGNiN, grading, num_parameters
from nin_course.costs.memory import memory_estimate
from nin_course.models import VGG_ARCHS, VGG_WIDTHS
from nin_course.runs.experiments import experiment_budget
from tools import assign

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ROOT / "exercises"
SOURCES = sorted((EXERCISES / "source").glob("[0-9][0-9]_*.ipynb"))
STEMS = [p.stem for p in SOURCES]


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
    """Execute a notebook's code cells in this process, top to bottom, otter's too (as its kernel
    would): (its globals, {question: what its `grader.check("question")` cell returned})."""
    env, checks = {"__name__": "__main__"}, {}
    cwd = os.getcwd()
    os.chdir(path.parent)  # otter.Notebook reads the notebook's tests from the file beside it
    try:
        for i, cell in enumerate(code_cells(path)):
            source, where = cell.source.strip(), f"{path.name}, code cell {i + 1}"
            if check := re.fullmatch(r'grader\.check\("(\w+)"\)', source):
                checks[check[1]] = eval(compile(source, where, "eval"), env)
            else:
                exec(compile(source, where, "exec"), env)
    finally:
        os.chdir(cwd)
    return env, checks


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
    """Every cell runs, as in a kernel, otter's too; the notebook's own checks fail, and so does
    every test of the autograder, hidden ones too."""
    env, checks = run_student_code(committed / f"{stem}.ipynb")  # raises if a cell fails
    assert checks and set(checks) <= set(test_files[stem]), (sorted(checks), stem)
    for question, shown in checks.items():
        assert shown.score == 0, (question, repr(shown))
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


# The mistakes table: each check of an exercise, run on a wrong answer and on right variants. ---
#
# Every row runs one test function of an exercise as written in its source notebook (the cells
# between # BEGIN TESTS and # END TESTS, hidden ones included), with the learner's names given as
# otter gives them (a name that is not defined is None). A wrong answer must fail with its hint,
# in words a learner knows; a right variant must pass. To cover another exercise, append its
# rows to MISTAKES (and RIGHT_VARIANTS): once an exercise has rows, every test function of its
# source needs at least one wrong answer (test_every_check_of_a_tabled_exercise_has_a_mistake).

class Mistake(NamedTuple):
    exercise: str  # the source notebook's name, e.g. "05_one_step_reduction"
    test: str      # one of its test functions
    what: str      # the mistake, in a few words (the test's id)
    answer: object  # the learner's names: a dict, or a function returning one (built when run)
    hint: str      # what the failure message must say


class Variant(NamedTuple):
    exercise: str
    test: str
    what: str
    answer: object


# Words a learner of these exercises has never met: no hint may use them.
DEVELOPER_WORDS = ("apply_init", "shape_walk", "state_dict", "state-dict", "FlopCounterMode",
                   "copy_weights", "nin_course.", "Traceback", "lazy")
BUDGET = experiment_budget("smoke", train_fraction=0.5)  # what a learner's `budget` holds


def mlpconv(widths, kernel_size=3, padding=1, in_channels=1, relus_last=False):
    """A k x k convolution, then 1x1 ones, to `widths`: with a ReLU after each, or all at the end."""
    convs, c_in = [], in_channels
    for i, width in enumerate(widths):
        convs.append(nn.Conv2d(c_in, width, kernel_size if i == 0 else 1,
                               padding=padding if i == 0 else 0))
        c_in = width
    if relus_last:
        return nn.Sequential(*convs, *[nn.ReLU() for _ in convs])
    return nn.Sequential(*[layer for conv in convs for layer in (conv, nn.ReLU())])


def block_3x3(padding, relus_last=False, micro_kernel_size=3):
    """nin_block_3x3 whose two micro layers have this kernel size and `padding`."""
    def nin_block_3x3(in_channels, out_channels, kernel_size, stride, padding_):
        layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding_)]
        layers += [nn.Conv2d(out_channels, out_channels, micro_kernel_size, padding=padding)
                   for _ in range(2)]
        relus = [nn.ReLU() for _ in layers]
        if relus_last:
            return nn.Sequential(*layers, *relus)
        return nn.Sequential(*[m for pair in zip(layers, relus) for m in pair])
    return nin_block_3x3


def gradual(padding=1, relus_last=False):
    """gradual_block of exercise 05: in_channels -> /4 (3x3, `padding`) -> /16 -> num_classes."""
    def gradual_block(in_channels, num_classes):
        widths = (in_channels // 4, in_channels // 16, num_classes)
        return mlpconv(widths, padding=padding, in_channels=in_channels, relus_last=relus_last)
    return gradual_block


def gradual_nin_with(block):
    def gradual_nin(input_size):
        model = NiN(input_size=input_size)
        model.features[-1] = block(384, 10)
        return model
    return gradual_nin


def variant_block(ignore_padding=False, relus_last=False):
    """nin_block_variant of exercise 01, wrong in the way named."""
    def nin_block_variant(in_channels, out_channels, kernel_size, stride, padding, num_1x1):
        first = nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                          0 if ignore_padding else padding)
        convs = [first] + [nn.Conv2d(out_channels, out_channels, 1) for _ in range(num_1x1)]
        relus = [nn.ReLU() for _ in convs]
        if relus_last:
            return nn.Sequential(*convs, *relus)
        return nn.Sequential(*[m for pair in zip(convs, relus) for m in pair])
    return nin_block_variant


def raises_value_error(*args, **kwargs):
    raise ValueError("out_channels must be positive")


def fc_head(num_classes=None, bias=True, fresh=False, deep_copy=False, graft=False):
    """with_fc_head of exercise 03: a Linear for `num_classes` (default the model's), or a new
    network; right when it keeps model.features (in place, a deep copy, or grafted)."""
    def with_fc_head(model):
        if fresh:
            return NiN(head="fc", input_size=model.input_size)
        if deep_copy:
            model = copy.deepcopy(model)
        size = model.input_size
        with torch.no_grad():
            maps = model.features.eval()(torch.zeros(1, model.in_channels, size, size))
        head = nn.Sequential(nn.Flatten(), nn.Linear(maps[0].numel(),
                                                     num_classes or model.num_classes, bias=bias))
        if graft:  # a fresh network that takes over the given features
            new = NiN(head="fc", num_classes=model.num_classes, input_size=size)
            new.features, new.head = model.features, head
            return new
        model.head = head
        return model
    return with_fc_head


def probe(eval_mode=True, batches="all", pooled=True, restore="as it was", share_of="zero"):
    """zero_logit_share of exercise 05, right or wrong in the way named; `restore`: the mode
    it leaves the model in ("as it was", "train", None: as the function left it)."""
    def zero_logit_share(model, data_iter):
        was_training = model.training
        if eval_mode:
            model.eval()
        zeros, total, shares = 0, 0, []
        with torch.no_grad():
            for X, _ in data_iter:
                logits = model(X)
                found = (logits == 0) if share_of == "zero" else (logits != 0)
                zeros, total = zeros + found.sum().item(), total + logits.numel()
                shares.append(found.float().mean().item())
                if batches == "first":
                    break
        if restore:
            model.train(was_training if restore == "as it was" else True)
        return zeros / total if pooled else sum(shares) / len(shares)
    return zero_logit_share


def probe_on_all_logits_at_once(model, data_iter):
    """Right too: every logit in one tensor, then one mean."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(X) for X, _ in data_iter])
    model.train(was_training)
    return (logits == 0).float().mean().item()


def frame(rows, index_name):
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(index_name)


def results_01(test_acc=0.5):
    return {"results": frame({k: {"params": num_parameters(NiN(num_1x1=k)), "FLOPs/example": 0,
                                  "test_acc": test_acc, "examples/s": 100.0} for k in (1, 2, 3)},
                             "num_1x1"), "budget": BUDGET}


def results_02():
    """Rows indexed by '1x1' and '3x3' (not 1 and 3), and a `budget` overwritten by a number."""
    return {"results": frame({f"{k}x{k}": {"params": num_parameters(NiN(micro_kernel_size=k)),
                                           "FLOPs/example": 0, "test_acc": 0.5, "examples/s": 9.0}
                              for k in (1, 3)}, "micro"), "budget": 96}


def results_03(fc_size):
    return {"results": frame({h: {"params": num_parameters(NiN(head=h, input_size=size)),
                                  "FLOPs/example": 0, "test_acc": 0.5, "examples/s": 9.0}
                              for h, size in (("gap", BUDGET.image_size), ("fc", fc_size))}, "head"),
            "budget": BUDGET}


def results_05():
    return {"results": frame({name: {"params": num_parameters(model()), "test_acc": 0.5,
                                     "examples/s": 9.0, "zero_logits": 30.0}
                              for name, model in (("one step", lambda: NiN(input_size=96)),
                                                  ("gradual", lambda: gradual_nin_with(gradual())(96)))},
                             "last block"), "budget": BUDGET}


def family_06():
    rows = {arch: {"depth": grading.count_layers(VGGNiN(arch, ratio=8), nn.Conv2d),
                   "params": num_parameters(VGGNiN(arch, ratio=8)), "FLOPs/example": 0,
                   "test_acc": 0.5, "examples/s": 9.0} for arch in ("vgg11", "vgg16", "vgg19")}
    return {"family": frame(rows, "arch"), "ratio": 8, "budget": BUDGET}


def vgg_family(in_channels_fixed=None, ratio_fixed=None):
    """vgg_nin of exercise 06, wrong in the way named."""
    def vgg_nin(arch, ratio, num_classes=10, in_channels=1):
        ratio, c_in = ratio_fixed or ratio, in_channels_fixed or in_channels
        layers = []
        for num_convs, width in zip(VGG_ARCHS[arch], VGG_WIDTHS):
            for _ in range(num_convs):
                layers.append(MLPConv(c_in, (width // ratio,) * 2, 3, padding=1))
                c_in = width // ratio
            layers.append(nn.MaxPool2d(2, stride=2))
        return nn.Sequential(*layers, nn.Dropout(0.5),
                             MLPConv(c_in, (num_classes,) * 2, 3, padding=1), GlobalAvgPool2d())
    return vgg_nin


def nin_parameters(**kwargs):
    return num_parameters(NiN(**kwargs))


def plain_nin(input_size):
    """gradual_nin that forgot to replace the last block."""
    return NiN(input_size=input_size)


def nin_params_without_biases(k):
    return sum(p.numel() for name, p in NiN(num_1x1=k).named_parameters() if name.endswith("weight"))

def memory_04(unit=1):
    """Exercise 04's `memory` for d2l's NiN at batch 128, in units of `unit` bytes."""
    estimate = memory_estimate(NiN(), (1, 224, 224), batch_size=128, optimizer_slots=1)
    return {"memory": {key: estimate[key] / unit for key in ("training", "inference")}}


def break_even_04(gradients=True, slots=None, batch_size=1):
    """break_even_batch of exercise 04, wrong in the way named: without the gradients, with
    `slots` optimizer tensors whatever it is given, or activations of `batch_size` examples."""
    def break_even_batch(model, input_shape, optimizer_slots):
        given = optimizer_slots if slots is None else slots
        one = memory_estimate(model, input_shape, batch_size=1, optimizer_slots=given)
        fixed = one["weights"] + one["optimizer_state"] + (one["gradients"] if gradients else 0)
        return fixed // (batch_size * one["activations"]) + 1
    return break_even_batch


E01, E02, E03 = "01_number_of_1x1_convs", "02_3x3_micro_layers", "03_fc_head_instead_of_gap"
E04, E05, E06 = "04_resource_usage", "05_one_step_reduction", "06_vgg_style_family"

MISTAKES = [
    # 01: the number of 1x1 convolutions
    Mistake(E01, "test_block_layers", "one 1x1 convolution too many",
            {"nin_block_variant": block_with_one_more_1x1},
            "your nin_block_variant(1, 96, 11, 4, 0, num_1x1=1) has 3 ReLUs; a NiN block with "
            "one 1x1 convolution has 2"),
    Mistake(E01, "test_block_layers", "layers in a list",
            {"nin_block_variant": lambda *args: [nn.Conv2d(1, 96, 11, 4), nn.ReLU()]},
            "should be a torch nn.Module, but it is a list (wrap the layers in nn.Sequential(...))"),
    Mistake(E01, "test_block_layers", "code that raises", {"nin_block_variant": raises_value_error},
            "nin_block_variant(1, 96, 11, 4, 0, 1) raised ValueError: out_channels must be positive"),
    Mistake(E01, "test_block_layers", "not run", {},
            "nin_block_variant is not defined: write it in its cell and run that cell"),
    Mistake(E01, "test_block_layers", "placeholder", {"nin_block_variant": ...},
            "nin_block_variant is still the placeholder `...`"),
    Mistake(E01, "test_block_parameters_and_shape", "padding ignored",
            {"nin_block_variant": variant_block(ignore_padding=True)},
            "turns an input of shape (2, 96, 26, 26) into (2, 256, 22, 22); expected "
            "(2, 256, 26, 26)"),
    Mistake(E01, "test_block_computes_a_nin_block", "ReLUs after all the convolutions",
            {"nin_block_variant": variant_block(relus_last=True)},
            "with the same weights, nin_block_variant(3, 16, 3, 1, 1, num_1x1=2) computes "
            "something else than nin_block(3, 16, 3, 1, 1, num_1x1=2)"),
    Mistake(E01, "test_param_counts", "weights without biases",
            lambda: {"param_counts": {k: nin_params_without_biases(k) for k in (1, 2, 3)}},
            "param_counts[1] is 1,767,620; expected 1,769,112 (num_parameters(NiN(num_1x1=1)))"),
    Mistake(E01, "test_flop_counts", "a list, not a dict", {"flop_counts": [1, 2, 3]},
            "flop_counts should be a dict {1: ..., 2: ..., 3: ...}, but it is a list"),
    Mistake(E01, "test_extra_per_1x1", "no biases", {"extra_per_1x1_384": 384 * 384},
            "a 1x1 kernel per (input, output) channel pair, and the biases"),
    Mistake(E01, "test_results_table", "a dict of rows", {"results": {1: 0.5}},
            "results should be a pandas DataFrame, but it is a dict"),
    Mistake(E01, "test_results_table", "accuracy in percent", lambda: results_01(test_acc=50.0),
            "results['test_acc'][1] is 50; it should lie between 0 and 1. an accuracy is a fraction"),
    Mistake(E01, "test_results_flops", "no FLOPs measured", results_01,
            "results['FLOPs/example'][1] is 0; expected"),
    # 02: 3x3 micro layers
    Mistake(E02, "test_block_layers", "micro layers without padding",
            {"nin_block_3x3": block_3x3_without_padding},
            "layer 3 of your nin_block_3x3(1, 96, 11, 4, 0) is Conv2d 96->96 3x3; in a NiN block "
            "with two 3x3 micro layers it is Conv2d 96->96 3x3 pad 1"),
    Mistake(E02, "test_block_layers", "still 1x1 micro layers",
            {"nin_block_3x3": block_3x3(padding=0, micro_kernel_size=1)},
            "your nin_block_3x3(1, 96, 11, 4, 0) has 2 1x1 convolutions; a NiN block with two 3x3 "
            "micro layers has 0"),
    Mistake(E02, "test_block_keeps_the_map_size", "padding 2", {"nin_block_3x3": block_3x3(2)},
            "nin_block_3x3(96, 256, 5, 1, 2) turns an input of shape (2, 96, 26, 26) into "
            "(2, 256, 30, 30); expected (2, 256, 26, 26)"),
    Mistake(E02, "test_block_computes_the_3x3_block", "ReLUs after all the convolutions",
            {"nin_block_3x3": block_3x3(1, relus_last=True)},
            "nin_block_3x3(3, 16, 3, 1, 1) computes something else than a NiN block with two 3x3 "
            "micro layers"),
    Mistake(E02, "test_costs", "the 1x1 network's parameters",
            lambda: {"params_3x3": nin_parameters(), "flops_3x3": 0},
            "params_3x3 is 1,992,166; expected"),
    Mistake(E02, "test_ratios", "ratios the wrong way up",
            {"param_ratio": 1 / 3, "flop_ratio": 1 / 3},
            "parameters with 3x3 micro layers divided by those with 1x1"),
    Mistake(E02, "test_receptive_field_1x1", "a 1x1 layer seeing 3 positions",
            {"receptive_fields": {1: 11 + 2 * 2 * 4, 3: 11 + 2 * 2 * 4}},
            "a 1x1 convolution looks at one position only"),
    Mistake(E02, "test_receptive_field_3x3", "stride forgotten",
            {"receptive_fields": {1: 11, 3: 11 + 2 * 2}},
            "after the stride-4 convolution, neighbouring positions are 4 pixels apart"),
    Mistake(E02, "test_results_table", "indexed by name", results_02,
            "results should have one row for each of [1, 3] as its index"),
    Mistake(E02, "test_results_flops", "budget overwritten with a number", results_02,
            "budget should be a RunSpec, but it is 96"),
    # 03: a fully connected head
    Mistake(E03, "test_head_layers", "head sized for 224 px", {"with_fc_head": fc_head_sized_for_224},
            "with_fc_head(NiN(input_size=96)) is Linear 250->10; in NiN(head='fc', input_size=96) "
            "it is Linear 10->10"),
    Mistake(E03, "test_head_parameters_and_output", "no bias", {"with_fc_head": fc_head(bias=False)},
            "the number of parameters of with_fc_head(NiN(input_size=224)) is 1,994,666; "
            "expected 1,994,676"),
    Mistake(E03, "test_head_keeps_the_features", "a new NiN(head='fc')",
            {"with_fc_head": fc_head(fresh=True)},
            "with_fc_head(model) does not keep the weights of model.features. Return the model "
            "you were given with only model.head replaced"),
    Mistake(E03, "test_head_computes_the_fc_network", "always 10 classes",
            {"with_fc_head": fc_head(num_classes=10)},
            "cannot take the weights of NiN(num_classes=7, head='fc', input_size=96): layer 29 "
            "of with_fc_head(NiN(num_classes=7, input_size=96)) is Linear 7->10; in "
            "NiN(num_classes=7, head='fc', input_size=96) it is Linear 7->7"),
    Mistake(E03, "test_fc_extra", "no biases", {"fc_extra": {224: 2500, 96: 100}},
            "fc_extra[224] is 2,500; expected 2,510"),
    Mistake(E03, "test_fc_on_384_maps", "no biases", {"fc_on_384_maps": 384 * 5 * 5 * 10},
            "fc_on_384_maps is 96,000; expected 96,010"),
    Mistake(E03, "test_accepts", "the FC network takes every size",
            {"accepts": {"gap": [96, 160, 224, 256], "fc": [96, 160, 224, 256]}},
            'accepts["fc"] is [96, 160, 224, 256], but the fc network built for 224 px takes [224]'),
    Mistake(E03, "test_results_table", "FC head sized for 224 px", lambda: results_03(224),
            "the FC head's size depends on the input size: use budget.image_size"),
    Mistake(E03, "test_results_flops", "no FLOPs measured", lambda: results_03(BUDGET.image_size),
            "results['FLOPs/example']['gap'] is 0; expected"),
    # 04: resource usage
    Mistake(E04, "test_conv_params", "no biases",
            {"conv_params": lambda c_in, c_out, k: c_out * c_in * k * k},
            "one k x k filter per (input, output) channel pair; plus the biases"),
    Mistake(E04, "test_conv_flops", "out_height squared",
            {"conv_flops": lambda c_in, c_out, k, h, w: 2 * c_in * k * k * c_out * h * h},
            "there are out_height * out_width output values per output channel"),
    Mistake(E04, "test_conv_flops", "multiply-adds, not FLOPs",
            {"conv_flops": lambda c_in, c_out, k, h, w: c_in * k * k * c_out * h * w},
            "a multiply-add counts 2 FLOPs"),
    Mistake(E04, "test_conv_formulas_elsewhere", "out_width squared",
            {"conv_params": lambda c_in, c_out, k: c_out * c_in * k * k + c_out,
             "conv_flops": lambda c_in, c_out, k, h, w: 2 * c_in * k * k * c_out * w * w},
            "out_height * out_width output values per output channel"),
    Mistake(E04, "test_totals", "FLOPs at the input size",
            {"total_params": 1_992_166, "total_flops": 2 * 1_992_166 * 224 * 224},
            "did you use each convolution's output size, after its stride?"),
    Mistake(E04, "test_share_1x1", "a percentage", {"share_1x1": 24.0},
            "a fraction between 0 and 1, not a percentage"),
    Mistake(E04, "test_memory", "MiB, not bytes", lambda: memory_04(unit=2**20),
            "bytes, not MiB"),
    Mistake(E04, "test_largest_part", "the weights", {"largest_part": "weights"},
            "but the package's numbers say 'activations'"),
    Mistake(E04, "test_break_even", "guessed 2",
            {"break_even_batch": lambda model, shape, slots: 2,
             "batch_where_activations_dominate": 2},
            "what does not grow with the batch: the weights, a gradient per weight"),
    Mistake(E04, "test_break_even_elsewhere", "without the gradients",
            {"break_even_batch": break_even_04(gradients=False)},
            "the weights, their gradients and the optimizer state stay"),
    Mistake(E04, "test_break_even_elsewhere", "plain SGD whatever the optimiser",
            {"break_even_batch": break_even_04(slots=0)},
            "use the model, the input shape and the optimizer_slots given"),
    Mistake(E04, "test_break_even_elsewhere", "the activations of a batch of 128",
            {"break_even_batch": break_even_04(batch_size=128)},
            "the activations of one example are memory_estimate at batch_size=1"),
    # 05: one step or several; a probe for dead class maps
    Mistake(E05, "test_shapes", "the batch dimension kept",
            {"maps_in": (1, 384, 5, 5), "maps_out": (1, 10, 5, 5)},
            "maps_in is (1, 384, 5, 5); the last block's input for one image is (384, 5, 5) "
            "(without the batch dimension)"),
    Mistake(E05, "test_reduction", "out over in", {"reduction": 250 / 9600, "last_block_params": 0},
            "values in divided by values out"),
    Mistake(E05, "test_gradual_block", "one step", {"gradual_block": block_in_one_step},
            "your gradual_block(384, 10) has 1 ReLU; a block 384 -> 96 (3x3) -> 24 -> 10 has 3"),
    Mistake(E05, "test_gradual_block", "3x3 without padding", {"gradual_block": gradual(padding=0)},
            "layer 1 of your gradual_block(384, 10) is Conv2d 384->96 3x3; in a block 384 -> 96 "
            "(3x3) -> 24 -> 10 it is Conv2d 384->96 3x3 pad 1"),
    Mistake(E05, "test_gradual_nin", "last block not replaced",
            {"gradual_nin": plain_nin},
            "in d2l's NiN with the last block 384 -> 96 -> 24 -> 10 it is Conv2d 384->96 3x3 pad 1"),
    Mistake(E05, "test_gradual_block_computes_it", "ReLUs after all the convolutions",
            {"gradual_block": gradual(relus_last=True)},
            "gradual_block(64, 5) computes something else than a block 64 -> 16 (3x3) -> 4 -> 5"),
    Mistake(E05, "test_probe_on_a_dead_network", "the share that is not 0",
            {"zero_logit_share": probe(share_of="nonzero")}, "every logit of this network is 0"),
    Mistake(E05, "test_probe_in_evaluation_mode_over_every_batch", "no model.eval()",
            {"zero_logit_share": probe(eval_mode=False)},
            "is 0.76; expected 0.56: the model ran in training mode, where dropout sets values to 0 "
            "at random: switch it to evaluation mode with model.eval() before the loop"),
    Mistake(E05, "test_probe_in_evaluation_mode_over_every_batch", "first batch only",
            {"zero_logit_share": probe(batches="first")},
            "is 0.3; expected 0.56: count over all 3 batches of data_iter, not only the first"),
    Mistake(E05, "test_probe_in_evaluation_mode_over_every_batch", "mean of per-batch shares",
            {"zero_logit_share": probe(pooled=False)},
            "is 0.5; expected 0.56: that is the mean of the batches' shares, but the batches hold "
            "different numbers of images (2, 5, 3)"),
    Mistake(E05, "test_probe_in_evaluation_mode_over_every_batch", "left in evaluation mode",
            {"zero_logit_share": probe(restore=None)},
            "zero_logit_share left the model in evaluation mode, but it was in training mode"),
    Mistake(E05, "test_probe_other_batches_and_modes", "always back in training mode",
            {"zero_logit_share": probe(restore="train")},
            "zero_logit_share left the model in training mode, but it was in evaluation mode"),
    Mistake(E05, "test_results_table", "zero logits in percent", results_05,
            "results['zero_logits']['one step'] is 30; it should lie between 0 and 1"),
    # 06: a VGG-style family
    Mistake(E06, "test_family_layers", "no max-pools", {"vgg_nin": vgg_without_pooling, "ratio": 8},
            "your vgg_nin('vgg11', 8) has 0 max-pools; VGGNiN('vgg11', ratio=8) has 5"),
    Mistake(E06, "test_family_parameters_and_output", "ratio ignored",
            {"vgg_nin": vgg_family(ratio_fixed=4)},
            "the number of parameters of vgg_nin('vgg11', 8) is"),
    Mistake(E06, "test_family_computes_it", "one input channel always",
            {"vgg_nin": vgg_family(in_channels_fixed=1)},
            "vgg_nin('vgg11', 16, num_classes=5, in_channels=3) cannot take the weights of "
            "VGGNiN('vgg11', ratio=16, num_classes=5, in_channels=3): layer 1 of "
            "vgg_nin('vgg11', 16, num_classes=5, in_channels=3) is Conv2d 1->4 3x3 pad 1; in "
            "VGGNiN('vgg11', ratio=16, num_classes=5, in_channels=3) it is Conv2d 3->4 3x3 pad 1"),
    Mistake(E06, "test_depths", "mlpconv blocks, not convolutions",
            {"depths": {"vgg11": 9, "vgg16": 14, "vgg19": 17}},
            "two convolutions per mlpconv block, and the last block too"),
    Mistake(E06, "test_family_table", "a dict", {"family": {}, "ratio": 8},
            "family should be a pandas DataFrame, but it is a dict"),
    Mistake(E06, "test_family_flops", "no FLOPs measured", family_06,
            "family['FLOPs/example']['vgg11'] is 0; expected"),
]

RIGHT_VARIANTS = [
    Variant(E02, "test_block_layers", "padding='same'", {"nin_block_3x3": block_3x3("same")}),
    Variant(E02, "test_block_layers", "padding=(1, 1)", {"nin_block_3x3": block_3x3((1, 1))}),
    Variant(E02, "test_block_keeps_the_map_size", "padding='same'",
            {"nin_block_3x3": block_3x3("same")}),
    Variant(E02, "test_block_computes_the_3x3_block", "padding='same'",
            {"nin_block_3x3": block_3x3("same")}),
    Variant(E03, "test_head_keeps_the_features", "in place", {"with_fc_head": fc_head()}),
    Variant(E03, "test_head_keeps_the_features", "a deep copy",
            {"with_fc_head": fc_head(deep_copy=True)}),
    Variant(E03, "test_head_keeps_the_features", "features grafted onto a new NiN",
            {"with_fc_head": fc_head(graft=True)}),
    Variant(E05, "test_gradual_block", "padding='same'", {"gradual_block": gradual("same")}),
    Variant(E05, "test_gradual_nin", "padding='same'",
            {"gradual_nin": gradual_nin_with(gradual("same"))}),
    Variant(E05, "test_gradual_block_computes_it", "padding='same'",
            {"gradual_block": gradual("same")}),
    Variant(E05, "test_probe_in_evaluation_mode_over_every_batch", "a loop",
            {"zero_logit_share": probe()}),
    Variant(E05, "test_probe_in_evaluation_mode_over_every_batch", "all logits at once",
            {"zero_logit_share": probe_on_all_logits_at_once}),
    Variant(E05, "test_probe_other_batches_and_modes", "a loop", {"zero_logit_share": probe()}),
]


@functools.cache
def source_tests(stem):
    """{name: function} of the test functions in exercises/source/<stem>.ipynb: the code cells
    between # BEGIN TESTS and # END TESTS, without the call that follows each definition."""
    nb = nbformat.read(EXERCISES / "source" / f"{stem}.ipynb", as_version=4)
    found, in_tests = {}, False
    for cell in nb.cells:
        marker = cell.source.strip() if cell.cell_type == "raw" else ""
        in_tests = {"# BEGIN TESTS": True, "# END TESTS": False}.get(marker, in_tests)
        if in_tests and cell.cell_type == "code":
            module = ast.parse(cell.source)
            module.body = [n for n in module.body if isinstance(n, ast.FunctionDef)]
            namespace = {}
            exec(compile(module, f"{stem}.ipynb", "exec"), namespace)
            found.update(namespace)
    found.pop("__builtins__", None)
    return found


def run_source_test(exercise, test, answer):
    """Call the test function `test` of `exercise` as otter does, with the learner's names."""
    env = answer() if callable(answer) else answer
    fn = source_tests(exercise)[test]
    fn(**{name: env.get(name) for name in inspect.signature(fn).parameters})


@pytest.mark.parametrize("row", MISTAKES, ids=lambda r: f"{r.exercise[:2]}-{r.test}-{r.what}")
def test_a_mistake_fails_its_check_with_its_hint(row):
    with pytest.raises(AssertionError) as info:
        run_source_test(row.exercise, row.test, row.answer)
    message = str(info.value)
    assert row.hint in message, message
    jargon = [word for word in DEVELOPER_WORDS if word in message]
    assert not jargon, f"{message!r} uses {jargon}, which a learner has never met"


@pytest.mark.parametrize("row", RIGHT_VARIANTS, ids=lambda r: f"{r.exercise[:2]}-{r.test}-{r.what}")
def test_a_right_variant_passes_its_check(row):
    run_source_test(row.exercise, row.test, row.answer)


def test_every_check_of_a_tabled_exercise_has_a_mistake():
    for exercise in {row.exercise for row in MISTAKES}:
        untested = set(source_tests(exercise)) - {r.test for r in MISTAKES if r.exercise == exercise}
        assert not untested, f"{exercise}: no row of MISTAKES fails {sorted(untested)}"
    assert all(row.test in source_tests(row.exercise) for row in RIGHT_VARIANTS)


# tools/grade.py, end to end with otter. -----------------------------------------------------------

def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@functools.cache
def sandbox_works():
    """Whether tools/grade.py can sandbox here (bubblewrap installed and allowed)."""
    from tools import grade_sandbox
    return grade_sandbox.bwrap_path() is not None


def grade(*args, timeout=900):
    """tools/grade.py with `args`; a folder without bubblewrap is graded with --no-sandbox."""
    if "--folder" in args and not sandbox_works():
        args = (*args, "--no-sandbox")
    return subprocess.run([sys.executable, "-m", "tools.grade", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout)


@pytest.mark.slow
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


@pytest.mark.slow
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
