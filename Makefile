# quoteflow — the two commands a newcomer needs: `make demo` and `make test`.
# Both install what they need (a virtualenv with the Python deps here; PostgreSQL, Kafka's
# jars and the Schema Registry are installed by `quoteflow stack up`, which the tests call too).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Reinstalled when the package's build inputs change (setup.py builds the C helpers).
BUILD  := pyproject.toml setup.py schemas/_native.pyx streams/core/_slots.pyx
STAMP  := $(VENV)/.installed-$(shell cat $(BUILD) | cksum | cut -d' ' -f1)

.PHONY: demo test test-slow unit lint install stack-up stack-down clean

install: $(STAMP)

$(STAMP): $(BUILD)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "quoteflow needs Python >= 3.11; set PYTHON=/path/to/python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
		echo "$(PYTHON) cannot create virtualenvs: install python3-venv (apt-get install python3-venv)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@command -v cc >/dev/null || { \
		echo "quoteflow builds two C extensions (Cython): install a C compiler (apt-get install build-essential)"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

## The main job: the whole pipeline, quote to e-mail, live (stack, topics, schemas,
## cdc + process + sink + ESP sandbox, a synthetic workload, a summary).
demo: install
	$(BIN)/quoteflow demo

## Everything CI runs: lint, types, unit and integration tests against the real stack.
test: install lint
	$(BIN)/python -m pytest -m "not slow"

## The real-time scenarios (ten minutes or more each): a restart after a long outage.
test-slow: install
	$(BIN)/python -m pytest -m slow

## Fast loop: pure-logic tests only, no broker or database.
unit: install
	$(BIN)/python -m pytest -m unit

lint: install
	$(BIN)/ruff check quoteflow schemas streams connectors devstack bench tests docs
	$(BIN)/mypy
	$(BIN)/mypy docs/examples
	$(BIN)/lint-imports

stack-up: install
	$(BIN)/quoteflow stack up

stack-down: install
	$(BIN)/quoteflow stack down

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
