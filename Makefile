# Siaga 112 backend. `make run` and `make test` are all a newcomer needs.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run demo test lint fmt migrate bench clean prompts fuzz soak

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/callcenter migrate

run: install
	@echo "Create the first admin (in another terminal): $(BIN)/callcenter user add admin --role admin"
	$(BIN)/callcenter serve

# The backend with demo accounts and a simulated PBX (recorded calls in a loop), on data/demo.
demo: install
	$(BIN)/callcenter demo

# One worker per core (pytest-xdist); each worker has its own SQLite files and PostgreSQL database.
# worksteal: a worker that runs out takes tests queued on the other, so no long tail on one.
# compileall first: the hundreds of processes the tests start then read bytecode instead of each
# compiling the package again (where PYTHONDONTWRITEBYTECODE is set, nothing else writes it).
test: install
	$(BIN)/python -m compileall -q callcenter migrations
	$(BIN)/pytest -n auto --dist worksteal

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Before a release: the property/fuzz tests and schemathesis at scale (about an hour).
fuzz: install
	HYPOTHESIS_PROFILE=fuzz CALLCENTER_FUZZ_SCALE=$${FUZZ_SCALE:-100} \
		CALLCENTER_API_CASES=$${API_CASES:-1000} \
		$(BIN)/pytest -o timeout=0 -p no:cacheprovider tests/ami/test_properties.py \
		tests/test_api_schemathesis.py

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m benchmarks $(PARTS)

# Before a release (not in CI): a simulated PBX at 50 calls/s with a fault every minute, then
# every call accounted for (SOAK_SECONDS=3600 for the release check; benchmarks/soak/).
soak: install
	$(BIN)/python -m benchmarks.soak

# IVR prompts as 8 kHz mono WAV from the texts in config/ (asterisk/README.md says where they go).
prompts: install
	command -v espeak-ng >/dev/null && command -v sox >/dev/null || \
		(apt-get update && apt-get install -y --no-install-recommends espeak-ng sox)
	$(BIN)/python -m callcenter.ivr.prompts --out prompts-out

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
