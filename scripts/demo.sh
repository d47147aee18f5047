#!/usr/bin/env bash
# Set up .venv, then show what the embedded model writes at four places of examples/invoices.py
# (a file written for the demo, never trained on), each beside what a person wrote there.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "Setting up .venv (a few minutes the first time: pip downloads the dependencies)..."
bash scripts/setup.sh
.venv/bin/python scripts/demo.py
