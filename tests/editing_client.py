"""A scripted editor over stdio for the version-race tests: it types while the server works.

`Editor` is `tests.reliability.rpc.RpcPeer` plus what an editor keeps: the text and version of
each open document, every change sent as `didChange`, and edits applied the way LSP says a client
applies them (a `TextDocumentEdit` only when its version is the document's current one; a plain
`changes` edit always, which is why a server must never send a stale one). It records the order
in which frames arrive, so a test can prove the race it set up really happened. Positions are
UTF-16 (the default encoding), computed here independently of `infill_lsp.positions`.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.reliability.rpc import SERVER, RpcPeer

CONTENT_MODIFIED, REQUEST_CANCELLED, INVALID_REQUEST = -32801, -32800, -32600
INTERNAL_ERROR = -32603
REWRITE, REVISE, FILL_HOLES = "infill.rewrite", "infill.revise", "infill.fillHoles"

BASE_CAPABILITIES: dict[str, Any] = {
    "window": {"workDoneProgress": True},
    "workspace": {"configuration": True, "applyEdit": True},
}
VERSIONED_CAPABILITIES: dict[str, Any] = {
    **BASE_CAPABILITIES,
    "workspace": {**BASE_CAPABILITIES["workspace"], "workspaceEdit": {"documentChanges": True}},
}


def slow_settings(model_dir: Path, **extra: Any) -> dict[str, Any]:
    """Settings making every command take many steps (one token committed per step on the
    random tiny model), so that typing during a command is certain, not lucky."""
    return {
        "modelPath": str(model_dir),
        "threads": 1,
        "steps": 24,
        "maxSpanTokens": 24,
        "candidates": 1,
        "debounceMs": 0,
        **extra,
    }


# --- UTF-16 positions, written independently of infill_lsp.positions ---------------------------


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def position_of(text: str, offset: int) -> dict[str, int]:
    """The LSP position of str `offset` in `text` (lines end in "\\n")."""
    before = text[:offset]
    line_start = before.rfind("\n") + 1
    return {"line": before.count("\n"), "character": _units(before[line_start:])}


def offset_of(text: str, position: dict[str, int]) -> int:
    """The str offset of an LSP position in `text`; a column past the line end is its end."""
    lines = text.split("\n")
    line = position["line"]
    if line >= len(lines):
        return len(text)
    start = sum(len(item) + 1 for item in lines[:line])
    content = lines[line]
    for index in range(len(content) + 1):
        if _units(content[:index]) >= position["character"]:
            return start + index
    return start + len(content)


def line_offset(text: str, line: int) -> int:
    """The str offset where line `line` starts."""
    return offset_of(text, {"line": line, "character": 0})


def range_of(text: str, start: int, end: int) -> dict[str, Any]:
    return {"start": position_of(text, start), "end": position_of(text, end)}


def apply_text_edits(text: str, edits: list[dict[str, Any]]) -> str:
    """Apply TextEdits that all refer to `text` (LSP: none overlap)."""
    spans = [
        (offset_of(text, e["range"]["start"]), offset_of(text, e["range"]["end"]), e["newText"])
        for e in edits
    ]
    for start, end, new in sorted(spans, key=lambda s: (s[0], s[1]), reverse=True):
        text = text[:start] + new + text[end:]
    return text


def changed_span(before: str, after: str) -> tuple[int, int]:
    """(start, end) in `before` of the part that differs from `after` (start == end: none)."""
    lead = 0
    limit = min(len(before), len(after))
    while lead < limit and before[lead] == after[lead]:
        lead += 1
    trail = 0
    while trail < limit - lead and before[-1 - trail] == after[-1 - trail]:
        trail += 1
    return lead, len(before) - trail


def only_region_changed(before: str, after: str, start: int, end: int) -> bool:
    """Whether `after` is `before` with at most before[start:end] replaced."""
    tail = len(before) - end
    return (
        len(after) >= start + tail
        and after[:start] == before[:start]
        and after[len(after) - tail :] == before[end:]
    )


# --- the editor --------------------------------------------------------------------------------


@dataclass
class Open:
    """One document as the editor holds it."""

    text: str
    version: int


@dataclass
class Applied:
    """An edit the editor applied (from workspace/applyEdit or from a command's answer)."""

    uri: str
    before: str
    after: str
    version_before: int
    source: str  # "applyEdit" or "answer"


@dataclass
class Refused:
    uri: str
    reason: str
    source: str


@dataclass
class Arrival:
    """One frame from the server, in arrival order."""

    kind: str  # "response", "request", "notification"
    method: str | None
    id: Any
    message: dict[str, Any] = field(repr=False)


class Editor(RpcPeer):
    """An editor session that keeps documents, types into them and applies edits by the rules."""

    def __init__(self, log: Path, settings: dict[str, Any], capabilities: dict[str, Any]) -> None:
        with log.open("ab") as stderr:
            super().__init__([*SERVER, "--log-level", "INFO"], stderr=stderr)
        self.settings = settings
        self.versioned = bool(
            capabilities.get("workspace", {}).get("workspaceEdit", {}).get("documentChanges")
        )
        self.docs: dict[str, Open] = {}
        self.applied: list[Applied] = []
        self.refused: list[Refused] = []
        self.arrivals: list[Arrival] = []
        self.on_apply: Callable[[Applied], None] | None = None  # hook for the property test
        self._docs_lock = threading.RLock()
        self.initialize(settings, capabilities)

    # --- the record of arrivals ---------------------------------------------------------

    def _dispatch(self, message: Any) -> None:
        if isinstance(message, dict):
            kind = (
                "response"
                if "method" not in message
                else ("request" if "id" in message else "notification")
            )
            with self._lock:
                self.arrivals.append(
                    Arrival(kind, message.get("method"), message.get("id"), message)
                )
        super()._dispatch(message)

    def arrival(self, msg_id: Any) -> int:
        """The index in `arrivals` of the response to request `msg_id`."""
        with self._lock:
            for index, item in enumerate(self.arrivals):
                if item.kind == "response" and item.id == msg_id:
                    return index
        raise AssertionError(f"no response to {msg_id!r} arrived")

    def server_requests_for(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.server_requests if m["method"] == method]

    def progress_reports(self, token: str) -> int:
        with self._lock:
            return sum(
                1
                for n in self.notifications
                if n["method"] == "$/progress"
                and n["params"].get("token") == token
                and n["params"].get("value", {}).get("kind") == "report"
            )

    def barrier(self, timeout: float = 30.0) -> int:
        """Round-trip an `infill/status` request: everything sent before it has been read by the
        server. Returns the arrival index of its answer."""
        msg_id = self.request_async("infill/status")
        self.wait(msg_id, timeout)
        return self.arrival(msg_id)

    # --- documents ----------------------------------------------------------------------

    def open(self, uri: str, text: str, language: str = "plaintext", version: int = 1) -> None:
        with self._docs_lock:
            self.docs[uri] = Open(text, version)
            super().open(uri, text, language, version)

    def close_document(self, uri: str) -> None:
        with self._docs_lock:
            self.docs.pop(uri, None)
            self.notify("textDocument/didClose", {"textDocument": {"uri": uri}})

    def text(self, uri: str) -> str:
        with self._docs_lock:
            return self.docs[uri].text

    def type(self, uri: str, offset: int, inserted: str, removed: int = 0) -> None:
        """Replace `removed` characters at `offset` with `inserted`, as one incremental change."""
        with self._docs_lock:
            doc = self.docs[uri]
            change_range = range_of(doc.text, offset, offset + removed)
            doc.text = doc.text[:offset] + inserted + doc.text[offset + removed :]
            doc.version += 1
            self.notify(
                "textDocument/didChange",
                {
                    "textDocument": {"uri": uri, "version": doc.version},
                    "contentChanges": [{"range": change_range, "text": inserted}],
                },
            )

    # --- applying edits as a client does --------------------------------------------------

    def apply_workspace_edit(self, edit: dict[str, Any] | None, source: str) -> bool:
        """Apply a WorkspaceEdit by the LSP rules; True when it was applied."""
        if not edit:
            return False
        with self._docs_lock:
            planned: list[tuple[str, list[dict[str, Any]]]] = []
            for change in edit.get("documentChanges") or []:
                uri = change["textDocument"]["uri"]
                version = change["textDocument"].get("version")
                doc = self.docs.get(uri)
                if doc is None:
                    self.refused.append(Refused(uri, "not open", source))
                    return False
                if version is not None and version != doc.version:
                    reason = f"version {version}, document at {doc.version}"
                    self.refused.append(Refused(uri, reason, source))
                    return False
                planned.append((uri, change.get("edits") or []))
            for uri, edits in (edit.get("changes") or {}).items():
                if uri not in self.docs:
                    self.refused.append(Refused(uri, "not open", source))
                    return False
                planned.append((uri, edits))
            planned = [(uri, edits) for uri, edits in planned if edits]
            if not planned:
                return False
            for uri, edits in planned:
                doc = self.docs[uri]
                before = doc.text
                doc.text = apply_text_edits(before, edits)
                record = Applied(uri, before, doc.text, doc.version, source)
                doc.version += 1
                self.notify(
                    "textDocument/didChange",
                    {
                        "textDocument": {"uri": uri, "version": doc.version},
                        "contentChanges": [{"text": doc.text}],
                    },
                )
                self.applied.append(record)
                if self.on_apply is not None:
                    self.on_apply(record)
            return True

    def _answer_server_request(self, message: dict[str, Any]) -> None:
        if message["method"] != "workspace/applyEdit":
            super()._answer_server_request(message)
            return
        with self._lock:
            self.server_requests.append(message)
        edit = (message.get("params") or {}).get("edit")
        applied = self.apply_workspace_edit(edit, "applyEdit")
        result: dict[str, Any] = {"applied": applied}
        if not applied:
            result["failureReason"] = "the document is not at that version"
        with contextlib.suppress(BrokenPipeError, ValueError, OSError):
            self.send({"jsonrpc": "2.0", "id": message["id"], "result": result})

    # --- commands -----------------------------------------------------------------------

    def command_async(
        self,
        name: str,
        uri: str,
        span: tuple[int, int] | None,
        apply: bool,
        token: str | None = None,
    ) -> Any:
        """Send a command over document `uri` (span: str offsets in the editor's text)."""
        argument: dict[str, Any] = {"uri": uri, "apply": apply}
        if span is not None:
            argument["range"] = range_of(self.text(uri), *span)
        params: dict[str, Any] = {"command": name, "arguments": [argument]}
        if token is not None:
            params["workDoneToken"] = token
        return self.request_async("workspace/executeCommand", params)

    def stop(self, timeout: float = 20.0) -> int:
        """shutdown + exit; the exit code (the process is killed if it hangs)."""
        try:
            return self.close(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return -9
