"""nin_course.runs.store: every committed reference run re-evaluated, and the store's behaviour.

The committed runs are checked on the first CHECK_SIZE (500) images of their test set, in fp32
on the CPU, against the accuracy recorded for the stored weights on those same images: a stored
number cannot drift from its stored weights.
"""
import json
import subprocess
import sys
from dataclasses import replace

import pytest

from nin_course.data.arrays import DataNotFoundError
from nin_course.runs import catalogue
from nin_course.runs import store as runs
from nin_course.runs.spec import sized

COMMITTED = sorted(p.parent.name for p in runs.runs_dir().glob("*/record.json"))
RECORD_KEYS = {"name", "key", "spec", "history", "metrics", "input", "check", "weights",
               "precision", "machine", "versions", "sizing", "command", "wall_seconds"}


@pytest.mark.slow
@pytest.mark.parametrize("name", COMMITTED)
def test_committed_run_reproduces_its_recorded_accuracy(name):  # 500 images, on all its threads
    try:
        run = runs.load_run(name)  # raises if the code no longer gives its description
    except DataNotFoundError as err:
        pytest.skip(f"data for {name} not found: {err}")
    record = run.record
    assert RECORD_KEYS <= record.keys()
    assert record["weights"]["dtype"] in ("float16", "float32")
    assert (runs.runs_dir() / name / "model.safetensors").stat().st_size < 8 * 2**20
    loader = run.test_loader(size=record["check"]["images"])
    accuracy = runs.check_accuracy(run.model, loader)
    assert abs(accuracy - record["check"]["accuracy"]) <= 0.005, (name, accuracy)
    # the recorded final accuracy is the trained weights'; the stored ones are within 0.1 points
    metrics = record["metrics"]
    assert metrics["test_acc"] == run.history.test_acc[-1]
    assert abs(metrics["test_acc_stored_weights"] - metrics["test_acc"]) <= 0.001 + 1e-9


def test_the_runs_readme_is_current():
    readme = runs.runs_dir() / "README.md"
    if COMMITTED or readme.exists():
        assert readme.read_text() == runs.report(), \
            "runs/README.md is stale: python -m nin_course.runs report > runs/README.md"


@pytest.fixture
def tiny_run(tmp_path, monkeypatch, tiny_data_root):
    """A stored run of a tiny description, trained in a temporary runs folder."""
    monkeypatch.setenv(runs.RUNS_ENV, str(tmp_path / "runs"))
    spec = replace(sized(runs.reference_spec("fast-fashion"), "smoke"), train_size=64,
                   test_size=32, batch_size=16)
    monkeypatch.setitem(catalogue.REFERENCE_RUNS, "tiny", lambda: spec)
    path = runs.train_reference("tiny", root=tiny_data_root, device="cpu", progress=False)
    return path


def test_a_trained_run_is_stored_and_loads(tiny_run, tiny_data_root, one_thread):
    record = json.loads(tiny_run.read_text())
    assert record["command"] == "python -m nin_course.runs train tiny"
    assert record["metrics"]["epochs"] == len(record["history"]["epoch"]) == 1
    run = runs.load_run("tiny")
    loader = run.test_loader(root=tiny_data_root, size=record["check"]["images"])
    assert runs.check_accuracy(run.model, loader) == record["check"]["accuracy"]
    assert run.transform(loader.X[:2].permute(0, 2, 3, 1)).shape == loader.transform(
        loader.X[:2]).shape
    assert "stored" in runs.status("tiny")
    arrays = run.spec.data(tiny_data_root)[0]  # the training images, without augmentation
    train = runs.ArrayLoader(arrays.x_train, arrays.y_train, 250, mean=record["input"]["mean"],
                             std=record["input"]["std"])
    assert record["metrics"]["train_acc"] == runs.evaluate(run.model, train, "cpu")[1]


def test_a_missing_run_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv(runs.RUNS_ENV, str(tmp_path))
    with pytest.raises(runs.RunNotFoundError, match="python -m nin_course.runs train "
                                                     "d2l-nin-fashion"):
        runs.load_run("d2l-nin-fashion")
    assert runs.status("d2l-nin-fashion").startswith("missing")


def test_a_stale_run_is_refused(tiny_run, monkeypatch):
    spec = runs.reference_spec("tiny")
    monkeypatch.setitem(catalogue.REFERENCE_RUNS, "tiny",
                        lambda: replace(spec, config=replace(spec.config, lr=0.5)))
    with pytest.raises(runs.StaleRunError, match="config.*python -m nin_course.runs train tiny"):
        runs.load_run("tiny")


def test_unknown_run_names_the_runs():
    with pytest.raises(ValueError, match="d2l-nin-fashion"):
        runs.reference_spec("no-such-run")


def test_summary_row_reads_the_record():
    """Two epochs of 600 examples in 2 s and 6 s: 1,200 examples in 8 s is 150 per second
    (not the plain mean of 300 and 100)."""
    record = {"metrics": {"test_acc": 0.9, "epochs": 2, "train_seconds": 600.0,
                          "parameters": 1234},
              "history": {"examples_per_sec": [300.0, 100.0]}, "precision": "bf16",
              "machine": {"cpu": "Some CPU", "cpu_count": 2, "gpu": None}}
    run = runs.ReferenceRun("x", None, None, None, record)
    assert run.summary_row() == {"test accuracy": 0.9, "epochs": 2, "training minutes": 10.0,
                                 "examples/s": pytest.approx(150.0), "parameters": 1234,
                                 "precision": "bf16", "machine": "Some CPU, 2 cores"}
    record["machine"]["gpu"] = "Some GPU"
    assert run.summary_row()["machine"] == "Some GPU"


def test_the_command_line_reports_every_run_and_refuses_an_unknown_one(capsys):
    """`python -m nin_course.runs` (the package's __main__), as the Makefile and records run it."""
    report = subprocess.run([sys.executable, "-m", "nin_course.runs", "report"],
                            capture_output=True, text=True, check=True)
    assert report.stdout == runs.report()
    with pytest.raises(SystemExit) as stop:
        runs.main(["train", "no-such-run"])
    assert stop.value.code == 2
    assert "unknown run(s) ['no-such-run']" in capsys.readouterr().err
