# The two commands of the README:
#   make report   simulate the default cohort, write the report, check the targets
#   make test     run the test suite
# Each creates .venv with the pinned dependencies on first use (only python3 is needed).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: report test validate benchmark install lock clean synthetic-data

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[test]'
	touch $@

install: $(STAMP)

report: $(STAMP)
	$(BIN)/rlsepi report --check --force

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The slower statistical validation (coverage of the CIs over repeated seeds).
validate: $(STAMP)
	RLSEPI_SLOW=1 $(BIN)/python -m pytest -q -m slow

benchmark: $(STAMP)
	$(BIN)/python benchmarks/bench_simulate.py

# Re-pin the dependencies from a fresh resolution (run by hand, commit the result).
lock:
	rm -rf /tmp/rlsepi-lock && $(PYTHON) -m venv /tmp/rlsepi-lock
	/tmp/rlsepi-lock/bin/python -m pip install --quiet '.[test]'
	/tmp/rlsepi-lock/bin/python -m pip freeze --exclude rlsepi | sort > requirements/constraints.txt

# The committed example cohort (see data/synthetic/README.md).
synthetic-data: $(STAMP)
	$(BIN)/rlsepi simulate --n 20000 --seed 20240601 --out data/synthetic/cohort_20k.parquet --force

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
