"""Time ghost text as a Neovim user sees it: from the last keystroke of a typing burst to the
ghost text on screen, with 3 buffers open, in a real headless Neovim driving the real server.

A parent `nvim -l` drives a child `nvim --embed --headless` (the plugin on its runtimepath, no
setup(): the README's install) through RPC, like a UI typing keys: each burst types a line a
character at a time with pauses between words (each pause long enough for a request), then waits
for ghost text. The child records, on its own clock, the last keystroke (TextChangedI), the first
frame with ghost text after it, and every inlineCompletion request (LspRequest): how many were
sent, for which buffer, and how many were still unanswered (the queue) after each burst.

    nice -n 10 .venv/bin/python scripts/bench_neovim_typing.py            # embedded model
    .venv/bin/python scripts/bench_neovim_typing.py --model DIR --json

Not a timed test: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The 3 open buffers (copies); the last is typed in.
FILES = [
    ROOT / "scripts" / "bench_server.py",
    ROOT / "scripts" / "measure_passes.py",
    ROOT / "tests" / "tiny_model.py",
]
LINES = [
    "result = compute(values, limit)",
    "for name, item in inventory.items():",
    "total = sum(len(name) for name in names)",
    "host = os.environ.get(config, default)",
    "print(f'{name}: {total}')",
    "items = sorted(values, key=len)",
    "if total > limit and not names:",
]

DRIVER = Path(__file__).with_suffix(".lua")  # the parent Neovim's script


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model", help="model directory (default: the embedded default model)")
    parser.add_argument("--nvim", default=str(ROOT / ".venv" / "bin" / "nvim"))
    parser.add_argument(
        "--code",
        default=str(ROOT),
        help="the infill-lsp tree whose server and plugin run (default: this one), e.g. an "
        "unpacked `git archive` of an older commit",
    )
    parser.add_argument("--bursts", type=int, default=len(LINES), help="timed bursts")
    parser.add_argument("--char-ms", type=int, default=70, help="between keystrokes (default 70)")
    parser.add_argument("--pause-ms", type=int, default=450, help="between words (default 450)")
    parser.add_argument("--timeout-s", type=float, default=120, help="per burst (default 120)")
    parser.add_argument("--log-file", help="server log (default: none)")
    parser.add_argument("--json", action="store_true", help="print the per-burst results as JSON")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-nvim-"))
    try:
        for path in FILES:
            shutil.copy(path, workdir / path.name)
        code = Path(args.code).resolve()
        cmd = [sys.executable, "-m", "infill_lsp"]
        if args.log_file:
            cmd += ["--log-file", str(Path(args.log_file).resolve())]
        bench_args = {
            "workdir": str(workdir),
            "plugin": str(code / "editor-clients" / "neovim"),
            "cmd": cmd,
            "model": str(Path(args.model).resolve()) if args.model else None,
            "files": [path.name for path in FILES],
            "lines": [LINES[0], *(LINES * 4)[: args.bursts]],  # the first is a warm-up
            "char_ms": args.char_ms,
            "pause_ms": args.pause_ms,
            "timeout_ms": int(args.timeout_s * 1000),
        }
        done = subprocess.run(
            [args.nvim, "--headless", "--clean", "-l", str(DRIVER)],
            env={**_env(), "BENCH_ARGS": json.dumps(bench_args), "PYTHONPATH": str(code)},
            capture_output=True,
            text=True,
            timeout=args.timeout_s * (args.bursts + 2) * 2 + 600,
        )
        if done.returncode != 0 or not done.stdout.strip():
            sys.stderr.write(done.stdout + done.stderr)
            return 1
        results = json.loads(done.stdout.strip().splitlines()[-1])[1:]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=1))
    shown = [r["latency_ms"] for r in results if r["latency_ms"] is not None]
    print(f"bursts: {len(results)}, ghost text shown after {len(shown)}")
    if shown:
        print(
            f"last keystroke -> ghost text: median {statistics.median(shown):.0f} ms, "
            f"max {max(shown):.0f} ms ({', '.join(f'{v:.0f}' for v in shown)})"
        )
    print(
        "inlineCompletion requests per burst: "
        + ", ".join(str(r["sent"]) for r in results)
        + f"; for a buffer other than the current: {sum(r['other_buf'] for r in results)}"
    )
    print(
        "unanswered requests, most at once per burst: "
        + ", ".join(str(r["max_pending"]) for r in results)
        + "; when the ghost text showed: "
        + ", ".join(str(r["pending_at_ghost"]) for r in results)
        + "; drain after it (ms): "
        + ", ".join(str(r["drain_ms"]) for r in results)
    )
    return 0


def _env() -> dict[str, str]:
    """This environment without a parent Neovim's variables, XDG folders left as they are."""
    import os

    env = dict(os.environ)
    env.pop("NVIM", None)
    env.pop("VIMINIT", None)
    return env


if __name__ == "__main__":
    sys.exit(main())
