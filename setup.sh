#!/usr/bin/env bash
# Gradescope runs this once, as root, from /autograder/source, when it builds the image.
# It installs the grader into its own virtual environment ($AUTOGRADER_ROOT/venv) and
# leaves the system python3 (which Gradescope's harness needs) untouched.
#
# What it installs: requirements.txt, written by `autograder build` (the exact package set the
# reference was verified with, this assignment's libraries only), when it was pinned on this
# Python; torch from PyTorch's CPU-only index (Gradescope has no GPU): TORCH_INDEX_URL=pypi
# takes PyPI's build instead (CUDA, for a GPU runner), or names another index.
set -euo pipefail

ROOT="${AUTOGRADER_ROOT:-/autograder}"
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${AUTOGRADER_SETUP_PYTHON:-python3}"
VENV="$ROOT/venv"
LOCK="$SRC/requirements.txt"
TORCH_INDEX="${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}"

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
PIP=("$VENV/bin/python" -m pip install -q)
"${PIP[@]}" --upgrade pip
here="$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
pinned_on=""
torch_pin="torch==${TORCH_VERSION:-2.13.0}"
if [ -f "$LOCK" ]; then
    pinned_on="$(sed -n 's/^# python \([0-9.]*\):.*/\1/p' "$LOCK" | head -n 1)"
    torch_pin="$(grep -m 1 '^torch==' "$LOCK" || echo "$torch_pin")"
fi

if [ -n "$TORCH_INDEX" ] && [ "$TORCH_INDEX" != pypi ]; then
    "${PIP[@]}" --no-deps --index-url "$TORCH_INDEX" "$torch_pin"
else
    "${PIP[@]}" --no-deps "$torch_pin"
fi
if [ -f "$LOCK" ] && [ "$pinned_on" = "$here" ]; then
    "${PIP[@]}" -r "$LOCK"
elif [ -f "$LOCK" ]; then
    echo "*** WARNING: requirements.txt was pinned on Python $pinned_on, this is Python $here: installing" \
         "$torch_pin and the same packages unpinned. Build with Python $here for an exact image. ***" >&2
    grep -v '^#' "$LOCK" | sed 's/==.*//' | grep -v '^torch$' | xargs "${PIP[@]}" "$torch_pin"
else
    "${PIP[@]}" "$torch_pin" "$SRC[hf]"      # a checkout, not a built zip: every assignment's libraries
fi
"${PIP[@]}" --no-deps -e "$SRC"
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
