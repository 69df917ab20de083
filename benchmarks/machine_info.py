"""What a benchmark ran on (nin_course.runs.machine), and where its results are written."""
import json
from pathlib import Path

from nin_course.runs.machine import load_average, versions
from nin_course.runs.machine import machine_info as _machine_info

RESULTS = Path(__file__).resolve().parent / "results"
__all__ = ["RESULTS", "describe", "load_average", "machine_info", "save"]


def machine_info(device):
    """The machine and the package versions, for the results file."""
    return {**_machine_info(device), **versions()}


def describe(info):
    """The machine as text lines."""
    return [f"{key}: {value}" for key, value in info.items()]


def save(name, result, report_lines):
    """Write results/<name>.json (all numbers) and results/<name>.txt (the printed report)."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{name}.txt").write_text("\n".join(report_lines) + "\n")
    return RESULTS / f"{name}.json", RESULTS / f"{name}.txt"
