#!/usr/bin/env bash
# The GPU study of issue 16 in one command: studies/xstilts_gpu.yaml on one CUDA device, outputs
# under docs/study/xstilts_gpu/ (what and how: studies/run_study.sh). Extra args go to
# `xstilts run`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then . .venv/bin/activate; fi
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: \
this study is sized for a GPU (the CPU study is studies/run_cpu_study.sh)')"
exec bash studies/run_study.sh xstilts_gpu "$@"
