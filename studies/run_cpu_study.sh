#!/usr/bin/env bash
# The issue-16 CPU study in one command: train and evaluate studies/xstilts_cpu.yaml with two
# single-thread stages at a time, then commit-ready outputs under docs/study/xstilts_cpu/:
#   results.sqlite + stages/<id>/examples/*.json   (every metric and per-example correctness)
#   metrics.csv                                    (every metric row, for readers without SQLite)
#   report/report.{md,html}, report/tables/, report/plots/
# Resumable: the stage cache is runs/xstilts_cpu/stages; rerunning continues from the finished
# stages (and re-evaluates nothing already evaluated). The report regenerates without retraining:
#   xstilts report docs/study/xstilts_cpu
# XSTILTS_SHARED_DATA moves the data folder (default ../shared/data). Extra args go to `run`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/xstilts ]; then . .venv/bin/activate; fi
shared="${XSTILTS_SHARED_DATA:-../shared/data}"
data=("data_dir=$(cd "$shared" && pwd)")
start=$(date +%s)
export OMP_NUM_THREADS=1
xstilts plan studies/xstilts_cpu.yaml "${data[@]}"
xstilts run studies/xstilts_cpu.yaml "${data[@]}" --workers 2 --no-progress "$@"
echo "train + evaluate: $(( $(date +%s) - start )) s wall"
out=docs/study/xstilts_cpu
python -m xstilts.reporting.snapshot runs/xstilts_cpu "$out"
xstilts report "$out"
echo "total: $(( $(date +%s) - start )) s wall; report: $out/report/report.html"
