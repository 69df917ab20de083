"""Lesson 01 in JupyterLab, in a real browser: run it, move the cost explorer's slider, and see
its table change to the costs of the new shape (part of make site-check, tools/site_check.py).

JupyterLab runs on a free port of 127.0.0.1 with a random token, rooted at a temporary folder
that holds a copy of the lesson, so that its autosave never touches the repository; the kernel
is the course's ("python3" of the virtual environment). The browser clicks Run > Run All Cells,
waits until every code cell has run, and drags the explorer's first slider (in_channels).
"""
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "notebooks" / "01_one_by_one_convolution.ipynb"
RUN_SECONDS = 900  # the whole lesson, on a busy machine
STDERR = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'  # and errors


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, seconds, what, interval=0.5):
    """condition()'s first true value within `seconds`; raises TimeoutError naming `what`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            value = condition()
            if value:
                return value
        time.sleep(interval)
    raise TimeoutError(f"gave up after {seconds} s waiting for {what}")


def api(url, token, path, method="GET"):
    """JSON answer of Jupyter Server's REST API (None for an empty one)."""
    request = urllib.request.Request(f"{url}/api/{path}", method=method,
                                     headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    return json.loads(body) if body else None


@contextlib.contextmanager
def jupyter_lab(folder):
    """(url, token) of JupyterLab serving `folder`; stops it and its kernels on exit."""
    folder, port, token = Path(folder), free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", "--ServerApp.port_retries=0", f"--ServerApp.root_dir={folder}",
               f"--IdentityProvider.token={token}"]
    if os.getuid() == 0:
        command.append("--allow-root")  # JupyterLab refuses root otherwise (a container, CI)
    state = folder.parent / "jupyter"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
           "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
           "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
           "JUPYTER_DATA_DIR": str(state / "data"), "JUPYTER_CONFIG_DIR": str(state / "config"),
           "JUPYTER_PATH": str(Path(sys.prefix) / "share" / "jupyter")}  # the course's kernel
    with open(folder.parent / "lab.log", "w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                  cwd=folder)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: api(url, token, "status"), 180, "JupyterLab to start")
        yield url, token
    finally:
        with contextlib.suppress(Exception):
            for kernel in api(url, token, "kernels"):
                api(url, token, f"kernels/{kernel['id']}", method="DELETE")
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def menu(driver, title, command):
    """Click `title` in JupyterLab's menu bar, then its item that runs `command`."""
    from selenium.webdriver.common.by import By
    entry = wait_for(lambda: [m for m in driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item")
                              if m.text.strip() == title], 60, f"the {title} menu")
    entry[0].click()
    wait_for(lambda: driver.find_element(
        By.CSS_SELECTOR, f'li.lm-Menu-item[data-command="{command}"]'), 30, command).click()


def run_all(driver, url, token, num_code_cells):
    """Clear every output, click Run > Run All Cells, and wait until every code cell has run.

    Clearing first makes the prompts "[ ]:", so that "[n]:" on every cell means that it ran
    now, not that the notebook stored it.
    """
    from selenium.webdriver.common.by import By

    def prompts():
        return [p.text.strip() for p in driver.find_elements(
            By.CSS_SELECTOR, ".jp-Notebook .jp-CodeCell .jp-InputPrompt")]
    menu(driver, "Edit", "editmenu:clear-all")
    wait_for(lambda: all(p in ("[ ]:", "") for p in prompts()), 30, "the outputs to clear")
    menu(driver, "Run", "runmenu:run-all")

    def finished():
        done = [re.fullmatch(r"\[\d+\]:", p) for p in prompts()]
        return (len(done) == num_code_cells and all(done)
                and all(k["execution_state"] == "idle" for k in api(url, token, "kernels")))
    wait_for(finished, RUN_SECONDS, "every cell of lesson 01 to run", interval=2)


def explorer_state(box):
    """(the explorer's in_channels readout, its table's text)."""
    from selenium.webdriver.common.by import By
    readout = box.find_elements(By.CSS_SELECTOR, ".widget-readout")[0]
    table = box.find_element(By.CSS_SELECTOR, ".widget-html-content")
    return readout.text.strip(), table.text.strip()


def expected_table_row(in_channels):
    """The explorer's first row for in_channels (the lesson's other sliders: 128, 3, 28)."""
    from nin_course.costs.resources import conv_cost
    params, flops = conv_cost(in_channels, 128, 3, 28, 28)
    return f"3x3 conv {params:,} {flops:,}"


def check_explorer(driver, out, lesson=LESSON):
    """Run `lesson` in JupyterLab and move its explorer's slider: a dict for the report."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    start, result = time.perf_counter(), {"passed": False, "steps": []}
    nb = json.loads(lesson.read_text())
    num_code = sum(cell["cell_type"] == "code" for cell in nb["cells"])
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="nin-lab-check-"))
    (workdir / "lab").mkdir()
    shutil.copy(lesson, workdir / "lab" / lesson.name)
    try:
        with jupyter_lab(workdir / "lab") as (url, token):
            driver.get(f"{url}/lab/tree/{lesson.name}?token={token}")
            wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"))
                     == len(nb["cells"]), 300, "the notebook to open")
            wait_for(lambda: [k for k in api(url, token, "kernels")
                              if k["execution_state"] == "idle"], 300, "the kernel to start")
            result["steps"].append(f"opened {lesson.name} ({len(nb['cells'])} cells), kernel idle")
            for button in driver.find_elements(By.CSS_SELECTOR, ".Toastify button"):
                if button.text.strip() == "No":  # "get notified about official Jupyter news?"
                    button.click()
            run_all(driver, url, token, num_code)
            errors = [e.text for e in driver.find_elements(By.CSS_SELECTOR, STDERR)
                      if "Error" in e.text or "Traceback" in e.text]
            result["steps"].append(f"Run All Cells: all {num_code} code cells ran, "
                                   f"{len(errors)} errors, in {time.perf_counter() - start:.0f} s")
            box = wait_for(lambda: next(b for b in driver.find_elements(
                By.CSS_SELECTOR, ".jp-OutputArea-output .widget-vbox")
                if b.find_elements(By.CSS_SELECTOR, ".widget-html-content table")),
                120, "the cost explorer to appear")
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", box)
            before = explorer_state(box)
            box.screenshot(str(out / "lab_explorer_before.png"))
            handle = box.find_elements(By.CSS_SELECTOR, ".noUi-handle")[0]
            ActionChains(driver).click_and_hold(handle).move_by_offset(60, 0).release().perform()
            after = wait_for(lambda: (state := explorer_state(box))[1] != before[1] and state,
                             120, "the explorer's table to change")
            box.screenshot(str(out / "lab_explorer_after.png"))
            expected = expected_table_row(int(after[0]))
            result.update(before=before, after=after, expected_row=expected, errors=errors)
            result["steps"].append(f"dragged in_channels from {before[0]} to {after[0]}: "
                                   "the table changed")
            matches = expected in " ".join(after[1].split())
            result["steps"].append(f"the new table's first row {'is' if matches else 'is NOT'} "
                                   f"conv_cost's for in_channels={after[0]}: {expected}")
            result["passed"] = matches and not errors and after[0] != before[0]
    except Exception as error:  # reported, with the steps that passed before it
        result["steps"].append(f"failed: {type(error).__name__}: {error}")
        log = workdir / "lab.log"
        result["log"] = log.read_text()[-3000:] if log.exists() else ""
    finally:
        result["seconds"] = time.perf_counter() - start
        shutil.rmtree(workdir, ignore_errors=True)
    return result
