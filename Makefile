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

PROTOS := $(wildcard protos/recommender/v1/*.proto)
GENERATED := $(patsubst protos/%.proto,%_pb2.py,$(PROTOS))

.PHONY: setup proto train serve run cluster chat test bench lint clean help

help:
	@echo "make run    - set up, train if needed, start inference + gateway, open the chat"
	@echo "make test   - set up and run the whole test suite"
	@echo "make cluster - Envoy (TLS, CLUSTER_PORT 8443) + 2 gateway replicas + inference, tokens on"
	@echo "make setup | proto | train | serve | chat | bench | lint | clean"

$(VENV)/.installed: requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

setup: $(VENV)/.installed $(GENERATED)

proto: $(VENV)/.installed
	rm -f recommender/v1/*_pb2*.py recommender/v1/*_pb2*.pyi
	$(MAKE) --no-print-directory $(GENERATED)

# One protoc run generates messages, stubs and type stubs for all files.
$(GENERATED) &: $(PROTOS) $(VENV)/.installed
	$(PY) -m grpc_tools.protoc -I protos --python_out=. --grpc_python_out=. --pyi_out=. $(PROTOS)

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

chat: setup
	$(PY) -m clients.chat --target 127.0.0.1:$(GATEWAY_PORT)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(PY) -m bench

lint: setup
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) recommender/v1/*_pb2*.py recommender/v1/*_pb2*.pyi .pytest_cache .ruff_cache
