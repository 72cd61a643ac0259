# The commands the README names. `make demo` and `make test` install what is missing first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TF := $(BIN)/tickfeatures
STAMP := $(VENV)/.installed

.PHONY: install system venv server-python demo test lint pytest db-start db-stop bench soak clean

install: system venv server-python

system:
	@bash scripts/install-system.sh

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "venv: installing tickfeatures and its pinned dependencies into $(VENV)"
	@$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

# numpy and scipy for the database server's Python, the venv's versions (see the script)
server-python: venv
	@bash scripts/install-server-python.sh $(BIN)

demo: install
	@$(TF) demo

db-start: install
	@$(TF) db start

db-stop:
	@$(TF) db stop

# sqlfluff's dbt templater reads profiles.yml, whose password comes from PGPASSWORD: run it
# under the PG* variables of the active database (the recipe is not echoed: they hold it).
lint: venv
	$(BIN)/ruff check src tests python_udfs bench
	@echo "$(BIN)/sqlfluff lint models --disable-progress-bar --processes 2"
	@pg_env="$$($(TF) db env)" && eval "$$pg_env" && \
		$(BIN)/sqlfluff lint models --disable-progress-bar --processes 2

# pytest exits 5 when it collects no test: that is a failure here, not a pass.
# Workers: one more than the cores of the CI machine (2): a test waiting on a server restart,
# a kill or a schedule lends its core to another.
TEST_WORKERS ?= 3
pytest: venv
	@set +e; $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; \
	exit $$rc

test: install db-start lint pytest

clean:
	rm -rf target logs

# Benchmarks: figures printed and written to .tickfeatures/bench/*.json.
bench: install db-start
	@$(BIN)/python bench/bench_load.py
	@$(BIN)/python bench/bench_l2.py
	@$(BIN)/python bench/bench_heavy.py
	@$(BIN)/python bench/bench_schedule.py
	@$(BIN)/python bench/bench_bars.py
	@$(BIN)/python bench/bench_k14.py --reuse
	@$(BIN)/python bench/bench_serving.py

# Load test, minutes, not in `make test`: 2 loaders, the schedule every second and 20 readers for
# SOAK_SECONDS (180); figures printed and written to .tickfeatures/bench/soak.json.
soak: install db-start
	@$(BIN)/python bench/soak.py
