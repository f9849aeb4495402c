#!/usr/bin/env bash
# The GPU check on a lent CUDA machine, whose python3 holds torch but not every grader
# dependency: wheels carried in .whl/ (see README, "Same verdicts on a GPU") are installed
# into /tmp/site first. Figures and verdicts go to $OUT/gpu_check.json (or build/).
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
exec python3 bench/gpu_check.py --json "${OUT:-build}/gpu_check.json" "$@"
