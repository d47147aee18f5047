"""The `infill-lsp` command line: the language server (default) and `infill-lsp fill` for one file.

`fill` reads a file, turns 1-based line:column positions (columns count characters, as editors
show them) into a span, runs the engine and prints the result. Expected problems (bad positions,
unreadable files, unusable model directories) print one message on stderr and exit with code 2.
The server itself lives in `lsp/`; it is imported only when it is started.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from infill_lsp import __version__
from infill_lsp.errors import InfillError, InputError, ModelError
from infill_lsp.options import LENGTH_RULES

if TYPE_CHECKING:
    from infill_lsp.engine import Infill, Job
    from infill_lsp.model import InfillModel

T = TypeVar("T")

USAGE_ERROR = 2
LINE_BREAK = re.compile(r"\r\n|\r|\n")
MAX_FILE_BYTES = 64 * 1024 * 1024  # refuse to even read more than this


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: server options at the top, `fill` as a subcommand."""
    parser = argparse.ArgumentParser(
        prog="infill-lsp",
        description="A language server that fills, rewrites and revises code with a "
        "masked-diffusion model. Without a subcommand it serves LSP on stdio.",
    )
    parser.add_argument("--version", action="version", version=f"infill-lsp {__version__}")
    add_server_arguments(parser)
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="run the language server (the default)")
    add_server_arguments(serve, suppress=True)
    fill = commands.add_parser("fill", help="fill, rewrite or revise a span of one file")
    fill.add_argument("path", help="the file to read (UTF-8)")
    where = fill.add_mutually_exclusive_group(required=True)
    where.add_argument("--at", metavar="LINE:COL", help="cursor to infill at (1-based)")
    where.add_argument(
        "--range", metavar="L:C-L:C", help="span to rewrite or revise (1-based, end exclusive)"
    )
    fill.add_argument(
        "--mode",
        choices=["infill", "rewrite", "revise"],
        help="infill (default at a cursor), rewrite (default for a range) or revise",
    )
    fill.add_argument("--model", metavar="DIR", help="model directory (default: the embedded one)")
    fill.add_argument("--steps", type=int, help="denoising step budget (default 16)")
    fill.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    fill.add_argument("--threads", type=int, default=0, help="CPU threads (default: all cores)")
    fill.add_argument(
        "--length",
        choices=LENGTH_RULES,
        help="how an infill's length is found (default: the model's own way, search for most)",
    )
    fill.add_argument(
        "--lengths-decoded",
        type=int,
        help="searching: the best-ranked lengths decoded in full and compared (default: 1)",
    )
    fill.add_argument("--json", action="store_true", help="print the result as JSON")
    fill.add_argument(
        "--show-steps", action="store_true", help="print the canvas after every step to stderr"
    )
    return parser


class _Unservable(argparse.Action):
    """A transport flag editors' clients send that this server cannot serve: one line, exit 2."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        parser.exit(
            USAGE_ERROR,
            f"infill-lsp: {self.option_strings[0]} is not supported: the server speaks LSP "
            "on stdio (the default, or --stdio) or TCP (--tcp HOST:PORT)\n",
        )


def add_server_arguments(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    """--tcp, --log-file and --log-level, accepted before or after `serve`, and the transport
    flags LSP clients append (vscode-languageclient adds --stdio to the command it runs)."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--tcp", metavar="HOST:PORT", default=default, help="serve on TCP")
    hidden = argparse.SUPPRESS  # sent by clients, left out of --help and of the namespace
    parser.add_argument("--stdio", action="store_true", default=hidden, help=hidden)
    parser.add_argument("--clientProcessId", default=hidden, help=hidden)
    parser.add_argument("--node-ipc", action=_Unservable, nargs=0, help=hidden)
    parser.add_argument("--socket", action=_Unservable, help=hidden)
    parser.add_argument("--pipe", action=_Unservable, help=hidden)
    parser.add_argument("--log-file", metavar="FILE", default=default, help="log to this file")
    parser.add_argument(
        "--log-level",
        default=argparse.SUPPRESS if suppress else "INFO",
        help="DEBUG, INFO, WARNING or ERROR (default INFO)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `infill-lsp` script; returns the exit code."""
    # Idle OpenMP threads sleep rather than spin (read once, when torch loads): on cores that
    # something else keeps busy, spinning threads made every kernel wait for a descheduled peer
    # (a revise took 10 s instead of 1.5 s on two busy cores). The user's own value wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args = build_parser().parse_args(argv)
    if args.command == "fill":
        try:
            return fill(args)
        except InfillError as error:
            print(f"infill-lsp: {error}", file=sys.stderr)
            return USAGE_ERROR
        except KeyboardInterrupt:
            return 130
    from infill_lsp.lsp.serve import run_server

    return run_server(args.tcp, args.log_file, args.log_level)


def fill(args: argparse.Namespace) -> int:
    """Run one infill, rewrite or revise on a file and print it."""
    text = read_text(Path(args.path))
    if args.at is not None:
        start = end = offset_of(text, args.at, "--at")
        mode = args.mode or "infill"
        if mode != "infill":
            raise InputError(f"--mode {mode} needs a --range to work on, not a cursor")
    else:
        start, end = range_of(text, args.range)
        mode = args.mode or "rewrite"
    if args.steps is not None and args.steps < 1:
        raise InputError(f"--steps must be at least 1, got {args.steps}")
    if args.threads < 0:
        raise InputError(f"--threads must be 0 (all cores) or more, got {args.threads}")

    from dataclasses import replace

    from infill_lsp.engine import Engine
    from infill_lsp.model import use_threads

    use_threads(args.threads)
    engine = Engine(load(args.model))
    # The model's own decode defaults (Dream and LLaDA end a span with fillers), the options
    # the user gave on top, as the server does with settings.
    given = {"steps": args.steps, "length": args.length, "lengths_decoded": args.lengths_decoded}
    options = replace(
        engine.options, seed=args.seed, **{k: v for k, v in given.items() if v is not None}
    )
    prefix, region, suffix = text[:start], text[start:end], text[end:]
    show = args.show_steps
    best: Infill
    if mode == "infill":
        best = finish(engine.infill_job(prefix, suffix, options=options), show)[0]
    elif mode == "rewrite":
        best = finish(engine.rewrite_job(prefix, region, suffix, options=options), show)[0]
    else:
        best = finish(engine.revise_job(prefix, region, suffix, options=options), show)
    if args.json:
        print(
            json.dumps(
                {
                    "mode": mode,
                    "path": str(args.path),
                    "start": position_of(text, start),
                    "end": position_of(text, end),
                    "text": best.text,
                    "confidences": [round(c, 4) for c in best.confidences],
                    "steps": best.steps,
                    "forward_passes": best.passes,
                },
                ensure_ascii=False,
            )
        )
    else:
        sys.stdout.write(best.text if best.text.endswith("\n") else best.text + "\n")
    return 0


def finish(job: Job[T], show_steps: bool) -> T:
    """Run a job to its end, printing each step's canvas to stderr when asked."""
    from infill_lsp.jobs import run

    return run(_echo(job) if show_steps else job)


def _echo(job: Job[T]) -> Job[T]:
    """Pass a job through, printing each step's canvas to stderr."""
    while True:
        try:
            progress = next(job)
        except StopIteration as stop:
            result: T = stop.value
            return result
        print(f"--- step {progress.step}/{progress.total}", file=sys.stderr)
        print(progress.canvas, file=sys.stderr, flush=True)
        yield progress


def load(directory: str | None) -> InfillModel:
    """Load the model directory, or the embedded default with a hint when it is missing."""
    if directory is not None and not Path(directory).expanduser().exists():
        raise ModelError(f"model directory {directory} does not exist")  # before importing torch
    from infill_lsp.model import DEFAULT_MODEL_DIR, load_model

    if directory is None and not DEFAULT_MODEL_DIR.exists():
        raise ModelError(
            f"the embedded default model is not installed ({DEFAULT_MODEL_DIR} does not exist); "
            "pass a model directory with --model DIR"
        )
    return load_model(directory)


def read_text(path: Path) -> str:
    """The file's text; InputError when it is missing, a directory, huge or not UTF-8."""
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a file")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(f"{path} is {size} bytes; files over {MAX_FILE_BYTES} are refused")
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror or error}") from error
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            f"{path} is not UTF-8 text (byte {error.start} is {data[error.start]:#04x})"
        ) from error


def line_starts(text: str) -> list[int]:
    """Offset of the first character of every line (line breaks: \\n, \\r\\n, \\r)."""
    return [0] + [match.end() for match in LINE_BREAK.finditer(text)]


def offset_of(text: str, spec: str, flag: str, starts: list[int] | None = None) -> int:
    """The str offset of a 1-based LINE:COL; InputError when malformed or out of the file."""
    match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", spec)
    if match is None:
        raise InputError(f"{flag} {spec!r}: expected LINE:COL, e.g. 12:5 (1-based)")
    line, col = int(match.group(1)), int(match.group(2))
    starts = line_starts(text) if starts is None else starts
    if not 1 <= line <= len(starts):
        raise InputError(f"{flag} {spec}: line {line} is outside the file (1..{len(starts)})")
    begin = starts[line - 1]
    end = starts[line] if line < len(starts) else len(text)
    content = text[begin:end].rstrip("\r\n")
    if not 1 <= col <= len(content) + 1:
        raise InputError(
            f"{flag} {spec}: column {col} is outside line {line} (1..{len(content) + 1})"
        )
    return begin + col - 1


def range_of(text: str, spec: str) -> tuple[int, int]:
    """The (start, end) offsets of a 1-based L:C-L:C range; InputError when reversed or bad."""
    parts = spec.split("-")
    if len(parts) != 2:
        raise InputError(f"--range {spec!r}: expected L:C-L:C, e.g. 3:1-5:10 (1-based)")
    starts = line_starts(text)
    start = offset_of(text, parts[0], "--range", starts)
    end = offset_of(text, parts[1], "--range", starts)
    if end < start:
        raise InputError(f"--range {spec}: the end comes before the start")
    return start, end


def position_of(text: str, offset: int) -> dict[str, int]:
    """The 1-based line and column of a str offset."""
    line = len(LINE_BREAK.findall(text[:offset])) + 1
    begin = max(text.rfind("\n", 0, offset), text.rfind("\r", 0, offset)) + 1
    return {"line": line, "col": offset - begin + 1}
