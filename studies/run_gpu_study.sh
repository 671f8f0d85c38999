#!/usr/bin/env bash
# The GPU study of issue 16 in one command (studies/xstilts_gpu.yaml), on one CUDA device: train
# and evaluate every seed the committed snapshot lacks, then write commit-ready outputs under
# docs/study/xstilts_gpu/ (results.sqlite, metrics.csv, gzipped per-example files, report/), as
# studies/run_cpu_study.sh does for the CPU study. Resumable: the stage cache is
# runs/xstilts_gpu/stages, and a stopped run still snapshots the seeds it finished.
# XSTILTS_SHARED_DATA moves the data folder (default ../shared/data). Extra args go to `run`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/xstilts ]; then . .venv/bin/activate; fi
shared="${XSTILTS_SHARED_DATA:-../shared/data}"
data=("data_dir=$(cd "$shared" && pwd)")
cfg=studies/xstilts_gpu.yaml
out=docs/study/xstilts_gpu
start=$(date +%s)
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: \
this study is sized for a GPU (the CPU study is studies/run_cpu_study.sh)')"
seeds=$(python -m xstilts.pipelines.committed_seeds "$cfg" "$out" "${data[@]}")
if [ "$seeds" = "[]" ]; then
  echo "every seed is in $out already: nothing to train"
else
  echo "seeds to run: $seeds (any others are committed in $out)"
  trap 'python -m xstilts.reporting.snapshot runs/xstilts_gpu "$out" --merge --finished-only' EXIT
  xstilts plan "$cfg" "${data[@]}" "seeds=$seeds"
  xstilts run "$cfg" "${data[@]}" "seeds=$seeds" --no-progress "$@"
  echo "train + evaluate: $(( $(date +%s) - start )) s wall"
  python -m xstilts.reporting.snapshot runs/xstilts_gpu "$out" --merge --finished-only
  trap - EXIT
fi
xstilts report "$out"
echo "total: $(( $(date +%s) - start )) s wall; report: $out/report/report.html"
