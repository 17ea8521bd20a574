# One venv for the service, its tests and the local stack. `make run` and `make test` install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= dev

TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed

.PHONY: install tools run test lint bench clean openapi

$(STAMP): pyproject.toml client/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
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
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet aws-sam-cli cfn-lint && touch $(TOOLS_STAMP) \
	  || echo "WARNING: aws-sam-cli/cfn-lint could not be installed; template checks will be skipped"

tools: $(TOOLS_STAMP)

## Start the whole service locally: moto (DynamoDB+S3), in-process pipeline, API on :8000.
run: $(STAMP)
	$(BIN)/python -m infra.local_stack

## Install everything and run the full test suite.
test: $(STAMP) $(TOOLS_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadfile

## Export the API's OpenAPI document (a test fails when docs/openapi.json drifts from the app).
openapi: $(STAMP)
	$(BIN)/python -m infra.openapi_export docs/openapi.json

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(TOOLS) .local-data .pytest_cache .ruff_cache .aws-sam
