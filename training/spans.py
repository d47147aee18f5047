"""Where a missing span sits in a text: one picker for the training objective and the evaluation.

A span is a pair of character offsets (start, end) into a text, of one kind: a single line
("line"), 2-8 whole lines ("lines"), a tree-sitter syntax node ("node", `infill_lsp.regions`)
or a run of random characters ("chars", training only). Training varies where a line span
starts (mid-line, as a cursor would be, or at the line start with its indentation);
evaluation asks for the span a person would type, from its indentation to the line's end.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from infill_lsp import regions

NODE_RADIUS = 1500  # characters parsed either side of a random point: long files stay cheap


@dataclass(frozen=True)
class SpanRules:
    """How a picker places spans; the defaults are the evaluation's."""

    max_node_chars: int = 300
    multiline_nodes: bool = True  # only nodes that span more than one line
    mid_line_share: float = 0.0  # "line" spans starting at a random point inside the line
    line_start_share: float = 0.0  # of the others, the share that keeps the indentation
    empty_share: float = 0.0  # "chars" spans that are empty (nothing missing)


def pick_span(
    kind: str, text: str, language: str, rng: random.Random, rules: SpanRules = SpanRules()
) -> tuple[int, int] | None:
    """Character offsets (start, end) of a span of `kind` in `text`, or None if none fits."""
    if kind in ("line", "lines"):
        return _lines(kind, text, rng, rules)
    if kind == "node":
        return _node(text, language, rng, rules)
    if kind == "chars":
        if not text:
            return None
        if rules.empty_share and rng.random() < rules.empty_share:
            point = rng.randrange(len(text) + 1)
            return point, point
        start = rng.randrange(len(text))
        return start, min(len(text), start + rng.randint(1, 120))
    raise ValueError(f"unknown span kind {kind!r}")


def _lines(kind: str, text: str, rng: random.Random, rules: SpanRules) -> tuple[int, int] | None:
    lines = text.splitlines(keepends=True)
    count = 1 if kind == "line" else rng.randint(2, 8)
    candidates = [i for i, line in enumerate(lines[: max(1, len(lines) - count + 1)])
                  if line.strip()]  # fmt: skip
    if not candidates:
        return None
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    first = rng.choice(candidates)
    last = min(len(lines), first + count) - 1
    indent = starts[first] + len(lines[first]) - len(lines[first].lstrip(" \t"))
    end = starts[last] + len(lines[last].rstrip("\r\n"))
    if kind == "line" and rules.mid_line_share and rng.random() < rules.mid_line_share:
        return rng.randrange(indent, end), end  # a cursor in the middle of a line
    if rules.line_start_share and rng.random() < rules.line_start_share:
        return starts[first], end
    return indent, end


def _node(text: str, language: str, rng: random.Random, rules: SpanRules) -> tuple[int, int] | None:
    if not text:
        return None
    centre = rng.randrange(len(text))
    low = text.rfind("\n", 0, max(0, centre - NODE_RADIUS)) + 1
    high = min(len(text), centre + NODE_RADIUS)
    nodes = [
        (low + s, low + e)
        for s, e, _ in regions.syntax_spans(text[low:high], language)
        if 0 < e - s <= rules.max_node_chars
    ]
    if rules.multiline_nodes:
        nodes = [(s, e) for s, e in nodes if "\n" in text[s:e]]
    return rng.choice(nodes) if nodes else None
