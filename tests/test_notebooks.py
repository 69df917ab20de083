"""The lessons as stored: executed in order, clean metadata, and nbval strictness that bites."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SANITIZE = ROOT / "notebooks" / "sanitize.cfg"


def code_cells(path):
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lessons_were_executed_top_to_bottom(path):
    counts = [c["execution_count"] for c in code_cells(path)]
    assert counts == list(range(1, len(counts) + 1)), \
        f"{path.name}: execution counts {counts} are not 1..n; re-run it with `make execute`"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lessons_store_no_errors_and_little_metadata(path):
    nb = json.loads(path.read_text())
    assert set(nb["metadata"]) <= {"kernelspec", "language_info"}, sorted(nb["metadata"])
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    for cell in code_cells(path):
        assert all(o["output_type"] != "error" for o in cell["outputs"]), \
            f"{path.name} stores an error output in cell {cell['execution_count']}"


def test_lessons_are_numbered_in_order():
    numbers = [int(p.name[:2]) for p in LESSONS]
    assert numbers == list(range(1, len(numbers) + 1))


def altered_copy(source, tmp_path, old, new):
    """A copy of `source` up to its first cell whose stored output holds `old`, with `old`
    replaced by `new` there: nbval runs only the cells that lead to the altered one."""
    nb = json.loads(source.read_text())
    for index, cell in enumerate(nb["cells"]):
        hits = 0
        for output in cell.get("outputs", []):
            if old in "".join(output.get("text", "")):
                output["text"] = "".join(output["text"]).replace(old, new)
                hits += 1
            plain = output.get("data", {}).get("text/plain")
            if plain is not None and old in "".join(plain):
                output["data"]["text/plain"] = "".join(plain).replace(old, new)
                hits += 1
        if hits:
            nb["cells"] = nb["cells"][:index + 1]
            copy = tmp_path / source.name
            copy.write_text(json.dumps(nb))
            return copy
    raise AssertionError(f"{source.name} stores no output containing {old!r}")


def run_nbval(path):
    cmd = [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env",
           "--nbval-sanitize-with", str(SANITIZE), "-p", "no:cacheprovider", "-q", str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=path.parent, timeout=600)


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / "notebooks" / "04_the_full_nin.ipynb").exists(),
                    reason="lesson 04 not written yet")
def test_nbval_strict_catches_an_altered_parameter_count(tmp_path):
    """Editing a stored count by one makes validation fail, naming the real number."""
    lesson = ROOT / "notebooks" / "04_the_full_nin.ipynb"
    stored = "1,992,166" if "1,992,166" in lesson.read_text() else "1992166"
    altered = stored.replace("166", "167")
    result = run_nbval(altered_copy(lesson, tmp_path, stored, altered))
    report = result.stdout + result.stderr
    assert result.returncode != 0, report[-3000:]
    assert "failed" in report and altered in report and stored in report, report[-3000:]
