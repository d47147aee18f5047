"""The token window around a span: what the model sees, shared by training and serving.

Layout: `[<s>] prefix | span canvas | suffix [</s>]`. `<s>` appears only when the kept prefix
reaches the start of the file and `</s>` only when the kept suffix reaches its end, so the model
knows where files begin and end. When the context must be cut, the prefix keeps the larger
share (code depends more on what came before).
Training builds its infill examples with the same functions, so served windows look like
trained ones.
"""

from __future__ import annotations

from dataclasses import dataclass

# A token of code is rarely longer than this many characters; clipping text to
# budget * CHARS_PER_TOKEN before tokenizing keeps the work bounded on huge files.
CHARS_PER_TOKEN = 12
# Most code averages 3-4 characters a token: a cut at this many characters a token usually
# holds the whole window already (a third of the text to tokenize), else the cut above is used.
TYPICAL_CHARS_PER_TOKEN = 5
# Tokens beyond the budget a cut must give to be used: a cut inside a token changes only the
# first token or two, which the window then never keeps.
CUT_SLACK = 8
PREFIX_SHARE = 0.75


@dataclass(frozen=True)
class Window:
    """Token ids the model sees and where the span sits in them."""

    ids: list[int]
    span_start: int  # index of the first span position
    span_end: int  # index one past the last span position


def clip_context(
    prefix: str, suffix: str, budget: int, chars_per_token: int = CHARS_PER_TOKEN
) -> tuple[str, str, bool, bool]:
    """Cut prefix and suffix text to what `budget` tokens of `chars_per_token` characters hold.

    Returns (prefix_tail, suffix_head, prefix_reaches_start, suffix_reaches_end).
    """
    limit = max(budget, 1) * chars_per_token
    prefix_tail = prefix[-limit:] if len(prefix) > limit else prefix
    suffix_head = suffix[:limit]
    return prefix_tail, suffix_head, len(prefix) <= limit, len(suffix) <= limit


def split_budget(prefix_len: int, suffix_len: int, budget: int) -> tuple[int, int]:
    """How many prefix and suffix tokens to keep in `budget`: prefix first, unused share moves."""
    budget = max(budget, 0)
    want_prefix = round(budget * PREFIX_SHARE)
    keep_suffix = min(suffix_len, budget - min(prefix_len, want_prefix))
    keep_prefix = min(prefix_len, budget - keep_suffix)
    return keep_prefix, keep_suffix


def build_window(
    prefix_ids: list[int],
    span_ids: list[int],
    suffix_ids: list[int],
    *,
    context: int,
    bos: int,
    eos: int,
    prefix_reaches_start: bool = True,
    suffix_reaches_end: bool = True,
) -> Window:
    """Lay out `[<s>] prefix span suffix [</s>]` within `context` tokens (the span always fits).

    `span_ids` is the span canvas: real tokens in training, mask (and filler) ids when serving.
    Raises ValueError when the span alone is longer than the context.
    """
    room = context - len(span_ids) - 2  # reserve the two boundary tokens
    if room < 0:
        raise ValueError(f"a span of {len(span_ids)} tokens does not fit a {context}-token window")
    keep_prefix, keep_suffix = split_budget(len(prefix_ids), len(suffix_ids), room)
    head = prefix_ids[len(prefix_ids) - keep_prefix :]
    tail = suffix_ids[:keep_suffix]
    starts = [bos] if prefix_reaches_start and keep_prefix == len(prefix_ids) else []
    ends = [eos] if suffix_reaches_end and keep_suffix == len(suffix_ids) else []
    ids = starts + head + span_ids + tail + ends
    span_start = len(starts) + len(head)
    return Window(ids, span_start, span_start + len(span_ids))
