# One-command setup: `make lab` opens the course, `make test` runs every check.
# Both create (or reuse) the virtual environment in $(VENV).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KERNEL := $(VENV)/share/jupyter/kernels/python3/kernel.json
export NIN_COURSE_DATA ?= $(HOME)/.nin_course/data

.PHONY: setup lab test unit notebooks execute clean-venv exercises solutions grade grade-folder \
	runs runs-list gpu-runs python-check

setup: $(STAMP) $(KERNEL)

# Before anything is installed: PYTHON is 3.11-3.13, and when PYTHON is given and $(VENV) exists,
# $(VENV) was built with that Python (else a 3.11 .venv would be reused with "Nothing to be done").
# Order-only below: the check runs every time but never forces a reinstall.
python-check:
	@command -v $(PYTHON) >/dev/null || { echo "make setup: PYTHON=$(PYTHON) is not a command:" \
	  "give the interpreter's name or full path, e.g. make setup PYTHON=python3.12" >&2; exit 1; }
	@$(PYTHON) -m tools.check_python "$(VENV)" \
	  $(if $(filter command line environment,$(origin PYTHON)),--requested)

$(STAMP): requirements.txt pyproject.toml | python-check
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt
	# d2l 1.0.3 pins 2023 versions; its imports are in requirements.txt.
	$(BIN)/python -m pip install --no-deps d2l==1.0.3
	$(BIN)/python -m pip install --no-deps -e .
	@# bubblewrap isolates the submissions that grade-folder grades; without it grading still works.
	@$(MAKE) --no-print-directory sandbox || echo "make setup: going on without bubblewrap:" \
	  "make grade-folder will need NO_SANDBOX=1"
	touch $(STAMP)

# The kernel that JupyterLab starts: its name and display name are the kernelspec that every
# notebook stores, so that opening one does not rewrite its metadata (tests/test_setup.py).
$(KERNEL): $(STAMP) Makefile
	$(BIN)/python -m ipykernel install --prefix $(VENV) --name python3 --display-name "Python 3"

# JupyterLab rooted at the repository, so that notebooks/ and exercises/ are both in its file
# browser, opening on the first lesson. JupyterLab refuses to run as root (a container, a cloud
# machine) unless told --allow-root: added then. LAB_FLAGS passes more (e.g. --no-browser).
FIRST_LESSON := notebooks/01_one_by_one_convolution.ipynb
lab: setup
	@if [ "$$(id -u)" = 0 ]; then echo "make lab: running as root, so JupyterLab gets --allow-root"; fi
	$(BIN)/jupyter lab --ServerApp.root_dir=. $(if $(filter 0,$(shell id -u)),--allow-root) \
	  $(LAB_FLAGS) $(FIRST_LESSON)

# Every test in one pytest run, spread over the cores (pytest-xdist, each worker on one thread):
# the unit tests, every lesson against its stored outputs (nbval strict) and every exercise
# solution against its own (nbval strict; its last cell shows every check passing). A notebook's
# cells stay together, in order, on one worker: each worker takes whole files (--dist loadfile),
# in the order tests/conftest.py gives them (--no-loadscope-reorder): the files with slow tests,
# then the notebooks, then the rest. The untouched student notebooks run in
# tests/test_exercises.py. TEST_JOBS=1: one worker.
# Under the smoke profile (seconds per training cell) unless NIN_COURSE_PROFILE says otherwise:
# without it a GPU machine would run the full recipes.
TEST_JOBS ?= auto
test unit: export NIN_COURSE_PROFILE ?= smoke
test: setup
	$(if $(filter 1,$(TEST_JOBS)),,OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1}) \
	  $(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadfile --no-loadscope-reorder \
	  --durations=10 \
	  --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg \
	  tests notebooks exercises/solutions

unit: setup
	$(BIN)/python -m pytest tests

# Re-execute every lesson in place, top to bottom, so that stored outputs match the code.
execute: setup
	NIN_COURSE_PROFILE=$${NIN_COURSE_PROFILE:-smoke} $(BIN)/python -m tools.execute_notebooks notebooks/*.ipynb

# Exercises: generate the student notebooks, solution notebooks and autograders from their one
# source, exercises/source/*.ipynb (otter assign); run the solutions in place (cpu profile).
exercises: setup
	$(BIN)/python -m tools.assign

solutions: setup
	NIN_COURSE_PROFILE=$${NIN_COURSE_PROFILE:-cpu} $(BIN)/python -m tools.execute_notebooks exercises/solutions/*.ipynb

# Grade the notebooks in exercises/ locally (otter, no Docker) and print a score table.
grade: setup
	$(BIN)/python -m tools.grade

# Grade a folder of submissions into a CSV (one row per submission), each in a bubblewrap
# sandbox (README, "Grading a class"):
#   make grade-folder SUBMISSIONS=dir OUT=scores.csv [FORCE=1] [AUTOGRADERS=dir-of-private-zips]
#   [NO_SANDBOX=1: without bubblewrap, no isolation between submissions]
grade-folder: setup
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade-folder SUBMISSIONS=folder OUT=scores.csv [FORCE=1]"; exit 2; }
	@test -n "$(NO_SANDBOX)" || command -v bwrap >/dev/null || { echo "make grade-folder:" \
	  "bubblewrap is missing: make sandbox installs it (as root, with apt-get), or NO_SANDBOX=1" >&2; exit 2; }
	$(BIN)/python -m tools.grade --folder "$(SUBMISSIONS)" --csv "$(or $(OUT),scores.csv)" \
	  $(if $(FORCE),--force) $(if $(AUTOGRADERS),--autograders "$(AUTOGRADERS)") \
	  $(if $(NO_SANDBOX),--no-sandbox)

# bubblewrap, the sandbox of grade-folder: a system package, installed with apt-get as root.
.PHONY: sandbox
sandbox:
	@if command -v bwrap >/dev/null; then echo "bubblewrap is installed: $$(bwrap --version)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  timeout 300 apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq bubblewrap >/dev/null && \
	  echo "bubblewrap installed: $$(bwrap --version)"; \
	else echo "make sandbox: install bubblewrap (Debian, Ubuntu: sudo apt-get install bubblewrap;" \
	  "Fedora: sudo dnf install bubblewrap)" >&2; exit 1; fi

# Reference runs (runs/<name>/): train the named ones, continuing from their checkpoints, and
# store them; `make runs-list` shows every run and its state.
#   make runs RUNS="d2l-nin-fashion cifar10-nin-bn"
runs: setup
	@test -n "$(RUNS)" || { echo "usage: make runs RUNS=\"name ...\" (make runs-list names them)"; exit 2; }
	$(BIN)/python -m nin_course.runs train $(RUNS)

runs-list: setup
	$(BIN)/python -m nin_course.runs list

# On one CUDA GPU: the GPU reference runs and the throughput benchmark, within about 9 minutes.
# GPU_RUNS_FLAGS=--smoke runs the same script on the CPU in seconds (CI does).
gpu-runs: setup
	$(BIN)/python benchmarks/gpu_runs.py $(GPU_RUNS_FLAGS)

# The course as a website (README, "The course as a website"): site/_build/html, built offline
# from the committed lessons and student exercises, running none of them. site-check opens it in
# headless Chromium (Debian's chromium and chromium-driver: installed with apt-get when missing
# and run as root, else skipped with a message), then runs lesson 01 in JupyterLab and moves its
# explorer's slider; it writes site/check/report.md and screenshots, which are committed.
.PHONY: site site-check
CHROMIUM_PACKAGES := chromium chromium-driver
site: setup
	$(BIN)/python -m tools.site_build

HAVE_CHROMIUM = { [ -n "$$CHROMIUM" ] || command -v chromium >/dev/null; } && \
	{ [ -n "$$CHROMEDRIVER" ] || command -v chromedriver >/dev/null; }
site-check: site
	@if ! { $(HAVE_CHROMIUM); } && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "make site-check: installing $(CHROMIUM_PACKAGES) with apt-get"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(CHROMIUM_PACKAGES); \
	fi
	@if $(HAVE_CHROMIUM); then \
	  $(BIN)/python -m tools.site_check; \
	else \
	  echo "make site-check: skipped: Chromium and its driver are missing (Debian:" \
	    "sudo apt-get install $(CHROMIUM_PACKAGES); elsewhere name them with CHROMIUM= and CHROMEDRIVER=)"; \
	fi

clean-venv:
	rm -rf $(VENV)
