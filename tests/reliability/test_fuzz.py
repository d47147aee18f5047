"""Protocol fuzzing: random editor sessions against the real server process over stdio.

Hypothesis draws sessions of didOpen / didChange (incremental edits, several per notification,
full replacements; CRLF, lone CR, tabs, emoji, astral characters, lone surrogates) mixed with
inlineCompletion, completion, codeAction (+ resolve), executeCommand, `$/cancelRequest` and
progress cancellation. Invariants, checked on one long-lived server:

- every request gets a result or an error within REQUEST_LIMIT seconds, and never an internal
  error (-32603);
- the server's text equals the client's after every change. The server has no request that
  returns a document, so two probes observe it: `infill.fillHoles` with apply=false returns one
  edit per hole marker, at the marker's position in the server's text (the sessions sprinkle
  markers, so any misplaced edit shifts them), and a codeAction whose range ends on the last
  line answers while one a line further is refused (the line count);
- stdout carries only valid JSON-RPC frames (checked byte by byte by `rpc.RpcPeer`);
- the process never exits.

`INFILL_FUZZ_EXAMPLES=200 INFILL_FUZZ_RANDOM=1 pytest tests/reliability/test_fuzz.py` fuzzes
longer with fresh randomness; CI runs a fixed, small set.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.reliability.conftest import MARKER
from tests.reliability.rpc import RpcPeer

REQUEST_LIMIT = 60.0  # seconds; generous because CI shares two cores with a training run
EXAMPLES = int(os.environ.get("INFILL_FUZZ_EXAMPLES", "18"))
MAX_PROBED_LINES = 24
TOTALS: dict[str, int] = {
    "sessions": 0, "operations": 0, "requests": 0, "checks": 0, "line probes": 0
}  # fmt: skip

_BREAK = re.compile(r"\r\n|\r|\n")
# Weighted by repetition. BMP holds no character that takes two UTF-16 units (and no high
# surrogate that could pair up on the wire); FULL adds astral characters and the two halves of
# the marker, sent apart on purpose.
BMP = [
    "a", "b", "x = 1", "def f():", "return", " ", " ", "\t", "\n", "\n", "\r\n", "\r\n", "\r",
    "é", "ß", "中文", "\u200d", "(", ")", "{", "}", "<mask>", MARKER, MARKER, MARKER, "\udfff",
    "\x00",
]  # fmt: skip
FULL = [*BMP, "🎉", "👍🏽", "𝕏", "\ud83d", "\udd73"]


def units(text: str) -> int:
    """UTF-16 code units of `text` (lone surrogates count one)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def wire(text: str) -> str:
    """`text` as the server reads it back from JSON (adjacent surrogate halves join)."""
    return json.loads(json.dumps(text))


def position(text: str, offset: int) -> dict[str, int]:
    """The LSP position (UTF-16) of str `offset`, written apart from infill_lsp.positions."""
    starts = [0, *(m.end() for m in _BREAK.finditer(text))]
    line = max(i for i, s in enumerate(starts) if s <= offset)
    return {"line": line, "character": units(text[starts[line] : offset])}


def boundary(text: str, offset: int) -> int:
    """`offset` moved off the middle of a CRLF (no LSP position points there)."""
    offset = max(0, min(offset, len(text)))
    if 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n":
        return offset - 1
    return offset


def line_end(text: str, offset: int) -> bool:
    return offset == len(text) or text[offset] in "\r\n"


# --- strategies ----------------------------------------------------------------------------


def sessions(fragments: list[str]) -> st.SearchStrategy[tuple[str, list[tuple[Any, ...]]]]:
    """A first text and a list of operations on it, drawn from `fragments`."""
    snippets = st.lists(st.sampled_from(fragments), max_size=8).map("".join)
    fraction = st.floats(0, 1)
    edit = st.tuples(fraction, st.integers(0, 12), snippets, st.integers(0, 3))
    names = ["infill.rewrite", "infill.revise", "infill.fillHoles", "infill.nope"]
    command = st.sampled_from(names)
    operations = st.one_of(
        st.tuples(st.just("edit"), st.lists(edit, min_size=1, max_size=3)),
        st.tuples(st.just("edit"), st.lists(edit, min_size=1, max_size=1)),
        st.tuples(st.just("replace"), snippets),
        st.tuples(st.just("inline"), fraction, st.sampled_from([1, 2]), st.booleans()),
        st.tuples(st.just("completion"), fraction, st.booleans()),
        st.tuples(st.just("action"), fraction, fraction),
        st.tuples(
            st.just("command"),
            command,
            fraction,
            fraction,
            st.booleans(),
            st.sampled_from(["none", "request", "progress"]),
        ),
        st.tuples(st.just("reopen"), snippets),
    )
    return st.tuples(snippets, st.lists(operations, min_size=3, max_size=16))


# --- the session driver --------------------------------------------------------------------

_uris = itertools.count()


@dataclass
class Session:
    """One document as the client sees it, and the requests it has in flight."""

    peer: RpcPeer
    text: str
    uri: str = field(default_factory=lambda: f"file:///fuzz/doc{next(_uris)}.txt")
    version: int = 1
    pending: dict[Any, str] = field(default_factory=dict)  # id -> method
    tokens: itertools.count = field(default_factory=itertools.count)

    def request(self, method: str, params: Any) -> Any:
        msg_id = self.peer.request_async(method, params)
        self.pending[msg_id] = method
        TOTALS["requests"] += 1
        return msg_id

    def finish(self, msg_id: Any) -> dict[str, Any]:
        """Wait for one answer and check it is a result or an expected error."""
        method = self.pending.pop(msg_id)
        response = self.peer.wait(msg_id, REQUEST_LIMIT)
        error = response.get("error")
        if error is not None:
            assert error["code"] != -32603, f"{method} hit an internal error: {error}"
            commands = ("workspace/executeCommand", "codeAction/resolve")
            assert method in commands or error["code"] == -32800, (
                f"{method} failed on valid input: {error}"
            )
        return response

    def finish_all(self) -> None:
        for msg_id in list(self.pending):
            self.finish(msg_id)

    # --- changes ------------------------------------------------------------------------

    def change(self, changes: list[tuple[dict[str, Any] | None, str]]) -> None:
        """Send one didChange and apply it to the client's copy, change after change."""
        self.version += 1
        content = [{"text": t} if r is None else {"range": r, "text": t} for r, t in changes]
        self.peer.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": self.uri, "version": self.version}, "contentChanges": content},
        )

    def edits(self, drawn: list[tuple[float, int, str, int]]) -> None:
        changes = []
        for where, length, new, overshoot in drawn:
            start = boundary(self.text, int(where * len(self.text)))
            end = boundary(self.text, start + length)
            start_pos, end_pos = position(self.text, start), position(self.text, end)
            if line_end(self.text, end):  # past the end of the line means the line's end
                end_pos["character"] += overshoot
            changes.append(({"start": start_pos, "end": end_pos}, new))
            self.text = self.text[:start] + wire(new) + self.text[end:]
        self.change(changes)

    def replace(self, new: str) -> None:
        self.change([(None, new)])
        self.text = wire(new)

    # --- probes of the server's copy ----------------------------------------------------

    def check_text(self) -> None:
        """The server's copy matches ours: hole markers where ours are, the same line count."""
        TOTALS["checks"] += 1
        self.check_line_count()
        msg_id = self.request(
            "workspace/executeCommand",
            {"command": "infill.fillHoles", "arguments": [{"uri": self.uri, "apply": False}]},
        )
        response = self.finish(msg_id)
        usable = "\x00" not in self.text and _valid_utf8(self.text)
        if not usable:  # refused as binary; only the line count can be compared
            assert "error" in response and "binary" in response["error"]["message"], response
            return
        assert "error" not in response, response
        edits = response["result"]["changes"][self.uri]
        got = [(e["range"]["start"], e["range"]["end"]) for e in edits]
        expected = []
        at = self.text.find(MARKER)
        while at >= 0:
            expected.append((position(self.text, at), position(self.text, at + len(MARKER))))
            at = self.text.find(MARKER, at + len(MARKER))
        assert got == expected, f"server and client disagree on {self.text!r}"

    def check_lines(self) -> None:
        """Every line's length agrees: a completion asked for past a line's end starts at its end.

        (Costs one model call per line, so it runs once per session.)
        """
        starts = [0, *(m.end() for m in _BREAK.finditer(self.text))]
        for line, start in enumerate(starts[:MAX_PROBED_LINES]):
            end = starts[line + 1] if line + 1 < len(starts) else len(self.text)
            content = self.text[start:end].rstrip("\r\n")
            params = {
                "textDocument": {"uri": self.uri},
                "position": {"line": line, "character": 10_000},
                "context": {"triggerKind": 1},
            }
            items = self.finish(self.request("textDocument/inlineCompletion", params))["result"]
            for item in items["items"]:  # none when the model offers nothing: no evidence
                TOTALS["line probes"] += 1
                expected = {"line": line, "character": units(content)}
                assert item["range"]["start"] == expected, (line, item, self.text)

    def check_line_count(self) -> None:
        last = len(_BREAK.findall(self.text))
        if last == 0 or not self.text[: _line_start(self.text, last)]:
            return
        for line, offered in ((last, True), (last + 1, False)):
            params = {
                "textDocument": {"uri": self.uri},
                "range": {"start": position("", 0), "end": {"line": line, "character": 0}},
                "context": {"diagnostics": [], "only": ["refactor"]},
            }
            actions = self.finish(self.request("textDocument/codeAction", params))["result"]
            assert bool(actions) == offered, (line, actions, self.text)

    # --- requests -----------------------------------------------------------------------

    def at(self, where: float) -> dict[str, int]:
        return position(self.text, boundary(self.text, int(where * len(self.text))))

    def inline(self, where: float, trigger: int, cancel: bool) -> None:
        msg_id = self.request(
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": self.uri},
                "position": self.at(where),
                "context": {"triggerKind": trigger},
            },
        )
        if cancel:
            self.peer.notify("$/cancelRequest", {"id": msg_id})

    def completion(self, where: float, cancel: bool) -> None:
        params = {"textDocument": {"uri": self.uri}, "position": self.at(where)}
        msg_id = self.request("textDocument/completion", params)
        if cancel:
            self.peer.notify("$/cancelRequest", {"id": msg_id})

    def action(self, low: float, high: float) -> None:
        low, high = sorted((low, high))
        params = {
            "textDocument": {"uri": self.uri},
            "range": {"start": self.at(low), "end": self.at(high)},
            "context": {"diagnostics": []},
        }
        actions = self.finish(self.request("textDocument/codeAction", params))["result"]
        assert isinstance(actions, list)
        if actions:  # resolve the first one, as an editor does when the user picks it
            self.request("codeAction/resolve", actions[0])

    def command(self, name: str, low: float, high: float, apply: bool, cancel: str) -> None:
        low, high = sorted((low, high))
        argument = {"uri": self.uri, "range": {"start": self.at(low), "end": self.at(high)}}
        params: dict[str, Any] = {"command": name, "arguments": [{**argument, "apply": apply}]}
        token = f"fuzz-{self.uri}-{next(self.tokens)}"
        if cancel == "progress":
            params["workDoneToken"] = token
        msg_id = self.request("workspace/executeCommand", params)
        if cancel == "request":
            self.peer.notify("$/cancelRequest", {"id": msg_id})
        elif cancel == "progress":
            self.peer.notify("window/workDoneProgress/cancel", {"token": token})


def _line_start(text: str, line: int) -> int:
    return [0, *(m.end() for m in _BREAK.finditer(text))][line]


def _valid_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


DEEP = os.environ.get("INFILL_FUZZ_RANDOM") == "1"
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not DEEP,
    # shrinking a session costs minutes of server time: only when fuzzing on purpose
    phases=list(Phase) if DEEP else [Phase.explicit, Phase.reuse, Phase.generate],
    report_multiple_bugs=DEEP,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    print_blob=True,
)


def run_session(server: RpcPeer, first: str, drawn: list[tuple[Any, ...]]) -> None:
    """Play one drawn session, checking the invariants as it goes."""
    TOTALS["sessions"] += 1
    doc = Session(server, wire(first))
    server.open(doc.uri, first)
    doc.check_text()
    for operation in drawn:
        TOTALS["operations"] += 1
        kind, *args = operation
        if kind == "edit":
            doc.edits(args[0])
            doc.check_text()
        elif kind == "replace":
            doc.replace(args[0])
            doc.check_text()
        elif kind == "reopen":
            server.notify("textDocument/didClose", {"textDocument": {"uri": doc.uri}})
            doc.text, doc.version = wire(args[0]), 1
            server.open(doc.uri, args[0])
            doc.check_text()
        else:
            getattr(doc, kind)(*args)
    doc.finish_all()
    doc.check_lines()
    server.notify("textDocument/didClose", {"textDocument": {"uri": doc.uri}})
    assert server.alive(), "the server exited"
    assert not server.violations, server.violations[:5]


@FUZZ
@given(session=sessions(BMP))
def test_random_sessions_keep_the_server_in_sync(server: RpcPeer, session: Any) -> None:
    run_session(server, *session)


@FUZZ
@given(session=sessions(FULL))
def test_random_sessions_with_astral_characters(server: RpcPeer, session: Any) -> None:
    run_session(server, *session)


def test_an_edit_after_an_emoji_lands_where_the_editor_put_it(server: RpcPeer) -> None:
    """The smallest case the fuzzer found (fixed in server.py InfillServer.encoding, which
    returned the enum's name "PositionEncodingKind.Utf16" instead of "utf-16")."""
    doc = Session(server, f"a🎉b{MARKER}\n")
    server.open(doc.uri, doc.text)
    doc.edits([(2.5 / len(doc.text), 1, "c", 0)])  # UTF-16 range 0:3-0:4 (after the pair)
    assert doc.text == f"a🎉c{MARKER}\n"
    doc.check_text()
