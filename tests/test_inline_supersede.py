"""Typing must not build a queue in front of the model: the real server over stdio, on the tiny
random model slowed by many steps, with its log read for what the model worker ran.

Two invoked completions on other documents keep the single model worker busy (their steps take
turns, so a step queued now waits at least one whole step); inline requests sent meanwhile in
one write are all queued behind them, so which of them are superseded while they wait is certain.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.editing_client import BASE_CAPABILITIES, Editor, slow_settings
from tests.reliability.rpc import encode

# "between steps" is how the server said it before counting: after at least one step.
STOPPED = re.compile(r"job stopped (?:after (\d+) steps?|between steps)")
IDS = itertools.count(100_000)
TEXT = "def f(x):\n    y = \n    return y\n" * 40


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Editor]:
    log = tmp_path_factory.mktemp("supersede") / "server.log"
    settings = slow_settings(
        tiny_model_dir,
        steps=64,
        maxSpanTokens=64,
        contextTokens=768,
        length="fillers",
        temperature=1.0,
    )
    editor = Editor(log, settings, BASE_CAPABILITIES)
    editor.log_path = log  # type: ignore[attr-defined]
    editor.wait_ready()
    for name in ("busy1", "busy2", "a", "b"):
        editor.open(f"file:///w/{name}.py", TEXT, "python")
    yield editor
    editor.stop()


def position(line: int) -> dict[str, int]:
    return {"line": line, "character": 8}  # after "    y = "


def keep_worker_busy(editor: Editor) -> list[Any]:
    """Start two invoked completions (not inline: nothing supersedes them)."""
    ids = [
        editor.request_async(
            "textDocument/completion",
            {
                "textDocument": {"uri": f"file:///w/{name}.py"},
                "position": position(1),
                "context": {"triggerKind": 1},
            },
        )
        for name in ("busy1", "busy2")
    ]
    assert not editor.wait_for(lambda: any(i in editor.responses for i in ids), 0.3)
    return ids


def send_inline_burst(editor: Editor, where: list[tuple[str, int]]) -> list[int]:
    """Inline requests (automatic, as while typing) in one write, in this order."""
    ids = [next(IDS) for _ in where]
    messages = [
        {
            "jsonrpc": "2.0",
            "id": ids[n],
            "method": "textDocument/inlineCompletion",
            "params": {
                "textDocument": {"uri": f"file:///w/{name}.py"},
                "position": position(line),
                "context": {"triggerKind": 2},
            },
        }
        for n, (name, line) in enumerate(where)
    ]
    editor.send_bytes(b"".join(encode(message) for message in messages))
    return ids


def steps_of_stopped_jobs(editor: Editor, since: int) -> list[int]:
    log: Path = editor.log_path  # type: ignore[attr-defined]
    text = log.read_text(encoding="utf-8", errors="replace")[since:]
    return [int(n or 1) for n in STOPPED.findall(text)]


def log_size(editor: Editor) -> int:
    log: Path = editor.log_path  # type: ignore[attr-defined]
    return len(log.read_text(encoding="utf-8", errors="replace"))


def test_superseded_inline_requests_run_no_model_step(server: Editor) -> None:
    """Five inline requests for one document superseded while queued: not one model step."""
    since = log_size(server)
    busy = keep_worker_busy(server)
    ids = send_inline_burst(server, [("a", 1 + 3 * n) for n in range(6)])
    answers = [server.wait(i, timeout=180)["result"] for i in ids]
    for i in busy:
        server.wait(i, timeout=180)
    assert [a["items"] for a in answers[:-1]] == [[]] * 5, answers
    assert answers[-1]["items"], "the last request is answered"
    assert steps_of_stopped_jobs(server, since) == [0] * 5


def test_inline_requests_supersede_across_documents(server: Editor) -> None:
    """A user types in one place at a time: a request for b supersedes one for a."""
    since = log_size(server)
    busy = keep_worker_busy(server)
    first, last = send_inline_burst(server, [("a", 4), ("b", 7)])
    assert server.wait(first, timeout=180)["result"]["items"] == []
    items = server.wait(last, timeout=180)["result"]["items"]
    for i in busy:
        server.wait(i, timeout=180)
    assert items, "the request for b is answered"
    assert steps_of_stopped_jobs(server, since) == [0]
    # nothing after the cursor on its line, so nothing is replaced: no range (a client would
    # draw an item with a range over the text after the cursor)
    assert all("range" not in item for item in items), items
