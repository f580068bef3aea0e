#!/usr/bin/env bash
# The one-GPU suite (benchmarks/gpu_suite.py) on a CUDA machine, time-boxed to 480 s:
#   bash benchmarks/gpu.sh [gpu_suite.py arguments, e.g. --cpu-check]
# Run from the repository root. Uses the project's .venv when there is one, else `python` on
# PATH. Writes the output to $OUT/gpu.txt when OUT is set (and still prints it), else stdout.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python; fi
export WANDB_MODE=disabled PYTHONUNBUFFERED=1
run() {
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
        --format=csv,noheader
    timeout --kill-after=10 480 "$PY" benchmarks/gpu_suite.py "$@"
    status=$?
    [ "$status" = 124 ] && echo "gpu_suite.py stopped at the 480 s limit"
    return "$status"
}
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    run "$@" 2>&1 | tee "$OUT/gpu.txt"
else
    run "$@" 2>&1
fi
