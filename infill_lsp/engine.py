"""Text in, text out: infill, rewrite, revise and fill holes with a masked-diffusion model.

The engine turns strings into a token window (the same layout training uses, see `window`), runs
the sampler, strips fillers and detokenizes exactly, so prefix and suffix text is never touched
and the generated text keeps every space, tab and newline the model produced. Each call is a job:
a generator that yields `Progress` after every denoising step and returns its result, so a
server can cancel between steps. The engine knows the tokenizer and the model's special ids; it
knows nothing about LSP, documents or positions in lines.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, fields
from typing import TypeVar

import torch

from infill_lsp.errors import InputError
from infill_lsp.model import InfillModel
from infill_lsp.options import DECODE_DEFAULTS, LENGTH_RULES, DecodeOptions
from infill_lsp.sampler import Denoised, Sampling, denoise, length_scores, probe_logprobs
from infill_lsp.window import CHARS_PER_TOKEN, Window, build_window, clip_context

T = TypeVar("T")
Job = Generator["Progress", None, T]

DEFAULT_REVISE_THRESHOLD = math.log(0.2)
EXTRA_CANDIDATE_TEMPERATURE = 0.8  # for candidates beyond the first when decoding greedily
MAX_CANDIDATES = 32
PROBE_STRIDE = 4
MASK_GLYPH = "░"  # how a still-masked token shows in a progress canvas
EVERY_LENGTH_UP_TO = 24  # lengths tried one by one; beyond, each about 10 % longer than the last


def sampling_of(options: DecodeOptions) -> Sampling:
    """The sampler's view of decode options (the one place they are copied); InputError if a
    value is unusable."""
    sampling = Sampling(**{item.name: getattr(options, item.name) for item in _SAMPLING_FIELDS})
    try:
        sampling.check()
    except ValueError as error:
        raise InputError(f"bad decode option: {error}") from error
    if options.context_tokens < 8:
        raise InputError(f"context_tokens must be at least 8, got {options.context_tokens}")
    if options.max_span_tokens < 1:
        raise InputError(f"max_span_tokens must be at least 1, got {options.max_span_tokens}")
    if options.length not in LENGTH_RULES:
        raise InputError(f"unknown length rule {options.length!r}: expected one of {LENGTH_RULES}")
    if not 1 <= options.lengths_decoded <= MAX_CANDIDATES:
        limit = f"between 1 and {MAX_CANDIDATES}"
        raise InputError(f"lengths_decoded must be {limit}, got {options.lengths_decoded}")
    return sampling


# The Sampling fields DecodeOptions sets (remask_window keeps the sampler's own default).
_SAMPLING_FIELDS = [item for item in fields(Sampling) if hasattr(DECODE_DEFAULTS, item.name)]


@dataclass(frozen=True)
class Infill:
    """One candidate."""

    text: str
    confidences: list[float]  # per generated (non-filler) token, in 0..1
    steps: int  # forward passes it took
    score: float = 0.0  # how the engine ranked it among candidates (higher first)


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


@dataclass(frozen=True)
class Progress:
    """Reported after every denoising step."""

    step: int
    total: int
    render: Callable[[], str] = str  # draws the canvas; only a caller that shows it pays

    @property
    def canvas(self) -> str:
        """The first candidate's span so far, masks shown as MASK_GLYPH."""
        return self.render()


def run(job: Job[T]) -> T:
    """Run a job to its end and return its result."""
    while True:
        try:
            next(job)
        except StopIteration as stop:
            return stop.value


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def length_hypotheses(size: int, shortest: int = 1) -> list[int]:
    """Span lengths to try on a canvas of `size`: EVERY_LENGTH_UP_TO lengths one by one from
    `shortest`, then a geometric ladder (each about 10 % longer), always ending at `size`."""
    shortest = min(max(shortest, 1), size)
    lengths = list(range(shortest, min(size, shortest + EVERY_LENGTH_UP_TO - 1) + 1))
    while lengths[-1] < size:
        lengths.append(min(size, max(lengths[-1] + 1, round(lengths[-1] * 1.1))))
    return lengths


class Engine:
    """Text-level calls on one loaded model."""

    def __init__(self, model: InfillModel, options: DecodeOptions = DECODE_DEFAULTS) -> None:
        self.model = model
        self.options = options
        # User text may contain "<s>" or "<mask>" (HTML, docs): encode it as text, never as a
        # special token, so regions detokenize to exactly what they were.
        self.model.tokenizer.encode_special_tokens = True
        self._text_vocab = model.tokenizer.get_vocab_size()
        self._newline_ids: list[int] | None = None

    # ----- public calls -------------------------------------------------------------------

    def infill(
        self,
        prefix: str,
        suffix: str,
        *,
        single_line: bool = False,
        candidates: int = 1,
        max_tokens: int | None = None,
        options: DecodeOptions | None = None,
    ) -> list[Infill]:
        """Fill the gap between prefix and suffix; see `infill_job`."""
        return run(
            self.infill_job(
                prefix,
                suffix,
                single_line=single_line,
                candidates=candidates,
                max_tokens=max_tokens,
                options=options,
            )
        )

    def rewrite(
        self,
        prefix: str,
        region: str,
        suffix: str,
        *,
        candidates: int = 1,
        options: DecodeOptions | None = None,
    ) -> list[Infill]:
        """Write the region anew; see `rewrite_job`."""
        return run(self.rewrite_job(prefix, region, suffix, candidates=candidates, options=options))

    def revise(
        self,
        prefix: str,
        region: str,
        suffix: str,
        *,
        threshold: float | None = None,
        options: DecodeOptions | None = None,
    ) -> Infill:
        """Re-decode the unlikely tokens of a region; see `revise_job`."""
        return run(self.revise_job(prefix, region, suffix, threshold=threshold, options=options))

    def fill_holes(
        self, text: str, marker: str = "<mask>", *, options: DecodeOptions | None = None
    ) -> list[Hole]:
        """Fill every marker in text; see `fill_holes_job`."""
        return run(self.fill_holes_job(text, marker, options=options))

    def infill_job(
        self,
        prefix: str,
        suffix: str,
        *,
        single_line: bool = False,
        candidates: int = 1,
        max_tokens: int | None = None,
        options: DecodeOptions | None = None,
    ) -> Job[list[Infill]]:
        """Fill the gap between prefix and suffix with text of unknown length.

        The canvas holds `max_tokens` (default `max_span_tokens`) masks; fillers absorb what the
        text does not need. single_line bans every token containing a line break.
        """
        options = options or self.options
        size = options.max_span_tokens if max_tokens is None else max_tokens
        if size < 1:
            raise InputError(f"max_tokens must be at least 1, got {size}")
        results = yield from self._generate(
            prefix, suffix, size, options, candidates=candidates, single_line=single_line
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
        length search, at least three quarters of its length (the region is the length prior)."""
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
            prefix, suffix, size, options, candidates=candidates, shortest=count * 3 // 4
        )
        return results

    def revise_job(
        self,
        prefix: str,
        region: str,
        suffix: str,
        *,
        threshold: float | None = None,
        options: DecodeOptions | None = None,
    ) -> Job[Infill]:
        """Mask the region's tokens the model finds unlikely (log-prob below threshold) and
        decode only those; the region comes back unchanged with steps=0 if none is unlikely."""
        options = options or self.options
        sampling = sampling_of(options)
        limit = DEFAULT_REVISE_THRESHOLD if threshold is None else threshold
        window, _, logprobs = self._probe(prefix, region, suffix, options)
        likely = [math.exp(v) for v in logprobs.tolist()]
        low = logprobs < limit  # (S,)
        if not bool(low.any()):
            return Infill(region, likely, 0)
        device = self.model.device
        ids = torch.tensor([window.ids], device=device)  # (1, T)
        columns = torch.arange(window.span_start, window.span_end, device=device)[low.to(device)]
        ids[0, columns] = self.model.ids.mask
        result = yield from self._denoise(
            ids, columns, sampling, options, temperatures=[options.temperature], filler=False
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
        self, text: str, marker: str = "<mask>", *, options: DecodeOptions | None = None
    ) -> Job[list[Hole]]:
        """Fill every `marker` in text: all in one window when they fit, else one at a time."""
        options = options or self.options
        if not marker:
            raise InputError("the hole marker must not be empty")
        pieces = text.split(marker)  # holes + 1 pieces
        holes = len(pieces) - 1
        if holes == 0:
            return []
        starts, at = [], 0
        for piece in pieces[:-1]:
            at += len(piece)
            starts.append(at)
            at += len(marker)
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

    # ----- shared machinery ---------------------------------------------------------------

    def _encode(self, text: str) -> list[int]:
        return self.model.encode(text)

    def _context(self, options: DecodeOptions) -> int:
        return min(options.context_tokens, self.model.max_positions)

    def _window(self, prefix: str, span_ids: list[int], suffix: str, context: int) -> Window:
        """The token window around a span canvas; prefix, span and suffix tokenized apart."""
        head, tail, at_start, at_end = clip_context(prefix, suffix, context)
        try:
            return build_window(
                self._encode(head),
                span_ids,
                self._encode(tail),
                context=context,
                bos=self.model.ids.bos,
                eos=self.model.ids.eos,
                prefix_reaches_start=at_start,
                suffix_reaches_end=at_end,
            )
        except ValueError as error:
            raise InputError(
                f"a span of {len(span_ids)} tokens does not fit the {context}-token window"
            ) from error

    def _banned(self, single_line: bool) -> list[int]:
        """Ids never generated: special tokens, ids past the tokenizer, maybe line breaks."""
        ids = self.model.ids
        banned = [ids.bos, ids.eos, ids.pad, ids.unk, ids.mask]
        banned += range(self._text_vocab, self.model.vocab_size)
        if single_line:
            banned += self._line_break_ids()
        return banned

    def _line_break_ids(self) -> list[int]:
        if self._newline_ids is None:
            texts = self.model.tokenizer.decode_batch(
                [[i] for i in range(self._text_vocab)], skip_special_tokens=True
            )
            self._newline_ids = [i for i, t in enumerate(texts) if "\n" in t or "\r" in t]
        return self._newline_ids

    def _render(self, tokens: list[int]) -> str:
        """A canvas for people: text so far, masks as MASK_GLYPH, fillers hidden."""
        ids = self.model.ids
        parts: list[str] = []
        run_ids: list[int] = []
        for token in [*tokens, ids.mask]:
            if token == ids.mask:
                parts.append(self.model.decode(run_ids))
                run_ids = []
                parts.append(MASK_GLYPH)
            elif token != ids.filler:
                run_ids.append(token)
        return "".join(parts)[: -len(MASK_GLYPH)]

    def _denoise(
        self,
        ids: torch.Tensor,
        positions: torch.Tensor,
        sampling: Sampling,
        options: DecodeOptions,
        *,
        temperatures: list[float],
        filler: bool = True,
        single_line: bool = False,
        step_base: int = 0,
        rounds: int = 1,
        first_logits: torch.Tensor | None = None,
    ) -> Generator[Progress, None, Denoised]:
        """Run the sampler on (B, T) ids, turning each of its steps into Progress.

        filler=False forbids fillers in the masked positions; `first_logits` (from the length
        ranking) stand in for the first step's forward pass.
        """
        generator = torch.Generator(device=ids.device)
        if options.seed is None:
            generator.seed()
        else:
            generator.manual_seed(options.seed)
        job = denoise(
            lambda x, p: self.model.logits(x, p),
            ids,
            positions,
            mask_id=self.model.ids.mask,
            filler_id=self.model.ids.filler if filler else None,
            banned_ids=self._banned(single_line) + ([] if filler else [self.model.ids.filler]),
            sampling=sampling,
            temperatures=torch.tensor(temperatures, device=ids.device),
            generator=generator,
            first_logits=first_logits,
        )
        total = sampling.steps * rounds
        while True:
            try:
                state = next(job)
            except StopIteration as stop:
                result: Denoised = stop.value
                return result
            tokens = state.ids[0, positions]
            yield Progress(
                step_base * sampling.steps + state.step,
                total,
                lambda tokens=tokens: self._render(tokens.tolist()),  # type: ignore[misc]
            )

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
    ) -> Job[list[Infill]]:
        """Decode a span of at most `size` (and, searching, at least `shortest`) tokens.

        With the "search" length rule the first pass ranks every length hypothesis and the
        candidates are decoded at the best lengths, fillers forbidden (that pass is also their
        first denoising step); when more than one row is decoded, the finished rows are ranked
        by the pseudo-likelihood of their whole canvas, which scores where the text ends (a cut
        thought makes a filler unlikely) as well as the text. With "fillers" one oversized
        canvas is decoded and fillers end the span.
        """
        sampling = sampling_of(options)
        if not 1 <= candidates <= MAX_CANDIDATES:
            raise InputError(f"candidates must be between 1 and {MAX_CANDIDATES}, got {candidates}")
        mask, filler = self.model.ids.mask, self.model.ids.filler
        window = self._window(prefix, [mask] * size, suffix, self._context(options))
        device = self.model.device
        ids = torch.tensor([window.ids], device=device)  # (1, T)
        positions = torch.arange(window.span_start, window.span_end, device=device)  # (S,)
        extra = options.temperature if options.temperature > 0 else EXTRA_CANDIDATE_TEMPERATURE
        temperatures = [options.temperature] + [extra] * (candidates - 1)
        search = options.length == "search"
        scores = [0.0] * candidates
        first_logits = None
        if search:
            # One batched pass over every length hypothesis (masks, then visible fillers) ranks
            # them; its logits are also the first denoising step of the rows kept.
            lengths = length_hypotheses(size, shortest)
            rows = ids.repeat(len(lengths), 1)  # (H, T)
            for row, length in enumerate(lengths):
                rows[row, positions[length:]] = filler
            logits = self.model.logits(rows, positions)  # (H, S, V)
            banned = [*self._banned(single_line), filler]
            ranked = length_scores(logits, rows[:, positions] == mask, banned)  # (H,)
            order = ranked.argsort(descending=True).tolist()
            decoded = max(candidates, min(options.lengths_decoded, len(order)))
            # More candidates than lengths: the best length again, sampled with noise.
            best = [order[i] if i < len(order) else order[0] for i in range(decoded)]
            temperatures = [options.temperature] * min(decoded, len(order))
            temperatures += [extra] * (decoded - len(temperatures))
            ids, first_logits = rows[best], logits[best]  # (B, T), (B, S, V)
            scores = [float(ranked[row]) for row in best]
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
                found[text] = Infill(text, confidences, result.steps, score)
        return sorted(found.values(), key=lambda infill: -infill.score)[:candidates]

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
        window = self._window(pieces[0], span_ids, pieces[-1], context)
        device = self.model.device
        ids = torch.tensor([window.ids], device=device)  # (1, T)
        columns = torch.arange(window.span_start, window.span_end, device=device)
        positions = columns[ids[0, columns] == mask]  # (S,) the holes' canvases, in order
        result = yield from self._denoise(
            ids, positions, sampling, options, temperatures=[options.temperature]
        )
        tokens = result.ids[0, positions].tolist()
        size = options.max_span_tokens
        fills = []
        for hole in range(len(pieces) - 1):
            chunk = tokens[hole * size : (hole + 1) * size]
            fills.append(self.model.decode([t for t in chunk if t != self.model.ids.filler]))
        return fills

    def _probe(
        self, prefix: str, region: str, suffix: str, options: DecodeOptions
    ) -> tuple[Window, list[int], torch.Tensor]:
        """The window around a region and each region token's log-prob under the masked probe."""
        region_ids = self._encode(region)
        context = self._context(options)
        window = self._window(prefix, region_ids, suffix, context)
        if not region_ids:
            return window, region_ids, torch.zeros(0)
        ids = torch.tensor(window.ids, device=self.model.device)  # (T,)
        positions = torch.arange(window.span_start, window.span_end, device=self.model.device)
        logprobs = probe_logprobs(
            lambda x, p: self.model.logits(x, p),
            ids,
            positions,
            mask_id=self.model.ids.mask,
            stride=PROBE_STRIDE,
        )
        return window, region_ids, logprobs
