# The two commands the README opens with: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

test: $(STAMP)
	bash scripts/test-setup.sh
	$(PY) -m ruff check src tests bench scripts
	$(PY) -m ruff format --check src tests bench scripts
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

# Coverage-guided fuzzing (atheris) of every decoder, FUZZ_SECONDS per target; crashers are
# saved under tests/fixtures/corrupt/<target>/ (tests/fuzz/engine.py). `make test` runs a
# 2-second pass of the same targets (tests/fuzz/test_corpus.py).
.PHONY: fuzz
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 2
fuzz: $(STAMP)
	$(PY) -m tests.fuzz.engine --seconds $(FUZZ_SECONDS) --jobs $(FUZZ_JOBS) --save

bench: $(STAMP)
	bash scripts/test-setup.sh
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .hypothesis
