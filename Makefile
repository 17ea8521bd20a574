# One venv for the service, its tests and the local stack. `make run` and `make test` install first.
# A fresh Debian/Ubuntu machine needs only Python 3.11+ and make: missing system packages (python3-venv,
# espeak-ng for the tests) are installed with apt-get, through sudo when not root; where that is not
# possible the build stops with one line saying what to install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= dev

TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed

# Embedded storage for `sam local` (moto): on every interface, so a SAM container reaches it.
STORAGE_HOST ?= 0.0.0.0
STORAGE_PORT ?= 5055

SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
PY_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)

.PHONY: install venv-deps test-deps tools run storage test lint bench clean openapi

# $(call require,CHECK,PACKAGES,WHAT TO INSTALL): when the shell command CHECK fails, apt-get install
# PACKAGES (with sudo when not root); if CHECK still fails, stop with one line saying what to install.
define require
	@$(1) >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && { [ -z "$(SUDO)" ] || command -v sudo >/dev/null 2>&1; }; then \
	    echo "Installing $(2) with apt-get"; \
	    $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
	  fi; \
	  $(1) >/dev/null 2>&1 || { echo "ERROR: $(3)"; exit 1; }; }
endef

## Python 3.11+ able to create a virtualenv (Debian and Ubuntu ship ensurepip in python3-venv).
venv-deps:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	  || { echo "ERROR: Python 3.11+ is required: install it, or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(call require,$(PYTHON) -c 'import ensurepip' ,python3-venv python$(PY_VERSION)-venv,$(PYTHON) cannot create a virtualenv: install python3-venv (apt-get install python3-venv))

## espeak-ng makes the speech the audio tests split and score.
test-deps:
	$(call require,command -v espeak-ng,espeak-ng,the tests need espeak-ng: install it (apt-get install espeak-ng / brew install espeak-ng))

$(STAMP): pyproject.toml client/pyproject.toml
	@$(MAKE) --no-print-directory venv-deps
	test -x $(BIN)/pip || $(PYTHON) -m venv --clear $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]' -e ./client
	# Kyutai engines without their own pins (moshi's torch<2.10 would pull a CUDA torch); the worker extra
	# pins what they import.
	$(BIN)/pip install --quiet --no-deps moshi==0.2.13 pocket-tts==4.0.1
	touch $(STAMP)

install: $(STAMP)

# aws-sam-cli and cfn-lint live in their own venv: their pins would fight the service's.
# If they cannot be installed, the template checks skip with a message instead of failing.
$(TOOLS_STAMP):
	@$(MAKE) --no-print-directory venv-deps
	test -x $(TOOLS)/bin/pip || $(PYTHON) -m venv --clear $(TOOLS)
	$(TOOLS)/bin/pip install --quiet aws-sam-cli cfn-lint && touch $(TOOLS_STAMP) \
	  || echo "WARNING: aws-sam-cli/cfn-lint could not be installed; template checks will be skipped"

tools: $(TOOLS_STAMP)

## Start the whole service locally: moto (DynamoDB+S3), in-process pipeline, API on :8000.
run: $(STAMP)
	$(BIN)/python -m infra.local_stack

## Only the embedded storage (moto: DynamoDB + S3, provisioned and persisted like `make run`), for
## `sam local invoke/start-api --env-vars events/env.json` (containers reach it at host.docker.internal).
storage: $(STAMP)
	$(BIN)/python -m infra.local_stack --storage-only --host $(STORAGE_HOST) --moto-port $(STORAGE_PORT)

## Install everything and run the full test suite (system packages included).
test: test-deps $(STAMP) $(TOOLS_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadfile

## Export the API's OpenAPI document (a test fails when docs/openapi.json drifts from the app).
openapi: $(STAMP)
	$(BIN)/python -m infra.openapi_export docs/openapi.json

## Deeper fuzzing than CI's bounded run: stateless (every operation) and stateful (linked scenarios).
fuzz: $(STAMP)
	STATEFUL_FUZZ_EXAMPLES=$${STATEFUL_FUZZ_EXAMPLES:-300} STATEFUL_FUZZ_STEPS=$${STATEFUL_FUZZ_STEPS:-20} \
	  $(BIN)/python -m pytest tests/reliability/test_stateful_fuzz.py tests/reliability/test_fuzz.py -n 0 -s -p no:randomly

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(TOOLS) .local-data .pytest_cache .ruff_cache .aws-sam
