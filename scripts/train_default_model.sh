#!/usr/bin/env bash
# Grow the embedded default model: rebuild its corpus (the Python standard library, permissive
# packages installed in .venv, and the Go/Rust/JS/TS/Markdown sources that
# scripts/fetch_corpus_sources.sh unpacks from Debian and npm), then keep training, in the background-friendly way, from the
# committed weights in infill_lsp/default_model. Stop it with Ctrl-C (a checkpoint is saved);
# run it again to continue. Measure with `infill-train eval` before committing new weights.
# Uses jemalloc when it is installed (`apt-get install libjemalloc2`), see below.
#   bash scripts/train_default_model.sh [extra infill-train train options, e.g. --max-minutes 120]
set -euo pipefail
cd "$(dirname "$0")/.."
SITE=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
STDLIB=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['stdlib'])")
# Licenses: PSF (stdlib), Apache-2.0 (transformers, datasets, accelerate, huggingface_hub, pygls,
# lsprotocol), BSD (torch, pandas, numpy, sympy, pygments, fsspec, click), MIT (mypy, pip,
# setuptools, pydantic, rich, pytest, anyio). networkx and idlelib are held out entirely for the
# fine-tuning demonstration.
PACKAGES="transformers torch pandas numpy sympy mypy pip pygments setuptools datasets pydantic rich _pytest accelerate huggingface_hub fsspec anyio lsprotocol pygls click"
ROOTS=("$STDLIB")
for p in $PACKAGES; do [ -d "$SITE/$p" ] && ROOTS+=("$SITE/$p"); done
bash scripts/fetch_corpus_sources.sh  # licenses listed in runs/sources/LICENSES.txt
ROOTS+=(runs/sources)
mkdir -p runs
.venv/bin/infill-train corpus "${ROOTS[@]}" --out runs/corpus-default --exclude networkx --exclude idlelib
# glibc's malloc fragments under the loop's ever-changing batch shapes (the trainer's memory grew
# by gigabytes an hour); jemalloc (Debian's libjemalloc2) holds it near 1 GB at the same speed.
JEMALLOC=$(ldconfig -p 2>/dev/null | grep -o '/[^ ]*libjemalloc\.so\.2$' | head -1 || true)
[ -n "$JEMALLOC" ] && export LD_PRELOAD="$JEMALLOC${LD_PRELOAD:+:$LD_PRELOAD}"
# A checkpoint of an interrupted sitting is resumed exactly; otherwise start from the shipped weights.
if [ -f runs/default-small/model.checkpoint/state.json ]; then START=(--resume); else START=(--init infill_lsp/default_model); fi
# v2 was annealed to 1e-4 at 28 M tokens; later sittings go on at half the first peak, with more
# infill windows so the model learns where spans end (what cursor completion needs), half of them
# told the length (fillers visible: the layout the server's length search decodes). No document-only
# phase (--dense-tokens 0): that is for runs from scratch; a model that already knows the span
# conventions gains nothing from it and loses them for a while (BENCHMARKS.md, session 12).
# Warm-up and floor are pinned to this run's own (train's defaults changed in session 13), so a
# sitting resumed with --resume keeps the schedule it started with.
.venv/bin/infill-train train --corpus runs/corpus-default "${START[@]}" --tokenizer infill_lsp/default_model \
    --out runs/default-small/model --batch 16 --lr 5e-4 --schedule-tokens 150000000 \
    --document-share 0.35 --dense-tokens 0 --known-length-share 0.5 --checkpoint-minutes 8 \
    --warmup-tokens 1000000 --min-lr-ratio 0.1 "$@"
