# The single list of what can be run; CI and pre-commit call these targets. `make help` prints them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# uv from PATH, else the one `pip install uv` put beside python3.
UV = $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN = $(UV) run --locked --no-sync
export DVC_NO_ANALYTICS := 1
export PORT ?= 3000

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.venv/.synced: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
		python3 -m pip install --quiet --user uv || python3 -m pip install --quiet --user --break-system-packages uv
	$(UV) sync --locked --compile-bytecode
	@touch $@

.PHONY: setup
setup: .venv/.synced ## Install uv if missing and the locked environment (.venv)

.PHONY: data
data: setup ## Get data/raw (dvc pull if a remote is reachable, else the bundled copy), verified against data.dvc
	$(RUN) python -m mltemplate.data

.PHONY: repro
repro: data ## Run the DVC pipeline (prepare -> train -> evaluate); only changed stages run
	$(RUN) dvc repro

.PHONY: metrics
metrics: setup ## Print the metrics of the last run
	$(RUN) dvc metrics show

.PHONY: gate
gate: setup ## Fail if a metric is below its threshold in params.yaml
	$(RUN) python -m mltemplate.gate

ALIAS ?= production

.PHONY: promote
promote: setup ## Point the MLflow registry alias $(ALIAS) (default production) at the current model's version
	$(RUN) python -m mltemplate.tracking promote --alias $(ALIAS)

.PHONY: rollback
rollback: setup ## Point the MLflow registry alias $(ALIAS) back at the version it held before the last promote
	$(RUN) python -m mltemplate.tracking rollback --alias $(ALIAS)

.PHONY: run
run: repro ## Set up, get data, run the pipeline, print the metrics and check the thresholds
	$(RUN) python -m mltemplate.tracking
	@$(MAKE) metrics
	@$(MAKE) gate

.PHONY: test
test: setup ## Run all tests: unit and integration (real dvc repro, MLflow on SQLite and PostgreSQL)
	$(RUN) pytest

.PHONY: lint
lint: setup ## Run the pre-commit hooks (ruff, mypy, YAML/TOML checks, ...) on all files
	$(RUN) pre-commit run --all-files --show-diff-on-failure

.PHONY: format
format: setup ## Format and autofix with ruff
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

.PHONY: bench
bench: setup ## Run the benchmarks and write BENCHMARKS.md
	$(RUN) python -m benchmarks

.PHONY: clean
clean: ## Remove caches and local MLflow store (keeps data, models, metrics)
	rm -rf .pytest_cache .ruff_cache .mypy_cache mlruns mlartifacts mlflow.db
