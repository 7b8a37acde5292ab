#!/usr/bin/env bash
# A real single-node OpenSearch with the k-NN plugin, for tests, benchmarks and local large catalogues.
#
#   scripts/opensearch.sh start    fetch (first time), install, start, wait for health; no-op when running
#   scripts/opensearch.sh stop     stop the node this script started (pid file); no-op when stopped
#   scripts/opensearch.sh status   print whether it runs and its cluster health; exit 0 only when it answers
#
# Everything lives in var/opensearch/ of this checkout (git-ignored): the unpacked node, its data and logs.
# Artefacts come from Maven Central through scripts/opensearch/pom.xml and are cached in ~/.m2.
# The node listens on 127.0.0.1:9200 only, plain HTTP, no security plugin (the integ-test distribution has
# none), discovery.type=single-node. OpenSearch refuses to run as root, so as root the script runs it as the
# system user `opensearch` (created when missing).
#
# Environment (all optional): OPENSEARCH_PORT (9200), OPENSEARCH_HEAP (1g), OPENSEARCH_START_TIMEOUT_S (180),
# OPENSEARCH_VAR_DIR (var/opensearch of this checkout), OPENSEARCH_SERVICE_USER (opensearch),
# OPENSEARCH_JAVA_HOME (the Java 17 found on the machine).
set -euo pipefail

OPENSEARCH_VERSION=2.19.1
KNN_VERSION=2.19.1.0

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$SCRIPT_DIR/.." && pwd)"
HELPER_DIR="$SCRIPT_DIR/opensearch"
PORT="${OPENSEARCH_PORT:-9200}"
HEAP="${OPENSEARCH_HEAP:-1g}"
START_TIMEOUT_S="${OPENSEARCH_START_TIMEOUT_S:-180}"
SERVICE_USER="${OPENSEARCH_SERVICE_USER:-opensearch}"
VAR_DIR="${OPENSEARCH_VAR_DIR:-$REPO_DIR/var/opensearch}"
HOME_DIR="$VAR_DIR/opensearch-$OPENSEARCH_VERSION"
DATA_DIR="$VAR_DIR/data"
LOG_DIR="$VAR_DIR/logs"
PID_FILE="$VAR_DIR/opensearch.pid"
INSTALLED_MARKER="$HOME_DIR/.installed-knn-$KNN_VERSION"
BASE_URL="http://127.0.0.1:$PORT"

log() { echo "opensearch.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

health() { curl -fsS --max-time 3 "$BASE_URL/_cluster/health" 2>/dev/null; }

running_pid() {
    # The pid from the pid file, if that process is alive and is a Java process (pids get reused).
    [[ -s "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && grep -q java "/proc/$pid/cmdline" 2>/dev/null \
        && echo "$pid"
}

as_service_user() {
    if [[ "$(id -u)" -eq 0 ]]; then
        runuser -u "$SERVICE_USER" -- "$@"
    else
        "$@"
    fi
}

find_java_home() {
    if [[ -n "${OPENSEARCH_JAVA_HOME:-}" ]]; then echo "$OPENSEARCH_JAVA_HOME"; return; fi
    # OpenSearch 2.19 supports Java 11-21 but is tested here on 17; prefer it over whatever `java` is.
    local candidate
    for candidate in /usr/lib/jvm/java-17-openjdk-* /usr/lib/jvm/temurin-17-*; do
        [[ -x "$candidate/bin/java" ]] && { echo "$candidate"; return; }
    done
    command -v java >/dev/null || die "no Java found: install openjdk-17-jdk-headless or set OPENSEARCH_JAVA_HOME"
    dirname "$(dirname "$(readlink -f "$(command -v java)")")"
}

ensure_service_user() {
    [[ "$(id -u)" -eq 0 ]] || return 0
    if ! id "$SERVICE_USER" >/dev/null 2>&1; then
        log "creating system user $SERVICE_USER (OpenSearch refuses to run as root)"
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$SERVICE_USER"
    fi
    # The node must reach its directory through every parent: a checkout under /root would not be reachable.
    mkdir -p "$VAR_DIR"
    runuser -u "$SERVICE_USER" -- test -x "$VAR_DIR" \
        || die "user $SERVICE_USER cannot reach $VAR_DIR (a parent directory is not world-searchable); set OPENSEARCH_VAR_DIR to a reachable path, e.g. /var/tmp/visual-search-opensearch"
}

install_node() {
    [[ -f "$INSTALLED_MARKER" ]] && return 0
    command -v mvn >/dev/null || die "mvn not found: install Debian's maven package"
    command -v unzip >/dev/null || die "unzip not found: install Debian's unzip package"
    local download_dir="$VAR_DIR/downloads"
    log "fetching OpenSearch $OPENSEARCH_VERSION, k-NN $KNN_VERSION and lang-painless from Maven Central (cached in ~/.m2)"
    mvn -q -B -f "$HELPER_DIR/pom.xml" dependency:copy \
        -Dopensearch.version="$OPENSEARCH_VERSION" -Dknn.version="$KNN_VERSION" \
        -Ddist.dir="$download_dir/dist" -Dpainless.dir="$download_dir/lang-painless" \
        || die "Maven could not fetch the artefacts (see above)"

    rm -rf "$HOME_DIR"
    unzip -q "$download_dir/dist/opensearch-$OPENSEARCH_VERSION.zip" -d "$VAR_DIR"
    [[ -x "$HOME_DIR/bin/opensearch" ]] || die "unexpected layout: $HOME_DIR/bin/opensearch missing after unzip"

    # lang-painless: k-NN declares `extended.plugins=lang-painless`, and both the plugin installer and the
    # node refuse a plugin whose extended plugin is missing. The integ-test zip has no lang-painless and
    # Maven Central has no zip of it for 2.19.1, so assemble the module the full distribution ships: its
    # jar and runtime jars, plus the upstream descriptor and security policy kept in scripts/opensearch/.
    local painless_dir="$HOME_DIR/modules/lang-painless"
    mkdir -p "$painless_dir"
    cp "$download_dir"/lang-painless/*.jar "$painless_dir/"
    sed "s/@OPENSEARCH_VERSION@/$OPENSEARCH_VERSION/g" "$HELPER_DIR/lang-painless/plugin-descriptor.properties" \
        > "$painless_dir/plugin-descriptor.properties"
    cp "$HELPER_DIR/lang-painless/plugin-security.policy" "$painless_dir/"

    # k-NN: the Maven zip carries only Java code, no libopensearchknn_* JNI libraries, so the faiss and
    # nmslib engines fail at index creation; the lucene engine is pure Java. The plugin loads its JNI
    # libraries lazily (on first faiss/nmslib use), so the node itself starts fine without them.
    JAVA_HOME="$JAVA_HOME" OPENSEARCH_JAVA_HOME="$JAVA_HOME" "$HOME_DIR/bin/opensearch-plugin" install --batch \
        "file://$download_dir/dist/opensearch-knn-$KNN_VERSION.zip" >/dev/null \
        || die "installing the k-NN plugin failed"
    touch "$INSTALLED_MARKER"
    log "installed into $HOME_DIR"
}

write_config() {
    mkdir -p "$DATA_DIR" "$LOG_DIR"
    cat > "$HOME_DIR/config/opensearch.yml" <<EOF
# Written by scripts/opensearch.sh; edits are overwritten on the next start.
cluster.name: visual-search-local
node.name: local-1
path.data: $DATA_DIR
path.logs: $LOG_DIR
network.host: 127.0.0.1
http.port: $PORT
transport.port: 9300-9399
discovery.type: single-node
# One node cannot hold replicas; keep new indices green rather than yellow.
cluster.default_number_of_replicas: 0
# Test and benchmark data is small; do not refuse writes when the shared disk is fairly full.
cluster.routing.allocation.disk.threshold_enabled: false
EOF
    if [[ "$(id -u)" -eq 0 ]]; then
        chown -R "$SERVICE_USER": "$VAR_DIR"
    fi
}

wait_for_health() {
    local pid="$1" deadline=$((SECONDS + START_TIMEOUT_S)) answer
    while ((SECONDS < deadline)); do
        if answer="$(health)" && [[ "$answer" =~ \"status\":\"(green|yellow)\" ]]; then
            log "up at $BASE_URL after ${SECONDS}s: $answer"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            log "the node exited during start-up; last log lines:"
            tail -n 60 "$LOG_DIR/visual-search-local.log" "$LOG_DIR/stdout.log" 2>/dev/null >&2 || true
            rm -f "$PID_FILE"
            exit 1
        fi
        sleep 1
    done
    log "no green/yellow health within ${START_TIMEOUT_S}s; last log lines:"
    tail -n 60 "$LOG_DIR/visual-search-local.log" "$LOG_DIR/stdout.log" 2>/dev/null >&2 || true
    exit 1
}

cmd_start() {
    local pid
    if pid="$(running_pid)"; then
        health >/dev/null || wait_for_health "$pid"
        log "already running (pid $pid) at $BASE_URL"
        return 0
    fi
    if health >/dev/null; then
        die "something not started by this script already answers at $BASE_URL; stop it or set OPENSEARCH_PORT"
    fi
    JAVA_HOME="$(find_java_home)"
    export JAVA_HOME
    ensure_service_user
    install_node
    write_config
    rm -f "$PID_FILE"
    log "starting (heap $HEAP, Java $JAVA_HOME)"
    # -d daemonises, -p writes the pid file. Heap flags come after jvm.options, so they win.
    as_service_user env JAVA_HOME="$JAVA_HOME" OPENSEARCH_JAVA_HOME="$JAVA_HOME" \
        OPENSEARCH_JAVA_OPTS="-Xms$HEAP -Xmx$HEAP ${OPENSEARCH_EXTRA_JAVA_OPTS:-}" \
        "$HOME_DIR/bin/opensearch" -d -p "$PID_FILE" >"$LOG_DIR/stdout.log" 2>&1 \
        || { log "the launcher failed; its output:"; tail -n 60 "$LOG_DIR/stdout.log" >&2; \
             tail -n 60 "$LOG_DIR/visual-search-local.log" >&2 2>/dev/null || true; exit 1; }
    local waited=0
    until [[ -s "$PID_FILE" ]] || ((waited >= 30)); do sleep 1; waited=$((waited + 1)); done
    [[ -s "$PID_FILE" ]] || die "no pid file after 30s; see $LOG_DIR"
    wait_for_health "$(cat "$PID_FILE")"
}

cmd_stop() {
    local pid
    if ! pid="$(running_pid)"; then
        rm -f "$PID_FILE"
        log "not running"
        return 0
    fi
    log "stopping pid $pid"
    kill -TERM "$pid"
    local waited=0
    while kill -0 "$pid" 2>/dev/null && ((waited < 60)); do sleep 1; waited=$((waited + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
        log "still alive after 60s; sending SIGKILL"
        kill -KILL "$pid"
    fi
    rm -f "$PID_FILE"
    log "stopped"
}

cmd_status() {
    local pid answer
    if pid="$(running_pid)"; then
        if answer="$(health)"; then
            echo "running (pid $pid) at $BASE_URL: $answer"
            return 0
        fi
        echo "process $pid alive but $BASE_URL does not answer (starting, or unhealthy; see $LOG_DIR)"
        return 1
    fi
    if answer="$(health)"; then
        echo "not started by this script, but something answers at $BASE_URL: $answer"
        return 0
    fi
    echo "stopped"
    return 3
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
