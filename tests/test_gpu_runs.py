"""benchmarks/gpu_runs.py: the GPU script's smoke mode runs every step on the CPU and stores
every run as a loadable reference run (the GPU itself is not available to CI)."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nin_course.data.arrays import DataNotFoundError, load_arrays
from nin_course.runs import catalogue
from nin_course.runs import store as runs
from nin_course.train.loop import estimate_seconds

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_runs.py"


@pytest.mark.slow
def test_gpu_runs_smoke_stores_loadable_runs(tmp_path):
    try:
        for name in ("fashion-mnist", "cifar10", "cifar100"):
            load_arrays(name)
    except DataNotFoundError as err:
        pytest.skip(f"needs the real data sets: {err}")
    result = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    stored = sorted(p.name for p in tmp_path.iterdir())
    assert stored == sorted(n for n in catalogue.REFERENCE_RUNS if n.startswith("gpu-"))
    for name in stored:
        record = json.loads((tmp_path / name / "record.json").read_text())
        assert record["machine"]["device"] == "cpu" and record["spec"]["train_size"] == 128
        runs.load_run(name, folder=tmp_path / name, check_spec=False)


@pytest.mark.slow
def test_cifar_epochs_are_sized_from_timed_steps(monkeypatch):
    """The GPU script's sizing step (skipped by --smoke) runs, here on the CPU; its steps are
    timed once, and both clamps applied to that one measurement."""
    try:
        load_arrays("cifar100")
    except DataNotFoundError as err:
        pytest.skip(f"needs the real data sets: {err}")
    spec = importlib.util.spec_from_file_location("gpu_runs", SCRIPT)
    gpu_runs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_runs)
    timed = []  # seconds of one epoch, as measured by the first call

    def estimate_once(*args, **kwargs):
        if not timed:
            timed.append(estimate_seconds(*args, **kwargs))
        return timed[0]

    monkeypatch.setattr(gpu_runs, "estimate_seconds", estimate_once)
    runtime = dict(device="cpu", compile=False, progress=False)
    epochs = gpu_runs.cifar_epochs("gpu-cifar100-nin", 1e9, torch.device("cpu"), runtime, None)
    assert epochs == 150  # a huge share: capped at the paper's 150 epochs
    assert 0 < timed[0] < 1e9
    assert gpu_runs.cifar_epochs("gpu-cifar100-nin", 1e-9, torch.device("cpu"), runtime,
                                 None) == 1
