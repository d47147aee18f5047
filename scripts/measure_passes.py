"""Forward passes per infilled token: the threshold rule versus one token per step.

Masks whole lines of Python files (length unknown to the model: an oversized canvas with
fillers), infills each with both rules through the engine, and prints passes per generated
token, passes per line and exact-match rate. One token per step is the threshold rule with
threshold 1.0 (no confidence exceeds it, so exactly one position is committed per step).

    .venv/bin/python scripts/measure_passes.py --model DIR [--files a.py b.py] [--samples 40]
"""

from __future__ import annotations

import argparse
import random
import sysconfig
import time
from dataclasses import replace
from pathlib import Path

from infill_lsp.engine import DecodeOptions, Engine
from infill_lsp.model import load_model

DEFAULT_FILES = ["textwrap.py", "shlex.py", "fnmatch.py", "colorsys.py"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model directory (default: the embedded one)")
    parser.add_argument("--files", nargs="*", help="Python files to cut lines from (stdlib)")
    parser.add_argument("--samples", type=int, default=40, help="lines to infill")
    parser.add_argument("--max-span-tokens", type=int, default=24, help="canvas size")
    parser.add_argument("--context-tokens", type=int, default=256, help="window size")
    parser.add_argument("--threshold", type=float, default=0.9, help="threshold rule's tau")
    parser.add_argument("--seed", type=int, default=0, help="which lines are sampled")
    return parser.parse_args()


def sample_lines(files: list[Path], count: int, seed: int) -> list[tuple[str, str, str]]:
    """(prefix, line, suffix) for `count` non-blank lines drawn from the files."""
    pool = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        offset = 0
        for line in text.splitlines(keepends=True):
            body = line.rstrip("\n")
            if body.strip() and len(body) <= 80:
                pool.append((text[:offset], body, text[offset + len(body) :]))
            offset += len(line)
    return random.Random(seed).sample(pool, min(count, len(pool)))


def measure(engine: Engine, samples: list[tuple[str, str, str]], options: DecodeOptions) -> dict:
    """Passes, generated tokens, exact matches and time over all samples with one rule."""
    passes = tokens = exact = 0
    began = time.monotonic()
    for prefix, line, suffix in samples:
        [best] = engine.infill(prefix, suffix, single_line=True, options=options)
        passes += best.steps
        tokens += len(best.confidences)
        exact += best.text.strip() == line.strip()
    seconds = time.monotonic() - began
    return {
        "passes": passes,
        "tokens": tokens,
        "passes_per_token": passes / max(tokens, 1),
        "passes_per_line": passes / len(samples),
        "exact": exact / len(samples),
        "seconds_per_line": seconds / len(samples),
    }


def main() -> None:
    args = parse_args()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = [Path(f) for f in args.files] if args.files else [stdlib / f for f in DEFAULT_FILES]
    samples = sample_lines(files, args.samples, args.seed)
    engine = Engine(load_model(args.model))
    base = DecodeOptions(
        steps=args.max_span_tokens,  # enough for one token per step to fill the whole canvas
        max_span_tokens=args.max_span_tokens,
        context_tokens=args.context_tokens,
        threshold=args.threshold,
    )
    print(f"model {engine.model.directory}, {len(samples)} lines, canvas {args.max_span_tokens}")
    for name, options in [
        (f"threshold {args.threshold}", base),
        ("one token per step", replace(base, threshold=1.0)),
    ]:
        r = measure(engine, samples, options)
        print(
            f"{name:>20}: {r['passes_per_token']:.3f} passes/token, "
            f"{r['passes_per_line']:.2f} passes/line, {r['tokens']} tokens, "
            f"exact {r['exact']:.0%}, {r['seconds_per_line'] * 1000:.0f} ms/line"
        )


if __name__ == "__main__":
    main()
