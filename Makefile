# The two commands a newcomer runs: `make demo` and `make test`. Both create .venv/ if needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format install bench clean browser lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv

# constraints.txt holds the versions CI passed with: a new upstream release cannot change a clean clone's install.
$(STAMP): pyproject.toml constraints.txt Makefile | $(BIN)/python
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/trp demo

test: lint browser
	$(BIN)/python -m pytest -q

# ruff, configured in pyproject.toml: the lint rules and the format both clean, or the tests do not run.
lint: $(STAMP)
	$(BIN)/ruff check pipeline tests dags benchmarks
	$(BIN)/ruff format --check pipeline tests dags benchmarks

format: $(STAMP)
	$(BIN)/ruff check --fix pipeline tests dags benchmarks
	$(BIN)/ruff format pipeline tests dags benchmarks

# The report and upload-page tests drive Debian's Chromium (Playwright's own browser downloads are not used).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
		echo "chromium is not installed (apt-get install chromium): the browser tests will be skipped"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_decisions.py
	$(BIN)/python benchmarks/bench_alignment.py --scales 1 10
	$(BIN)/python benchmarks/bench_run.py
	$(BIN)/python benchmarks/bench_stages.py
	$(BIN)/python benchmarks/bench_nights.py

lock: | $(BIN)/python
	$(BIN)/uv pip compile pyproject.toml --extra test --python-version 3.11 --quiet --upgrade --custom-compile-command "make lock" -o constraints.txt
	@echo "constraints.txt refreshed: run make test before committing it"

clean:
	rm -rf $(VENV) demo-out
