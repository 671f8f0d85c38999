#!/usr/bin/env bash
# One study in one command: studies/run_study.sh NAME [xstilts run options...] trains and
# evaluates studies/NAME.yaml (stage cache runs/NAME/), then writes commit-ready outputs under
# docs/study/NAME/:
#   results.sqlite + stages/<id>/examples/*.json.gz  (every metric and per-example correctness)
#   metrics.csv                                      (every metric row, for readers without SQLite)
#   report/report.{md,html}, report/tables/, report/plots/
# Resumable, within a session and across sessions:
# * rerunning continues from the finished stages in runs/NAME/stages (and re-evaluates nothing
#   already evaluated); whole seeds finish first (pipelines/schedule.py);
# * a new session (fresh checkout: no stage cache, no weights) runs only the seeds that the
#   committed snapshot does not hold in full (pipelines/committed_seeds.py checks stage ids, task
#   versions and evaluation-file hashes against today's) and merges them into it. Stopping the
#   run (Ctrl-C, kill) still snapshots the seeds it finished: commit docs/study/NAME/ before a
#   session ends; a partly finished seed is run again from its start.
# The report regenerates without retraining:  xstilts report docs/study/NAME
# Callers: run_cpu_study.sh, run_gpu_study.sh. XSTILTS_SHARED_DATA moves the data folder
# (default ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
name="$1"
shift
if [ -x .venv/bin/xstilts ]; then . .venv/bin/activate; fi
shared="${XSTILTS_SHARED_DATA:-../shared/data}"
data=("data_dir=$(cd "$shared" && pwd)")
cfg="studies/$name.yaml"
out="docs/study/$name"
runs="runs/$name"
start=$(date +%s)
seeds=$(python -m xstilts.pipelines.committed_seeds "$cfg" "$out" "${data[@]}")
if [ "$seeds" = "[]" ]; then
  echo "every seed is in $out already: nothing to train"
else
  echo "seeds to run: $seeds (any others are committed in $out)"
  # However the run ends (finished, failed, or stopped with Ctrl-C / kill), the seeds it finished
  # go into the snapshot, ready to commit; a seed it did not finish is left out whole.
  trap 'python -m xstilts.reporting.snapshot "$runs" "$out" --merge --finished-only' EXIT
  xstilts plan "$cfg" "${data[@]}" "seeds=$seeds"
  xstilts run "$cfg" "${data[@]}" "seeds=$seeds" --no-progress "$@"
  echo "train + evaluate: $(( $(date +%s) - start )) s wall"
  python -m xstilts.reporting.snapshot "$runs" "$out" --merge --finished-only
  trap - EXIT
fi
xstilts report "$out"
echo "total: $(( $(date +%s) - start )) s wall; report: $out/report/report.html"
