#!/usr/bin/env bash
# Set up (if needed) and run the demo experiment end to end: plan, train, evaluate, results table.
# Uses ../shared/data when present, else the small fixture set shipped in the package.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
xstilts plan configs/demo.yaml "$@"
xstilts run configs/demo.yaml "$@"
