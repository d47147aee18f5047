"""How long a span of unknown length should be: two ways to decide it.

- `predict_lengths` (rule "predict"): a model trained on wrong-sized canvases says where a span
  ends (fillers) and when it goes on past the canvas (`<|expand|>`); one pass, or a few while
  the canvas grows, gives a distribution over lengths.
- `choose_lengths` (rule "search", for models without `<|expand|>`): one batched pass scores
  every hypothesis (masks up to the length, visible fillers after it); the best-ranked lengths
  are decoded, and that pass's logits double as their first denoising step.
This module knows token ids, tensors and a logits function; no tokenizer, no text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from infill_lsp.sampler import LogitsFn, length_scores

EVERY_LENGTH_UP_TO = 8  # lengths ranked one by one; beyond, a ladder refined around its best
LADDER = 1.4  # each rung of the first ranking this much longer than the last


def length_hypotheses(size: int, shortest: int = 1) -> list[int]:
    """Span lengths to rank first on a canvas of `size`: EVERY_LENGTH_UP_TO lengths one by one
    from `shortest`, then a geometric ladder (each rung LADDER times the last), always ending
    at `size`."""
    shortest = min(max(shortest, 1), size)
    lengths = list(range(shortest, min(size, shortest + EVERY_LENGTH_UP_TO - 1) + 1))
    while lengths[-1] < size:
        lengths.append(min(size, max(lengths[-1] + 1, round(lengths[-1] * LADDER))))
    return lengths


def between_rungs(lengths: list[int], best: int) -> list[int]:
    """The lengths a ranking skipped on either side of its best one (none when it ranked
    every length around it)."""
    index = lengths.index(best)
    low = lengths[index - 1] if index > 0 else best
    high = lengths[index + 1] if index + 1 < len(lengths) else best
    return [k for k in range(low + 1, high) if k != best]


@dataclass(frozen=True)
class LengthChoice:
    """The rows to decode, one per chosen length, and what the ranking passes learnt."""

    ids: torch.Tensor  # (B, T) masks up to each row's length, fillers after it
    first_logits: torch.Tensor  # (B, S, V) the ranking pass's logits of those rows
    temperatures: list[float]  # (B) per row
    scores: list[float]  # (B) each row's length score
    passes: int = 1  # ranking passes run (two when the ladder's best rung was refined)


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
    """Rank span lengths in a batched pass or two and pick the rows to decode.

    The first pass ranks every short length and a ladder of longer ones; when a rung of the
    ladder wins, a second pass ranks the lengths between its neighbours, so any length can be
    chosen at a fraction of the rows of ranking each one (a 48-token canvas: 15 rows, not 48).

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
    banned = [*banned_ids, filler_id]

    def rank(lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hypotheses = ids.repeat(len(lengths), 1)  # (H, T)
        for row, length in enumerate(lengths):
            hypotheses[row, positions[length:]] = filler_id
        logits = logits_fn(hypotheses, positions)  # (H, S, V)
        masked = hypotheses[:, positions] == mask_id  # (H, S)
        scores = length_scores(logits, masked, banned, mask_id=mask_id, expected=expected)
        return hypotheses, logits, scores  # (H, T), (H, S, V), (H,)

    lengths = length_hypotheses(positions.numel(), shortest)
    ranked = [rank(lengths)]
    skipped = between_rungs(lengths, lengths[int(ranked[0][2].argmax())])
    if skipped:
        ranked.append(rank(skipped))
    scores = torch.cat([score for _, _, score in ranked])  # (H,) over both passes
    where = [(index, row) for index, pass_ in enumerate(ranked) for row in range(len(pass_[2]))]
    order = scores.argsort(descending=True).tolist()
    count = max(rows, min(decoded, len(order)))
    best = [where[order[i] if i < len(order) else order[0]] for i in range(count)]
    temperatures = [temperature] * min(count, len(order))
    temperatures += [extra_temperature] * (count - len(temperatures))
    # only the chosen rows are gathered: both passes' logits together are tens of MB
    return LengthChoice(
        torch.stack([ranked[index][0][row] for index, row in best]),
        torch.stack([ranked[index][1][row] for index, row in best]),
        temperatures,
        [float(ranked[index][2][row]) for index, row in best],
        len(ranked),
    )


PROBE_TOKENS = 16  # the first canvas a predicted length is read from, doubled while it is short
MOST_PROBES = 4  # 16 -> 128 tokens at most before the length is taken as the canvas's


@dataclass(frozen=True)
class PredictedLengths:
    """What the model says about a span's length: the likeliest lengths, best first."""

    lengths: list[int]
    probabilities: list[float]  # of each length
    passes: int  # forward passes spent reading them


def length_distribution(ended: torch.Tensor, goes_on: float) -> torch.Tensor:
    """P(length = k) for k = 0..S, and P(longer than the canvas) last, from one pass.

    `ended[i]` is the model's probability that the span has ended at or before position i (a
    filler there, or a line break for a single line): a cumulative distribution of the length,
    made monotone here. `goes_on` is its probability of `<|expand|>` at the canvas's last
    position: the span is longer than the canvas. Returns (S + 2,).
    """
    cdf = torch.cummax(ended.double().clamp(0, 1), dim=0).values  # (S,) P(length <= i)
    shorter = torch.diff(cdf, prepend=cdf.new_zeros(1))  # (S,) P(length = i), i < S
    rest = float(1 - cdf[-1])  # the last position holds text or says "goes on"
    longer = min(max(goes_on, 0.0), rest)
    return torch.cat([shorter, cdf.new_tensor([rest - longer, longer])])


def predict_lengths(
    logits_fn: LogitsFn,
    window_of: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
    *,
    size: int,
    first: int,
    mask_id: int,
    filler_id: int,
    expand_id: int,
    end_ids: Sequence[int],
    shortest: int,
    rows: int,
) -> PredictedLengths:
    """Read a span's length off the model's own predictions, in one pass or a few.

    A canvas of `first` masks (at most `size`) goes through the model once. A model trained
    with wrong-sized canvases (`training.objective`) answers with fillers where the span has
    ended and `<|expand|>` at the last position when it goes on: while "longer" is the likeliest
    answer the canvas doubles (at most `size`) and is read again.

    Args:
        window_of: canvas size -> ((1, T) ids with that many masks, (S,) their columns).
        end_ids: ids that also end the span here (line breaks, for a single line).
        shortest: lengths below it are never chosen.
        rows: how many lengths to return, likeliest first.
    """
    canvas = max(1, min(size, max(first, shortest + 1)))
    ends = sorted({filler_id, *end_ids})
    for passes in range(1, MOST_PROBES + 1):
        ids, positions = window_of(canvas)
        logits = logits_fn(ids, positions)[0].float().clone()  # (S, V), writable
        logits[:, mask_id] = -math.inf
        probs = torch.softmax(logits, dim=-1)  # (S, V)
        chances = length_distribution(probs[:, ends].sum(dim=-1), float(probs[-1, expand_id]))
        if canvas < size and passes < MOST_PROBES and int(chances.argmax()) == canvas + 1:
            canvas = min(size, canvas * 2)
            continue
        break
    longer = float(chances[canvas + 1])
    chances = chances[: canvas + 1].clone()  # lengths 0..canvas
    chances[canvas] += longer  # it may not grow further: "longer" means as long as it may be
    chances[: max(shortest, 1)] = -1.0
    order = chances.argsort(descending=True)[: max(rows, 1)].tolist()
    best = [k for k in order if chances[k] >= 0] or [canvas]
    return PredictedLengths(best, [float(chances[k]) for k in best], passes)
