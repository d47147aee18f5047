#!/usr/bin/env bash
# Set up, then fill the body of a loop in examples/demo.py with the embedded default model,
# showing the canvas after every denoising step.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/infill-lsp fill examples/demo.py --at 14:9 --show-steps
