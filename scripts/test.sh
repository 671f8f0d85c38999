#!/usr/bin/env bash
# Set up (if needed), lint, type-check, and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
ruff check src tests benchmarks
ruff format --check src tests benchmarks
mypy  # config in pyproject.toml: src/, check_untyped_defs
python -m pytest -q -n "${XSTILTS_TEST_WORKERS:-2}" "$@"
