# Two commands on a fresh machine (see README.md):
#   make book   # create .venv if missing, build the book (HTML + PDF)
#   make test   # create .venv if missing, run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# numpy and torch share 2 cores; with default thread pools they fight (4-8x slower).
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export PYTHONHASHSEED := 0

.PHONY: book html pdf test test-fast bench release references demo venv clean

venv: $(VENV)/.installed

# torch first: the CPU wheel 2.13.0 is pinned; anything unpinned would pull a CUDA build.
$(VENV)/.installed: requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	# the lock is the complete tested set: install exactly it (no resolver-chosen extras such as
	# rfc3987-syntax, which jsonschema imports for 1.4 s in every process that reads a notebook)
	$(PY) -m pip install --quiet --no-deps -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	# nbgrader's formgrader buttons that would run plain nbgrader run this course's grader instead
	mkdir -p $(VENV)/etc/jupyter/jupyter_server_config.d
	echo '{"ServerApp": {"jpserver_extensions": {"autograder.formgrader": true}}}' \
		> $(VENV)/etc/jupyter/jupyter_server_config.d/autograder.json
	touch $@

book: html pdf

html: venv
	$(PY) -m tools.build_book html

pdf: venv
	$(PY) -m tools.build_book pdf

test: venv
	$(PY) -m pytest -n 2 --dist loadgroup tests

test-fast: venv
	$(PY) -m pytest -n 2 --dist loadgroup -m "not slow" tests

bench: venv
	$(PY) -m bench

release: venv
	$(PY) -m autograder release

references: venv
	$(PY) -m autograder references

# grade a demonstration class (good, partial, blank and hostile students) and check every number
demo: venv
	$(PY) -m tools.demo_class

clean:
	rm -rf _build .pytest_cache
