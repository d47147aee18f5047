"""Memory and latency of each pretrained model family, on tiny random models built here.

Builds the RoBERTa, ModernBERT, Dream and LLaDA folders of `tests.family_models`, loads each
through `load_model` and times one infill with the family's default decode options, printing
the parameters, the weights' bytes, the process's resident memory after loading (torch and
transformers included), the load time and the median infill latency. The text is noise (random
weights): this measures the machinery, not quality.

    .venv/bin/python scripts/measure_families.py [--device cpu] [--dtype auto] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infill_lsp.engine import Engine
from infill_lsp.model import load_model
from tests.family_models import build_dream, build_llada, build_modernbert, build_roberta

PREFIX = "def add(a, b):\n    return "
SUFFIX = "\n\n\nprint(add(1, 2))\n"


def rss_mib() -> float:
    """The process's resident memory now (Linux)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--dtype", default="auto", help="auto, float32 or bfloat16")
    parser.add_argument("--runs", type=int, default=5, help="timed infills per family")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        folders = {
            "masked-lm (RoBERTa)": build_roberta(base / "roberta"),
            "masked-lm (ModernBERT)": build_modernbert(base / "modernbert"),
            "dream": build_dream(base / "dream"),
            "llada": build_llada(base / "llada")[0],
        }
        print("| family | parameters | weights | process memory | load | infill (median) |")
        print("|---|---|---|---|---|---|")
        for name, folder in folders.items():
            started = time.perf_counter()
            model = load_model(folder, device=args.device, dtype=args.dtype)
            loaded = time.perf_counter() - started
            resident = rss_mib()
            engine = Engine(model)
            engine.infill(PREFIX, SUFFIX)  # warm-up
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                engine.infill(PREFIX, SUFFIX)
                times.append(time.perf_counter() - started)
            count = sum(p.numel() for p in model.network.parameters())
            size = sum(p.numel() * p.element_size() for p in model.network.parameters())
            print(
                f"| {name} | {count / 1e3:.0f} k | {size / 1024:.0f} KiB | {resident:.0f} MiB | "
                f"{loaded:.2f} s | {statistics.median(times) * 1000:.0f} ms "
                f"({engine.options.length}, {engine.options.steps} steps) |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
