#!/usr/bin/env bash
# Gradescope runs this once, as root, from /autograder/source, when it builds the image.
# It installs the grader into its own virtual environment ($AUTOGRADER_ROOT/venv) and
# leaves the system python3 (which Gradescope's harness needs) untouched.
set -euo pipefail

ROOT="${AUTOGRADER_ROOT:-/autograder}"
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${AUTOGRADER_SETUP_PYTHON:-python3}"
VENV="$ROOT/venv"

# Ubuntu's python3 lacks venv until python3-venv is installed.
if ! "$PYTHON" -c "import venv, ensurepip" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    else
        echo "setup.sh: $PYTHON has no venv module; install python3-venv" >&2
        exit 1
    fi
fi

"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# Pinned: an open range can pull a multi-GB CUDA build. TORCH_INDEX_URL may name a CPU-only index.
"$VENV/bin/python" -m pip install -q "torch==${TORCH_VERSION:-2.13.0}" ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"}
"$VENV/bin/python" -m pip install -q -e "$SRC"
"$VENV/bin/python" -m autograder list

# Workers run student code as an unprivileged user (more are created on demand for parallel
# gradings), and may not read hidden tests, reference code or their data.
if [ "$(id -u)" = 0 ]; then
    id -u autograder-worker >/dev/null 2>&1 || useradd --system --user-group --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin autograder-worker
    for secret in "$SRC/test_suites" "$SRC/reference"; do
        if [ -e "$secret" ]; then chmod -R go-rwx "$secret"; fi
    done
fi
