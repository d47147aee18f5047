"""One model's token canvases: windows, banned ids, the denoising loop and the masked probe.

`Decoder` is the machinery the engine's text-level calls share: it tokenizes prefix, span and
suffix apart into the window training uses (see `window`), says which ids are never generated,
runs the sampler on a canvas turning each of its steps into `Progress`, and scores existing
tokens with the masked probe. `sampling_of` is the one place decode options become the
sampler's settings. It knows the tokenizer and the model's special ids; nothing about LSP.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, fields, replace

import torch

from infill_lsp.errors import InputError
from infill_lsp.jobs import relay
from infill_lsp.model import InfillModel
from infill_lsp.models.context_cache import LogitsFn, denoising_logits
from infill_lsp.options import DECODE_DEFAULTS, LENGTH_RULES, DecodeOptions
from infill_lsp.sampler import Denoised, Sampling, StepState, denoise, probe_logprobs
from infill_lsp.window import (
    CHARS_PER_TOKEN,
    CUT_SLACK,
    TYPICAL_CHARS_PER_TOKEN,
    Window,
    build_window,
    clip_context,
)

MAX_CANDIDATES = 32
PROBE_STRIDE = 4
MASK_GLYPH = "░"  # how a still-masked token shows in a progress canvas
# `tokens_per_step` never leaves a span fewer passes than this: a short line's ranking passes
# and two steps after them (one step for a four-token line lost exact lines, issue 18)
FEWEST_PASSES = 4


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
    if not (options.tokens_per_step >= 0 and math.isfinite(options.tokens_per_step)):
        raise InputError(f"tokens_per_step must be >= 0, got {options.tokens_per_step}")
    if options.context_refresh < 1:
        raise InputError(f"context_refresh must be at least 1, got {options.context_refresh}")
    return sampling


# The Sampling fields DecodeOptions sets (remask_window keeps the sampler's own default).
_SAMPLING_FIELDS = [item for item in fields(Sampling) if hasattr(DECODE_DEFAULTS, item.name)]


def _budget(
    sampling: Sampling, options: DecodeOptions, masked: torch.Tensor, spent: int
) -> Sampling:
    """The denoising steps a canvas gets: `options.steps` forward passes in all, the `spent`
    ones included, and with `tokens_per_step` at most one pass for every that many tokens the
    longest row (B, S masked) has to write, or FEWEST_PASSES. Always at least one step."""
    passes = sampling.steps
    if options.tokens_per_step > 0:
        longest = int(masked.sum(dim=1).max()) if masked.numel() else 0
        passes = min(passes, max(FEWEST_PASSES, math.ceil(longest / options.tokens_per_step)))
    return replace(sampling, steps=max(1, passes - spent))


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


class Decoder:
    """Token-level work on one loaded model, shared by the engine's calls."""

    def __init__(self, model: InfillModel, options: DecodeOptions | None = None) -> None:
        self.model = model
        # unless told otherwise, decode as the model's family decodes best
        self.options = options or replace(DECODE_DEFAULTS, **model.decode_defaults)
        # User text may contain "<s>" or "<mask>" (HTML, docs): encode it as text, never as a
        # special token, so regions detokenize to exactly what they were.
        self.model.tokenizer.encode_special_tokens = True
        self._text_vocab = model.tokenizer.get_vocab_size()
        self._newline_ids: list[int] | None = None

    def _encode(self, text: str) -> list[int]:
        return self.model.encode(text)

    def _context(self, options: DecodeOptions) -> int:
        return min(options.context_tokens, self.model.max_positions)

    def _window(self, prefix: str, span_ids: list[int], suffix: str, context: int) -> Window:
        """The token window around a span canvas; prefix, span and suffix tokenized apart."""
        return self._windows(prefix, suffix, context)(span_ids)

    def _context_ids(
        self, prefix: str, suffix: str, context: int
    ) -> tuple[list[int], list[int], bool, bool]:
        """Tokens of the prefix's end and the suffix's start, enough for `context` tokens, and
        whether they reach the text's start and end. A cut at a typical token length first
        (tokenizing a whole 3,000-character cut costs milliseconds a keystroke); the longest
        cut when that one falls short of tokens."""
        for chars in (TYPICAL_CHARS_PER_TOKEN, CHARS_PER_TOKEN):
            head, tail, at_start, at_end = clip_context(prefix, suffix, context, chars)
            head_ids, tail_ids = self._encode(head), self._encode(tail)
            if (at_start or len(head_ids) >= context + CUT_SLACK) and (
                at_end or len(tail_ids) >= context + CUT_SLACK
            ):
                break
        return head_ids, tail_ids, at_start, at_end

    def _windows(self, prefix: str, suffix: str, context: int) -> Callable[[list[int]], Window]:
        """Windows around canvases of any size between one prefix and suffix, the context
        tokenized once (a length decision tries several canvas sizes on one request)."""
        head_ids, tail_ids, at_start, at_end = self._context_ids(prefix, suffix, context)

        def window(span_ids: list[int]) -> Window:
            try:
                return build_window(
                    head_ids,
                    span_ids,
                    tail_ids,
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

        return window

    def _banned(self, single_line: bool) -> list[int]:
        """Ids never generated: special tokens, ids past the tokenizer, maybe line breaks."""
        banned = self.model.ids.non_text()
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
        runs: torch.Tensor | None = None,
        logits: LogitsFn | None = None,
        spent: int = 0,
    ) -> Generator[Progress, None, Denoised]:
        """Run the sampler on (B, T) ids within the step budget (`_budget`), turning each of
        its steps into Progress.

        filler=False forbids fillers in the masked positions; `first_logits` (from the length
        ranking) stand in for the first step's forward pass; `runs` (S,) says which hole each
        position belongs to when holes touch (see `sampler.denoise`); `logits` is the logits
        function to go on with (a cache the length ranking primed), else one of its own;
        `spent` the forward passes already spent on this canvas (deciding its length).
        """
        sampling = _budget(sampling, options, ids[:, positions] == self.model.ids.mask, spent)
        generator = torch.Generator(device=ids.device)
        if options.seed is None:
            generator.seed()
        else:
            generator.manual_seed(options.seed)
        job = denoise(
            logits or denoising_logits(self.model, options.context_refresh),  # cached when set
            ids,
            positions,
            mask_id=self.model.ids.mask,
            filler_id=self.model.ids.filler if filler else None,
            banned_ids=self._banned(single_line) + ([] if filler else [self.model.ids.filler]),
            sampling=sampling,
            temperatures=torch.tensor(temperatures, device=ids.device),
            generator=generator,
            first_logits=first_logits,
            runs=runs,
        )
        total = sampling.steps * rounds

        def progress(state: StepState) -> Progress:
            tokens = state.ids[0, positions]
            return Progress(
                step_base * sampling.steps + state.step,
                total,
                lambda: self._render(tokens.tolist()),
            )

        return (yield from relay(job, progress))

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
