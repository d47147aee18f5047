"""The open text documents, kept in sync with the client (full or incremental changes).

The server keeps its own store rather than pygls' workspace so that line breaks follow LSP
("\\n", "\\r\\n", "\\r" only), unknown URIs are never read from disk, and positions convert in the
negotiated encoding through `positions`. Also the questions every feature asks of a document's
text: the window of whole lines tree-sitter looks at, and whether the text near a span is fit
for the model. Knows lsprotocol types, not the model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from functools import cached_property

from lsprotocol import types

from infill_lsp.lsp.positions import UTF16, LineIndex, check_span
from infill_lsp.postprocess import common_ends

log = logging.getLogger(__name__)

SYNTAX_MARGIN = 20_000  # characters of text around the cursor that tree-sitter looks at


@dataclass(frozen=True)
class Change:
    """One change the client made: `length` characters replaced text[start:end] of the text
    before it."""

    start: int
    end: int
    length: int


@dataclass(frozen=True, eq=False)
class Document:
    """One version of an open document: a value that never changes, replaced on every change.

    A request keeps the value it started with, so its text, version and offsets cannot move
    under it while the model runs. `opening` tells two openings of one URI apart (a reopened
    file starts at version 1 again); `revision` counts the changes since it was opened.
    """

    uri: str
    text: str
    language_id: str | None = None
    version: int | None = None
    opening: int = 0
    revision: int = 0

    @cached_property
    def index(self) -> LineIndex:
        return LineIndex(self.text)

    def offset_at(self, position: types.Position, encoding: str, clamp: bool = False) -> int:
        """The str offset of `position` (InputError past the last line unless `clamp`)."""
        return self.index.offset_at(position.line, position.character, encoding, clamp)

    def position_at(self, offset: int, encoding: str) -> types.Position:
        """The LSP position of str `offset`."""
        line, character = self.index.position_at(offset, encoding)
        return types.Position(line=line, character=character)

    def span_of(
        self, range_: types.Range, encoding: str, allow_empty: bool = True
    ) -> tuple[int, int]:
        """The (start, end) str offsets of `range_`; InputError if reversed or out of the text."""
        start = self.offset_at(range_.start, encoding)
        end = self.offset_at(range_.end, encoding)
        check_span(start, end, allow_empty)
        return start, end

    def range_of(self, start: int, end: int, encoding: str) -> types.Range:
        """The LSP range of str offsets start..end."""
        return types.Range(
            start=self.position_at(start, encoding), end=self.position_at(end, encoding)
        )

    def changed(
        self, change: types.TextDocumentContentChangeEvent, encoding: str
    ) -> tuple[Document, Change]:
        """The next version after one content change (incremental when it has a range, else the
        whole text, of which only the part that differs counts as changed)."""
        if isinstance(change, types.TextDocumentContentChangePartial):
            start = self.offset_at(change.range.start, encoding, clamp=True)
            end = self.offset_at(change.range.end, encoding, clamp=True)
            start, end = min(start, end), max(start, end)
            text = self.text[:start] + change.text + self.text[end:]
            made = Change(start, end, len(change.text))
        else:
            text = change.text
            lead, trail = common_ends(self.text, text)
            made = Change(lead, len(self.text) - trail, len(text) - lead - trail)
        return replace(self, text=text, revision=self.revision + 1), made


class Documents:
    """The open documents by URI (unknown URIs are simply absent), and the changes made to
    each since it was opened, so an edit computed on an older version can be moved onto the
    current one when no change touched its span."""

    HISTORY = 4096  # changes kept per document; an edit older than that is refused, not moved

    def __init__(self) -> None:
        self._by_uri: dict[str, Document] = {}
        self._changes: dict[str, list[Change]] = {}  # uri -> changes, the latest last
        self._openings = 0

    def __len__(self) -> int:
        return len(self._by_uri)

    def get(self, uri: str) -> Document | None:
        """The current version of the open document at `uri`, or None."""
        return self._by_uri.get(uri)

    def open(self, item: types.TextDocumentItem) -> Document:
        """Start tracking a document the client opened."""
        self._openings += 1
        document = Document(item.uri, item.text, item.language_id, item.version, self._openings)
        self._by_uri[item.uri] = document
        self._changes[item.uri] = []
        return document

    def change(
        self, params: types.DidChangeTextDocumentParams, encoding: str = UTF16
    ) -> Document | None:
        """Apply the client's changes; None for a document that was never opened."""
        uri = params.text_document.uri
        document = self._by_uri.get(uri)
        if document is None:
            log.warning("change to a document that is not open: %s", uri)
            return None
        changes = self._changes[uri]
        for change in params.content_changes:
            document, made = document.changed(change, encoding)
            changes.append(made)
        if len(changes) > 2 * self.HISTORY:
            del changes[: len(changes) - self.HISTORY]
        document = replace(document, version=params.text_document.version)
        self._by_uri[uri] = document
        return document

    def close(self, uri: str) -> None:
        """Forget a document the client closed."""
        self._by_uri.pop(uri, None)
        self._changes.pop(uri, None)

    def is_open(self, snapshot: Document) -> bool:
        """Whether the opening `snapshot` belongs to is still open (not closed nor reopened)."""
        current = self._by_uri.get(snapshot.uri)
        return current is not None and current.opening == snapshot.opening

    def moved(self, snapshot: Document, start: int, end: int) -> tuple[Document, int] | None:
        """Where snapshot.text[start:end] lies in the current version: (current, shift of its
        offsets). None when the document was closed or reopened since, or when a change touched
        the span (overlapped it, or inserted text right at either edge)."""
        current = self._by_uri.get(snapshot.uri)
        if current is None or current.opening != snapshot.opening:
            return None
        changes = self._changes[snapshot.uri]
        missed = current.revision - snapshot.revision
        if missed > len(changes):
            return None  # older than the history kept
        shift = 0
        for change in changes[len(changes) - missed :] if missed else []:
            removed = change.end - change.start
            if change.end < start or (change.end == start and removed):
                delta = change.length - removed
                start, end, shift = start + delta, end + delta, shift + delta
            elif change.start > end or (change.start == end and removed):
                continue
            else:
                return None
        return current, shift


def syntax_window(text: str, start: int, end: int) -> tuple[str, int]:
    """Whole lines around text[start:end], at most SYNTAX_MARGIN characters each side.

    Returns (window, offset of the window in text): huge files stay cheap to parse.
    """
    if len(text) <= 2 * SYNTAX_MARGIN + (end - start):
        return text, 0
    low = text.rfind("\n", 0, max(start - SYNTAX_MARGIN, 0)) + 1
    high = text.find("\n", min(end + SYNTAX_MARGIN, len(text)))
    high = len(text) if high < 0 else high
    return text[low:high], low


def usable_text(document: Document, start: int, end: int) -> bool:
    """False for text the model must not see: NUL bytes or lone surrogates near the span."""
    window, _ = syntax_window(document.text, start, end)
    if "\x00" in window:
        return False
    try:
        window.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
