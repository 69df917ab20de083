"""nin_course.runs.machine: what a run records about the machine, against the sources it reads."""
import os
import platform
from pathlib import Path

import pytest
import torch

from nin_course.runs import machine


def test_versions_are_the_installed_ones(monkeypatch):
    monkeypatch.setattr(machine, "PACKAGES", ("torch", "no-such-package-for-nin-course"))
    found = machine.versions()
    assert found.keys() == {"python", "torch", "no-such-package-for-nin-course"}
    assert found["python"] == platform.python_version()
    assert found["no-such-package-for-nin-course"] is None
    # the distribution's version, which may lack torch.__version__'s local tag (+cu130)
    assert found["torch"] and torch.__version__.startswith(found["torch"])


def test_cpu_model_reads_proc_cpuinfo_else_platform(monkeypatch):
    cpuinfo = "processor\t: 0\nvendor_id\t: Acme\nmodel name\t: Acme CPU @ 2.00GHz: rev 2\n"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: cpuinfo)
    assert machine.cpu_model() == "Acme CPU @ 2.00GHz: rev 2"   # split at the first colon

    def unreadable(self, *args, **kwargs):
        raise OSError("no /proc here")
    monkeypatch.setattr(Path, "read_text", unreadable)
    monkeypatch.setattr(platform, "processor", lambda: "")
    monkeypatch.setattr(platform, "machine", lambda: "arm64")
    assert machine.cpu_model() == "arm64"


def test_load_average(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (1.234, 0.5, 2.0))
    assert machine.load_average() == [1.23, 0.5, 2.0]
    monkeypatch.delattr(os, "getloadavg")   # Windows has none
    assert machine.load_average() is None


def test_machine_info_on_cpu():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        info = machine.machine_info("cpu")
    finally:
        torch.set_num_threads(before)
    assert info["device"] == "cpu" and info["torch_threads"] == 1
    assert info["cpu_count"] == os.cpu_count() and info["cpu"] == machine.cpu_model()
    assert "gpu" not in info and "cuda" not in info


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_machine_info_on_cuda():
    info = machine.machine_info("cuda")
    assert info["gpu"] == torch.cuda.get_device_name(0) and info["cuda"] == torch.version.cuda
