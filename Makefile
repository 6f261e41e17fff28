# Every target works on a fresh clone: `setup` builds .venv from requirements.lock and
# generates the gRPC code; the other targets depend on it.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
MODELS_DIR ?= models
DATA ?= data/purchases.csv
INFERENCE_PORT ?= 8500
GATEWAY_PORT ?= 50051
METRICS_PORT ?= 9100
GATEWAY_METRICS_PORT ?= 9101
EDGE_PORT ?= 8080
CLUSTER_PORT ?= 8443
EDGE_ADMIN_PORT ?= 9901
WORKERS ?=
VECTORIZER ?= local
PYTEST_ARGS ?=
CHROMIUM ?= /usr/bin/chromium

PROTOS := $(wildcard protos/recommender/v1/*.proto)
# recommender-client (clients/python): the generated recommender.v1 code and the client wrapper.
CLIENT_DIR := clients/python
CLIENT_SOURCES := $(wildcard $(CLIENT_DIR)/src/recommender_client/*.py) $(CLIENT_DIR)/pyproject.toml \
	$(CLIENT_DIR)/build_backend/recommender_build.py
CLIENT_INSTALLED := $(VENV)/.client-installed
BUF := tools/buf/node_modules/.bin/buf

.PHONY: setup proto client-wheel train serve run cluster chat test bench lint clean help

help:
	@echo "make run    - set up, train if needed, start inference + gateway, open the chat"
	@echo "make test   - set up and run the whole test suite"
	@echo "make cluster - Envoy (TLS, CLUSTER_PORT 8443) + 2 gateway replicas + inference, tokens on"
	@echo "make client-wheel - dist/recommender_client-<version>-py3-none-any.whl (clients/python)"
	@echo "make certs  - dev CA, TLS certificates and caller tokens in .secrets/ (never committed)"
	@echo "make setup | proto | train | serve | chat | bench | lint | clean"

$(VENV)/.installed: requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

setup: $(VENV)/.installed $(CLIENT_INSTALLED)

# The project imports recommender.v1 from the installed recommender-client, built from protos/
# by its PEP 517 backend (grpcio-tools as a build requirement): one generated copy, the one in
# the wheel. Re-installed whenever a .proto file or the client changes.
$(CLIENT_INSTALLED): $(PROTOS) $(CLIENT_SOURCES) $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall ./$(CLIENT_DIR)
	touch $@

proto: $(VENV)/.installed
	rm -f $(CLIENT_INSTALLED)
	$(MAKE) --no-print-directory $(CLIENT_INSTALLED)

# dist/recommender_client-<version>-py3-none-any.whl, built from its sdist (which proves the
# sdist complete). CLIENT_DIST=<dir> writes elsewhere; CLIENT_BUILD_ARGS=--wheel skips the sdist
# (half the time: tests/clients/test_client_wheel.py).
CLIENT_DIST ?= dist
CLIENT_BUILD_ARGS ?=
client-wheel: $(VENV)/.installed
	rm -f $(CLIENT_DIST)/recommender_client-*
	$(PY) -m build $(CLIENT_BUILD_ARGS) --outdir $(CLIENT_DIST) $(CLIENT_DIR)

train: setup
	$(PY) -m trainer train --data $(DATA) --models-dir $(MODELS_DIR) --generate-if-missing

# The environment of clients/stack.py (its docstring lists every variable).
STACK_ENV = INFERENCE_PORT=$(INFERENCE_PORT) GATEWAY_PORT=$(GATEWAY_PORT) METRICS_PORT=$(METRICS_PORT) \
	GATEWAY_METRICS_PORT=$(GATEWAY_METRICS_PORT) EDGE_PORT=$(EDGE_PORT) CLUSTER_PORT=$(CLUSTER_PORT) \
	EDGE_ADMIN_PORT=$(EDGE_ADMIN_PORT) MODELS_DIR=$(MODELS_DIR) DATA=$(DATA) WORKERS=$(WORKERS) \
	VECTORIZER=$(VECTORIZER)

serve: setup
	$(STACK_ENV) $(PY) -m clients.stack serve

run: setup
	$(STACK_ENV) $(PY) -m clients.stack run

# Envoy with TLS on CLUSTER_PORT, 2 gateway replicas, inference with 2 workers, TLS and tokens on.
cluster: setup
	$(STACK_ENV) $(PY) -m clients.stack cluster

# Dev CA, server/client certificates and caller tokens in .secrets/ (gitignored); keeps what exists.
.PHONY: certs
certs: setup
	$(PY) -m edge.certs --dir .secrets

chat: setup
	$(PY) -m clients.chat --target 127.0.0.1:$(GATEWAY_PORT)

test: setup chromium
	$(PY) -m pytest $(PYTEST_ARGS)

# The web page's browser tests (tests/web) drive Debian's Chromium: Playwright's own browser
# download is unreachable here. Installed once when missing (needs root); quiet otherwise.
APT_GET = DEBIAN_FRONTEND=noninteractive apt-get -y -qq -o=Dpkg::Use-Pty=0
.PHONY: chromium web-contract web-screenshots
chromium:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser tests (tests/web)"; \
	    $(APT_GET) install chromium >/dev/null 2>&1 || \
	      { apt-get -qq update >/dev/null && $(APT_GET) install chromium >/dev/null; }; \
	  else echo "tests/web need Chromium at $(CHROMIUM): run 'sudo apt-get install -y chromium'" >&2; fi; }

# web/contract.js (the page's copy of recommender/schema.py) after a contract change.
web-contract: setup
	$(PY) web/build_contract.py

# docs/screenshots/chat-{desktop,phone}.png (a Hangul font for the Korean conversation).
web-screenshots: setup chromium
	@fc-list :lang=ko | grep -q . || { [ "$$(id -u)" = 0 ] && $(APT_GET) install fonts-nanum >/dev/null; } || true
	$(PY) -m tests.web.screenshots --models-dir $(MODELS_DIR)

bench: setup
	$(PY) -m bench

# Soak and chaos (issue 15; not part of `make test`, ~6 min): a fresh cluster on free 127.0.0.1
# ports, a c64 text load, then kills, a frozen worker, version swaps and floods under c16 load;
# one table (also bench/results/soak-<time>.md/.json), exit 1 when a budget is missed.
.PHONY: soak
soak: setup
	$(PY) -m bench.soak --models-dir $(MODELS_DIR)

# buf (npm @bufbuild/buf, exact version in tools/buf/package-lock.json) for the .proto files.
$(BUF): tools/buf/package.json tools/buf/package-lock.json
	cd tools/buf && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# ruff over the tree; buf lint (STANDARD rules) and buf breaking (FILE rules) of protos/ against
# the released contract image protos/contract/v1.binpb (docs/contract.md, "Contract versions").
lint: setup $(BUF)
	$(PY) -m ruff check .
	cd protos && ../$(BUF) lint && ../$(BUF) breaking --against contract/v1.binpb

clean:
	rm -rf $(VENV) $(CLIENT_DIR)/src/recommender/v1/*_pb2*.py* $(CLIENT_DIR)/build $(CLIENT_DIR)/protos \
		$(CLIENT_DIR)/src/*.egg-info tools/buf/node_modules .pytest_cache .ruff_cache
