"""Property: whatever the interleaving of typing, commands and reopening, no edit ever lands on
text it was not computed from (issue 23).

Hypothesis writes short sessions against the real server (tiny random model, over stdio, a client
with versioned `documentChanges`): commands with `apply` true or false over whole lines, typing
and deleting anywhere, pauses of various lengths, closing and reopening the file. The editor
applies every edit it gets by the LSP rules. A tracker follows each command's selection through
every later change; whenever an edit is applied it must belong to a live command whose selection
nobody touched since it was sent, and change nothing but that selection.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pygls.protocol import default_converter

from tests.editing_client import (
    CONTENT_MODIFIED,
    FILL_HOLES,
    REVISE,
    REWRITE,
    VERSIONED_CAPABILITIES,
    Applied,
    Editor,
    changed_span,
    line_offset,
    only_region_changed,
    slow_settings,
)

LINES = 10
TEXT = "".join(
    f"item {i} = <mask>(x, y)\n" if i % 3 == 1 else f"item {i} = combine(x, y, {i})\n"
    for i in range(LINES)
)
_numbers = itertools.count()
_CONVERTER = default_converter()


@dataclass
class Pending:
    """A command the editor sent, with its selection followed through every later change."""

    msg_id: Any
    uri: str
    apply: bool
    start: int  # the selection, in the editor's current text
    end: int
    snapshot: str  # the text of the selection when the command was sent
    touched: bool = False  # a change overlapped the selection since
    dead: bool = False  # the document was closed since
    landed: bool = False


class Tracker:
    """Follows selections through changes and checks every applied edit."""

    def __init__(self) -> None:
        self.pending: list[Pending] = []
        self.violations: list[str] = []
        self.answering: Pending | None = None  # the command whose answer is being applied

    def changed(self, uri: str, start: int, end: int, inserted: int) -> None:
        """The editor's text of `uri` had [start, end) replaced by `inserted` characters."""
        for item in self.pending:
            if item.uri != uri or item.dead:
                continue
            if end <= item.start and not (start == end == item.start):
                item.start += inserted - (end - start)
                item.end += inserted - (end - start)
            elif start >= item.end and not (start == end == item.end):
                continue
            else:  # overlapping, inside, or an insertion right at either edge
                item.touched = True

    def closed(self, uri: str) -> None:
        for item in self.pending:
            if item.uri == uri:
                item.dead = True

    def on_apply(self, record: Applied) -> None:
        """Called by the editor (under its lock) for every edit it applied."""
        if self.answering is not None:
            candidates = [self.answering]
        else:
            candidates = [p for p in self.pending if p.apply and p.uri == record.uri]
        owner = next(
            (
                p
                for p in candidates
                if not (p.dead or p.touched or p.landed)
                and record.before[p.start : p.end] == p.snapshot
                and only_region_changed(record.before, record.after, p.start, p.end)
            ),
            None,
        )
        if owner is None:
            states = [(p.msg_id, p.touched, p.dead, p.landed) for p in candidates]
            self.violations.append(
                f"an edit from {record.source} landed on text it was not computed from "
                f"(commands: {states}):\n--- before\n{record.before}--- after\n{record.after}"
            )
        else:
            owner.landed = True
        start, end = changed_span(record.before, record.after)
        self.changed(record.uri, start, end, len(record.after) - len(record.before) + end - start)


command = st.tuples(
    st.just("command"),
    st.sampled_from([REWRITE, REVISE, FILL_HOLES]),
    st.integers(0, LINES - 1),  # first line
    st.integers(1, 3),  # lines
    st.booleans(),  # apply
)
typing = st.tuples(
    st.just("type"),
    st.integers(0, LINES),  # line
    st.integers(0, 12),  # column
    st.sampled_from(["z", "new\n", "", "# note\n"]),
    st.integers(0, 3),  # characters removed
)
pause = st.tuples(st.just("pause"), st.sampled_from([0.0, 0.02, 0.08, 0.2]))
settle = st.tuples(st.just("settle"))  # wait until every command sent so far is answered
reopen = st.tuples(st.just("reopen"))
session = st.lists(
    st.one_of(command, command, typing, typing, pause, settle, reopen), min_size=2, max_size=8
)


@pytest.fixture(scope="module")
def editor(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Editor]:
    log = tmp_path_factory.mktemp("property") / "server.log"
    peer = Editor(log, slow_settings(tiny_model_dir, steps=8), VERSIONED_CAPABILITIES)
    assert peer.wait_ready()["state"] == "ready"
    yield peer
    assert not peer.violations, peer.violations[:5]
    assert peer.stop() == 0


def run_session(editor: Editor, steps: list[tuple[Any, ...]]) -> Tracker:
    tracker = Tracker()
    uri = f"file:///property/{next(_numbers)}.txt"
    editor.on_apply = tracker.on_apply
    editor.open(uri, TEXT)
    for step in steps:
        with editor._docs_lock:
            text = editor.text(uri)
            if step[0] == "command":
                _, name, first, count = step[:4]
                first = min(first, text.count("\n") - 1)
                start = line_offset(text, first)
                end = line_offset(text, min(first + count, text.count("\n")))
                msg_id = editor.command_async(name, uri, (start, end), step[4])
                tracker.pending.append(Pending(msg_id, uri, step[4], start, end, text[start:end]))
            elif step[0] == "type":
                _, line, column, inserted, removed = step
                at = min(line_offset(text, line) + column, len(text))
                removed = min(removed, len(text) - at)
                editor.type(uri, at, inserted, removed)
                tracker.changed(uri, at, at + removed, len(inserted))
            elif step[0] == "reopen":
                editor.close_document(uri)
                tracker.closed(uri)
                editor.open(uri, "# reopened\n" + text)
        if step[0] == "pause":
            time.sleep(step[1])
        elif step[0] == "settle":  # outside the lock: applying an edit takes it
            sent = {item.msg_id for item in tracker.pending}
            assert editor.wait_for(lambda sent=sent: sent <= editor.responses.keys(), 120)
    answers = [(item, editor.wait(item.msg_id, 120)) for item in tracker.pending]
    for item, answer in answers:
        if "error" in answer:
            assert answer["error"]["code"] == CONTENT_MODIFIED, answer
            continue
        if item.dead:
            # Answered before the server saw the file close: an edit for the closed file, whose
            # reopening is version 1 again. Only the client knows which opening it asked about,
            # so it drops the answer (the Neovim plugin by its changedtick).
            continue
        if not item.apply:
            with editor._docs_lock:
                tracker.answering = item
                try:
                    editor.apply_workspace_edit(answer["result"], "answer")
                finally:
                    tracker.answering = None
    editor.close_document(uri)
    editor.on_apply = None
    return tracker


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=session)
# A command answered before the file is closed and reopened (the reopening is version 1 again,
# like the version the answer carries): the edit belongs to the closed file. This example made
# the test fail whenever a session happened to finish a command before a reopen.
@example(steps=[("command", REWRITE, 0, 1, False), ("settle",), ("reopen",)])
def test_no_edit_lands_on_text_it_was_not_computed_from(
    editor: Editor, steps: list[tuple[Any, ...]]
) -> None:
    tracker = run_session(editor, steps)
    assert not tracker.violations, tracker.violations[0]


# --- the same rule, in-process: Documents.moved ---------------------------------------------------

edit_at = st.tuples(st.integers(0, 40), st.integers(0, 3), st.sampled_from(["", "x", "yy\n"]))


@settings(max_examples=300, deadline=None, database=None)
@given(
    text=st.text(alphabet="ab\n", max_size=30),
    span=st.tuples(st.integers(0, 30), st.integers(0, 30)),
    edits=st.lists(st.tuples(st.booleans(), edit_at), max_size=5),
)
def test_a_moved_span_holds_the_same_text(
    text: str, span: tuple[int, int], edits: list[tuple[bool, tuple[int, int, str]]]
) -> None:
    """Moving a span onto a later version finds exactly its text there, and it is found
    whenever no change touched it (the rule the server's edits are moved by)."""
    from lsprotocol import types

    from infill_lsp.lsp.documents import Documents
    from tests.editing_client import range_of

    documents = Documents()
    uri = "file:///moved.txt"
    snapshot = documents.open(types.TextDocumentItem(uri, "plaintext", 1, text))
    start, end = sorted(min(value, len(text)) for value in span)
    low, high, touched, current = start, end, False, text
    for version, (whole, (at, removed, inserted)) in enumerate(edits, start=2):
        at = min(at, len(current))
        removed = min(removed, len(current) - at)
        new = current[:at] + inserted + current[at + removed :]
        if whole:
            a, b = changed_span(current, new)
            change: Any = {"text": new}
        else:
            a, b = at, at + removed
            change = {"range": range_of(current, at, at + removed), "text": inserted}
        grown = len(new) - len(current)
        if b < low or (b == low and a < b):
            low, high = low + grown, high + grown
        elif not (a > high or (a == high and a < b)):
            touched = True
        params = {"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]}
        structured = _CONVERTER.structure(params, types.DidChangeTextDocumentParams)
        documents.change(structured)
        current = new
    moved = documents.moved(snapshot, start, end)
    if moved is not None:
        document, shift = moved
        assert document is documents.get(uri) and document.text == current
        assert current[start + shift : end + shift] == text[start:end]
    assert (moved is None) == touched


# --- the common ends the server derives a whole-text change from ---------------------------------


@settings(max_examples=500, deadline=None, database=None)
@given(
    old=st.text(alphabet="ab\r\n", max_size=12),
    new=st.text(alphabet="ab\r\n", max_size=12),
    as_bytes=st.booleans(),
)
def test_common_ends_are_the_longest_that_do_not_overlap(
    old: str, new: str, as_bytes: bool
) -> None:
    """`postprocess.common_ends` on str or bytes: the longest common prefix, then the longest
    common suffix of what the prefix leaves of the shorter text ("aa" -> "aaa" is (2, 0))."""
    from infill_lsp.postprocess import common_ends

    a: Any = old.encode() if as_bytes else old
    b: Any = new.encode() if as_bytes else new
    lead, trail = common_ends(a, b)
    assert a[:lead] == b[:lead] and (lead == min(len(a), len(b)) or a[lead] != b[lead])
    assert lead + trail <= min(len(a), len(b))
    assert a[len(a) - trail :] == b[len(b) - trail :]
    grown = trail + 1
    assert lead + grown > min(len(a), len(b)) or a[len(a) - grown] != b[len(b) - grown]
    assert common_ends("aa", "aaa") == (2, 0) and common_ends(b"aab", b"ab") == (1, 1)
