"""How long a span of unknown length should be: the length hypotheses and the length decision.

One batched forward pass scores every hypothesis (masks up to the length, visible fillers after
it); the best-ranked lengths are decoded, and that pass's logits double as their first denoising
step. This module knows token ids, tensors and a logits function; no tokenizer, no text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from infill_lsp.sampler import LogitsFn, length_scores

EVERY_LENGTH_UP_TO = 24  # lengths tried one by one; beyond, each about 10 % longer than the last


def length_hypotheses(size: int, shortest: int = 1) -> list[int]:
    """Span lengths to try on a canvas of `size`: EVERY_LENGTH_UP_TO lengths one by one from
    `shortest`, then a geometric ladder (each about 10 % longer), always ending at `size`."""
    shortest = min(max(shortest, 1), size)
    lengths = list(range(shortest, min(size, shortest + EVERY_LENGTH_UP_TO - 1) + 1))
    while lengths[-1] < size:
        lengths.append(min(size, max(lengths[-1] + 1, round(lengths[-1] * 1.1))))
    return lengths


@dataclass(frozen=True)
class LengthChoice:
    """The rows to decode, one per chosen length, and what the ranking pass learnt."""

    ids: torch.Tensor  # (B, T) masks up to each row's length, fillers after it
    first_logits: torch.Tensor  # (B, S, V) the ranking pass's logits of those rows
    temperatures: list[float]  # (B) per row
    scores: list[float]  # (B) each row's length score


def choose_lengths(
    logits_fn: LogitsFn,
    ids: torch.Tensor,
    positions: torch.Tensor,
    *,
    mask_id: int,
    filler_id: int,
    banned_ids: Sequence[int],
    shortest: int,
    rows: int,
    decoded: int,
    temperature: float,
    extra_temperature: float,
    expected: int | None = None,
) -> LengthChoice:
    """Rank every span length in one batched pass and pick the rows to decode.

    Args:
        ids: (1, T) the window with a canvas of masks at `positions`.
        positions: (S,) the canvas columns; S is the longest length tried.
        banned_ids: ids never generated (the filler is banned as well when ranking).
        shortest: the shortest length tried.
        rows: candidates asked for; more rows than lengths repeat the best with noise.
        decoded: searching, the best-ranked lengths decoded in full (at least `rows`).
        temperature, extra_temperature: for the best-ranked lengths, and for repeats.
        expected: the length a rewrite starts from (its region's), a prior; None for none.
    """
    lengths = length_hypotheses(positions.numel(), shortest)
    hypotheses = ids.repeat(len(lengths), 1)  # (H, T)
    for row, length in enumerate(lengths):
        hypotheses[row, positions[length:]] = filler_id
    logits = logits_fn(hypotheses, positions)  # (H, S, V)
    masked = hypotheses[:, positions] == mask_id  # (H, S)
    banned = [*banned_ids, filler_id]
    ranked = length_scores(logits, masked, banned, mask_id=mask_id, expected=expected)  # (H,)
    order = ranked.argsort(descending=True).tolist()
    count = max(rows, min(decoded, len(order)))
    best = [order[i] if i < len(order) else order[0] for i in range(count)]
    temperatures = [temperature] * min(count, len(order))
    temperatures += [extra_temperature] * (count - len(temperatures))
    return LengthChoice(
        hypotheses[best], logits[best], temperatures, [float(ranked[row]) for row in best]
    )
