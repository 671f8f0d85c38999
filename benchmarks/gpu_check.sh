#!/usr/bin/env bash
# The unattended GPU check of issue 15: training, evaluation and optimizer-step figures at
# XLM-R Large shape, one results file (benchmarks/results/gpu_check_<device>.md + .json).
#
#   bash benchmarks/gpu_check.sh prepare   # here (shared data + XLM-R tokenizer): length pack
#   bash benchmarks/gpu_check.sh           # on the GPU machine: needs only this repository
#   bash benchmarks/gpu_check.sh --device cpu --config small --steps 2 ...   # the CPU test
#
# PYTHON picks the interpreter (default: python); GPU_CHECK_TIMEOUT (seconds, default 470)
# stops a run that overruns: every finished section is already in the results file.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
export PYTHONPATH="$PWD/src:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}"
if [[ "${1:-}" == "prepare" ]]; then
    shift
    exec "$PYTHON" benchmarks/gpu_check.py prepare "$@"
fi
exec timeout --signal=TERM "${GPU_CHECK_TIMEOUT:-470}" "$PYTHON" benchmarks/gpu_check.py run "$@"
