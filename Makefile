# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv if needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench chaos train-defect clean debian

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[edge,cloud,sim,train,dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/factory-sim demo $(ARGS)

# --durations: the slowest tests in every CI log, since the suite must stay well under 30 minutes.
# -n 2: one xdist worker per core; tests group by module (tests/conftest.py) so module fixtures build once.
test: $(STAMP) debian lint typecheck
	$(BIN)/pytest -q -n 2 --dist loadgroup --durations=30 $(PYTEST_ARGS)

# Debian packages the tests need: Chromium for the console's browser tests (no browser download
# at test time) and qemu-user, whose emulated Haswell runs the INT8 checks on the AVX2 kernel path.
debian:
	@{ command -v chromium && command -v qemu-x86_64; } >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium qemu-user >/dev/null; }

# lint-imports checks the import table of docs/ARCHITECTURE.md (contracts in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

# Faults injected for real into real processes, the table of what was sent, stored, lost and
# doubled (docs/faults.md); `make test` runs a short form (tests/e2e/test_chaos.py).
chaos: $(STAMP)
	$(BIN)/python -m bench.chaos $(ARGS)

# Retrains the bundled first defect model from simulator images (CPU, a few minutes).
train-defect: $(STAMP)
	$(BIN)/python -m domain_models.defect.train --out domain_models/defect/artifacts

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
