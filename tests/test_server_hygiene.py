"""The same family as issue 23, found on the way: state the server keeps after its work is done.

Hint diagnostics carry the version they were computed on and are cleared when the document
closes or hints are turned off; a model that cannot load makes every command say so (an error,
each time it is asked); pygls' bookkeeping does not grow with every command or settings push.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.editing_client import (
    FILL_HOLES,
    REWRITE,
    VERSIONED_CAPABILITIES,
    Editor,
    slow_settings,
)

TEXT = "".join(f"entry {i} = merge(left, right, {i})\n" for i in range(6))


def diagnostics_for(peer: Editor, uri: str) -> list[dict[str, Any]]:
    with peer._lock:
        return [
            n["params"]
            for n in peer.notifications
            if n["method"] == "textDocument/publishDiagnostics" and n["params"]["uri"] == uri
        ]


def popups(peer: Editor) -> list[str]:
    with peer._lock:
        return [
            n["params"]["message"]
            for n in peer.notifications
            if n["method"] == "window/showMessage"
        ]


@pytest.fixture(scope="module")
def hinting(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Editor]:
    log = tmp_path_factory.mktemp("hygiene") / "server.log"
    peer = Editor(log, slow_settings(tiny_model_dir, hints=True), VERSIONED_CAPABILITIES)
    assert peer.wait_ready()["state"] == "ready"
    yield peer
    assert not peer.violations, peer.violations[:5]
    assert peer.stop() == 0


def test_hints_carry_their_version_and_are_cleared_on_close(hinting: Editor) -> None:
    uri = "file:///hygiene/close.txt"
    hinting.open(uri, TEXT)
    assert hinting.wait_for(lambda: len(diagnostics_for(hinting, uri)) >= 1, 30)
    first = diagnostics_for(hinting, uri)[-1]
    assert first["version"] == 1 and first["diagnostics"], first
    hinting.type(uri, 0, "# a comment\n")
    assert hinting.wait_for(lambda: diagnostics_for(hinting, uri)[-1].get("version") == 2, 30)
    count = len(diagnostics_for(hinting, uri))
    hinting.close_document(uri)
    assert hinting.wait_for(lambda: len(diagnostics_for(hinting, uri)) > count, 10), (
        "closing the document left its hints on screen"
    )
    assert diagnostics_for(hinting, uri)[-1]["diagnostics"] == []


def test_hints_are_cleared_when_turned_off(hinting: Editor) -> None:
    uri = "file:///hygiene/off.txt"
    hinting.open(uri, TEXT)
    assert hinting.wait_for(lambda: len(diagnostics_for(hinting, uri)) >= 1, 30)
    assert diagnostics_for(hinting, uri)[-1]["diagnostics"]
    count = len(diagnostics_for(hinting, uri))
    hinting.notify("workspace/didChangeConfiguration", {"settings": {"infill": {"hints": False}}})
    assert hinting.wait_for(lambda: len(diagnostics_for(hinting, uri)) > count, 10), (
        "turning hints off left them on screen"
    )
    assert diagnostics_for(hinting, uri)[-1]["diagnostics"] == []
    hinting.notify("workspace/didChangeConfiguration", {"settings": {"infill": {"hints": True}}})


def test_a_repeated_outcome_is_said_each_time(hinting: Editor) -> None:
    uri = "file:///hygiene/nomarker.txt"
    hinting.open(uri, TEXT)
    before = len(popups(hinting))
    for _ in range(2):
        answer = hinting.request(
            "workspace/executeCommand",
            {"command": FILL_HOLES, "arguments": [{"uri": uri, "apply": True}]},
            60,
        )
        assert "error" not in answer, answer
    hinting.barrier()
    said = [m for m in popups(hinting)[before:] if "marker" in m]
    assert len(said) == 2, said


# --- a model that cannot load ------------------------------------------------------------------


def test_commands_say_the_model_failed_to_load(tmp_path: Path) -> None:
    settings = {"modelPath": str(tmp_path / "no-such-model"), "threads": 1}
    peer = Editor(tmp_path / "server.log", settings, VERSIONED_CAPABILITIES)
    try:
        assert peer.wait_ready()["state"] == "error"
        uri = "file:///hygiene/broken.txt"
        peer.open(uri, TEXT)
        span = {"start": {"line": 1, "character": 0}, "end": {"line": 2, "character": 0}}
        for apply in (False, True, False):
            answer = peer.request(
                "workspace/executeCommand",
                {"command": REWRITE, "arguments": [{"uri": uri, "range": span, "apply": apply}]},
                30,
            )
            assert "error" in answer, answer
            message = answer["error"]["message"]
            assert "still loading" not in message and "load" in message, message
            assert "no-such-model" in message, message
    finally:
        assert peer.stop() == 0


# --- pygls' bookkeeping -------------------------------------------------------------------------


class _Collect:
    """A writer that keeps what the server sends."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.frames.append(data)

    def close(self) -> None:
        pass


def _create_server() -> Any:
    from infill_lsp.lsp.handlers import create_server

    return create_server()


async def test_bookkeeping_does_not_grow_per_request(tmp_path: Path) -> None:
    server = _create_server()
    protocol = server.protocol
    protocol.set_writer(_Collect())

    def send(message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message})
        protocol.handle_message(json.loads(body, object_hook=protocol.structure_message))

    options = {"modelPath": str(tmp_path / "absent")}
    send(
        {
            "id": 0,
            "method": "initialize",
            "params": {"capabilities": {}, "initializationOptions": options},
        }
    )
    send({"method": "initialized", "params": {}})
    uri = "file:///hygiene/many.txt"
    document = {"uri": uri, "languageId": "plaintext", "version": 1, "text": TEXT}
    send({"method": "textDocument/didOpen", "params": {"textDocument": document}})
    await asyncio.sleep(0.5)
    for number in range(1, 301):
        send({
            "id": number,
            "method": "workspace/executeCommand",
            "params": {"command": FILL_HOLES, "arguments": [{"uri": uri, "apply": False}]},
        })  # fmt: skip
        send(
            {
                "method": "workspace/didChangeConfiguration",
                "params": {"settings": {"infill": {"debounceMs": number}}},
            }
        )
        change = {
            "textDocument": {"uri": uri, "version": number + 1},
            "contentChanges": [{"text": TEXT}],
        }
        send({"method": "textDocument/didChange", "params": change})
        if number % 50 == 0:
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    assert len(protocol._request_futures) < 10, len(protocol._request_futures)
