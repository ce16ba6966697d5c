# The two commands of the README:
#   make report   simulate the default cohort, write the report, check the targets
#   make test     run the test suite
# Each creates .venv with the pinned dependencies on first use (only python3 is needed).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: report test validate mutate benchmark install lock clean synthetic-data

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[test]'
	touch $@

install: $(STAMP)

report: $(STAMP)
	$(BIN)/rlsepi report --check --force

# Tests write only to temporary folders; the browser's screenshots are kept as artefacts in
# test-artifacts/ (git-ignored). Line coverage of rlsepi (CLI subprocesses included) is
# printed per module and must reach 95%.
test: $(STAMP)
	rm -rf .coverage-data && mkdir -p test-artifacts
	RLSEPI_SCREENSHOTS=$(CURDIR)/test-artifacts $(BIN)/python -m pytest -q \
	  --cov --cov-report=term --cov-fail-under=95

# The slower statistical validation (coverage of the CIs over 200 seeds, of the peak age's
# interval over 2,000 seeds of 1M people; `make test` runs reduced versions).
validate: $(STAMP)
	RLSEPI_SLOW=1 $(BIN)/python -m pytest -q -m slow

# Mutation testing of the statistical core with mutmut (slow: run by hand, not in CI).
# `make mutate` runs every module in [tool.mutmut] only_mutate; narrow it with e.g.
# `make mutate MUTANTS='rlsepi.descriptive*'`. The score per module is printed at the end.
# The tests that run rlsepi in a subprocess, a browser, a web server or a Dask cluster are
# deselected (pytest_add_cli_args in [tool.mutmut]): mutmut maps tests to mutated functions
# in its own process, so those tests are never chosen for a mutant and only slow each run.
# `make mutate SAMPLE=150` runs a seeded simple random sample of 150 mutants from each module
# instead (tools/mutation_sample.py) and prints each score with its 95% interval: an estimate
# for the whole module in a fraction of the time (the whole core is a day of 2-core time).
# Mutants mutmut's fork server ends by a signal ("suspicious") are re-run outside it
# (tools/mutation_rerun.py, forked from a process that has imported the tests) before the score.
MUTATE_JOBS ?= 2
MUTANTS ?=
SAMPLE ?=
SAMPLE_SEED ?= 20261124
mutate: $(STAMP)
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[test,mutate]'
ifeq ($(SAMPLE),)
	-$(BIN)/mutmut run --max-children $(MUTATE_JOBS) $(MUTANTS)
	$(BIN)/python tools/mutation_rerun.py --jobs $(MUTATE_JOBS)
	$(BIN)/python tools/mutation_score.py
else
	mkdir -p mutants && $(BIN)/python tools/mutation_sample.py $(SAMPLE) --seed $(SAMPLE_SEED) --jobs $(MUTATE_JOBS) > mutants/sample-names.txt
	-$(BIN)/mutmut run --max-children $(MUTATE_JOBS) $$(cat mutants/sample-names.txt)
	$(BIN)/python tools/mutation_rerun.py --jobs $(MUTATE_JOBS)
	$(BIN)/python tools/mutation_score.py --sample
endif

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
	rm -rf $(VENV) .pytest_cache .hypothesis .coverage-data test-artifacts mutants
