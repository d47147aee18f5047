"""Syntax-aware regions: which grammar a file has, where a cursor or selection sits in the tree.

Used by the server (single-line vs multi-line completion, snapping a selection to whole nodes,
rejecting candidates that break the parse) and by training (candidate infill spans), so served
spans and trained spans have the same shape.

Grammars come from `tree-sitter-language-pack`, loaded from the installed wheel only: this module
never downloads anything. A language whose grammar is not installed behaves like plain text, and
every function has a line-based fallback for text without a grammar.

All offsets are Python `str` indices (code points); tree-sitter's UTF-8 byte offsets stay inside.
Knows nothing about tokens, models or LSP.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import cache, lru_cache
from itertools import accumulate

from tree_sitter import Language, Node, Parser, Query, QueryCursor, Tree

from infill_lsp.postprocess import common_ends

# LSP languageId -> grammar name. Ids listed in NO_GRAMMAR_IDS mean "plain text" on purpose.
LANGUAGE_IDS = {
    "python": "python",
    "javascript": "javascript",
    "javascriptreact": "javascript",  # tree-sitter-javascript parses JSX
    "typescript": "typescript",
    "typescriptreact": "tsx",
    "go": "go",
    "rust": "rust",
    "java": "java",
    "c": "c",
    "cpp": "cpp",
    "cuda-cpp": "cpp",
}
NO_GRAMMAR_IDS = {"plaintext", "text", "markdown"}
EXTENSIONS = {
    **dict.fromkeys(["py", "pyi", "pyw"], "python"),
    **dict.fromkeys(["js", "mjs", "cjs", "jsx"], "javascript"),
    **dict.fromkeys(["ts", "mts", "cts"], "typescript"),
    "tsx": "tsx",
    "go": "go",
    "rs": "rust",
    "java": "java",
    **dict.fromkeys(["c", "h"], "c"),
    **dict.fromkeys(["cc", "cpp", "cxx", "c++", "hh", "hpp", "hxx", "h++", "ipp", "cu"], "cpp"),
}

# Node kinds that hold a sequence of statements or members: a "block" to the user.
BLOCK_KINDS = frozenset(
    {
        "block",  # python, go, rust, java
        "statement_block",  # javascript, typescript
        "compound_statement",  # c, c++
        "class_body",
        "interface_body",
        "enum_body",
        "constructor_body",
        "declaration_list",
        "field_declaration_list",
        "switch_block",
        "switch_body",
        "match_block",
    }
)
ARGUMENT_KINDS = frozenset(
    {"argument_list", "arguments", "parameters", "formal_parameters", "parameter_list"}
)
# Expression kinds whose names do not end in "_expression" (mostly python's).
EXPRESSION_KINDS = frozenset(
    {
        "call",
        "attribute",
        "subscript",
        "binary_operator",
        "boolean_operator",
        "comparison_operator",
        "not_operator",
        "unary_operator",
        "lambda",
        "await",
        "list",
        "tuple",
        "set",
        "dictionary",
        "list_comprehension",
        "set_comprehension",
        "dictionary_comprehension",
        "generator_expression",
        "arrow_function",
        "object",
        "array",
        "initializer_list",
        "macro_invocation",
        "composite_literal",
    }
)
STATEMENT_SUFFIXES = ("_statement", "_declaration", "_definition", "_item")
SKIPPED_STATEMENTS = frozenset({"empty_statement", "parameter_declaration"})
BLOCK_OPENERS = (":", "{", "(", "[", "=>")  # a blank line after these starts a body
CODE_LINE_OPENERS = (":", "{")  # `def f():|` and `f() {|}` ask for a body
CLOSERS = frozenset(")]}; \t\r")
WHITESPACE = frozenset(b" \t\r\n")
WIDEN_FRACTION = 0.7  # a one-line selection covering this much of a node becomes the node

_local = threading.local()  # parsers are not thread-safe: one per thread and language


def language_for(path_or_uri: str, language_id: str | None = None) -> str | None:
    """Return the grammar name for a document, or None when it has no (installed) grammar.

    A known languageId wins, a plain-text or markdown one means no grammar whatever the file is
    called, and an unknown or missing one falls back to the file extension.
    """
    name: str | None = None
    if language_id:
        language_id = language_id.lower()
        if language_id in NO_GRAMMAR_IDS:
            return None
        name = LANGUAGE_IDS.get(language_id)
    if name is None:
        path = (
            path_or_uri.split("?", 1)[0].split("#", 1)[0] if "://" in path_or_uri else path_or_uri
        )
        base = path.replace("\\", "/").rsplit("/", 1)[-1]
        name = EXTENSIONS.get(base.rsplit(".", 1)[-1].lower()) if "." in base else None
    return name if name is not None and _language(name) is not None else None


def parse_errors(text: str, language: str | None) -> int:
    """Count ERROR and MISSING nodes in the parse of `text` (0 without a grammar)."""
    return _error_count(text, language)


@lru_cache(maxsize=8)  # the same "before" text is checked against every candidate
def _error_count(text: str, language: str | None) -> int:
    tree = _parse(text.encode("utf-8", "surrogatepass"), language)
    return 0 if tree is None else _count_errors(tree.root_node)


def introduces_error(before: str, after: str, language: str | None) -> bool:
    """Tell whether `after` has a parse error that `before` does not have at the same place.

    The two texts differ in one stretch (their common prefix and suffix are the same text). An
    error of `before` outside that stretch, or reaching out of it, is the same error in `after`
    once moved by the stretch's change in length; one lying wholly inside it belonged to the
    replaced text (a hole's marker) and vanishes with it. Any other error of `after` is new.
    Counting is not enough: a fill can remove the marker's errors and add as many of its own.
    """
    if language is None or _language(language) is None or before == after:
        return False
    found = _error_spans(after, language)
    if not found:
        return False
    old, new = before.encode("utf-8", "surrogatepass"), after.encode("utf-8", "surrogatepass")
    lead, trail = common_ends(old, new)
    old_end, shift = len(old) - trail, len(new) - len(old)
    known = set()
    for start, end in _error_spans(before, language):
        if lead <= start and end <= old_end and not (start == end in (lead, old_end)):
            continue  # inside the replaced stretch: gone with it
        known.add((start if start <= lead else start + shift, end if end <= lead else end + shift))
    return any(span not in known for span in found)


@lru_cache(maxsize=8)  # the same "before" text is checked against every candidate
def _error_spans(text: str, language: str) -> frozenset[tuple[int, int]]:
    """UTF-8 byte spans of the ERROR and MISSING nodes in the parse of `text`."""
    tree = _parse(text.encode("utf-8", "surrogatepass"), language)
    return frozenset() if tree is None else frozenset(_errors(tree.root_node))


def completion_scope(text: str, offset: int, language: str | None) -> str:
    """Say whether a completion at `offset` should be one line ("line") or a body ("block").

    The rule:
    - On a line with code on either side of the cursor the answer is "line", except when the
      code before the cursor ends with a block opener (`:` or `{`), only closers follow it, and
      (with a grammar) the block it opens is still empty, as in `def f():|` or `f() {|}`.
    - On a blank (empty or whitespace-only) line the answer is "block" when the previous non-blank
      line ends with an opener (`:` `{` `(` `[` `=>`), when the cursor lies inside a block node
      (a function/class/loop body, braces), or when the blank line is indented (an editor
      indents inside bodies); otherwise "line" (e.g. top level between two functions).
    """
    offset = min(max(offset, 0), len(text))
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = _line_end(text, offset)
    before, after = text[line_start:offset], text[offset:line_end]
    if before.strip() or after.strip():
        opens = before.rstrip().endswith(CODE_LINE_OPENERS) and set(after) <= CLOSERS
        if not opens:
            return "line"
        source = _Source(text)
        tree = _parse(source.data, language)
        if tree is None:
            return "block"
        opener = source.to_byte(line_start + len(before.rstrip()))
        return "block" if _opens_empty_block(tree.root_node, opener) else "line"

    previous = text[:line_start].rstrip()
    if previous.endswith(BLOCK_OPENERS) or (before + after).strip("\r\n") != "":
        return "block"
    source = _Source(text)
    tree = _parse(source.data, language)
    if tree is not None and _inside_block(tree.root_node, source.to_byte(offset)):
        return "block"
    return "line"


def selects_whole_lines(text: str, start: int, end: int) -> bool:
    """Tell whether text[start:end] is made of whole lines (what a line-wise selection sends):
    nothing but indentation before it on its first line, nothing but blanks after it on its last.
    An empty selection is not."""
    start, end = sorted((min(max(start, 0), len(text)), min(max(end, 0), len(text))))
    if start == end:
        return False
    before = text[text.rfind("\n", 0, start) + 1 : start]
    after = text[end : _line_end(text, end)] if text[end - 1] != "\n" else ""
    return not before.strip() and not after.strip()


def snap_to_nodes(text: str, start: int, end: int, language: str | None) -> tuple[int, int]:
    """Widen a selection to what the user meant: whole lines and nodes; never shrink it.

    A selection crossing lines becomes whole lines, then whole statements (the children of the
    smallest node holding it that it touches). A one-line selection is widened to whole tokens
    and children, then to each enclosing node it covers at least 70% of. Selections inside a
    comment or string stay as they are. An empty selection stays empty. Without a grammar only
    the line rule applies.
    """
    start, end = sorted((min(max(start, 0), len(text)), min(max(end, 0), len(text))))
    if start == end:
        return start, end
    crosses = "\n" in text[start:end].rstrip("\r\n")
    new_start, new_end = start, end
    if crosses:
        new_start = text.rfind("\n", 0, start) + 1
        new_end = end if text[end - 1] == "\n" else _line_end(text, end)
    source = _Source(text)
    tree = _parse(source.data, language)
    trimmed = _trim(text, new_start, new_end)
    if tree is None or trimmed is None:
        return new_start, new_end
    low, high = source.to_byte(trimmed[0]), source.to_byte(trimmed[1])
    found = tree.root_node.descendant_for_byte_range(low, high)
    if found is None or (not crosses and _is_text_like(found.type)):
        return new_start, new_end
    low, high = _touched_children(found, low, high)
    if not crosses:
        selected = trimmed[1] - trimmed[0]  # what the user selected, not what snapping added
        for node in _ancestors(found):
            if node.parent is None:
                break  # never the whole file
            if node.start_byte > low or node.end_byte < high or node.type in ARGUMENT_KINDS:
                continue  # not holding the selection yet, or only adds brackets
            size = source.to_char(node.end_byte) - source.to_char(node.start_byte)
            if selected < WIDEN_FRACTION * size:
                break
            low, high = node.start_byte, node.end_byte
    new_start = min(new_start, source.to_char(low))
    new_end = max(new_end, source.to_char(high))
    if crosses:  # statements found above may start or end mid-line: back to whole lines
        if not text[text.rfind("\n", 0, new_start) + 1 : new_start].strip():
            new_start = text.rfind("\n", 0, new_start) + 1
        if text[new_end - 1] != "\n" and not text[new_end : _line_end(text, new_end)].strip():
            new_end = _line_end(text, new_end)
    return new_start, new_end


def syntax_spans(text: str, language: str | None) -> list[tuple[int, int, str]]:
    """List candidate infill spans (start, end, kind), sorted by start then longest first.

    Kinds: "block" (the statements of a body, from its first to its last child, without
    braces), "statement" (statement and declaration nodes, and anything directly in a body or at
    top level), "expression" (compound ones, not single tokens), "arguments" (the inside of an
    argument or parameter list, without parentheses; empty lists are skipped). Nodes containing
    a parse error are skipped, so truncated windows still give their complete parts. Without a
    grammar the list is empty.
    """
    kinds_query = _span_query(language) if language is not None else None
    if kinds_query is None:
        return []
    source = _Source(text)
    tree = _parse(source.data, language)
    if tree is None:
        return []
    captures = QueryCursor(kinds_query).captures(tree.root_node)
    best: dict[tuple[int, int], str] = {}
    for kind in ("expression", "arguments", "statement", "block"):  # later kinds win ties
        for node in captures.get(kind, ()):
            if node.has_error or "comment" in node.type:
                continue
            span = _span_of(node, kind)
            if span is None:
                continue
            low, high = span
            while high > low and source.data[high - 1] in WHITESPACE:  # go's block keeps a "\n"
                high -= 1
            best[low, high] = kind
    spans = [
        (source.to_char(low), source.to_char(high), kind)
        for (low, high), kind in best.items()
        if high > low
    ]
    spans.sort(key=lambda span: (span[0], -span[1]))
    return spans


# --- grammars and parsing ---------------------------------------------------------------


@cache
def _language(name: str) -> Language | None:
    """Load a grammar from the installed language pack; None when it is not installed."""
    try:
        import tree_sitter_language_pack as pack
    except ImportError:
        return None
    downloaded = getattr(pack, "downloaded_languages", None)
    try:
        # Packs from 1.0 on fetch grammars over the network on first use: use only cached ones.
        if downloaded is not None and name not in downloaded():
            return None
        return pack.get_language(name)  # type: ignore[arg-type]
    except Exception:  # any loading failure means "no grammar", never a crash
        return None


def _parse(data: bytes, language: str | None) -> Tree | None:
    """Parse UTF-8 bytes with a cached per-thread parser; None without a grammar."""
    if language is None:
        return None
    grammar = _language(language)
    if grammar is None:
        return None
    parsers: dict[str, Parser] = _local.__dict__.setdefault("parsers", {})
    parser = parsers.get(language)
    if parser is None:
        parser = parsers[language] = Parser(grammar)
    return parser.parse(data)


@cache
def _span_query(language: str) -> Query | None:
    """Build one query capturing every node kind of interest in this grammar."""
    grammar = _language(language)
    if grammar is None:
        return None
    groups: dict[str, list[str]] = {"block": [], "statement": [], "expression": [], "arguments": []}
    supertypes = set(grammar.supertypes)
    for kind_id in range(grammar.node_kind_count):
        name = grammar.node_kind_for_id(kind_id)
        if (
            name is None
            or kind_id in supertypes
            or not grammar.node_kind_is_named(kind_id)
            or not grammar.node_kind_is_visible(kind_id)
        ):
            continue
        kind = _classify(name)
        if kind is not None and name not in groups[kind]:
            groups[kind].append(name)
    patterns = [
        "[" + " ".join(f"({name})" for name in names) + f"] @{kind}"
        for kind, names in groups.items()
        if names
    ]
    # What sits directly in a body or at top level is a statement whatever its kind
    # (python has no expression_statement node: `x = 1` is a bare assignment).
    top = Parser(grammar).parse(b"").root_node.type
    patterns += [f"({name} (_) @statement)" for name in [top, *groups["block"]]]
    return Query(grammar, "\n".join(patterns)) if patterns else None


def _classify(name: str) -> str | None:
    """Map a node kind name to a span kind, or None."""
    if name in BLOCK_KINDS:
        return "block"
    if name in ARGUMENT_KINDS:
        return "arguments"
    if name.endswith(STATEMENT_SUFFIXES) and name not in SKIPPED_STATEMENTS:
        return "statement"
    if name.endswith("_expression") or name in EXPRESSION_KINDS:
        return "expression"
    return None


# --- tree helpers ------------------------------------------------------------------------


class _Source:
    """A text with its UTF-8 bytes and conversions between code point and byte offsets."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.data = text.encode("utf-8", "surrogatepass")
        self.ascii = len(self.data) == len(text)
        self._chars: list[int] | None = None

    def to_byte(self, offset: int) -> int:
        if self.ascii:
            return offset
        return len(self.text[:offset].encode("utf-8", "surrogatepass"))

    def to_char(self, byte: int) -> int:
        if self.ascii:
            return byte
        if self._chars is None:  # number of code points that start before each byte offset
            starts = ((b & 0xC0) != 0x80 for b in self.data)
            self._chars = [0, *accumulate(starts)]
        return self._chars[byte]


def _count_errors(root: Node) -> int:
    """Count ERROR and MISSING nodes."""
    return sum(1 for _ in _errors(root))


def _errors(root: Node) -> Iterator[tuple[int, int]]:
    """Byte spans of ERROR and MISSING nodes, visiting only subtrees that contain errors."""
    if not root.has_error:
        return
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            yield node.start_byte, node.end_byte
        stack.extend(child for child in node.children if child.has_error)


def _ancestors(node: Node | None) -> Iterator[Node]:
    while node is not None:
        yield node
        node = node.parent


def _opens_empty_block(root: Node, opener: int) -> bool:
    """Tell whether the opener token ending at byte `opener` starts a block with no statements."""
    token = root.descendant_for_byte_range(max(opener - 1, 0), opener)
    for ancestor in _ancestors(token):
        if ancestor.is_error:
            return True  # an unfinished construct: trust the opener
        for node in (ancestor, *ancestor.children):
            if node.type in BLOCK_KINDS and opener - 1 <= node.start_byte <= opener:
                return not any(c.is_named and "comment" not in c.type for c in node.children)
    return False


def _inside_block(root: Node, byte: int) -> bool:
    """Tell whether byte offset `byte` lies within a block-like node."""
    node = root.descendant_for_byte_range(byte, byte)
    return any(
        n.type in BLOCK_KINDS and n.start_byte < byte < n.end_byte + 1 for n in _ancestors(node)
    )


def _touched_children(node: Node, low: int, high: int) -> tuple[int, int]:
    """Widen [low, high) to whole children of `node` that it touches."""
    touched = [c for c in node.children if c.end_byte > low and c.start_byte < high]
    if not touched:
        return min(low, node.start_byte), max(high, node.end_byte)
    return min(low, touched[0].start_byte), max(high, touched[-1].end_byte)


def _span_of(node: Node, kind: str) -> tuple[int, int] | None:
    """Byte span a node contributes: delimited kinds give their inside, others themselves."""
    if kind in ("block", "arguments"):
        count = node.named_child_count
        if count == 0:
            return None
        first, last = node.named_child(0), node.named_child(count - 1)
        return (first.start_byte, last.end_byte) if first and last else None
    if kind == "expression" and node.child_count < 2:
        return None
    return node.start_byte, node.end_byte


def _is_text_like(kind: str) -> bool:
    return "comment" in kind or "string" in kind


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Strip whitespace from both ends of [start, end); None when nothing is left."""
    chunk = text[start:end]
    stripped = chunk.strip()
    if not stripped:
        return None
    low = start + len(chunk) - len(chunk.lstrip())
    return low, low + len(stripped)


def _line_end(text: str, offset: int) -> int:
    """Offset of the newline ending the line at `offset` (or of the end of the text)."""
    end = text.find("\n", offset)
    if end < 0:
        return len(text)
    return end - 1 if end > offset and text[end - 1] == "\r" else end
