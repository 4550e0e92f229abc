# make demo: the main job on embedded defaults.  make test: the test suite.
# Both create .venv when it is missing and install everything into it: torch's CPU build
# first (so nothing pulls a CUDA build), then labelwise with its test extras.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.labelwise-installed

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh

# Where PostgreSQL is installed, a throwaway server on loopback runs the multi-machine
# tuning tests (scripts/postgres.sh); without it they are skipped.
test: $(STAMP)
	if [ -z "$${LABELWISE_TEST_POSTGRES:-}" ] && out=$$(bash scripts/postgres.sh start 2>/dev/null); \
	then eval "$$out"; fi; HF_HUB_OFFLINE=1 $(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache
