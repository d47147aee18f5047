"""Time inline completions through the real server: median and p95 over a 500-line Python file.

Starts `python -m infill_lsp` over stdio, opens a 500-line file made of this repository's own
Python sources, waits for the model, then asks for ghost text at seeded random cursors (end of
a line or inside it) and times each request from send to answer, as an editor would see it.

    .venv/bin/python scripts/bench_server.py --model infill_lsp/default_model --requests 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

ROOT = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model", help="model directory (default: the embedded default model)")
    parser.add_argument("--requests", type=int, default=40, help="timed requests (default 40)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests first (default 3)")
    parser.add_argument("--lines", type=int, default=500, help="lines in the file (default 500)")
    parser.add_argument(
        "--trigger",
        choices=["automatic", "invoked"],
        default="automatic",
        help="automatic: one candidate after the debounce (typing); invoked: several",
    )
    parser.add_argument("--debounce-ms", type=int, default=75, help="server debounce (default 75)")
    parser.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    parser.add_argument("--seed", type=int, default=0, help="cursor sampling seed (default 0)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser.parse_args()


def python_file(lines: int) -> str:
    """`lines` lines of real Python: this repository's sources, concatenated."""
    out: list[str] = []
    for path in sorted((ROOT / "infill_lsp").glob("*.py")):
        out += path.read_text(encoding="utf-8").splitlines()
        if len(out) >= lines:
            break
    return "\n".join(out[:lines]) + "\n"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def bench(args: argparse.Namespace) -> dict[str, object]:
    client = LanguageClient("bench", "0")
    await client.start_io(sys.executable, "-m", "infill_lsp", "--log-level", "WARNING")
    settings: dict[str, object] = {"debounceMs": args.debounce_ms}
    if args.model:
        settings["modelPath"] = str(Path(args.model).resolve())
    if args.steps:
        settings["steps"] = args.steps
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(), initialization_options={"infill": settings}
        )
    )
    client.initialized(types.InitializedParams())
    started = time.monotonic()
    while True:
        status = await client.protocol.send_request_async("infill/status", None)
        if status.state != "loading":
            break
        await asyncio.sleep(0.1)
    if status.state != "ready":
        raise SystemExit(f"the model did not load: {status.message}")
    load_seconds = time.monotonic() - started
    text = python_file(args.lines)
    uri = "file:///bench/file.py"
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=text
            )
        )
    )
    lines = text.split("\n")
    rng = random.Random(args.seed)
    kind = (
        types.InlineCompletionTriggerKind.Invoked
        if args.trigger == "invoked"
        else types.InlineCompletionTriggerKind.Automatic
    )
    times: list[float] = []
    answered = 0
    for index in range(args.warmup + args.requests):
        line = rng.randrange(len(lines) - 1)
        column = len(lines[line]) if rng.random() < 0.6 else rng.randrange(len(lines[line]) + 1)
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=column),  # ASCII file: any encoding
            context=types.InlineCompletionContext(trigger_kind=kind),
        )
        sent = time.perf_counter()
        result = await client.text_document_inline_completion_async(params)
        elapsed = time.perf_counter() - sent
        if index >= args.warmup:
            times.append(elapsed * 1000)
            items = result.items if isinstance(result, types.InlineCompletionList) else result
            answered += bool(items)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return {
        "model": status.model,
        "lines": args.lines,
        "trigger": args.trigger,
        "debounce_ms": args.debounce_ms,
        "requests": len(times),
        "with_items": answered,
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(percentile(times, 0.95), 1),
        "max_ms": round(max(times), 1),
        "model_load_s": round(load_seconds, 2),
    }


def main() -> None:
    args = parse_args()
    result = asyncio.run(bench(args))
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>14}: {value}")


if __name__ == "__main__":
    main()
