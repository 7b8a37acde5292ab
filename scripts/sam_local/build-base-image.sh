#!/usr/bin/env bash
# Builds a stand-in for public.ecr.aws/lambda/python:3.12-x86_64 when no registry can serve the real one:
# a minimal Debian bookworm rootfs (debootstrap, from the Debian mirror this machine's apt sources name), a Python
# 3.12 copied to /var/lang, awslambdaric + boto3 from PyPI in /var/runtime, and /var/runtime/bootstrap, which the
# Lambda runtime interface emulator that SAM adds on top starts. The result is `docker import`ed under the tag SAM
# looks for.
#
#   scripts/sam_local/build-base-image.sh          build only when the tag is missing (a real image wins)
#   scripts/sam_local/build-base-image.sh --force  rebuild our stand-in (never replaces a real image)
#
# Environment (optional): SAM_LOCAL_PYTHON312 (a python3.12 to copy; default: pyenv's, else python3.12 on
# PATH), DEBIAN_MIRROR (default: the Debian archive of /etc/apt/sources.list(.d), see apt_mirror.py),
# SAM_LOCAL_WORK_DIR (default var/sam-local).
set -euo pipefail

TAG=public.ecr.aws/lambda/python:3.12-x86_64
STANDIN_LABEL=org.visual-search.lambda-base-standin
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK_DIR="${SAM_LOCAL_WORK_DIR:-$REPO_DIR/var/sam-local}"
# As in AWS's image: the runtime's, the function's and the layers' native libraries.
LAMBDA_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib
# What CPython 3.12's extension modules link against, beyond minbase (ssl, sqlite3, ctypes, xml, uuid, lzma, bz2).
RUNTIME_PACKAGES=ca-certificates,libssl3,libsqlite3-0,libffi8,libexpat1,libuuid1,libbz2-1.0,liblzma5,zlib1g

log() { echo "build-base-image: $*" >&2; }
die() { log "error: $*"; exit 1; }

if docker image inspect "$TAG" >/dev/null 2>&1; then
    standin="$(docker image inspect -f "{{ index .Config.Labels \"$STANDIN_LABEL\" }}" "$TAG" 2>/dev/null || true)"
    if [[ "${1:-}" != --force ]]; then
        log "$TAG is present${standin:+ (the local stand-in)}; nothing to build"
        exit 0
    fi
    [[ -n "$standin" ]] || die "$TAG is a real image; --force rebuilds only the local stand-in"
fi

source "$REPO_DIR/scripts/sam_local/python312.sh"
PYTHON312="$(find_python312)"
[[ -n "$PYTHON312" && -x "$PYTHON312" ]] \
    || die "no Python 3.12 found (set SAM_LOCAL_PYTHON312, or install one, e.g. with pyenv)"
PYTHON_PREFIX="$("$PYTHON312" -c 'import sys; print(sys.base_prefix)')"
"$PYTHON312" -c 'import sys; assert sys.version_info[:2] == (3, 12)' || die "$PYTHON312 is not Python 3.12"
[[ "$(uname -m)" == x86_64 ]] || die "the stand-in is x86_64 only; this machine is $(uname -m)"
command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
[[ "$(id -u)" -eq 0 ]] || die "debootstrap needs root"
# The machine's own mirror: the one its administrator chose (a local proxy, a snapshot, a nearby mirror).
MIRROR="${DEBIAN_MIRROR:-$("$PYTHON312" "$REPO_DIR/scripts/sam_local/apt_mirror.py")}" \
    || die "no Debian mirror: set DEBIAN_MIRROR"

started=$SECONDS
ROOTFS="$WORK_DIR/lambda-rootfs"
mkdir -p "$WORK_DIR"
rm -rf "$ROOTFS"
log "debootstrap bookworm (minbase) from $MIRROR"
debootstrap --variant=minbase --include="$RUNTIME_PACKAGES" bookworm "$ROOTFS" "$MIRROR" \
    >"$WORK_DIR/debootstrap.log" 2>&1 \
    || die "debootstrap failed; see $WORK_DIR/debootstrap.log"
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*

log "copying Python 3.12 from $PYTHON_PREFIX to /var/lang (without its site-packages)"
mkdir -p "$ROOTFS/var/lang" "$ROOTFS/var/runtime" "$ROOTFS/var/task" "$ROOTFS/opt"
tar -C "$PYTHON_PREFIX" --exclude='./lib/python3.12/site-packages/*' --exclude='./lib/python3.12/test' \
    --exclude='./lib/python3.12/idlelib' --exclude='./lib/python3.12/tkinter' -cf - . | tar -C "$ROOTFS/var/lang" -xf -
ln -sf python3.12 "$ROOTFS/var/lang/bin/python3"
ln -sf python3.12 "$ROOTFS/var/lang/bin/python"

log "installing awslambdaric and boto3 from PyPI into /var/runtime"
"$PYTHON312" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-compile \
    --target "$ROOTFS/var/runtime" \
    --only-binary=:all: awslambdaric boto3

cat >"$ROOTFS/var/runtime/bootstrap" <<'EOF'
#!/bin/sh
# The runtime's entry point, as in AWS's image: the runtime interface client runs the handler named by _HANDLER.
export PYTHONPATH="/var/task:/opt/python:/var/runtime${PYTHONPATH:+:$PYTHONPATH}"
cd "${LAMBDA_TASK_ROOT:-/var/task}"
exec /var/lang/bin/python3.12 -m awslambdaric "$_HANDLER"
EOF
chmod 755 "$ROOTFS/var/runtime/bootstrap"

# Sanity check inside the rootfs before importing: the interpreter starts and the client imports.
chroot "$ROOTFS" /usr/bin/env -i LD_LIBRARY_PATH=/var/lang/lib PYTHONPATH=/var/runtime \
    /var/lang/bin/python3.12 -c 'import ssl, sqlite3, ctypes, awslambdaric, boto3' \
    || die "Python 3.12 does not run inside the rootfs"

log "docker import as $TAG"
tar -C "$ROOTFS" -cf - . | docker import \
    --change "LABEL $STANDIN_LABEL=1" \
    --change 'ENV LANG=en_US.UTF-8' \
    --change 'ENV TZ=:/etc/localtime' \
    --change 'ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin:/bin:/opt/bin' \
    --change "ENV LD_LIBRARY_PATH=$LAMBDA_LIBRARY_PATH" \
    --change 'ENV LAMBDA_TASK_ROOT=/var/task' \
    --change 'ENV LAMBDA_RUNTIME_DIR=/var/runtime' \
    --change 'WORKDIR /var/task' \
    --change 'ENTRYPOINT ["/var/runtime/bootstrap"]' \
    - "$TAG" >/dev/null
rm -rf "$ROOTFS"
log "built $TAG in $((SECONDS - started)) s"
