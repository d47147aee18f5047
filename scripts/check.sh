#!/usr/bin/env bash
# Lint, type-check and run every test (the Neovim and Node tests included), then build the wheel,
# install it into a fresh environment and fill a line with it (scripts/check_wheel.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest -q -p no:cacheprovider
bash scripts/check_wheel.sh
