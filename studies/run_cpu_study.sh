#!/usr/bin/env bash
# The issue-16 CPU study in one command: train and evaluate studies/xstilts_cpu.yaml with two
# single-thread stages at a time, then commit-ready outputs under docs/study/xstilts_cpu/:
#   results.sqlite + stages/<id>/examples/*.json   (every metric and per-example correctness)
#   metrics.csv                                    (every metric row, for readers without SQLite)
#   report/report.{md,html}, report/tables/, report/plots/
# Resumable, within a session and across sessions:
# * the stage cache is runs/xstilts_cpu/stages: rerunning continues from the finished stages (and
#   re-evaluates nothing already evaluated); whole seeds finish first (pipelines/schedule.py);
# * a new session (fresh checkout: no stage cache, no weights) runs only the seeds that the
#   committed snapshot does not hold in full (pipelines/committed_seeds.py checks stage ids, task
#   versions and evaluation-file hashes against today's) and merges them into it. Stopping the
#   run (Ctrl-C, kill) still snapshots the seeds it finished: commit docs/study/xstilts_cpu/
#   before a session ends; a partly finished seed is run again from its start.
# The report regenerates without retraining:  xstilts report docs/study/xstilts_cpu
# XSTILTS_SHARED_DATA moves the data folder (default ../shared/data). Extra args go to `run`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/xstilts ]; then . .venv/bin/activate; fi
shared="${XSTILTS_SHARED_DATA:-../shared/data}"
data=("data_dir=$(cd "$shared" && pwd)")
out=docs/study/xstilts_cpu
start=$(date +%s)
export OMP_NUM_THREADS=1
seeds=$(python -m xstilts.pipelines.committed_seeds studies/xstilts_cpu.yaml "$out" "${data[@]}")
if [ "$seeds" = "[]" ]; then
  echo "every seed is in $out already: nothing to train"
else
  echo "seeds to run: $seeds (any others are committed in $out)"
  # However the run ends (finished, failed, or stopped with Ctrl-C / kill), the seeds it finished
  # go into the snapshot, ready to commit; a seed it did not finish is left out whole.
  trap 'python -m xstilts.reporting.snapshot runs/xstilts_cpu "$out" --merge --finished-only' EXIT
  xstilts plan studies/xstilts_cpu.yaml "${data[@]}" "seeds=$seeds"
  xstilts run studies/xstilts_cpu.yaml "${data[@]}" "seeds=$seeds" --workers 2 --no-progress "$@"
  echo "train + evaluate: $(( $(date +%s) - start )) s wall"
  python -m xstilts.reporting.snapshot runs/xstilts_cpu "$out" --merge --finished-only
  trap - EXIT
fi
xstilts report "$out"
echo "total: $(( $(date +%s) - start )) s wall; report: $out/report/report.html"
