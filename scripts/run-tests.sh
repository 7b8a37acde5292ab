#!/usr/bin/env bash
# Runs every test against real services: starts a local OpenSearch node (stopped afterwards if this script
# started it), then pytest. Extra arguments go to pytest. Under CI=true a service that cannot start fails the run.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin

started_opensearch=0
if ! scripts/opensearch.sh status >/dev/null 2>&1; then
  if scripts/opensearch.sh start; then
    started_opensearch=1
  elif [ "${CI:-}" = "true" ]; then
    echo "run-tests: OpenSearch could not start; under CI=true that fails the run" >&2
    exit 1
  else
    echo "run-tests: OpenSearch could not start; its tests will skip (see scripts/opensearch.sh)" >&2
  fi
fi
stop_opensearch() { [ "$started_opensearch" = 1 ] && scripts/opensearch.sh stop >/dev/null 2>&1; }
trap stop_opensearch EXIT

# The Lambda runtime for tests/sam_local: Docker (installed and started when missing) and the base image
# (built locally when absent); dockerd is stopped afterwards if this run started it.
started_engine=0
docker info >/dev/null 2>&1 && engine_was_up=1 || engine_was_up=0
if scripts/sam-local.sh engine; then
  [ "$engine_was_up" = 0 ] && started_engine=1
elif [ "${CI:-}" = "true" ]; then
  echo "run-tests: the Docker engine for sam local could not start; under CI=true that fails the run" >&2
  exit 1
else
  echo "run-tests: the Docker engine for sam local could not start; tests/sam_local will skip" >&2
fi
stop_services() {
  [ "$started_engine" = 1 ] && scripts/sam-local.sh engine-stop
  stop_opensearch
}
trap stop_services EXIT

mkdir -p artifacts
# The venv first on PATH, so tests find its tools (sam) the way a user who activated it would.
export PATH="$PWD/$BIN:$PATH"
# The layer rules, lint and types ran before this script, in `make check` (which `make test` runs first).
"$BIN/python" -m pytest -q -p no:cacheprovider --timeout=900 "$@"
status=$?
[ "$status" = 5 ] && { echo "run-tests: pytest collected no tests" >&2; status=1; }
exit "$status"
