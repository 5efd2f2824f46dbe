# CAM Lights: the two commands a new user runs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test check install bench clean-data browser

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	@echo ">> installing CAM Lights and its test dependencies into $(VENV)"
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

## Start the whole embedded stack (PostgreSQL, Temporal dev server + Web UI, SMTP sink, worker, API).
run: $(STAMP)
	$(VENV)/bin/camlights dev

## Lint, formatting, types and import contracts (configured in pyproject.toml).
check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

## The checks, then the whole test suite against real services started by the tests.
test: $(STAMP) check browser
	$(PY) -m pytest -n auto --dist worksteal

## A Chromium for the browser tests (tests/web/): the system's (e.g. Debian `chromium`), else Playwright's.
browser: $(STAMP)
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null \
		|| [ -n "$$CAMLIGHTS_CHROMIUM" ] || $(VENV)/bin/playwright install chromium

## Benchmarks (print figures; not tests): `make bench` small, `make bench N=10000` full (bench/README.md).
N ?= 500
bench: $(STAMP)
	$(PY) -m bench --n $(N)

## Forget all local state of `make run` (.data/).
clean-data:
	rm -rf .data
