"""The open text documents, kept in sync with the client (full or incremental changes).

The server keeps its own store rather than pygls' workspace so that line breaks follow LSP
("\\n", "\\r\\n", "\\r" only), unknown URIs are never read from disk, and positions convert in the
negotiated encoding through `positions`. Also the questions every feature asks of a document's
text: the window of whole lines tree-sitter looks at, and whether the text near a span is fit
for the model. Knows lsprotocol types, not the model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from lsprotocol import types

from infill_lsp.lsp.positions import UTF16, LineIndex, check_span

log = logging.getLogger(__name__)

SYNTAX_MARGIN = 20_000  # characters of text around the cursor that tree-sitter looks at


@dataclass
class Document:
    """One open document: its text, version and languageId."""

    uri: str
    text: str
    language_id: str | None = None
    version: int | None = None
    _index: LineIndex | None = field(default=None, repr=False)

    @property
    def index(self) -> LineIndex:
        if self._index is None or self._index.text is not self.text:
            self._index = LineIndex(self.text)
        return self._index

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

    def apply(self, change: types.TextDocumentContentChangeEvent, encoding: str) -> None:
        """Apply one content change (incremental when it has a range, else full)."""
        if isinstance(change, types.TextDocumentContentChangePartial):
            start = self.offset_at(change.range.start, encoding, clamp=True)
            end = self.offset_at(change.range.end, encoding, clamp=True)
            start, end = min(start, end), max(start, end)
            self.text = self.text[:start] + change.text + self.text[end:]
        else:
            self.text = change.text


class Documents:
    """The open documents by URI; unknown URIs are simply absent."""

    def __init__(self) -> None:
        self._by_uri: dict[str, Document] = {}

    def __len__(self) -> int:
        return len(self._by_uri)

    def get(self, uri: str) -> Document | None:
        """The open document at `uri`, or None."""
        return self._by_uri.get(uri)

    def open(self, item: types.TextDocumentItem) -> Document:
        """Start tracking a document the client opened."""
        document = Document(item.uri, item.text, item.language_id, item.version)
        self._by_uri[item.uri] = document
        return document

    def change(
        self, params: types.DidChangeTextDocumentParams, encoding: str = UTF16
    ) -> Document | None:
        """Apply the client's changes; None for a document that was never opened."""
        document = self._by_uri.get(params.text_document.uri)
        if document is None:
            log.warning("change to a document that is not open: %s", params.text_document.uri)
            return None
        for change in params.content_changes:
            document.apply(change, encoding)
        document.version = params.text_document.version
        return document

    def close(self, uri: str) -> None:
        """Forget a document the client closed."""
        self._by_uri.pop(uri, None)


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
