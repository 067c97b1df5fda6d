PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev

.PHONY: demo test stress bench lint clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[pandas]'
	touch $@

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	rm -rf examples/.lineage examples/out
	cd examples && LINEAGE_HOME=.lineage ../$(PY) healthcare_workflow.py

test: $(STAMP)
	$(PY) -m pytest
	$(VENV)/bin/ruff check lineage tests benchmarks examples
	$(VENV)/bin/mypy

stress: $(STAMP)
	$(PY) tests/reliability/campaign.py

lint: $(STAMP)
	$(VENV)/bin/ruff check lineage tests benchmarks examples
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) benchmarks/run.py  # one table; also benchmarks/results/{results.md,results.json,ratios.png}

clean:
	rm -rf $(VENV) examples/.lineage .pytest_cache .hypothesis
