"""Text in, text out: infill, rewrite, revise and fill holes with a masked-diffusion model.

The engine turns strings into a token window (through `decoder`, the same layout training uses),
runs the sampler, strips fillers and detokenizes exactly, so prefix and suffix text is never
touched and the generated text keeps every space, tab and newline the model produced. Each call
is a job: a generator that yields `Progress` after every denoising step and returns its result,
so a server can cancel between steps; `infill`, `rewrite`, `revise` and `fill_holes` are the same
calls run to their end. A span of unknown length gets its length from `lengths`. The engine
knows the tokenizer and the model's special ids; nothing about LSP, documents or lines.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch

from infill_lsp.decoder import (
    MASK_GLYPH,
    MAX_CANDIDATES,
    PROBE_STRIDE,
    Decoder,
    Progress,
    sampling_of,
)
from infill_lsp.errors import InputError
from infill_lsp.jobs import Steps, blocking, relay, run
from infill_lsp.lengths import PROBE_TOKENS, choose_lengths, length_hypotheses, predict_lengths
from infill_lsp.models.context_cache import ContextCache, LogitsFn, ranking_logits
from infill_lsp.options import DecodeOptions
from infill_lsp.sampler import probe_logprobs
from infill_lsp.window import CHARS_PER_TOKEN

# What callers of the engine use, wherever it is defined.
__all__ = [
    "MASK_GLYPH",
    "DecodeOptions",
    "Engine",
    "Hole",
    "Infill",
    "Job",
    "Progress",
    "TokenScore",
    "length_hypotheses",
    "run",
]

T = TypeVar("T")
Job = Steps[Progress, T]

# span ids -> a window around them and its canvas columns, for one request (`Engine._canvases`)
Canvases = Callable[[list[int]], tuple[torch.Tensor, torch.Tensor]]

EXTRA_CANDIDATE_TEMPERATURE = 0.8  # for candidates beyond the first when decoding greedily


@dataclass(frozen=True)
class Infill:
    """One candidate."""

    text: str
    confidences: list[float]  # per generated (non-filler) token, in 0..1
    steps: int  # denoising steps it took (a forward pass each)
    score: float = 0.0  # how the engine ranked it among candidates (higher first)
    deciding: int = 0  # forward passes spent on its length before the first denoising step

    @property
    def passes(self) -> int:
        """Every forward pass it took."""
        return self.steps + self.deciding


@dataclass(frozen=True)
class TokenScore:
    """How likely the model finds one token of a region (for revise hints)."""

    start: int  # char offsets into the region
    end: int
    logprob: float


@dataclass(frozen=True)
class Hole:
    """A filled hole marker."""

    start: int  # char offsets of the marker in the input text
    end: int
    text: str


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


class Engine(Decoder):
    """Text-level calls on one loaded model."""

    # ----- public calls: each a job, and the same call run to its end -------------------

    def infill_job(
        self,
        prefix: str,
        suffix: str,
        *,
        single_line: bool = False,
        candidates: int = 1,
        max_tokens: int | None = None,
        length: int | None = None,
        options: DecodeOptions | None = None,
    ) -> Job[list[Infill]]:
        """Fill the gap between prefix and suffix with text of unknown length (or of `length`
        tokens, when the caller knows it: an evaluation's oracle).

        The canvas holds at most `max_tokens` (default `max_span_tokens`) tokens; the length
        rule decides how many. single_line bans every token containing a line break.
        """
        options = options or self.options
        size = options.max_span_tokens if max_tokens is None else max_tokens
        if size < 1:
            raise InputError(f"max_tokens must be at least 1, got {size}")
        if length is not None and not 1 <= length <= size:
            raise InputError(f"length must be between 1 and {size}, got {length}")
        results = yield from self._generate(
            prefix,
            suffix,
            size,
            options,
            candidates=candidates,
            single_line=single_line,
            told=length,
        )
        return results

    def rewrite_job(
        self,
        prefix: str,
        region: str,
        suffix: str,
        *,
        candidates: int = 1,
        options: DecodeOptions | None = None,
    ) -> Job[list[Infill]]:
        """Write the region anew: a canvas up to about a quarter longer than the region and, with
        length search, at least three quarters of its length, the region's own length the prior
        the length ranking starts from (`sampler.length_scores`)."""
        options = options or self.options
        count = len(self._encode(region))
        context = self._context(options)
        if count + 2 > context:
            raise InputError(
                f"the selection is {count} tokens long; the model window holds {context}: "
                "select less"
            )
        size = max(count, min(math.ceil(count * 1.25) + 4, context * 3 // 4))
        results = yield from self._generate(
            prefix,
            suffix,
            size,
            options,
            candidates=candidates,
            shortest=count * 3 // 4,
            expected=count,
        )
        return results

    def revise_job(
        self,
        prefix: str,
        region: str,
        suffix: str,
        *,
        unlikely: float | None = None,
        options: DecodeOptions | None = None,
    ) -> Job[Infill]:
        """Mask the region's tokens the model finds unlikely (log-prob below `unlikely`, by
        default `options.unlikely_below`) and decode only those; the region comes back
        unchanged with steps=0 if none is unlikely. The probe that finds them is the job's
        first step of progress (a pass over a few copies of the window), the denoising the rest."""
        options = options or self.options
        sampling = sampling_of(options)
        if unlikely is None:
            unlikely = options.unlikely_below
        total = sampling.steps + 1
        window, _, logprobs = self._probe(prefix, region, suffix, options)
        yield Progress(1, total, lambda: region)
        likely = [math.exp(v) for v in logprobs.tolist()]
        low = logprobs < unlikely  # (S,)
        if not bool(low.any()):
            return Infill(region, likely, 0)
        device = self.model.device
        ids = torch.tensor([window.ids], device=device)  # (1, T)
        columns = torch.arange(window.span_start, window.span_end, device=device)[low.to(device)]
        ids[0, columns] = self.model.ids.mask
        denoising = self._denoise(
            ids, columns, sampling, options, temperatures=[options.temperature], filler=False
        )
        result = yield from relay(
            denoising, lambda step: Progress(step.step + 1, total, step.render)
        )
        tokens = result.ids[0, window.span_start : window.span_end].tolist()
        new_probs = iter(result.probs[0].tolist())
        confidences = [next(new_probs) if bool(m) else p for m, p in zip(low, likely, strict=True)]
        return Infill(self.model.decode(tokens), confidences, result.steps)

    def score(self, prefix: str, region: str, suffix: str) -> list[TokenScore]:
        """Log-probability of every token of the region, each read with that token masked."""
        _, _, logprobs = self._probe(prefix, region, suffix, self.options)
        encoding = self.model.tokenizer.encode(region, add_special_tokens=False)
        return [
            TokenScore(start, end, value)
            for (start, end), value in zip(encoding.offsets, logprobs.tolist(), strict=True)
        ]

    def fill_holes_job(
        self,
        text: str,
        marker: str = "<mask>",
        *,
        within: tuple[int, int] | None = None,
        options: DecodeOptions | None = None,
    ) -> Job[list[Hole]]:
        """Fill every `marker` in text, or only those inside text[within[0]:within[1]] (the
        others stay as they are, text like any other): all in one window when they fit, else one
        at a time. Each hole is its own span, even where markers touch."""
        options = options or self.options
        if not marker:
            raise InputError("the hole marker must not be empty")
        low, high = (0, len(text)) if within is None else within
        pieces = text[low:high].split(marker)  # holes + 1 pieces
        holes = len(pieces) - 1
        if holes == 0:
            return []
        starts, at = [], low
        for piece in pieces[:-1]:
            at += len(piece)
            starts.append(at)
            at += len(marker)
        pieces[0], pieces[-1] = text[:low] + pieces[0], pieces[-1] + text[high:]
        fills = yield from self._fill_together(pieces, options)
        if fills is None:
            fills = []
            for index in range(holes):
                prefix = "".join(p + f for p, f in zip(pieces[:index], fills, strict=True))
                prefix += pieces[index]
                suffix = marker.join(pieces[index + 1 :])
                found = yield from self._generate(
                    prefix, suffix, options.max_span_tokens, options, step_base=index, rounds=holes
                )
                fills.append(found[0].text)
        return [Hole(s, s + len(marker), f) for s, f in zip(starts, fills, strict=True)]

    infill = blocking(infill_job)
    rewrite = blocking(rewrite_job)
    revise = blocking(revise_job)
    fill_holes = blocking(fill_holes_job)

    # ----- shared machinery ---------------------------------------------------------------

    def _generate(
        self,
        prefix: str,
        suffix: str,
        size: int,
        options: DecodeOptions,
        *,
        candidates: int = 1,
        single_line: bool = False,
        step_base: int = 0,
        rounds: int = 1,
        shortest: int = 1,
        expected: int | None = None,
        told: int | None = None,
    ) -> Job[list[Infill]]:
        """Decode a span of at most `size` (and, searching, at least `shortest`) tokens, or of
        exactly `told` tokens when the length is known.

        With "predict" the model's own end/expand predictions give the lengths in a pass or two
        and the rows are decoded told their length. With "search" the first pass ranks every
        length hypothesis and the candidates are decoded at the best lengths, fillers forbidden
        (that pass is also their first denoising step). When more than one row is decoded, the
        finished rows are ranked by the pseudo-likelihood of their whole canvas, which scores
        where the text ends (a cut thought makes a filler unlikely) as well as the text. With
        "fillers" one oversized canvas is decoded and fillers end the span.
        """
        sampling = sampling_of(options)
        if not 1 <= candidates <= MAX_CANDIDATES:
            raise InputError(f"candidates must be between 1 and {MAX_CANDIDATES}, got {candidates}")
        mask, filler = self.model.ids.mask, self.model.ids.filler
        canvas = self._canvases(prefix, suffix, options)  # the context tokenized once
        ids, positions = canvas([mask] * size)  # (1, T), (S,); a size that cannot fit: refused
        extra = options.temperature if options.temperature > 0 else EXTRA_CANDIDATE_TEMPERATURE
        temperatures = [options.temperature] + [extra] * (candidates - 1)
        rule = options.length
        if rule == "predict" and self.model.ids.expand is None:
            raise InputError(
                f"the length rule 'predict' needs a model trained to say where a span ends; "
                f"{self.model.name} was not (it has no <|expand|> token): use 'search' or 'fillers'"
            )
        search = told is not None or rule in ("search", "predict")  # decode at chosen lengths
        scores = [0.0] * candidates
        first_logits = None
        logits: LogitsFn | None = None  # the denoiser's own when None
        deciding = 0  # forward passes spent on the length beyond the decode's own steps
        if told is not None or rule == "predict":
            if told is not None:
                lengths = [told] * candidates
            else:
                lengths, deciding = self._predicted_lengths(
                    canvas, size, options, candidates, single_line, shortest, expected
                )
            ids, positions = self._told_rows(canvas, lengths)
            # a row repeating a length already decoded is a sample, not the greedy answer again
            temperatures = [
                extra if length in lengths[:row] else options.temperature
                for row, length in enumerate(lengths)
            ]
        elif search:
            meter = self.model.meter
            before = meter.passes
            ranking = ranking_logits(self.model, options.context_refresh, options.rank_margin)
            chosen = choose_lengths(
                ranking,
                ids,
                positions,
                mask_id=mask,
                filler_id=filler,
                banned_ids=self._banned(single_line),
                shortest=shortest,
                rows=candidates,
                decoded=options.lengths_decoded,
                temperature=options.temperature,
                extra_temperature=extra,
                expected=expected,
            )
            ids, first_logits = chosen.ids, chosen.first_logits  # (B, T), (B, S, V)
            # every forward pass that ranked lengths but the one standing in for the decode's
            # first step (a cached ranking adds its full pass over the context)
            deciding = meter.passes - before - 1
            temperatures, scores = chosen.temperatures, chosen.scores
            if isinstance(ranking, ContextCache):
                logits = ranking  # the denoising steps go on from the ranking's cached context
        else:
            ids = ids.repeat(candidates, 1)  # (B, T)
        result = yield from self._denoise(
            ids,
            positions,
            sampling,
            options,
            temperatures=temperatures,
            filler=not search,
            single_line=single_line,
            step_base=step_base,
            rounds=rounds,
            first_logits=first_logits,
            logits=logits,
            spent=deciding,  # the budget counts every forward pass, those deciding the length too
        )
        if search and len(scores) > 1:
            scores = (
                probe_logprobs(
                    lambda x, p: self.model.logits(x, p),
                    result.ids,
                    positions,
                    mask_id=mask,
                    stride=PROBE_STRIDE,
                )
                .sum(dim=1)
                .tolist()
            )
        found: dict[str, Infill] = {}
        for row in range(result.ids.shape[0]):
            tokens = result.ids[row, positions].tolist()
            probs = result.probs[row].tolist()
            kept = [(t, p) for t, p in zip(tokens, probs, strict=True) if t != filler]
            text = self.model.decode([t for t, _ in kept])
            if single_line:
                text = text.split("\n")[0].split("\r")[0]
            confidences = [p for _, p in kept]
            score = scores[row] if search else _mean(confidences)
            if text not in found or found[text].score < score:
                found[text] = Infill(text, confidences, result.steps, score, deciding)
        return sorted(found.values(), key=lambda infill: -infill.score)[:candidates]

    def _predicted_lengths(
        self,
        canvas: Canvases,
        size: int,
        options: DecodeOptions,
        candidates: int,
        single_line: bool,
        shortest: int,
        expected: int | None,
    ) -> tuple[list[int], int]:
        """One length per candidate row, as the model predicts them (`lengths.predict_lengths`):
        the likeliest first; rows beyond the lengths asked for repeat them in turn. Also the
        forward passes the prediction took."""
        ids = self.model.ids
        assert ids.expand is not None
        guess = predict_lengths(
            self.model.logits,
            lambda count: canvas([ids.mask] * count),
            size=size,
            first=size if expected is not None else PROBE_TOKENS,
            mask_id=ids.mask,
            filler_id=ids.filler,
            expand_id=ids.expand,
            end_ids=self._line_break_ids() if single_line else (),
            shortest=shortest,
            rows=min(candidates, options.lengths_decoded),
        )
        return [guess.lengths[row % len(guess.lengths)] for row in range(candidates)], guess.passes

    def _told_rows(self, canvas: Canvases, lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows told their length, as training tells it: masks up to it, then visible fillers
        (at least one, so a told canvas never looks like an untold one).

        Returns (B, T) rows and (D,) their canvas columns."""
        mask, filler = self.model.ids.mask, self.model.ids.filler
        ids, columns = canvas([mask] * (max(lengths) + 1))
        rows = ids.repeat(len(lengths), 1)  # (B, T)
        for row, length in enumerate(lengths):
            rows[row, columns[length:]] = filler
        return rows, columns

    def _canvases(self, prefix: str, suffix: str, options: DecodeOptions) -> Canvases:
        """span ids -> a (1, T) window holding them between prefix and suffix and its (S,)
        columns; the context is tokenized once, whatever the sizes tried."""
        windows = self._windows(prefix, suffix, self._context(options))
        device = self.model.device

        def canvas(span_ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
            window = windows(span_ids)
            columns = torch.arange(window.span_start, window.span_end, device=device)
            return torch.tensor([window.ids], device=device), columns

        return canvas

    def _fill_together(
        self, pieces: list[str], options: DecodeOptions
    ) -> Generator[Progress, None, list[str] | None]:
        """Fill all holes in one window; None when the text between them does not fit."""
        context = self._context(options)
        middle = pieces[1:-1]
        if sum(len(p) for p in middle) > context * CHARS_PER_TOKEN:
            return None
        sampling = sampling_of(options)
        mask = self.model.ids.mask
        canvas = [mask] * options.max_span_tokens
        span_ids = list(canvas)
        for piece in middle:
            span_ids += self._encode(piece) + canvas
        if len(span_ids) + 2 > context:
            return None
        ids, columns = self._canvases(pieces[0], pieces[-1], options)(span_ids)  # (1, T), (C,)
        device = self.model.device
        positions = columns[ids[0, columns] == mask]  # (S,) the holes' canvases, in order
        size = options.max_span_tokens
        runs = torch.arange(positions.numel(), device=device) // size  # (S,) hole of each
        result = yield from self._denoise(
            ids, positions, sampling, options, temperatures=[options.temperature], runs=runs
        )
        tokens = result.ids[0, positions].tolist()
        fills = []
        for hole in range(len(pieces) - 1):
            chunk = tokens[hole * size : (hole + 1) * size]
            fills.append(self.model.decode([t for t in chunk if t != self.model.ids.filler]))
        return fills
