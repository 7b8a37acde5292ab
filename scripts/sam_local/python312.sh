# Sourced by scripts/sam-local.sh and build-base-image.sh: find_python312 prints a Python 3.12 interpreter
# (SAM_LOCAL_PYTHON312, else pyenv's, else python3.12 on PATH), or nothing. `sam build` needs one for the
# python3.12 runtime, and the stand-in base image copies one.
find_python312() {
    if [[ -n "${SAM_LOCAL_PYTHON312:-}" ]]; then echo "$SAM_LOCAL_PYTHON312"; return; fi
    local candidate
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12.*/bin/python3.12 \
        /root/.pyenv/versions/3.12.*/bin/python3.12; do
        [[ -x "$candidate" ]] && { echo "$candidate"; return; }
    done
    command -v python3.12 || true
}
