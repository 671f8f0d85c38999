#!/usr/bin/env bash
# The issue-16 CPU study in one command: studies/xstilts_cpu.yaml with two single-thread stages
# at a time, outputs under docs/study/xstilts_cpu/ (what and how: studies/run_study.sh).
# Extra args go to `xstilts run`.
set -euo pipefail
export OMP_NUM_THREADS=1
exec bash "$(dirname "$0")/run_study.sh" xstilts_cpu --workers 2 "$@"
