#!/usr/bin/env bash
# One entry point for developers and CI. Each command first runs the set-up
# (system packages and .venv/, skipped when already done).
#   ./dev.sh demo   explain the lecture's linear-regression script into explained/linear_regression/:
#                   diagram (svg/png/pdf), graph.json, backprop video, slide deck, step-through page
#   ./dev.sh test   lint (ruff), format check (ruff format), types (mypy), then the whole test suite
#   ./dev.sh test -m 'not slow'   the same with the quick tests only
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
cmd="${1:-help}"; shift || true
case "$cmd" in
  setup) bash scripts/bootstrap.sh ;;
  demo)
    bash scripts/bootstrap.sh
    .venv/bin/explain-graph --example linear-regression --out explained/linear_regression \
        --video --slides --html "$@"
    ;;
  test)
    bash scripts/bootstrap.sh
    export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
    .venv/bin/mypy
    .venv/bin/python -m pytest -q "$@"
    ;;
  *) echo "usage: ./dev.sh {demo|test|setup} [args]" >&2; exit 2 ;;
esac
