#!/usr/bin/env bash
# A real single-node OpenSearch with the k-NN plugin, for tests, benchmarks and local large catalogues.
#
#   scripts/opensearch.sh start    fetch (first time), install, start, wait for health; no-op when running
#   scripts/opensearch.sh stop     stop the node this script started (pid file); no-op when stopped
#   scripts/opensearch.sh status   print whether it runs and its cluster health; exit 0 only when it answers
#
# Everything lives in var/opensearch/ of this checkout (git-ignored): the unpacked node, its data and logs
# (in /var/tmp when run as root from a checkout the service user cannot reach, such as one under /root).
# Artefacts come from Maven Central through scripts/opensearch/pom.xml and are cached in ~/.m2.
# The node listens on 127.0.0.1:9200 only, plain HTTP, no security plugin (the integ-test distribution has
# none), discovery.type=single-node. OpenSearch refuses to run as root, so as root the script runs it as the
# system user `opensearch` (created when missing).
#
# Environment (all optional): OPENSEARCH_PORT (9200), OPENSEARCH_HEAP (1g), OPENSEARCH_START_TIMEOUT_S (300),
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
START_TIMEOUT_S="${OPENSEARCH_START_TIMEOUT_S:-300}"
SERVICE_USER="${OPENSEARCH_SERVICE_USER:-opensearch}"

# OpenSearch refuses to run as root, so as root it runs as this system user, who must be able to reach
# VAR_DIR through every parent directory. A checkout under /root (mode 700) is not reachable: then the
# node lives in /var/tmp instead, in a folder named after the checkout so that stop/status find it again.
default_var_dir() {
    local wanted="$REPO_DIR/var/opensearch"
    if [[ "$(id -u)" -eq 0 ]] && id "$SERVICE_USER" >/dev/null 2>&1 \
        && ! runuser -u "$SERVICE_USER" -- test -x "$REPO_DIR" 2>/dev/null; then
        wanted="/var/tmp/visual-search-opensearch-$(echo -n "$REPO_DIR" | md5sum | cut -c1-8)"
    fi
    echo "$wanted"
}
ensure_service_user_exists() {
    [[ "$(id -u)" -eq 0 ]] || return 0
    id "$SERVICE_USER" >/dev/null 2>&1 && return 0
    echo "opensearch.sh: creating system user $SERVICE_USER (OpenSearch refuses to run as root)" >&2
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$SERVICE_USER"
}
[[ "${1:-}" == start ]] && ensure_service_user_exists
VAR_DIR="${OPENSEARCH_VAR_DIR:-$(default_var_dir)}"
HOME_DIR="$VAR_DIR/opensearch-$OPENSEARCH_VERSION"
DATA_DIR="$VAR_DIR/data"
LOG_DIR="$VAR_DIR/logs"
PID_FILE="$VAR_DIR/opensearch.pid"
NODE_LOG="$LOG_DIR/visual-search-local.log"
NODE_LOG_LINES_BEFORE=0
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

ensure_var_dir_reachable() {
    mkdir -p "$VAR_DIR"
    [[ "$(id -u)" -eq 0 ]] || return 0
    runuser -u "$SERVICE_USER" -- test -x "$VAR_DIR" \
        || die "user $SERVICE_USER cannot reach $VAR_DIR (a parent directory is not searchable by others); set OPENSEARCH_VAR_DIR to a reachable path"
}

install_node() {
    [[ -f "$INSTALLED_MARKER" ]] && return 0
    command -v mvn >/dev/null || die "mvn not found: install Debian's maven package"
    command -v unzip >/dev/null || die "unzip not found: install Debian's unzip package"
    local download_dir="$VAR_DIR/downloads"
    log "fetching OpenSearch $OPENSEARCH_VERSION, k-NN $KNN_VERSION and lang-painless from Maven Central (cached in ~/.m2)"
    mkdir -p "$download_dir"
    mvn -q -B -Dstyle.color=never -f "$HELPER_DIR/pom.xml" dependency:copy \
        -Dopensearch.version="$OPENSEARCH_VERSION" -Dknn.version="$KNN_VERSION" \
        -Ddist.dir="$download_dir/dist" -Dpainless.dir="$download_dir/lang-painless" >"$VAR_DIR/maven.log" 2>&1 \
        || { cat "$VAR_DIR/maven.log" >&2; die "Maven could not fetch the artefacts (its output is above)"; }

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

    # k-NN: the Maven zip carries only Java code, no libopensearchknn_* JNI libraries. The plugin loads them
    # lazily, so the node starts and the lucene engine (pure Java) works. faiss/nmslib do NOT: creating such
    # an index is accepted, but the first write throws UnsatisfiedLinkError, which OpenSearch treats as
    # fatal, and the node exits (seen with 2.19.1.0). Use engine="lucene" with this node.
    JAVA_HOME="$JAVA_HOME" OPENSEARCH_JAVA_HOME="$JAVA_HOME" "$HOME_DIR/bin/opensearch-plugin" install --batch \
        "file://$download_dir/dist/opensearch-knn-$KNN_VERSION.zip" >"$VAR_DIR/plugin-install.log" 2>&1 \
        || { cat "$VAR_DIR/plugin-install.log" >&2; die "installing the k-NN plugin failed"; }
    touch "$INSTALLED_MARKER"
    rm -rf "$download_dir"  # ~60 MB; ~/.m2 keeps the originals
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
# Test and benchmark data is small; do not refuse writes when the shared disk is fairly full.
cluster.routing.allocation.disk.threshold_enabled: false
EOF
    if [[ "$(id -u)" -eq 0 ]]; then
        chown -R "$SERVICE_USER": "$VAR_DIR"
    fi
}

show_failure_log() {
    # Java stack traces bury the cause: first the error lines, then the plain tail.
    # The node log is appended across starts: show only what this start wrote (stdout.log is rewritten).
    local this_start
    this_start="$( { cat "$LOG_DIR/stdout.log"; tail -n +"$((NODE_LOG_LINES_BEFORE + 1))" "$NODE_LOG"; } 2>/dev/null \
        | grep -v -E "^\s+at |JVM arguments" )"
    log "errors logged in $LOG_DIR by this start:"
    grep -E "ERROR|FATAL|Caused by|Exception" <<<"$this_start" | tail -n 12 >&2 || true
    log "last log lines:"
    tail -n 25 <<<"$this_start" >&2 || true
}

wait_for_health() {
    local pid="$1" deadline=$((SECONDS + START_TIMEOUT_S)) answer
    while ((SECONDS < deadline)); do
        if answer="$(health)" && [[ "$answer" =~ \"status\":\"(green|yellow)\" ]]; then
            log "up at $BASE_URL after ${SECONDS}s: $answer"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            log "the node exited during start-up"
            show_failure_log
            rm -f "$PID_FILE"
            exit 1
        fi
        sleep 1
    done
    log "no green/yellow health within ${START_TIMEOUT_S}s (pid $pid still running; stop it with: $0 stop)"
    show_failure_log
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
    ensure_var_dir_reachable
    [[ -n "${OPENSEARCH_VAR_DIR:-}" || "$VAR_DIR" == "$REPO_DIR/var/opensearch" ]] \
        || log "using $VAR_DIR: user $SERVICE_USER cannot reach $REPO_DIR"
    install_node
    write_config
    rm -f "$PID_FILE"
    NODE_LOG_LINES_BEFORE="$(wc -l <"$NODE_LOG" 2>/dev/null || echo 0)"
    log "starting (heap $HEAP, Java $JAVA_HOME)"
    # -d daemonises, -p writes the pid file. Heap flags come after jvm.options, so they win.
    as_service_user env JAVA_HOME="$JAVA_HOME" OPENSEARCH_JAVA_HOME="$JAVA_HOME" \
        OPENSEARCH_JAVA_OPTS="-Xms$HEAP -Xmx$HEAP ${OPENSEARCH_EXTRA_JAVA_OPTS:-}" \
        "$HOME_DIR/bin/opensearch" -d -p "$PID_FILE" >"$LOG_DIR/stdout.log" 2>&1 \
        || { log "the launcher failed"; show_failure_log; exit 1; }
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
