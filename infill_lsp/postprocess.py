"""Shape raw model text into what an editor should insert at a cursor or over a region.

Pure string functions: cut a single-line completion at its first line break, drop trailing
lines that repeat the lines after the cursor, let the insertion swallow closing characters that
are already right of the cursor (so accepting `foo)` before `)` gives `foo)`, not `foo))`), and
narrow a rewrite to the part that really changed. Knows nothing of LSP or the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import AnyStr

CLOSERS = frozenset(")]}>\"'`;,:")


@dataclass(frozen=True)
class Insertion:
    """Text to insert at the cursor, replacing `replace` characters right of it."""

    text: str
    replace: int = 0


def _first_line(text: str) -> str:
    for index, char in enumerate(text):
        if char in "\r\n":
            return text[:index]
    return text


def _drop_repeated_lines(text: str, following: str) -> str:
    """Remove trailing lines of `text` that repeat the first lines of `following`."""
    lines = text.split("\n")
    next_lines = [line.strip() for line in following.split("\n") if line.strip()]
    for count in range(min(len(lines) - 1, len(next_lines)), 0, -1):
        tail = [line.strip() for line in lines[-count:]]
        if tail == next_lines[:count]:
            return "\n".join(lines[:-count])
    return text


def _swallowed(text: str, rest_of_line: str) -> int:
    """How many characters right of the cursor the end of `text` already repeats."""
    # Only a head no longer than `text` can be repeated by it: this keeps the search bounded by
    # the completion's length however long the line is.
    for count in range(min(len(rest_of_line), len(text)), 0, -1):
        head = rest_of_line[:count]
        closers_only = all(char in CLOSERS or char in " \t" for char in head)
        if (closers_only or count >= 4) and text.endswith(head) and head.strip():
            return count
    return 0


def shape_insertion(text: str, prefix: str, suffix: str, single_line: bool) -> Insertion | None:
    """Turn model text for the cursor between `prefix` and `suffix` into an Insertion (or None)."""
    del prefix  # the model saw it; kept in the signature for indentation rules to come
    if single_line:
        text = _first_line(text)
    rest_of_line = _first_line(suffix)
    following = suffix[len(rest_of_line) :].lstrip("\r\n")
    if "\n" in text:
        text = _drop_repeated_lines(text, following)
        lines = text.split("\n")
        text = "\n".join([line.rstrip(" \t\r") for line in lines[:-1]] + [lines[-1]])
    if not rest_of_line.strip():
        text = text.rstrip(" \t")
    if not text.strip() or suffix.startswith(text):
        return None
    replace = _swallowed(text, rest_of_line)
    if replace == len(text.strip()) and text.strip() == rest_of_line[:replace].strip():
        return None  # nothing but the characters already there
    return Insertion(text, replace)


def common_ends(old: AnyStr, new: AnyStr) -> tuple[int, int]:
    """The lengths of the longest common prefix and suffix of `old` and `new`, not overlapping
    (halving slices: a whole-file change costs a few comparisons, not a Python loop per char)."""
    limit = min(len(old), len(new))
    low, high = 0, limit
    while low < high:  # the longest n with old[:n] == new[:n]
        middle = (low + high + 1) // 2
        if old[:middle] == new[:middle]:
            low = middle
        else:
            high = middle - 1
    lead = low
    low, high = 0, limit - lead
    while low < high:  # the longest n with equal last n, within what the prefix left
        middle = (low + high + 1) // 2
        if old[len(old) - middle :] == new[len(new) - middle :]:
            low = middle
        else:
            high = middle - 1
    return lead, low


def changed_span(old: str, new: str) -> tuple[int, int, str]:
    """The smallest edit turning `old` into `new`: (start, end) in `old` and the new text."""
    lead, trail = common_ends(old, new)
    if 0 < lead < len(old) and old[lead - 1 : lead + 1] == "\r\n":
        lead -= 1  # an LSP position cannot sit between "\r" and "\n"
        limit = min(len(old), len(new))
        while trail < limit - lead and old[-1 - trail] == new[-1 - trail]:
            trail += 1  # the prefix gave one character back
    end = len(old) - trail
    if 0 < end < len(old) and old[end - 1 : end + 1] == "\r\n":
        trail -= 1
    return lead, len(old) - trail, new[lead : len(new) - trail]
