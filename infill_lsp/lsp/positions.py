"""LSP positions <-> Python string offsets, in UTF-16, UTF-8 or UTF-32 code units.

Lines end at "\\n", "\\r\\n" or "\\r" only (LSP's rule, unlike str.splitlines). A character
past the end of its line means the end of the line (the LSP spec says so); a line past the end
of the text is an InputError unless the caller asks to clamp. A position inside a surrogate
pair or a multi-byte character rounds down to the character's start. This module knows only
strings: no pygls, no documents.
"""

from __future__ import annotations

import bisect
import re

from infill_lsp.errors import InputError

UTF8 = "utf-8"
UTF16 = "utf-16"
UTF32 = "utf-32"

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def line_starts(text: str) -> list[int]:
    """Offset of the first character of every line (at least one line, even for "")."""
    return [0, *(match.end() for match in _LINE_BREAK.finditer(text))]


def code_units(text: str, encoding: str) -> int:
    """Length of `text` in the code units of `encoding`."""
    if encoding == UTF32 or text.isascii():
        return len(text)
    if encoding == UTF8:
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _unit_width(char: str, encoding: str) -> int:
    point = ord(char)
    if encoding == UTF16:
        return 2 if point > 0xFFFF else 1
    if encoding == UTF8:
        return 1 if point < 0x80 else 2 if point < 0x800 else 3 if point < 0x10000 else 4
    return 1


def index_at_units(line: str, units: int, encoding: str) -> int:
    """The str index `units` code units into `line`, clamped to its end, rounded down."""
    if encoding == UTF32 or line.isascii():
        return min(units, len(line))
    count = 0
    for index, char in enumerate(line):
        width = _unit_width(char, encoding)
        if count + width > units:
            return index
        count += width
    return len(line)


class LineIndex:
    """Line starts of one text, for converting positions both ways."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = line_starts(text)

    @property
    def line_count(self) -> int:
        return len(self.starts)

    def line_text(self, line: int) -> str:
        """Line `line` without its line break."""
        start = self.starts[line]
        end = self.starts[line + 1] if line + 1 < len(self.starts) else len(self.text)
        content = self.text[start:end]
        if content.endswith("\r\n"):
            return content[:-2]
        if content.endswith(("\n", "\r")):
            return content[:-1]
        return content

    def offset_at(self, line: int, character: int, encoding: str, clamp: bool = False) -> int:
        """The str offset of an LSP position; InputError past the last line unless `clamp`."""
        if line < 0 or character < 0:
            raise InputError(f"position {line}:{character} is negative")
        if line >= len(self.starts):
            if not clamp:
                raise InputError(
                    f"line {line} is past the end of the document ({len(self.starts)} lines)"
                )
            return len(self.text)
        return self.starts[line] + index_at_units(self.line_text(line), character, encoding)

    def position_at(self, offset: int, encoding: str) -> tuple[int, int]:
        """The LSP (line, character) of a str offset (clamped into the text)."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self.starts, offset) - 1
        start = self.starts[line]
        # an offset between "\r" and "\n" of one break belongs to the end of the line
        column = min(offset - start, len(self.line_text(line)))
        return line, code_units(self.text[start : start + column], encoding)


def check_span(start: int, end: int, allow_empty: bool = True) -> None:
    """Raise InputError for a reversed (or, unless allowed, empty) span."""
    if end < start:
        raise InputError("the range ends before it starts")
    if end == start and not allow_empty:
        raise InputError("the range is empty: select some text first")
