# Two commands do all set-up on a fresh machine: `make demo` runs the product, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_INDEX ?= var/demo-index
HOST ?= 127.0.0.1
PORT ?= 8000
AXE := tests/browser/node_modules/axe-core/axe.min.js

.PHONY: install system-deps opensearch-start opensearch-stop demo demo-index check test bench screenshot clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[local,opensearch,aws,test]'
	$(BIN)/python -m pip install --quiet -r requirements-tools.txt
	touch $@

# Debian's chromium for the browser tests, and Java for OpenSearch (apt-get as root, or through sudo).
system-deps:
	scripts/install-system-deps.sh

opensearch-start:
	scripts/opensearch.sh start

opensearch-stop:
	scripts/opensearch.sh stop

demo-index: install
	$(BIN)/visual-search index demo/catalogue/images --labels demo/catalogue/labels.csv --index-dir $(DEMO_INDEX)

demo: demo-index
	@echo "Open http://$(HOST):$(PORT) in a browser (Ctrl+C stops the server)."
	$(BIN)/visual-search serve --index-dir $(DEMO_INDEX) --host $(HOST) --port $(PORT)

# The fast loop, no service needed (about a minute): import layers, lint, format, types, the service-free tests.
check: install
	$(BIN)/lint-imports --config pyproject.toml
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit tests/architecture

# Every test, with the real services: the fast loop first, then installs what is missing, starts OpenSearch,
# stops it afterwards.
test: check system-deps $(AXE)
	scripts/run-tests.sh

# axe-core from npm for the browser tests, pinned by tests/browser/package-lock.json.
$(AXE): tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund

bench: install
	scripts/run-benchmarks.sh

clean:
	rm -rf $(VENV) var artifacts .pytest_cache

# Re-takes the README's screenshot (docs/screenshot.png) with the real model in Debian's chromium.
screenshot: install $(AXE)
	VISUAL_SEARCH_UPDATE_README_SCREENSHOT=1 $(BIN)/python -m pytest -q tests/browser -k layouts

# The AWS functions in the Lambda runtime (`sam local`, Docker) against local stand-ins for S3, SageMaker and
# OpenSearch; see the README's "Run the AWS functions locally". sam-local-stop stops what sam-local started.
FUNCTION ?= SearchFunction
EVENT ?= events/search-upload.json
.PHONY: sam-local sam-local-stop sam-local-invoke

sam-local: install
	scripts/sam-local.sh up

sam-local-stop:
	scripts/sam-local.sh down

sam-local-invoke:
	scripts/sam-local.sh invoke $(FUNCTION) $(EVENT)
