"""`python -m tests.bench`: run the benchmarks of issue 7 and write a Markdown report.

    python -m tests.bench all --model DIR --baseline DIR [--corpus DIR] [--out DIR]
    python -m tests.bench all --quick            # CI smoke test on a tiny random model
    python -m tests.bench snapshot --checkpoint CKPT --tokenizer DIR --out DIR
    python -m tests.bench efficiency [--quick]  # training recipes at equal CPU time

Sections: latency (through the real server), versus (the autoregressive baseline), sweep (steps
versus quality, with a PNG), training (tokens/s and FLOP/s). `all` runs every one in one
process, so every ratio compares figures measured side by side in the same run. Results land in
--out as results.json, report.md and steps_quality.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

# The bench runs the server, an in-process replay and the autoregressive baseline on the same
# cores by turns: its own OpenMP threads must sleep between turns as the server's do (the server
# sets PASSIVE), or they spin on the server's cores (500-line median 125 ms instead of 107), and
# the baseline runs under the server's policy. Read once, when torch loads: set before it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

from tests.bench.common import RunConfig, load_heldout, log, machine, python_files_by_lines

SECTIONS = ("latency", "versus", "sweep", "training")
DEFAULT_CORPUS = Path("runs/corpus-default")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subs = parser.add_subparsers(dest="command", required=True)
    for name in ("all", *SECTIONS):
        sub = subs.add_parser(name, help="run every section" if name == "all" else f"run {name}")
        sub.add_argument("--quick", action="store_true", help="CI smoke test (tiny sizes)")
        sub.add_argument("--model", help="diffusion model directory (default: embedded)")
        sub.add_argument("--baseline", help="autoregressive baseline directory")
        sub.add_argument("--corpus", help="corpus whose held-out split to use")
        sub.add_argument("--out", default="runs/bench/results", help="where results go")
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--requests", type=int, help="requests per server table cell")
        sub.add_argument("--spans", type=int, help="held-out spans per kind")
        sub.add_argument("--sweep-spans", type=int, help="spans per steps-versus-quality point")
        sub.add_argument("--threads", type=int, help="torch threads, here and in the server")
        sub.add_argument("--lines", help="latency: file sizes in lines, e.g. 500 or 100,500")
        sub.add_argument("--canvas", help="latency: canvas sizes in tokens, e.g. 32 or 8,32")
        sub.add_argument("--cold-starts", type=int, help="latency: fresh servers started")
        sub.add_argument(
            "--variants",
            help="latency: server settings compared line by line, a JSON list such as "
            '\'[{"contextRefresh": 1}, {"contextRefresh": 4}]\'',
        )
    efficiency = subs.add_parser(
        "efficiency", help="training recipes at equal CPU time (not part of `all`)"
    )
    efficiency.add_argument("--quick", action="store_true", help="CI smoke test (about a minute)")
    efficiency.add_argument("--corpus", help="corpus to train on and measure (held-out split)")
    efficiency.add_argument("--out", default="runs/bench/efficiency", help="where results go")
    efficiency.add_argument("--cpu-minutes", type=float, help="training budget per recipe")
    efficiency.add_argument("--slice-seconds", type=float, help="CPU seconds per turn")
    efficiency.add_argument("--recipes", help="comma-separated recipe names (current is added)")
    efficiency.add_argument("--threads", type=int, help="torch threads")
    efficiency.add_argument("--batch", type=int, help="windows per optimizer step")
    efficiency.add_argument("--context", type=int, help="tokens per training window")
    efficiency.add_argument("--lr", type=float, help="AdamW's peak learning rate")
    efficiency.add_argument("--warmup-tokens", type=int, help="tokens of linear warm-up")
    efficiency.add_argument("--marks", help="shares of the budget to measure at, e.g. 0.25,0.5,1")
    efficiency.add_argument("--against", help="the recipe others are measured against (current)")
    efficiency.add_argument("--eval-context", type=int, help="tokens per held-out window (256)")
    snapshot = subs.add_parser("snapshot", help="turn a training checkpoint into a model dir")
    snapshot.add_argument("--checkpoint", required=True, help="a *.checkpoint directory")
    snapshot.add_argument("--tokenizer", required=True)
    snapshot.add_argument("--size", default="small")
    snapshot.add_argument("--out", required=True)
    return parser


def snapshot(args: argparse.Namespace) -> Path:
    """A loadable model directory from a diffusion checkpoint (weights + state.json)."""
    from safetensors.torch import load_file

    from infill_lsp.model import save_model
    from infill_train.sizes import build_network
    from infill_train.tokenizer import load_tokenizer

    checkpoint = Path(args.checkpoint)
    meta = json.loads((checkpoint / "state.json").read_text())
    tokenizer = load_tokenizer(Path(args.tokenizer))
    context = meta["config"]["objective"]["context"]
    network = build_network(args.size, tokenizer, max_positions=max(1024, context))
    weights = load_file(str(checkpoint / "weights.safetensors"))
    missing, unexpected = network.load_state_dict(weights, strict=False)
    if [k for k in missing if not k.endswith("decoder.weight")] or unexpected:
        raise SystemExit(f"{checkpoint} does not fit size {args.size}")
    network.eval()
    state = meta["state"]
    recipe = {
        "size": args.size,
        "snapshot_of": str(checkpoint),
        "steps": state["step"],
        "tokens_seen": state["tokens"],
        "train_seconds": state["seconds"],
        "final_loss": state["loss"],
    }
    return save_model(Path(args.out), network, tokenizer, {"recipe": recipe})


def quick_baseline(model: Path, out: Path) -> Path:
    """A tiny autoregressive baseline on `model`'s tokenizer, trained for a few steps (CI)."""
    from infill_train.baseline import FIM, build_baseline, fim_tokenizer
    from infill_train.objective import ObjectiveConfig
    from infill_train.tokenizer import load_tokenizer
    from infill_train.train import TrainConfig, train
    from tests.tiny_model import SAMPLE_TEXTS

    if (out / "model.safetensors").is_file():
        return out
    tokenizer = fim_tokenizer(load_tokenizer(model))
    torch.manual_seed(0)
    network = build_baseline(tokenizer, "test", context=128)
    config = TrainConfig(
        size="test", batch=4, max_tokens=2000, warmup_tokens=100, checkpoint_minutes=1e9,
        objective=ObjectiveConfig(context=128, max_span_tokens=32, chars_per_window=400),
    )  # fmt: skip
    texts = SAMPLE_TEXTS * 2
    train(network, tokenizer, texts, ["python"] * len(texts), config, out,
          progress=False, objective=FIM)  # fmt: skip
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the requested sections; write results.json, report.md and the plot."""
    from infill_lsp.model import DEFAULT_MODEL_DIR, load_model
    from infill_train.baseline import Baseline
    from tests.bench import latency, report, sweep, throughput, versus

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_dir = Path(args.model) if args.model else DEFAULT_MODEL_DIR
    baseline_dir = Path(args.baseline) if args.baseline else None
    if args.quick and not args.model:
        from tests.tiny_model import build_tiny_model

        model_dir = build_tiny_model(out / "tiny-model")
    if args.quick and baseline_dir is None:
        baseline_dir = quick_baseline(model_dir, out / "tiny-baseline")
    corpus = Path(args.corpus) if args.corpus else None
    if corpus is None and not args.quick and DEFAULT_CORPUS.is_dir():
        corpus = DEFAULT_CORPUS
    settings = {"model": model_dir, "baseline": baseline_dir, "corpus": corpus, "out": out,
                "seed": args.seed}  # fmt: skip
    config = RunConfig.quick_mode(**settings) if args.quick else RunConfig(**settings)
    for name in ("requests", "spans", "sweep_spans", "threads", "cold_starts"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    if args.lines:
        config.file_lines = tuple(int(x) for x in args.lines.split(","))
    if args.canvas:
        config.span_tokens = tuple(int(x) for x in args.canvas.split(","))
    if args.variants:
        config.variants = tuple(json.loads(args.variants))
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    sections = SECTIONS if args.command == "all" else (args.command,)
    started = time.monotonic()
    heldout = load_heldout(config.corpus)
    model = load_model(model_dir)
    baseline = Baseline(baseline_dir) if baseline_dir is not None else None
    results: dict[str, Any] = {
        "run": {
            "command": " ".join(["python -m tests.bench", *args.argv]),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "model": str(model_dir),
            "model_tokens_seen": model.metadata.get("recipe", {}).get("tokens_seen"),
            "model_parameters": sum(p.numel() for p in model.network.parameters()),
            "baseline": str(baseline_dir),
            "baseline_tokens_seen": _baseline_tokens(baseline_dir),
            "baseline_parameters": baseline.parameters if baseline else None,
            "heldout": heldout.source,
            "threads": config.threads or torch.get_num_threads(),
            **machine(),
        }
    }
    log(f"held-out files: {len(heldout.texts)} from {heldout.source}")

    def save() -> None:  # after every section, so a long run keeps what it measured
        results["run"]["seconds"] = round(time.monotonic() - started, 1)
        (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        (out / "report.md").write_text(report.render(results))

    if "latency" in sections or "versus" in sections:
        files = [
            (f"{text.count(chr(10))} lines ({Path(path).name})", text)
            for path, text in python_files_by_lines(heldout, config.file_lines)
        ]
        extra = versus.companion(baseline) if baseline is not None else None
        log("latency through the server ...")
        table, requests, companions = latency.run(config, model, files, extra)
        results["latency"] = table
        if baseline is not None:
            results["versus_latency"] = versus.latency_ratios(requests, companions)
        save()
    if "versus" in sections and baseline is not None:
        log("exact match against the baseline ...")
        results["versus_quality"] = versus.quality(config, model, baseline, heldout)
        save()
    if "sweep" in sections:
        log("steps versus quality ...")
        rows = sweep.run(config, model, heldout)
        results["sweep"] = rows
        results["sweep_choice"] = sweep.choose_defaults(rows)
        title = (
            f"{model_dir.name}: single-line held-out spans, canvas 32 ({rows[0]['spans']} spans)"
        )
        sweep.plot(rows, out / "steps_quality.png", title)
        save()
    if "training" in sections:
        log("training throughput ...")
        results["throughput"] = throughput.run(config, model.tokenizer, heldout)
    save()
    log(f"report written to {out / 'report.md'}")
    return results


def _baseline_tokens(directory: Path | None) -> int | None:
    if directory is None or not (directory / "infill.json").is_file():
        return None
    recipe = json.loads((directory / "infill.json").read_text()).get("recipe", {})
    return recipe.get("tokens_seen")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv
    if args.command == "snapshot":
        print(snapshot(args))
        return 0
    if args.command == "efficiency":
        from tests.bench import efficiency

        efficiency.main(args)
        return 0
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
