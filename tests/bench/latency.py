"""Latency through the real server: inline completion over stdio, cold start, resident memory.

Starts `python -m infill_lsp` as a separate process and drives it with pygls' language client
and VS Code's recorded capabilities, as an editor would: open a real Python file, then for each
request blank out the rest of one line (`didChange`) and ask for inline completion at the end of
its indentation. The canvas size is the server's `maxSpanTokens` setting. The server's own
forward-pass time (`infill/status` read before and after each request) splits a request's time
into the model's forward passes and everything else. Every request is then replayed in this
process on the same engine settings, to time the engine alone, and handed to any companion
measurement (the autoregressive baseline on the same prompt) right away, so both sides of every
ratio see the same load on a shared machine.
This module knows the LSP wire protocol and the server's settings, not the server's code.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient
from pytest_lsp import client_capabilities

from infill_lsp import regions
from infill_lsp.engine import Engine
from infill_lsp.model import InfillModel
from infill_lsp.options import parse_settings
from tests.bench.common import RunConfig, log, median, p95, rss_mib

SERVER = [sys.executable, "-m", "infill_lsp", "--log-level", "WARNING"]
READY_TIMEOUT = 300.0


@dataclass(frozen=True)
class Request:
    """One inline-completion request as sent, and what came back."""

    file: str  # label, e.g. "500 lines"
    span_tokens: int
    line: int
    prefix: str
    suffix: str
    target: str  # the line content that was blanked out
    seconds: float
    answer: str | None  # the first item's insertText (None: no item)
    variant: str = ""  # the compared server settings it ran under (see `variant_label`)
    forward_seconds: float = float("nan")  # the server's own forward passes, as it reports them


@dataclass
class Session:
    """A started server and what it told us."""

    client: LanguageClient
    started: float
    status: dict[str, Any]
    ready: asyncio.Event
    settings: dict[str, Any]

    @property
    def pid(self) -> int:
        server = self.client._server
        return server.pid if server is not None else -1


async def start(model: Path, settings: dict[str, Any], threads: int | None = None) -> Session:
    """Spawn the server, initialize it as VS Code would, return once `initialize` answered."""
    client = LanguageClient("infill-bench", "1")
    ready = asyncio.Event()
    session = Session(client, time.perf_counter(), {}, ready, {"modelPath": str(model), **settings})

    @client.feature("infill/status")
    def status(ls: LanguageClient, params: Any) -> None:
        state = getattr(params, "state", None) or (params or {}).get("state")
        session.status = {"state": state}
        if state in ("ready", "error"):
            ready.set()

    @client.feature(types.WORKSPACE_CONFIGURATION)
    def configuration(ls: LanguageClient, params: types.ConfigurationParams) -> list[Any]:
        return [session.settings for _ in params.items]

    @client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
    def progress_create(ls: LanguageClient, params: Any) -> None:
        return None

    for method in (types.WINDOW_SHOW_MESSAGE, types.WINDOW_LOG_MESSAGE, types.PROGRESS):

        @client.feature(method)
        def ignore(ls: LanguageClient, params: Any) -> None:
            return None

    env = dict(os.environ)
    if threads is not None:  # torch reads these at start-up
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    session.started = time.perf_counter()
    await client.start_io(*SERVER, env=env)
    await client.initialize_async(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            initialization_options={"infill": session.settings},
            root_uri=Path.cwd().as_uri(),
        )
    )
    client.initialized(types.InitializedParams())
    return session


async def wait_ready(session: Session) -> float:
    """Seconds from process start until the model is loaded; RuntimeError if it failed."""
    deadline = time.monotonic() + READY_TIMEOUT
    while not session.ready.is_set():
        answer = await session.client.protocol.send_request_async("infill/status", None)
        state = getattr(answer, "state", None) or answer.get("state")
        if state in ("ready", "error"):
            session.status = {"state": state, "message": getattr(answer, "message", "")}
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not load its model in time")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(session.ready.wait(), 0.1)
    if session.status.get("state") != "ready":
        raise RuntimeError(f"the server failed to load the model: {session.status}")
    return time.perf_counter() - session.started


async def stop(session: Session) -> None:
    """Shut the server down politely."""
    client = session.client
    try:
        await asyncio.wait_for(client.shutdown_async(None), 10)
        client.exit(None)
    finally:
        await client.stop()


async def configure(session: Session, settings: dict[str, Any]) -> None:
    session.settings.update(settings)
    session.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"infill": session.settings})
    )
    await session.client.protocol.send_request_async("infill/status", None)  # applied by now


async def forward_seconds(session: Session) -> float:
    """The seconds the server's model has spent in forward passes so far (`infill/status`)."""
    answer = await session.client.protocol.send_request_async("infill/status", None)
    seconds = getattr(answer, "forwardSeconds", None)
    return float(seconds if seconds is not None else answer.get("forwardSeconds", "nan"))


def open_document(session: Session, uri: str, text: str) -> None:
    session.client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=text
            )
        )
    )


def replace_text(session: Session, uri: str, version: int, text: str) -> None:
    session.client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


async def inline(session: Session, uri: str, line: int, character: int) -> str | None:
    """One automatic (as-you-type) inline completion; the first item's text or None."""
    result = await session.client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic
            ),
        )
    )
    items = result.items if isinstance(result, types.InlineCompletionList) else result or []
    if not items:
        return None
    text = items[0].insert_text
    return text if isinstance(text, str) else text.value


def cursor_lines(text: str, count: int, seed: int) -> list[int]:
    """`count` lines with code worth completing (at least 10 characters), seeded."""
    lines = text.split("\n")
    usable = [i for i, line in enumerate(lines) if len(line.strip()) >= 10 and i > 3]
    rng = random.Random(f"cursor:{seed}:{len(text)}")
    return [rng.choice(usable) for _ in range(count)]


def blank_line(text: str, line: int) -> tuple[str, int, int, str]:
    """Text with line `line` cut after its indentation: (text, cursor offset, column, removed)."""
    lines = text.split("\n")
    content = lines[line]
    indent = content[: len(content) - len(content.lstrip(" \t"))]
    lines[line] = indent
    blanked = "\n".join(lines)
    offset = sum(len(x) + 1 for x in lines[:line]) + len(indent)
    return blanked, offset, len(indent), content[len(indent) :]


Companion = Callable[[Request], dict[str, Any]]


def variant_label(variant: dict[str, Any]) -> str:
    """How a compared set of server settings is named in tables: `contextRefresh=4`."""
    return ", ".join(f"{key}={value}" for key, value in variant.items()) or "defaults"


def variant_settings(variant: dict[str, Any], variants: tuple[dict[str, Any], ...]) -> dict:
    """`variant` with every key another variant sets and it does not set back to the server's
    default (null), so variants never leak into each other."""
    keys = {key for other in variants for key in other}
    return {key: variant.get(key) for key in sorted(keys)}


async def measure(
    config: RunConfig, files: list[tuple[str, str]], companion: Companion
) -> tuple[list[Request], list[dict[str, Any]], dict[str, Any]]:
    """All latency requests with their companion measurements, cold start and memory."""
    settings = {"debounceMs": 0, "candidates": 1, "hints": False}
    session = await start(config.model, settings, config.threads)
    requests: list[Request] = []
    companions: list[dict[str, Any]] = []
    facts: dict[str, Any] = {}
    try:
        facts["ready_seconds"] = [await wait_ready(session)]
        # 1. Cold start: the first completion of a fresh server (the request's own time too:
        # a server that warms up at start answers it as fast as the later ones).
        _first_label, first_text = files[0]
        open_document(session, "file:///bench/cold.py", first_text)
        cold_line = cursor_lines(first_text, 1, config.seed)[0]
        cold_text, _, cold_column, _ = blank_line(first_text, cold_line)
        replace_text(session, "file:///bench/cold.py", 2, cold_text)
        asked = time.perf_counter()
        await inline(session, "file:///bench/cold.py", cold_line, cold_column)
        facts["first_completion_seconds"] = [time.perf_counter() - session.started]
        facts["first_request_seconds"] = [time.perf_counter() - asked]
        facts["rss_after_load_mib"] = rss_mib(session.pid)[0]
        # 2. Warm requests: every file, every canvas size, each line under every variant in
        # turn (so the variants share the machine's load alike).
        for index, (label, text) in enumerate(files):
            uri = f"file:///bench/file{index}.py"
            open_document(session, uri, text)
            version = 1
            for span in config.span_tokens:
                log(f"server: {label}, canvas {span}")
                for line in cursor_lines(text, config.requests, config.seed + span):
                    blanked, offset, column, removed = blank_line(text, line)
                    version += 1
                    replace_text(session, uri, version, blanked)
                    for variant in config.variants:
                        settings = variant_settings(variant, config.variants)
                        await configure(session, {"maxSpanTokens": span, **settings})
                        before = await forward_seconds(session)
                        started = time.perf_counter()
                        answer = await inline(session, uri, line, column)
                        elapsed = time.perf_counter() - started
                        spent = await forward_seconds(session) - before
                        requests.append(
                            Request(
                                label, span, line, blanked[:offset], blanked[offset:], removed,
                                elapsed, answer, variant_label(variant), spent,
                            )
                        )  # fmt: skip
                        companions.append(companion(requests[-1]))  # the server is idle now
        # 3. The cold request once more, now warm, under the settings it first ran with: what
        # the first completion paid beyond its own work.
        keys = {key for variant in config.variants for key in variant}
        await configure(session, {"maxSpanTokens": None, **dict.fromkeys(keys)})
        replace_text(session, "file:///bench/cold.py", 3, first_text)
        replace_text(session, "file:///bench/cold.py", 4, cold_text)
        asked = time.perf_counter()
        await inline(session, "file:///bench/cold.py", cold_line, cold_column)
        facts["first_request_warm_seconds"] = [time.perf_counter() - asked]
        facts["rss_mib"], facts["peak_rss_mib"] = rss_mib(session.pid)
    finally:
        await stop(session)
    # 4. More cold starts, each a fresh process.
    for _ in range(config.cold_starts - 1):
        extra = await start(config.model, settings, config.threads)
        try:
            facts["ready_seconds"].append(await wait_ready(extra))
            open_document(extra, "file:///bench/cold.py", first_text)
            replace_text(extra, "file:///bench/cold.py", 2, cold_text)
            asked = time.perf_counter()
            await inline(extra, "file:///bench/cold.py", cold_line, cold_column)
            facts["first_completion_seconds"].append(time.perf_counter() - extra.started)
            facts["first_request_seconds"].append(time.perf_counter() - asked)
        finally:
            await stop(extra)
    return requests, companions, facts


def replayer(model: InfillModel, variants: tuple[dict[str, Any], ...] = ({},)) -> Companion:
    """A companion that runs a request again on an in-process engine, forward passes timed,
    under the decode settings of the request's variant."""
    engine = Engine(model)
    overrides = {
        variant_label(variant): parse_settings(variant)[0].decode_overrides()
        for variant in variants
    }

    def replay(request: Request) -> dict[str, Any]:
        text = request.prefix + request.suffix
        single = regions.completion_scope(text, len(request.prefix), "python") == "line"
        options = replace(
            engine.options, max_span_tokens=request.span_tokens, **overrides[request.variant]
        )
        passes, seconds = model.meter.passes, model.meter.seconds
        started = time.perf_counter()
        [infill] = engine.infill(
            request.prefix, request.suffix, single_line=single, options=options
        )
        elapsed = time.perf_counter() - started
        return {
            "engine_seconds": elapsed,
            "forward_seconds": model.meter.seconds - seconds,
            "forward_calls": model.meter.passes - passes,
            "steps": infill.passes,
            "tokens": len(infill.confidences),
            "single_line": single,
        }

    return replay


def table(
    requests: list[Request], replays: list[dict[str, Any]], facts: dict[str, Any]
) -> dict[str, Any]:
    """Per (file, canvas, variant) cell: median, p95, steps, tokens per step and the share of
    time outside forwards."""
    rows = []
    cells: dict[tuple[str, int, str], list[int]] = {}
    for index, request in enumerate(requests):
        cells.setdefault((request.file, request.span_tokens, request.variant), []).append(index)
    for (label, span, variant), indices in cells.items():
        server = [requests[i].seconds for i in indices]
        forward = [replays[i]["forward_seconds"] for i in indices]
        engine = [replays[i]["engine_seconds"] for i in indices]
        # the server's share outside forwards from its own meter: one process, one request
        served = [requests[i].forward_seconds for i in indices]
        overhead = [max(0.0, s - f) / s for s, f in zip(server, served, strict=True) if s > 0]
        rows.append(
            {
                "file": label,
                "span_tokens": span,
                "variant": variant,
                "requests": len(indices),
                "median_ms": 1000 * median(server),
                "p95_ms": 1000 * p95(server),
                "engine_median_ms": 1000 * median(engine),
                "forward_median_ms": 1000 * median(forward),
                "steps_median": median([float(replays[i]["steps"]) for i in indices]),
                "tokens_per_step": sum(replays[i]["tokens"] for i in indices)
                / max(1, sum(replays[i]["steps"] for i in indices)),
                "overhead_share": median(overhead),
                "engine_overhead_share": median(
                    [max(0.0, e - f) / e for e, f in zip(engine, forward, strict=True) if e > 0]
                ),
                "empty": sum(requests[i].answer is None for i in indices),
                "exact": sum(
                    (requests[i].answer or "").strip() == requests[i].target.strip()
                    for i in indices
                ),
            }
        )
    return {
        "rows": rows,
        "cold_start_ready_s": median(facts["ready_seconds"]),
        "cold_start_first_completion_s": median(facts["first_completion_seconds"]),
        "first_request_ms": 1000 * median(facts["first_request_seconds"]),
        "first_request_warm_ms": 1000 * median(facts["first_request_warm_seconds"]),
        "cold_starts": len(facts["first_completion_seconds"]),
        "rss_after_load_mib": facts["rss_after_load_mib"],
        "rss_mib": facts["rss_mib"],
        "peak_rss_mib": facts["peak_rss_mib"],
    }


def run(
    config: RunConfig,
    model: InfillModel,
    files: list[tuple[str, str]],
    extra: Companion | None = None,
) -> tuple[dict[str, Any], list[Request], list[dict[str, Any]]]:
    """Measure through the server with the in-process replay (and `extra`) after each request.

    Returns the summary table, the requests, and each request's companion measurements.
    """
    replay = replayer(model, config.variants)

    def companion(request: Request) -> dict[str, Any]:
        found = replay(request)
        if extra is not None:
            found.update(extra(request))
        return found

    requests, companions, facts = asyncio.run(measure(config, files, companion))
    return table(requests, companions, facts), requests, companions
