# CAM Lights: the two commands a new user runs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test check install bench clean-data browser mutate mutate-changed unit-coverage

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
test: $(STAMP) check unit-coverage browser
	$(PY) -m pytest -n auto --dist worksteal

## Mutation testing of the pure rules (not part of `make test`: ~30 min on 2 cores): every function of
## domain/ mutated by mutmut, each mutant run against the unit tier (`pytest -m unit`); prints the
## surviving mutants and the score, and fails below MUTATE_MIN percent. Results are kept in mutants/.
MUTATE_MIN ?= 90
JOBS ?= 2
mutate: $(STAMP)
	@mkdir -p mutants
	$(VENV)/bin/mutmut run --max-children $(JOBS) >mutants/run.log 2>&1 || (tail -40 mutants/run.log; exit 1)
	@# mutmut keeps earlier results: the survivors are run again against the tests as they are now
	@names="$$($(PY) -m tests.mutation_report --names)"; [ -z "$$names" ] || $(VENV)/bin/mutmut run \
		--max-children $(JOBS) $$names >>mutants/run.log 2>&1 || (tail -40 mutants/run.log; exit 1)
	$(PY) -m tests.mutation_report --min $(MUTATE_MIN)

## The same over the domain/ modules this branch changed since it left BASE (a new rule cannot land untested).
BASE ?= main
CHANGED = $(shell git diff --name-only $$(git merge-base $(BASE) HEAD) -- 'domain/*.py')
mutate-changed: $(STAMP)
	@if [ -z "$(CHANGED)" ]; then echo "no domain/ module changed since $(BASE)"; else \
		mkdir -p mutants; $(VENV)/bin/mutmut run --max-children $(JOBS) $(foreach f,$(CHANGED),'$(subst /,.,$(f:.py=)).*') \
			>mutants/run.log 2>&1 || { tail -40 mutants/run.log; exit 1; }; \
		$(PY) -m tests.mutation_report --min $(MUTATE_MIN) $(CHANGED); fi

## Part of `make test` (about a minute): every line of domain/ is run by the unit tier, so a
## new rule cannot land without a unit test (mutation testing itself is too slow for CI).
unit-coverage: $(STAMP)
	$(VENV)/bin/coverage run -m pytest -m unit -q -p no:cacheprovider --ignore=tests/deploy tests
	$(VENV)/bin/coverage report

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
