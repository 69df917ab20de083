"""nin_course/grading.py: the exercise checks fail with the right one-line hint, and only then."""
import copy
import time

import pandas as pd
import pytest
import torch
from torch import nn

from nin_course import grading as g
from nin_course.models import MLPConv, nin_block


def fails(fn, *args, **kwargs):
    """The message of the AssertionError that fn(*args, **kwargs) raises."""
    with pytest.raises(AssertionError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def test_time_limit_stops_an_endless_loop_and_restores_the_alarm():
    start = time.perf_counter()
    with pytest.raises(TimeoutError, match="did not finish within 0.2 s"):
        with g.time_limit(0.2):
            while True:
                pass
    assert time.perf_counter() - start < 5
    with g.time_limit(5):  # a fast block is untouched, and no alarm is left behind
        total = sum(range(1000))
    assert total == 499500
    time.sleep(0.3)


def test_time_limit_default_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(g.CHECK_SECONDS_ENV, "0.1")
    assert g.check_seconds() == 0.1
    with pytest.raises(TimeoutError):
        with g.time_limit():
            time.sleep(1)


@pytest.mark.parametrize("value", ["ten", "0", "-5", "0.001", "nan", "inf"])
def test_a_check_time_limit_that_cannot_work_names_the_variable(monkeypatch, value):
    monkeypatch.setenv(g.CHECK_SECONDS_ENV, value)
    with pytest.raises(ValueError, match=f"^{g.CHECK_SECONDS_ENV}='{value}': give the time limit"):
        g.check_seconds()


def test_call_names_the_call_that_raised_or_returned_nothing():
    def broken(x):
        raise ValueError("no")

    def unfinished(x):
        ...

    assert fails(g.call, broken, 3, name="my_fn") == "my_fn(3) raised ValueError: no"

    def interrupted(x):
        raise KeyboardInterrupt

    assert fails(g.call, interrupted, 3, name="f") == "f(3) raised KeyboardInterrupt: "
    assert "returned None" in fails(g.call, unfinished, torch.zeros(2, 3), name="f")
    assert "<tensor of shape (2, 3)>" in fails(g.call, unfinished, torch.zeros(2, 3), name="f")
    assert g.call(lambda x: x + 1, 1) == 2


def test_placeholders_and_wrong_types_are_named():
    assert "not defined" in fails(g.expect_function, None, "f")
    assert "placeholder `...`" in fails(g.expect_function, Ellipsis, "f")
    assert fails(g.expect_function, 3, "f") == "f should be a function, but it is 3"
    assert "wrap the layers in nn.Sequential" in fails(g.expect_module, [nn.ReLU()], "block")
    assert fails(g.expect_type, "12", int, "n") == "n should be a int, but it is '12'"
    assert fails(g.expect_type, True, int, "n") == "n should be a int, but it is True"
    assert "has no entry for 3" in fails(g.expect_dict, {1: 0, 2: 0}, "counts", (1, 2, 3))


def test_check_count_compares_whole_numbers_with_a_hint():
    g.check_count("n", 1760, 1760)
    g.check_count("n", torch.tensor(1760), 1760)
    message = fails(g.check_count, "n", 14048, 1760, source="num_parameters(block)", hint="h")
    assert message == "n is 14,048; expected 1,760 (num_parameters(block)). h"
    assert "whole number" in fails(g.check_count, "n", 1760.5, 1760)
    # megabytes where bytes were asked: a fraction, and its hint is shown all the same
    mib = fails(g.check_count, "memory", 1589.25, 1589.25 * 2**20, hint="bytes, not MiB")
    assert "whole number" in mib and mib.endswith("bytes, not MiB")
    assert "should be a number" in fails(g.check_count, "n", "1760", 1760)


def test_check_close_range_and_choice():
    g.check_close("r", 2.5001, 2.5, rel_tol=1e-3)
    assert "expected 2.5" in fails(g.check_close, "r", 2.6, 2.5)
    g.check_in_range("acc", 0.5, 0, 1)
    assert "between 0 and 1" in fails(g.check_in_range, "acc", 50, 0, 1)
    assert fails(g.check_in_range, "acc", float("nan"), 0, 1).startswith(
        "acc is NaN: your code returned NaN")
    assert "is NaN" in fails(g.check_count, "n", float("nan"), 3)  # not "cannot convert float NaN"
    assert "is infinite" in fails(g.check_close, "r", torch.tensor(float("inf")), 1.0)
    assert "one of" in fails(g.check_choice, "part", "memory", "activations", ("weights", "activations"))
    assert "package's numbers say 'activations'" in fails(
        g.check_choice, "part", "weights", "activations", ("weights", "activations"))


def test_same_layers_reports_the_count_that_differs_first():
    three_relus = nn.Sequential(nn.Conv2d(1, 96, 11, 4), nn.ReLU(), nn.Conv2d(96, 96, 1), nn.ReLU(),
                                nn.Conv2d(96, 96, 1), nn.ReLU())
    message = fails(g.expect_same_layers, three_relus, nin_block(1, 96, 11, 4, 0, num_1x1=1),
                    "your block", "a NiN block with one 1x1 conv")
    assert message == "your block has 3 ReLUs; a NiN block with one 1x1 conv has 2"
    g.expect_same_layers(three_relus, nin_block(1, 96, 11, 4, 0, num_1x1=2), "b", "ref")


def test_same_layers_reports_the_first_layer_that_differs():
    no_padding = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU())
    message = fails(g.expect_same_layers, no_padding, MLPConv(3, (8, 8), 3, 1, 1, micro_kernel_size=3),
                    "yours", "the reference")
    assert message.startswith("layer 3 of yours is Conv2d 8->8 3x3; in the reference it is "
                              "Conv2d 8->8 3x3 pad 1")


def test_same_function_finds_a_missing_relu_that_counts_miss():
    reference = nin_block(3, 8, 3, 1, 1, num_1x1=1)
    relu_first = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.Conv2d(8, 8, 1), nn.ReLU(), nn.ReLU())
    X = torch.randn(2, 3, 6, 6)
    assert "computes something else" in fails(g.expect_same_function, relu_first, reference, X,
                                               "yours", "nin_block")
    g.expect_same_function(nin_block(3, 8, 3, 1, 1, num_1x1=1), reference, X, "copy", "nin_block")


def test_output_shape_and_parameters():
    block = nin_block(1, 4, 3, 1, 0)
    assert "into (2, 4, 6, 6); expected (2, 4, 8, 8)" in fails(
        g.expect_output_shape, block, torch.zeros(2, 1, 8, 8), (2, 4, 8, 8), "block")
    message = fails(g.expect_parameters, block, nin_block(1, 4, 3, 1, 0, num_1x1=1), "block", "ref")
    assert message == "the number of parameters of block is 80; expected 60 (as ref)"


def test_expect_frame_names_missing_columns_and_rows():
    frame = pd.DataFrame({"params": [1, 2]}, index=[1, 3])
    assert "lacks the column(s) ['test_acc']" in fails(g.expect_frame, frame, "results", (1, 3),
                                                        ("params", "test_acc"))
    assert "index is [1, 3]" in fails(g.expect_frame, frame, "results", (1, 2), ("params",))
    assert "should be a pandas DataFrame" in fails(g.expect_frame, {1: 2}, "results", (1,), ())
    assert g.row(frame, "3")["params"] == 2
    assert "results has no row 2; its index is [1, 3]" in fails(g.row, frame, 2)
    assert "family is still the placeholder" in fails(g.row, Ellipsis, 1, "family")


@pytest.mark.parametrize("padding", [1, (1, 1), [1, 1], "same"])
def test_a_layer_is_named_by_what_it_computes_not_by_how_padding_is_spelled(padding):
    assert g.layer_name(nn.Conv2d(8, 8, 3, padding=padding)) == "Conv2d 8->8 3x3 pad 1"
    block = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=padding), nn.ReLU())
    g.expect_same_layers(block, MLPConv(3, (8, 8), 3, 1, 1, micro_kernel_size=3), "yours", "ref")


def test_weights_that_do_not_fit_are_explained_in_layers_not_in_state_dict_keys():
    reference = nin_block(3, 8, 3, 1, 1, num_1x1=1)
    wrong_width = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.ReLU(), nn.Conv2d(8, 4, 1), nn.ReLU())
    message = fails(g.expect_same_function, wrong_width, reference, torch.randn(2, 3, 6, 6),
                    "yours", "the block")
    assert message == ("yours cannot take the weights of the block: layer 3 of yours is "
                       "Conv2d 8->4 1x1; in the block it is Conv2d 8->8 1x1")
    one_conv = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.ReLU())
    assert "yours has 1 layer with weights; the block has 2: Conv2d 3->8 3x3 pad 1, Conv2d 8->8 1x1" \
        in fails(g.expect_same_function, one_conv, reference, torch.randn(2, 3, 6, 6), "yours",
                 "the block")


def test_same_function_accepts_layers_that_size_themselves_on_their_first_input():
    lazy = nn.Sequential(nn.LazyConv2d(8, 3, padding="same"), nn.ReLU(), nn.LazyConv2d(8, 1), nn.ReLU())
    g.expect_same_function(lazy, nin_block(3, 8, 3, 1, 1, num_1x1=1), torch.randn(2, 3, 6, 6),
                           "yours", "nin_block")


def test_kept_parameters_are_the_same_tensors_or_their_values():
    model = nin_block(1, 4, 3, 1, 1)
    kept = g.parameter_values(model)
    g.expect_kept(model, kept, "model", "its weights")
    g.expect_kept(nn.Sequential(copy.deepcopy(model), nn.Flatten()), kept, "a copy", "its weights")
    assert fails(g.expect_kept, nin_block(1, 4, 3, 1, 1), kept, "a new block", "the weights",
                 hint="keep them") == "a new block does not keep the weights. keep them"


def test_the_zero_logit_case_tells_each_probe_mistake_from_the_right_share():
    model, batches = g.zero_logit_case()
    assert model.training and [len(X) for X, _ in batches] == [2, 5, 3]
    shares = [share for share, _ in g._zero_shares(model, batches)]
    assert shares == pytest.approx([0.3, 0.7, 0.5]) and model.training
    with torch.no_grad():
        trained = torch.cat([model(X) for X, _ in batches])  # dropout on: more zeros
    assert (trained == 0).float().mean().item() > 0.56 + 0.1
    # right (pooled), first batch only, mean of the batches' shares: three different numbers
    assert [(0.3 * 2 + 0.7 * 5 + 0.5 * 3) / 10, shares[0], sum(shares) / 3] == \
        pytest.approx([0.56, 0.3, 0.5])

    def right(model, data_iter):
        was_training = model.training
        model.eval()
        with torch.no_grad():
            logits = torch.cat([model(X) for X, _ in data_iter])
        model.train(was_training)
        return (logits == 0).float().mean()

    g.check_zero_logit_share(right, model, batches)
    assert "should be a number" in fails(g.check_zero_logit_share, lambda m, d: "0.56", model,
                                         batches)


# Grading a class: tools/grade.py and its sandbox (issue 12, section 3). ----------------------

import csv  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402

import nbformat  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "grading"
from tools import assign, grade, grade_sandbox  # noqa: E402
from tools.grade_submission import Unreadable, exercise_of, read_submission, restore_template  # noqa: E402

EXERCISE = "01_number_of_1x1_convs"
BWRAP = grade_sandbox.bwrap_path()
needs_bwrap = pytest.mark.skipif(BWRAP is None, reason="bubblewrap is missing or cannot create "
                                 "namespaces here (Debian: apt-get install bubblewrap)")


@pytest.mark.parametrize("name, reason", [
    ("not_a_notebook", "not a notebook: JSON list, not a notebook object"),
    ("metadata_null", "not a notebook: its metadata is null, not an object"),
    ("binary", "not a notebook: not UTF-8 text (a binary file?)"),
])
def test_a_file_that_is_not_a_notebook_is_unreadable_with_a_reason(name, reason):
    with pytest.raises(Unreadable) as info:
        read_submission(FIXTURES / f"{name}.ipynb")
    assert str(info.value) == reason


def test_the_exercise_comes_from_a_string_assignment_name_or_the_file_name(tmp_path):
    nb = read_submission(FIXTURES / "bad_assignment_name.ipynb")
    with pytest.raises(Unreadable, match="assignment_name is a int"):
        exercise_of(nb, Path("x.ipynb"), {EXERCISE})
    nb = read_submission(FIXTURES / "honest.ipynb")
    assert exercise_of(nb, Path("anything.ipynb"), {EXERCISE}) == EXERCISE
    del nb.metadata["otter"]
    assert exercise_of(nb, Path(f"{EXERCISE}.ipynb"), {EXERCISE}) == EXERCISE
    with pytest.raises(Unreadable, match="unknown exercise"):
        exercise_of(nb, Path("mine.ipynb"), {EXERCISE})


def test_locked_template_cells_are_restored_and_added_cells_kept():
    template = nbformat.read(ROOT / "exercises" / f"{EXERCISE}.ipynb", as_version=4)
    locked = [c for c in template.cells if c.metadata.get("editable") is False]
    setup, check = locked[0], next(c for c in locked if "grader.check(" in c.source)
    submission = nbformat.from_dict(json.loads(nbformat.writes(template)))
    submission.cells = [c for c in submission.cells if c.id != check.id]  # a check cell deleted
    next(c for c in submission.cells if c.id == setup.id).source = "grader = None"  # setup edited
    submission.cells.append(nbformat.v4.new_code_cell("extra = 1"))  # a cell added
    restored = restore_template(submission, template)
    ids = [c.id for c in restored.cells]
    assert ids[:-1] == [c.id for c in template.cells] and restored.cells[-1].source == "extra = 1"
    assert next(c for c in restored.cells if c.id == setup.id).source == setup.source
    assert restored.metadata.otter == template.metadata.otter


def rezip(source, target, change=None):
    """A copy of the zip `source` with its comment, and with test q1_block replaced if `change`."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        zout.comment = zin.comment
        for item in zin.infolist():
            data = zin.read(item.filename)
            if change and item.filename == "tests/q1_block.py":
                data = change.encode()
            zout.writestr(item, data)


@pytest.fixture(scope="module")
def autograders(tmp_path_factory):
    """A folder holding exercise 01's autograder zip, built from its source here."""
    folder = tmp_path_factory.mktemp("autograders")
    assign.generate(assign.SOURCES / f"{EXERCISE}.ipynb", folder / f"{EXERCISE}.zip")
    return folder


def test_an_autograder_is_checked_by_its_contents_not_its_comment(autograders, tmp_path):
    original = grade.Autograder(autograders / f"{EXERCISE}.zip")
    assert set(original.tests) == {"q1_block", "q2_counts", "q3_experiment"}
    same = tmp_path / "same.zip"
    rezip(original.path, same)
    assert grade.Autograder(same, original.digest).digest == original.digest
    poisoned = tmp_path / "poisoned.zip"
    rezip(original.path, poisoned, change="OK_FORMAT = False\nname = 'q1_block'\npoints = 3\n")
    assert zipfile.ZipFile(poisoned).comment == zipfile.ZipFile(original.path).comment
    with pytest.raises(ValueError, match="contents differ"):
        grade.Autograder(poisoned, original.digest)


def test_a_changed_zip_in_exercises_autograder_is_rebuilt_not_trusted(autograders, tmp_path,
                                                                      monkeypatch, capsys):
    built, target = autograders / f"{EXERCISE}.zip", tmp_path / f"{EXERCISE}.zip"

    def ensure_autograders(paths=None):  # assign's: builds a missing zip, trusts its comment
        if not target.exists():
            shutil.copyfile(built, target)
        return {EXERCISE: target}

    monkeypatch.setattr(assign, "ensure_autograders", ensure_autograders)
    monkeypatch.setattr(grade, "RECORD", tmp_path / "contents.sha256.json")
    first = grade.verified_autograders()[EXERCISE]
    rezip(built, target, change="OK_FORMAT = False\nname = 'q1_block'\npoints = 3\n")
    again = grade.verified_autograders()[EXERCISE]
    assert "its contents changed since it was built: rebuilt" in capsys.readouterr().err
    assert again.digest == first.digest and again.tests == first.tests


def test_scores_and_possible_points_come_from_the_autograder(autograders):
    autograder = grade.Autograder(autograders / f"{EXERCISE}.zip")
    reported = {"q1_block": [{"case": "q1_block - 1", "passed": True}],  # cases 2, 3: not reported
                "q2_counts": "whatever", "extra": [{"case": "x", "passed": True}]}
    scores = grade.scores(autograder, reported)
    assert set(scores) == {"q1_block", "q2_counts", "q3_experiment"}
    assert [scores[q]["possible"] for q in scores] == [3, 3, 2]
    assert scores["q1_block"]["score"] == 1 and scores["q2_counts"]["score"] == 0


def test_the_score_sheet_is_written_before_grading_and_after_each_submission(autograders, tmp_path):
    zips = {EXERCISE: grade.Autograder(autograders / f"{EXERCISE}.zip")}
    path = tmp_path / "scores.csv"
    sheet = grade.ScoreSheet(path, tmp_path, zips)
    header = path.read_text().splitlines()
    assert header == ["submission,exercise,status,score,possible,seconds,01/q1_block,01/q2_counts,"
                      "01/q3_experiment,01/q4_what_changes"]
    sheet.add(tmp_path / "a" / "x.ipynb", {"status": "ok", "exercise": EXERCISE, "seconds": 1.0,
                                           "questions": {"q1_block": {"score": 3, "possible": 3}}})
    sheet.add(tmp_path / "b.ipynb", grade.error_result("not a notebook: JSON list, not a notebook object"))
    rows = list(csv.DictReader(path.open()))
    assert rows[0]["01/q1_block"] == "3" and rows[0]["01/q4_what_changes"] == "graded by hand"
    assert rows[1]["status"].startswith("not a notebook") and rows[1]["01/q1_block"] == ""
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".scores")] == []


@needs_bwrap
def test_the_sandbox_is_read_only_offline_and_its_limits_kill_the_whole_namespace(tmp_path):
    scratch, grader = tmp_path / "work", tmp_path / "grader"
    scratch.mkdir()
    grader.mkdir()
    secret = tmp_path.parent / f"{tmp_path.name}-secret"
    secret.mkdir()
    script = ("import pathlib, socket, subprocess\n"
              f"pathlib.Path('{grade_sandbox.SCRATCH}/ok').write_text('written')\n"
              f"for p in ('{ROOT}/x', '{grade_sandbox.GRADER}/x'):\n"
              "    try: pathlib.Path(p).write_text('x')\n"
              "    except OSError: pass\n"
              "    else: raise SystemExit('wrote ' + p)\n"
              "try: socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
              "except OSError: pass\n"
              "else: raise SystemExit('network')\n")
    env = {"PATH": os.environ["PATH"]}
    run = grade_sandbox.run_limited(grade_sandbox.bwrap_command(
        BWRAP, [sys.executable, "-c", script], scratch, grader, env=env), 60, 2**30)
    assert (run.status, run.returncode) == ("exited", 0), run.stderr
    assert (scratch / "ok").read_text() == "written" and not (ROOT / "x").exists()

    forever = "(setsid sleep 4243 &); sleep 4243"
    run = grade_sandbox.run_limited(grade_sandbox.bwrap_command(
        BWRAP, ["bash", "-c", forever], scratch, grader, env=env), 2, 2**30)
    assert run.status == "timed out" and run.seconds < 10
    hog = "x = []\nwhile True: x.append(bytearray(50 * 2**20))"
    run = grade_sandbox.run_limited(grade_sandbox.bwrap_command(
        BWRAP, [sys.executable, "-c", hog], scratch, grader, env=env), 60, 300 * 2**20)
    assert run.status == "memory" and run.peak_bytes > 300 * 2**20
    assert not processes_with("4243")


def processes_with(marker):
    """The pids whose command line holds `marker`."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                found.append(int(entry))
        except OSError:
            pass
    return found


# fixture: (status it must get, score, possible points)
CLASS = {
    "honest": ("ok", 3, 8),
    "drop_questions": ("ok", 3, 8),
    "learner_interrupts": ("ok", 2, 8),  # section 4: only the questions that use the function
    "noop_checks": ("tampered: replaced nin_course.grading.", 0, 8),
    "patch_runner": ("tampered: replaced otter.test_files.exception_test.test_case.call_func", 0, 8),
    "poison_autograder": ("ok", 0, 8),
    "overwrite_classmate": ("ok", 0, 8),
    "lingering_process": ("ok", 0, 8),
    "kill_grader": ("error: grading ended without a result", 0, 8),
    "gil_loop": ("timed out after", 0, 8),
    "c_sleep": ("timed out after", 0, 8),
    "memory_hog": ("memory limit: used more than", 0, 8),
    "not_a_notebook": ("not a notebook: JSON list", 0, 0),
    "metadata_null": ("not a notebook: its metadata is null", 0, 0),
    "bad_assignment_name": ("its otter assignment_name is a int", 0, 0),
    "binary": ("not a notebook: not UTF-8", 0, 0),
}
CLASS_TIMEOUT = 60  # s per notebook: an honest one takes about 15 s here (a kernel that imports
# torch); the two that never return take all of it, the one whose cell never returns a third


def digests(*folders):
    """{path: SHA-256} of every file under `folders`."""
    return {p: hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted(Path(folder).rglob("*")) if p.is_file()}


# Without bubblewrap nothing keeps a submission from the others (grade.py --no-sandbox): these
# attacks reach outside their own folder and are graded only in the sandbox.
NEEDS_ISOLATION = {"poison_autograder", "overwrite_classmate", "lingering_process", "kill_grader"}


@pytest.mark.slow
def test_grading_a_class_with_hostile_submissions(autograders, tmp_path):
    """Every attack of issue 12 section 3 (tests/fixtures/grading/, one notebook each) in one
    class folder with honest submissions: each gets its outcome, the CSV is complete, and
    nothing outside the scratch folders changed. 13 kernels that import torch, two of which run
    into the time limit, and one into the cell limit: minutes, not seconds. Without bubblewrap
    (grade.py --no-sandbox) the same, less the attacks that only a sandbox can contain: the
    limits, the template, the trusted scores and the tamper check hold without it."""
    sandboxed = BWRAP is not None
    CLASS_HERE = {name: outcome for name, outcome in CLASS.items()
                  if sandboxed or name not in NEEDS_ISOLATION}
    folder = tmp_path / "submissions"
    for name in CLASS_HERE:
        (folder / name).mkdir(parents=True)
        shutil.copyfile(FIXTURES / f"{name}.ipynb", folder / name / f"{name}.ipynb")
    out = tmp_path / "out" / "scores.csv"
    out.parent.mkdir()
    watched = [folder, autograders, ROOT / "nin_course", ROOT / "tools", FIXTURES]
    before = digests(*watched)
    private_tmp = tmp_path / "tmp"  # the grader's TMPDIR: others may grade into /tmp meanwhile
    private_tmp.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "tools.grade", "--folder", str(folder), "--csv", str(out),
         "--autograders", str(autograders), "--timeout", str(CLASS_TIMEOUT), "--memory", "2.5",
         "--jobs", "2", *([] if sandboxed else ["--no-sandbox"])], capture_output=True,
        text=True, cwd=ROOT, timeout=3600, env={**os.environ, "TMPDIR": str(private_tmp)})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {r["submission"].split("/")[0]: r for r in csv.DictReader(out.open())}
    assert set(rows) == set(CLASS_HERE), "the CSV lacks a submission, or holds a row it should not"
    for name, (status, score, possible) in CLASS_HERE.items():
        row = rows[name]
        assert row["status"].startswith(status), (name, row["status"])
        assert (float(row["score"]), float(row["possible"])) == (score, possible), (name, row)
        assert float(row["seconds"]) < CLASS_TIMEOUT + 30, (name, row["seconds"])
        hand = "graded by hand" if row["exercise"] else ""
        assert row["01/q4_what_changes"] == hand, name
    assert rows["honest"]["01/q1_block"] == "3" and rows["drop_questions"]["01/q1_block"] == "3"
    assert rows["learner_interrupts"]["01/q1_block"] == "2"
    assert digests(*watched) == before, "a submission changed a file outside its scratch folder"
    assert not processes_with("nin-linger-marker") and not processes_with("4242")
    assert list(private_tmp.iterdir()) == [], "grading left something in its temporary folder"
    assert [p.name for p in out.parent.iterdir()] == ["scores.csv"]
