#!/usr/bin/env bash
# Runs the AWS functions locally in the Lambda runtime with `sam local`, against local stand-ins for AWS.
#
#   scripts/sam-local.sh up                       engine, build, standins, loop, in order (`make sam-local`)
#   scripts/sam-local.sh engine                   install Docker if missing, start dockerd, make the base image
#   scripts/sam-local.sh build                    the x86_64 copy of template.yaml, then `sam build` (cached)
#   scripts/sam-local.sh standins                 S3 and SQS (moto: the bucket, its notifications, the queues),
#                                                 SageMaker runtime (visual-search serve), the bridge door;
#                                                 OpenSearch (scripts/opensearch.sh); writes the env file
#   scripts/sam-local.sh loop                     start-lambda, the queue poller, start-api (127.0.0.1:3000);
#                                                 writes var/sam-local/endpoints.json; waits for the queue to empty
#   scripts/sam-local.sh invoke FUNCTION EVENT    sam local invoke with the env file (`make sam-local-invoke`)
#   scripts/sam-local.sh start-api [ARGS]         sam local start-api with the env file, in the foreground
#   scripts/sam-local.sh ui [API_URL]             the web UI on 127.0.0.1:8080, its config.json naming the API
#   scripts/sam-local.sh down                     stop all that `up` started: the loop, the stand-ins, the
#                                                 OpenSearch node if `standins` started it, dockerd if `engine` did
#   scripts/sam-local.sh engine-stop              stop only dockerd, and only if this script started it
#   scripts/sam-local.sh prune                    remove the untagged images SAM leaves on each invoke
#
# The base image public.ecr.aws/lambda/python:3.12-x86_64 is used as found. When missing it is built locally
# (scripts/sam_local/build-base-image.sh), unless SAM_LOCAL_PULL=1 asks Docker to pull the real one (a laptop
# with internet access). Functions and layers are built for x86_64 in a copy of the template under .aws-sam/
# (scripts/sam_local/local_template.py); template.yaml stays arm64 for deploys.
# Environment: see scripts/sam_local/standins.py for ports and the index, loop.py for the loop's ports and
# indexing_path.py for the queues' settings; SAM_LOCAL_STATE_DIR [var/sam-local],
# SAM_LOCAL_BUILD_DIR [.aws-sam/local], SAM_LOCAL_CACHE_DIR [.aws-sam/cache], SAM_LOCAL_UI_ORIGINS (see
# scripts/sam_local/local_template.py).
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_DIR"
HELPERS="$REPO_DIR/scripts/sam_local"
BIN="${VENV:-.venv}/bin"
STATE_DIR="${SAM_LOCAL_STATE_DIR:-$REPO_DIR/var/sam-local}"
ENV_FILE="${SAM_LOCAL_ENV_FILE:-$REPO_DIR/events/env.local.json}"
# Not .aws-sam/build: that is what `sam deploy` ships, and this build is x86_64 with local-only settings.
BUILD_DIR="${SAM_LOCAL_BUILD_DIR:-.aws-sam/local}"
LOCAL_TEMPLATE="$BUILD_DIR.x86_64.yaml"
BASE_IMAGE=public.ecr.aws/lambda/python:3.12-x86_64
export SAM_CLI_TELEMETRY=0 PATH="$REPO_DIR/$BIN:$PATH"
source "$HELPERS/python312.sh"

log() { echo "sam-local: $*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"
    else die "needs root (or password-less sudo) for: $*"; fi
}

apt_install() {
    log "installing $* with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# A working engine (Docker Desktop, a docker group member) is used as is; Debian's docker.io otherwise.
install_engine() {
    docker info >/dev/null 2>&1 && return 0
    command -v dockerd >/dev/null && command -v docker >/dev/null && return 0
    command -v apt-get >/dev/null || die "no Docker engine: install Docker, then run this again"
    apt_install docker.io
}

start_engine() {
    docker info >/dev/null 2>&1 && return 0
    command -v dockerd >/dev/null || die "dockerd is missing and could not be installed"
    mkdir -p "$STATE_DIR"
    log "starting dockerd (log $STATE_DIR/dockerd.log)"
    # setsid: dockerd outlives this script, in a session of its own, and `down` ends exactly that process.
    local sudo=()
    [[ "$(id -u)" -eq 0 ]] || { as_root true; sudo=(sudo -n); }
    "${sudo[@]}" setsid dockerd >"$STATE_DIR/dockerd.log" 2>&1 </dev/null &
    echo $! >"$STATE_DIR/dockerd.pid"
    local waited=0
    until docker info >/dev/null 2>&1; do
        sleep 1; waited=$((waited + 1))
        [[ $waited -lt 60 ]] || die "dockerd did not answer within 60 s; see $STATE_DIR/dockerd.log"
    done
}

ensure_base_image() {
    docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return 0
    if [[ "${SAM_LOCAL_PULL:-}" == 1 ]]; then
        docker pull "$BASE_IMAGE"
    else
        command -v debootstrap >/dev/null || apt_install debootstrap
        as_root "$HELPERS/build-base-image.sh"
    fi
}

cmd_engine() {
    install_engine
    start_engine
    ensure_base_image
}

cmd_build() {
    local python312
    python312="$(find_python312)"
    [[ -n "$python312" ]] || die "sam build needs a Python 3.12 for the python3.12 runtime (set SAM_LOCAL_PYTHON312)"
    # SAM looks for `python3.12` on PATH; a directory holding just that name keeps the rest of PATH as it was.
    mkdir -p "$STATE_DIR/python312"
    ln -sfn "$python312" "$STATE_DIR/python312/python3.12"
    "$BIN/python" "$HELPERS/local_template.py" template.yaml "$LOCAL_TEMPLATE" >/dev/null
    PATH="$STATE_DIR/python312:$PATH" sam build --template-file "$LOCAL_TEMPLATE" --build-dir "$BUILD_DIR" \
        --cached --cache-dir "${SAM_LOCAL_CACHE_DIR:-.aws-sam/cache}"
}

helper() {
    SAM_LOCAL_STATE_DIR="$STATE_DIR" SAM_LOCAL_ENV_FILE="$ENV_FILE" SAM_LOCAL_TEMPLATE="$BUILD_DIR/template.yaml" \
        "$BIN/python" "$HELPERS/$1" "${@:2}"
}

# The index's node: a node that answers already (another checkout's, a shared one) is used and left alone; one
# started here is marked, and only a marked node is stopped by `down`.
opensearch_port() { helper standins.py opensearch-port; }
cmd_opensearch() {
    local port
    port="$(opensearch_port)"
    OPENSEARCH_PORT="$port" scripts/opensearch.sh status >/dev/null 2>&1 && return 0
    mkdir -p "$STATE_DIR"
    OPENSEARCH_PORT="$port" scripts/opensearch.sh start
    echo "$port" >"$STATE_DIR/opensearch.started"
}

cmd_opensearch_stop() {
    [[ -s "$STATE_DIR/opensearch.started" ]] || return 0
    OPENSEARCH_PORT="$(cat "$STATE_DIR/opensearch.started")" scripts/opensearch.sh stop
    rm -f "$STATE_DIR/opensearch.started"
}

cmd_standins() {
    cmd_opensearch
    helper standins.py start
}

cmd_loop() {
    [[ -f "$BUILD_DIR/template.yaml" ]] || die "$BUILD_DIR/template.yaml is missing: run scripts/sam-local.sh build"
    helper loop.py start
}

cmd_down() {
    helper loop.py stop
    helper standins.py stop
    cmd_opensearch_stop
    cmd_prune
    cmd_engine_stop
}

# SAM rebuilds its runtime image (base + layers) on every invoke when the layers are local, and the old one is
# left untagged. Only images that descend from our base stand-in carry its label, so nothing else is touched.
cmd_prune() {
    docker info >/dev/null 2>&1 || return 0
    docker image prune --force --filter "label=org.visual-search.lambda-base-standin=1" >/dev/null
}

cmd_engine_stop() {
    local pid_file="$STATE_DIR/dockerd.pid"
    # Only that process, if it is still dockerd (or the sudo that runs it): pids get reused.
    if [[ -s "$pid_file" ]] && grep -qaE 'dockerd|sudo' "/proc/$(cat "$pid_file")/cmdline" 2>/dev/null; then
        local pid waited=0
        pid="$(cat "$pid_file")"
        log "stopping the dockerd this script started (pid $pid)"
        as_root kill "$pid"
        # Until it has gone: a dockerd started meanwhile would find its pid file and refuse to start.
        while kill -0 "$pid" 2>/dev/null && [[ $waited -lt 60 ]]; do sleep 1; waited=$((waited + 1)); done
    fi
    rm -f "$pid_file"
}

# The function's JSON response is the last line of standard output; SAM's own messages and the logs go to stderr.
cmd_invoke() {
    [[ $# -ge 2 ]] || die "usage: scripts/sam-local.sh invoke FUNCTION EVENT [sam args]"
    local function=$1 event=$2
    shift 2
    [[ -f "$ENV_FILE" ]] || die "$ENV_FILE is missing: run make sam-local first"
    exec sam local invoke "$function" --template "$BUILD_DIR/template.yaml" --event "$event" --env-vars "$ENV_FILE" \
        --skip-pull-image "$@"
}

cmd_start_api() {
    [[ -f "$ENV_FILE" ]] || die "$ENV_FILE is missing: run make sam-local first"
    exec sam local start-api --template "$BUILD_DIR/template.yaml" --env-vars "$ENV_FILE" --skip-pull-image "$@"
}

# A copy of frontend/ whose config.json names the local API, served from the origin the local CORS allows.
cmd_ui() {
    local api=${1:-http://127.0.0.1:3000} port=${SAM_LOCAL_UI_PORT:-8080}
    rm -rf "$STATE_DIR/ui" && mkdir -p "$STATE_DIR/ui" && cp -R frontend/. "$STATE_DIR/ui/"
    printf '{"apiBase": "%s"}\n' "$api" >"$STATE_DIR/ui/config.json"
    log "the UI on http://127.0.0.1:$port (API $api); Ctrl+C stops it"
    exec "$BIN/python" -m http.server "$port" --bind 127.0.0.1 --directory "$STATE_DIR/ui"
}

case "${1:-up}" in
    up) cmd_engine; cmd_build; cmd_standins; cmd_loop
        log "ready (endpoints in $STATE_DIR/endpoints.json): make sam-local-invoke FUNCTION=SearchFunction" ;;
    engine) cmd_engine ;;
    build) cmd_build ;;
    standins) cmd_standins ;;
    loop) cmd_loop ;;
    invoke) shift; cmd_invoke "$@" ;;
    start-api) shift; cmd_start_api "$@" ;;
    ui) shift; cmd_ui "$@" ;;
    down) cmd_down ;;
    engine-stop) cmd_engine_stop ;;
    prune) cmd_prune ;;
    *) sed -n '2,27p' "$0" >&2; exit 2 ;;
esac
