"""Malformed JSON-RPC over raw stdio frames, and the session's life from before initialize to exit.

Every case is followed by an `infill/status` request that must still be answered: a bad message
may be refused, never take the server down or leave it deaf. The frames on stdout are checked
byte by byte by `rpc.RpcPeer` (the module fixture fails on any violation).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import fast_options
from tests.reliability.rpc import SERVER, RpcPeer, frame

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
NOT_INITIALIZED = -32002


def status_ok(peer: RpcPeer, timeout: float = 30.0) -> None:
    """The server still answers."""
    assert peer.result("infill/status", None, timeout)["state"] == "ready"


def error_of(response: dict[str, Any]) -> dict[str, Any]:
    assert "error" in response, f"expected an error, got {response}"
    return response["error"]


def answer_to_null_id(peer: RpcPeer, timeout: float = 1.0) -> dict[str, Any] | None:
    """The response with id null the server sent (None if none came within `timeout` seconds).

    Call it after a later request was answered: the server answers in order.
    """
    peer.wait_for(lambda: bool(peer.null_answers), timeout)
    return peer.null_answers.pop(0) if peer.null_answers else None


# --- one server for the bad-message cases ------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"jsonrpc":"2.0","id":1,"method":', b'{"jsonrpc":"2.0","params":"\xff\xfe"}'],
    ids=["garbage", "truncated", "not-utf8"],
)
def test_invalid_json_is_a_parse_error(server: RpcPeer, body: bytes) -> None:
    server.null_answers.clear()
    server.send_bytes(frame(body))
    status_ok(server)
    answer = answer_to_null_id(server)
    assert answer is not None and error_of(answer)["code"] == PARSE_ERROR


def popups(peer: RpcPeer) -> int:
    return sum(n["method"] == "window/showMessage" for n in list(peer.notifications))


def test_invalid_json_does_not_hurt(server: RpcPeer) -> None:
    before = popups(server)
    for body in (b"{not json", b"\xff\xfe\x00", b"", b" " * 1000, b"{not json"):
        server.send_bytes(frame(body))
        status_ok(server)
    assert popups(server) - before <= 1, "a popup per bad message"
    server.null_answers.clear()


@pytest.mark.parametrize(
    "body",
    [b"[1,2]", b"42", b'"hello"', b"null", b'{"id":"w","method":"infill/status"}'],
    ids=["array", "number", "string", "null", "no-jsonrpc"],
)
def test_non_request_json_is_an_invalid_request(server: RpcPeer, body: bytes) -> None:
    server.null_answers.clear()
    server.send_bytes(frame(body))
    status_ok(server)
    answer = answer_to_null_id(server) or server.responses.pop("w", None)
    assert answer is not None and error_of(answer)["code"] == INVALID_REQUEST


def test_non_request_json_does_not_hurt(server: RpcPeer) -> None:
    before = popups(server)
    server.null_answers.clear()
    for body in (b"[1,2]", b"42", b'"x"', b"null", b"{}"):
        server.send_bytes(frame(body))
        status_ok(server)
        answer = answer_to_null_id(server)
        assert answer is not None and error_of(answer)["code"] == INVALID_REQUEST, body
    assert popups(server) == before
    # A response to a request the server never made is never answered (today it is logged and
    # shown once as an internal error).
    server.send_bytes(frame(b'{"jsonrpc":"2.0","id":99}'))
    status_ok(server)
    assert answer_to_null_id(server, timeout=0.5) is None and 99 not in server.responses
    assert popups(server) - before <= 1


def test_unknown_methods(server: RpcPeer) -> None:
    for method in ("foo/bar", "$/unknownRequest", "textDocument/notAThing", "infill/"):
        assert error_of(server.request(method, {}))["code"] == METHOD_NOT_FOUND, method
    server.notify("foo/notification", {"x": 1})  # unknown notifications are ignored
    server.notify("$/setTrace", {"value": "off"})
    status_ok(server)


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("textDocument/inlineCompletion", {"textDocument": {"uri": 3}, "position": "x"}),
        (
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": "file:///p.txt"},
                "position": {"line": -1, "character": 0},
                "context": {"triggerKind": 1},
            },
        ),
        ("textDocument/completion", {"textDocument": "file:///p.txt", "position": [0, 0]}),
        ("textDocument/codeAction", [1, 2]),
        ("codeAction/resolve", {"kind": "quickfix"}),
        ("workspace/executeCommand", {"command": 7}),
        ("workspace/executeCommand", {"command": "infill.rewrite", "arguments": "uri"}),
        ("workspace/executeCommand", {"command": "infill.rewrite", "arguments": [{"uri": 1}]}),
        ("workspace/executeCommand", {"command": "infill.fillHoles", "arguments": [[]]}),
        ("infill/status", "not-an-object"),
    ],
)
def test_wrong_parameter_types(server: RpcPeer, method: str, params: Any) -> None:
    response = server.request(method, params)
    if method == "infill/status":  # takes no params; anything extra may be ignored
        return status_ok(server)
    assert error_of(response)["code"] == INVALID_PARAMS, response
    status_ok(server)


def test_bad_notifications_are_survived(server: RpcPeer) -> None:
    server.notify("textDocument/didOpen", {"textDocument": {"uri": 5}})
    server.notify("textDocument/didChange", {"textDocument": {"uri": "file:///never"}})
    server.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": "file:///never", "version": 2}, "contentChanges": [{"text": 1}]},
    )
    server.notify("textDocument/didClose", {"textDocument": {"uri": "file:///never"}})
    server.notify("workspace/didChangeConfiguration", {"settings": {"infill": {"steps": "many"}}})
    server.notify("$/cancelRequest", {"id": "no-such-request"})
    server.notify("$/cancelRequest", {"id": {"weird": True}})
    status_ok(server)


def test_oversized_messages(server: RpcPeer) -> None:
    huge = "x = 1\n" * (3 * 1024 * 1024)  # 18 MB document
    started = time.monotonic()
    big_request = {"jsonrpc": "2.0", "id": "huge", "method": "no/such", "params": {"s": huge}}
    server.send_bytes(frame(json.dumps(big_request).encode()))
    assert error_of(server.wait("huge", 60))["code"] == METHOD_NOT_FOUND
    server.open("file:///huge.txt", huge)
    result = server.result(
        "textDocument/inlineCompletion",
        {
            "textDocument": {"uri": "file:///huge.txt"},
            "position": {"line": 1_500_000, "character": 5},
            "context": {"triggerKind": 1},
        },
        timeout=60,
    )
    assert isinstance(result["items"], list)
    server.notify("textDocument/didClose", {"textDocument": {"uri": "file:///huge.txt"}})
    status_ok(server)
    assert time.monotonic() - started < 90


def test_one_enormous_line_does_not_freeze_the_server(server: RpcPeer) -> None:
    """Fixed in postprocess._swallowed, which was quadratic in the rest of the line and ran on
    the event loop (a 400,000-character line froze the server for 17 s)."""
    server.open("file:///minified.js", "x" * 300_000)
    params = {
        "textDocument": {"uri": "file:///minified.js"},
        "position": {"line": 0, "character": 5},
        "context": {"triggerKind": 1},
    }
    completion = server.request_async("textDocument/inlineCompletion", params)
    time.sleep(1.0)  # the model call is done by now; the rest is post-processing
    try:
        started = time.monotonic()
        status_ok(server, timeout=60)
        assert time.monotonic() - started < 3.0, "the event loop was blocked"
    finally:
        server.wait(completion, 120)
        server.notify("textDocument/didClose", {"textDocument": {"uri": "file:///minified.js"}})


# --- fresh processes for the session's life ----------------------------------------------------


def test_before_initialize_after_shutdown_and_exit(tiny_model_dir: Path) -> None:
    peer = RpcPeer()
    try:
        for method in ("infill/status", "textDocument/inlineCompletion", "shutdown"):
            assert error_of(peer.request(method, {}))["code"] == NOT_INITIALIZED, method
        peer.notify("textDocument/didOpen", {"textDocument": {"uri": "file:///early"}})
        peer.initialize(fast_options(tiny_model_dir))
        assert peer.wait_ready()["state"] == "ready"
        assert peer.result("shutdown", None) is None
        for method in ("infill/status", "textDocument/inlineCompletion", "shutdown"):
            assert error_of(peer.request(method, {}))["code"] == INVALID_REQUEST, method
        peer.notify("exit")
        assert peer.process.wait(30) == 0
        assert not peer.violations, peer.violations
    finally:
        peer.close()


def test_initialize_after_shutdown_is_refused(tiny_model_dir: Path) -> None:
    peer = RpcPeer()
    try:
        peer.initialize({"modelPath": "/nonexistent"})
        assert peer.result("shutdown", None) is None
        response = peer.request("initialize", {"capabilities": {}}, timeout=10)
        assert error_of(response)["code"] == INVALID_REQUEST
    finally:
        peer.process.kill()
        peer.close()


def test_exit_without_shutdown_is_an_error_exit() -> None:
    peer = RpcPeer()
    peer.initialize({"modelPath": "/nonexistent"})
    peer.notify("exit")
    assert peer.process.wait(30) == 1
    peer.close()


def test_stdin_closed_ends_the_process() -> None:
    peer = RpcPeer()
    peer.initialize({"modelPath": "/nonexistent"})
    assert peer.process.stdin is not None
    peer.process.stdin.close()
    assert peer.process.wait(30) is not None
    peer.close()


def test_a_frame_without_length_does_not_desync_the_stream() -> None:
    peer = RpcPeer([*SERVER])
    try:
        peer.initialize({"modelPath": "/nonexistent"})
        peer.send_bytes(b'Content-Length: abc\r\n\r\n{"jsonrpc":"2.0","id":"lost","method":"x"}')
        answered = 0
        for _ in range(2):
            try:
                peer.request("infill/status", None, timeout=3)
                answered += 1
            except AssertionError:
                pass
        assert answered, "the server never answered again"
    finally:
        peer.process.kill()
        peer.close()
