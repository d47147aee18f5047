#!/usr/bin/env bash
# Lint, type-check and run every test (the Neovim and Node tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest -q -p no:cacheprovider
