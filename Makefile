# The README's commands. Everything is installed into .venv from the package index; nothing else is needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
OUT    ?= demo-output

.PHONY: demo test test-slow lint bench bench-quick run clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstalled when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

demo: $(VENV)/.installed
	$(BIN)/crawler demo --out $(OUT)

test: $(VENV)/.installed-test
	sh tests/install_chromium.sh
	sh tests/install_postgres.sh
	sh tests/install_redis.sh
	# Two workers, one test file each at a time (module-scoped scenarios run once): most tests wait on
	# subprocesses and servers, so two run side by side even on two cores.
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-slow: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -m slow

lint: $(VENV)/.installed-test
	$(BIN)/ruff check crawler tests bench
	$(BIN)/ruff format --check crawler tests bench
	$(BIN)/mypy

bench: $(VENV)/.installed-test
	$(BIN)/python bench/extract_quality.py
	$(BIN)/python bench/topic_quality.py
	$(BIN)/python bench/neardup_scale.py 10000 100000
	$(BIN)/python bench/pipeline_bench.py
	# The scale-out bench runs a throwaway PostgreSQL and Redis (it says so and skips where they cannot run).
	sh tests/install_postgres.sh
	sh tests/install_redis.sh
	$(BIN)/python bench/scale_bench.py

bench-quick: $(VENV)/.installed-test
	$(BIN)/python bench/pipeline_bench.py --quick
	sh tests/install_postgres.sh
	sh tests/install_redis.sh
	$(BIN)/python bench/scale_bench.py --quick

run: $(VENV)/.installed
	$(BIN)/crawler run --config config

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache
