"""The course's maintenance tools, each run from the repository root as `python -m tools.NAME`
(the Makefile's targets do):

- assign: generate the graded exercises from their one source, exercises/source/*.ipynb (otter).
- check_python: check the Python that `make setup` builds the virtual environment with.
- execute_notebooks: re-execute notebooks in place, so that their stored outputs match the code.
- grade: grade exercise notebooks with otter's tests, each submission in a sandbox of its own.
- grade_sandbox: run one untrusted command in a bubblewrap sandbox, with time and memory limits.
- grade_submission: read a submitted notebook defensively; the copy of it that is graded.
- grade_worker: inside the sandbox, run one submission in a kernel, then its autograder's tests
  (grade starts it by its file path, not with -m: see WORKER in tools/grade.py).
- lab_check: run lesson 01 in JupyterLab in a browser and move its cost explorer's slider.
- site_build: build the course website from the committed notebooks (make site).
- site_check: check the website in a real browser, and lesson 01 in JupyterLab (make site-check).
- site_report: write site/check/report.md, what site_check found.

Nothing here is installed with nin_course; this file only makes tools/ a package. It stays
importable by Python 3.7 (check_python runs on whatever Python `make setup` is given).
"""
