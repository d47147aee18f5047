"""End to end: the server under bad input and in bad states, over stdio (and once over TCP).

One server (VS Code capabilities) walks through the model's life: requests while it is not
ready, a broken model path, a reload to a good model without restart, a failed reload that
keeps the old model. The same server then gets bad input of every kind and must keep answering.
Requests the test client would refuse to send (negative lines, before initialize) go out raw.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.test_server import PLAIN, PYTHON, SERVER, command, inline, open_document, plain, whole


async def raw_request(client: LanguageClient, method: str, params: Any, msg_id: str) -> Any:
    """Send a request exactly as given, bypassing the client's type checks."""
    future: Future[Any] = Future()
    client.protocol._request_futures[msg_id] = future
    message = {"jsonrpc": "2.0", "id": msg_id, "method": method}
    if params is not None:
        message["params"] = params
    client.protocol._send_data(message)
    return await asyncio.wait_for(asyncio.wrap_future(future), 30)


async def status(client: LanguageClient) -> dict[str, str]:
    return dict(plain(await client.protocol.send_request_async("infill/status", None)))


async def wait_state(client: LanguageClient, predicate: Any, timeout: float = 90) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        current = await status(client)
        if predicate(current) or time.monotonic() > deadline:
            return current
        await asyncio.sleep(0.2)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), scope="module")
async def client(lsp_client: LanguageClient):
    release = asyncio.Event()
    lsp_client.protocol.fm.features.pop(types.WORKSPACE_CONFIGURATION)  # pytest-lsp's default

    @lsp_client.feature(types.WORKSPACE_CONFIGURATION)
    async def configuration(ls: LanguageClient, params: types.ConfigurationParams):
        await release.wait()  # holds model loading back until the test says so
        return [{}]

    lsp_client.release = release  # type: ignore[attr-defined]
    with pytest.raises(JsonRpcException) as caught:
        await raw_request(lsp_client, "infill/status", None, "too-early")
    assert caught.value.code == -32002
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            initialization_options={"modelPath": "/nonexistent/model", "steps": 4},
        )
    )
    yield


async def test_not_ready_then_broken_then_reloaded(client: LanguageClient, tiny_model_dir: Path):
    uri = "file:///edge/early.py"
    open_document(client, uri, PYTHON, "python")
    started = time.monotonic()
    assert not (await inline(client, uri, 5, 11)).items
    assert time.monotonic() - started < 1.0  # answered at once, not after loading
    assert (await status(client))["state"] == "loading"
    assert await command(
        client, "infill.rewrite", {"uri": uri, "range": whole(PYTHON, 3, 5, "")}
    ) == {"applied": False}

    client.release.set()  # type: ignore[attr-defined]
    broken = await wait_state(client, lambda s: s["state"] != "loading")
    assert broken["state"] == "error" and "does not exist" in broken["message"]
    assert any("/nonexistent/model" in m.message for m in client.messages)
    assert not (await inline(client, uri, 5, 11)).items

    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"infill": {"modelPath": str(tiny_model_dir)}})
    )
    ready = await wait_state(client, lambda s: s["state"] == "ready")
    assert ready["model"] == str(tiny_model_dir)
    assert (await inline(client, uri, 5, 11)).items

    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"infill": {"modelPath": "/still/missing"}})
    )
    kept = await wait_state(client, lambda s: "still using" in s["message"])
    assert kept["state"] == "ready" and kept["model"] == str(tiny_model_dir)
    assert (await inline(client, uri, 5, 11)).items


async def test_unknown_uri_and_positions_past_the_end(client: LanguageClient):
    await wait_state(client, lambda s: s["state"] == "ready")
    assert not (await inline(client, "file:///edge/never-opened.py", 0, 0)).items
    uri = "file:///edge/positions.py"
    open_document(client, uri, PYTHON, "python")
    assert not (await inline(client, uri, 500, 0)).items  # line past the end of the file
    past_line_end = await inline(client, uri, 0, 400)  # column past the end: the line's end
    line_end = types.Position(line=0, character=len(PYTHON.split("\n")[0]))
    assert past_line_end.items
    for item in past_line_end.items:  # an empty range says where the text really goes
        assert item.range == types.Range(start=line_end, end=line_end)
    with pytest.raises(JsonRpcException) as caught:
        await command(
            client,
            "infill.rewrite",
            {"uri": "file:///edge/never-opened.py", "range": whole("", 0, 1, "")},
        )
    assert caught.value.code == -32602 and "not open" in caught.value.message


@pytest.mark.parametrize(
    ("range_", "reason"),
    [
        (
            {"start": {"line": 3, "character": 0}, "end": {"line": 1, "character": 0}},
            "before it starts",
        ),
        ({"start": {"line": 2, "character": 0}, "end": {"line": 2, "character": 0}}, "empty"),
        (
            {"start": {"line": 1, "character": 0}, "end": {"line": 90, "character": 0}},
            "past the end",
        ),
        ({"start": {"line": -1, "character": 0}, "end": {"line": 1, "character": 0}}, "range"),
        ("lines 1 to 3", "range"),
    ],
)
async def test_bad_ranges_are_clear_errors(client: LanguageClient, range_: Any, reason: str):
    uri = "file:///edge/ranges.txt"
    open_document(client, uri, PLAIN, "plaintext")
    with pytest.raises(JsonRpcException) as caught:
        await command(client, "infill.rewrite", {"uri": uri, "range": range_, "apply": False})
    assert caught.value.code == -32602 and reason in caught.value.message
    assert (await status(client))["state"] == "ready"


async def test_malformed_command_arguments(client: LanguageClient):
    for arguments in ([], ["file:///x"], [{"uri": 3}], [{"uri": "file:///x", "apply": "yes"}]):
        with pytest.raises(JsonRpcException) as caught:
            await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="infill.revise", arguments=arguments)
            )
        assert caught.value.code == -32602


async def test_negative_position_gets_an_answer(client: LanguageClient):
    params = {
        "textDocument": {"uri": "file:///edge/positions.py"},
        "position": {"line": -1, "character": 0},
        "context": {"triggerKind": 1},
    }
    with pytest.raises(JsonRpcException) as caught:
        await raw_request(client, types.TEXT_DOCUMENT_INLINE_COMPLETION, params, "negative")
    assert caught.value.code == -32602
    assert (await status(client))["state"] == "ready"


async def test_multi_megabyte_document(client: LanguageClient):
    uri = "file:///edge/huge.py"
    text = PYTHON * 8000  # about 3 MB
    open_document(client, uri, text, "python")
    middle = PYTHON.count("\n") * 4000 + 5
    started = time.monotonic()
    result = await inline(client, uri, middle, 11)
    assert result.items and time.monotonic() - started < 20
    selection = {"start": {"line": 0, "character": 0}, "end": {"line": 4000, "character": 0}}
    with pytest.raises(JsonRpcException) as caught:
        await command(client, "infill.rewrite", {"uri": uri, "range": selection, "apply": False})
    assert caught.value.code == -32602 and "select less" in caught.value.message
    client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )


async def test_binary_content(client: LanguageClient):
    uri = "file:///edge/blob.bin"
    text = "PK\x03\x04\x00\x00\x08\x00" + "".join(chr(i) for i in range(256)) * 4
    open_document(client, uri, text, "plaintext")
    assert not (await inline(client, uri, 0, 4)).items
    with pytest.raises(JsonRpcException) as caught:
        await command(
            client, "infill.rewrite", {"uri": uri, "range": whole(text, 0, 1, ""), "apply": False}
        )
    assert caught.value.code == -32602 and "binary" in caught.value.message


async def test_requests_after_shutdown_are_refused(client: LanguageClient):
    await client.shutdown_async(None)
    with pytest.raises(JsonRpcException) as caught:
        await raw_request(client, "infill/status", None, "too-late")
    assert caught.value.code == -32600
    client.exit(None)
    await asyncio.wait_for(client._server.wait(), 30)  # type: ignore[union-attr]
    assert client._server.returncode == 0  # type: ignore[union-attr]


def test_tcp_transport():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [*SERVER[:3], "--tcp", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                connection = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except OSError:
                assert time.monotonic() < deadline, "the TCP server never listened"
                time.sleep(0.1)
        with connection:
            body = b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{}}}'
            connection.sendall(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            reply = b""
            while b"inlineCompletionProvider" not in reply:
                chunk = connection.recv(65536)
                assert chunk, "the connection closed without an answer"
                reply += chunk
        assert reply.startswith(b"Content-Length: ")
    finally:
        server.terminate()
        server.wait(10)
