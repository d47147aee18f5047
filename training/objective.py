"""The masked-diffusion training objective: examples, masking, and the loss.

Every example is a window of one file, in one of two modes:
- document mode: the whole window is maskable (pre-training form);
- infill mode: prefix and suffix stay clean and only a span is noised. The span is a whole or
  partial line, 2-8 lines, a tree-sitter syntax node (`infill_lsp.regions`), or a random
  character span. Prefix, span and suffix are tokenized separately and laid out by
  `infill_lsp.window.build_window`, exactly as the server builds its windows, followed by
  a canvas whose length is right, too long or too short, so the model learns where a span ends:
  - told (`known_length_share`): span + 1..K visible fillers, only the span noised, as when the
    server decodes at a length it chose (at least one visible filler, so a told canvas never
    looks like an untold one);
  - too long or exact: span + 0..K fillers, all maskable; the surplus positions' target is the
    filler, every one supervised;
  - too short (`too_short_share`, for models with an `<|expand|>` token): the canvas holds only
    the span's first m-1 tokens and `<|expand|>` ("the span goes on past here") at its last
    position, the suffix right after, as DreamOn's expand state.
  The server's "expand" length rule (`infill_lsp.lengths`) reads exactly these predictions.

Masking (in `collate`): one ratio t per sequence, stratified over the batch; each maskable token
becomes `<mask>` with probability t. The loss is cross-entropy on masked positions only, averaged
over the batch's masked tokens, fillers weighing as much as text: a filler run weighed as one
unit (1/n per filler) taught the model to shrink each filler's odds by about n, and even a
random subset of a long canvas's masks (blind to what they hold) under-weighs long canvases
enough to skew a small model (BENCHMARKS.md). `<mask>` is never a prediction.

Why a plain average and not the ELBO's 1/t weights: with 1/t, the one or two tokens of a
sequence drawn at t near 0 carry hundreds of times the weight of the rest, and on a CPU budget of
a few thousand steps that variance costs more than the bound's exactness buys. Document mode
supervises about half of its window, infill mode a span, so document windows carry most labels;
a run's first `dense_windows` windows are documents only, which learns the language about twice
as fast per CPU second, and the span conventions follow in the mix after.
Example i depends only on (seed, i), so training resumes at the exact data position.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from infill_lsp.model import SPECIAL_TOKENS, TokenIds
from infill_lsp.schedule import sample_mask_ratios
from infill_lsp.window import build_window

from .spans import SpanRules, pick_span
from .tokenizer import token_ids


@dataclass(frozen=True)
class ObjectiveConfig:
    """How examples are cut and noised."""

    context: int = 256  # tokens per window
    max_span_tokens: int = 64
    max_fillers: int = 64  # K: fillers appended after a span, drawn from 0..K
    document_share: float = 0.5  # share of examples in document mode (dense labels)
    # The first this many windows of a run are all in document mode, the mix after: a document
    # window supervises about half its tokens, an infill window a few dozen, so the language is
    # learnt fastest on documents and the span conventions after (BENCHMARKS.md, session 12).
    dense_windows: int = 0
    known_length_share: float = 0.4  # share of infill examples whose fillers stay visible
    too_short_share: float = 0.3  # share of untold infill examples whose canvas is too short
    # What the editor asks most: single lines, then a few lines, then whole blocks.
    span_mix: dict[str, float] = field(
        default_factory=lambda: {"line": 0.45, "lines": 0.25, "node": 0.2, "chars": 0.1}
    )
    corruption: float = 0.0  # share of visible span tokens replaced by random tokens
    # Each language's share of the windows goes as (its share of the characters) ** language_mix:
    # 1 keeps the corpus's own mix, below 1 flattens it towards the rarer languages.
    language_mix: float = 1.0
    chars_per_window: int = 1024
    # Role -> token text: ours, or a pretrained masked LM's own for the roles it has.
    special_tokens: dict[str, str] = field(default_factory=lambda: dict(SPECIAL_TOKENS))


@dataclass
class Example:
    """One window: its token ids and which positions may be masked."""

    ids: list[int]
    maskable: list[int]  # positions that may be masked
    fillers: list[int]  # positions (a subset of maskable) that hold filler tokens
    mode: str  # "document" or the span kind


@dataclass
class Batch:
    """A masked batch, ready for `masked_loss`."""

    input_ids: torch.Tensor  # (B, T) with <mask> at masked positions
    attention_mask: torch.Tensor  # (B, T)
    positions: torch.Tensor  # (N,) flat indices into B*T of the predicted positions
    targets: torch.Tensor  # (N,) the clean token at each predicted position
    weights: torch.Tensor  # (N,) loss weight of each predicted position
    tokens: int  # real (non-pad) tokens in the batch


class Examples:
    """An endless, indexable stream of training examples drawn from a list of files."""

    def __init__(
        self,
        texts: list[str],
        languages: list[str],
        tokenizer: Tokenizer,
        config: ObjectiveConfig,
        seed: int = 0,
    ) -> None:
        if not texts:
            raise ValueError("no files to draw examples from")
        self.texts = texts
        self.languages = languages
        self.tokenizer = tokenizer
        tokenizer.encode_special_tokens = True  # "<mask>" in source code is text, as when served
        self.config = config
        self.seed = seed
        self.ids = token_ids(tokenizer, config.special_tokens)
        self.cumulative: list[int] = []
        total = 0
        for text in texts:
            total += len(text)
            self.cumulative.append(total)
        # Per language: its files and their cumulative sizes, and the language's weight.
        self.by_language: dict[str, tuple[list[int], list[int]]] = {}
        for index, (text, language) in enumerate(zip(texts, languages, strict=True)):
            files, sizes = self.by_language.setdefault(language, ([], []))
            files.append(index)
            sizes.append((sizes[-1] if sizes else 0) + len(text))
        self.language_names = sorted(self.by_language)
        self.language_weights = [
            max(1, self.by_language[name][1][-1]) ** config.language_mix
            for name in self.language_names
        ]
        kinds = list(config.span_mix)
        self.span_kinds = kinds
        self.span_weights = [config.span_mix[k] for k in kinds]
        self.span_rules = SpanRules(
            max_node_chars=config.max_span_tokens * 3,
            multiline_nodes=False,
            mid_line_share=0.5,
            line_start_share=0.3,
            empty_share=0.05,  # nothing missing: the model must learn to answer with fillers
        )

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids) if text else []

    def __getitem__(self, index: int) -> Example:
        rng = random.Random(f"{self.seed}:{index}")
        file = self._file(rng)
        text = self.texts[file]
        start, end = self._window(text, rng)
        window = text[start:end]
        if index < self.config.dense_windows or rng.random() < self.config.document_share:
            return self._document(window, start == 0, end == len(text))
        kind = rng.choices(self.span_kinds, self.span_weights)[0]
        for _ in range(4):
            span = pick_span(kind, window, self.languages[file], rng, self.span_rules)
            if span is not None:
                example = self._infill(window, span, kind, start == 0, end == len(text), rng)
                if example is not None:
                    return example
            kind = "chars"
        return self._document(window, start == 0, end == len(text))

    def _file(self, rng: random.Random) -> int:
        """A file drawn by its size, after a language drawn by the mix (the corpus's own: 1)."""
        if self.config.language_mix == 1.0:
            return bisect.bisect_right(self.cumulative, rng.randrange(self.cumulative[-1]))
        language = rng.choices(self.language_names, self.language_weights)[0]
        files, sizes = self.by_language[language]
        return files[bisect.bisect_right(sizes, rng.randrange(max(1, sizes[-1])))]

    def _window(self, text: str, rng: random.Random) -> tuple[int, int]:
        """A window of characters starting at a line start (often the file start)."""
        size = self.config.chars_per_window
        start = max(0, rng.randrange(-size // 4, max(1, len(text) - size // 2)))
        if start > 0:
            newline = text.find("\n", start)
            start = newline + 1 if newline != -1 else 0
        return start, min(len(text), start + size)

    def _document(self, window: str, at_start: bool, at_end: bool) -> Example:
        room = self.config.context - 2
        tokens = self.encode(window)
        body = tokens[:room]
        ids = ([self.ids.bos] if at_start else []) + body
        if at_end and len(body) == len(tokens):
            ids.append(self.ids.eos)
        offset = 1 if at_start else 0
        return Example(ids, list(range(offset, offset + len(body))), [], "document")

    def _infill(
        self,
        window: str,
        span: tuple[int, int],
        kind: str,
        at_start: bool,
        at_end: bool,
        rng: random.Random,
    ) -> Example | None:
        start, end = span
        span_ids = self.encode(window[start:end])
        context = self.config.context
        if len(span_ids) > min(self.config.max_span_tokens, context // 2):
            return None
        # Leave at least a quarter of the window for the context around the canvas.
        most = min(self.config.max_fillers, 3 * context // 4 - len(span_ids))
        told = bool(span_ids) and rng.random() < self.config.known_length_share
        expand = self.ids.expand
        short = not told and len(span_ids) >= 2 and rng.random() < self.config.too_short_share
        if short and expand is not None:  # the first m-1 tokens, then "goes on", m < n
            canvas = [*span_ids[: rng.randint(0, len(span_ids) - 2)], expand]
            fillers = 0
        else:
            lowest = 1 if told and most >= 1 else 0
            fillers = rng.randint(lowest, max(lowest, most))
            canvas = span_ids + [self.ids.filler] * fillers
        laid = build_window(
            self.encode(window[:start]),
            canvas,
            self.encode(window[end:]),
            context=self.config.context,
            bos=self.ids.bos,
            eos=self.ids.eos,
            prefix_reaches_start=at_start,
            suffix_reaches_end=at_end,
        )
        maskable = list(range(laid.span_start, laid.span_end))
        if told:
            return Example(laid.ids, maskable[: len(span_ids)], [], kind)  # fillers visible
        return Example(laid.ids, maskable, maskable[len(canvas) - fillers :], kind)


def collate(
    examples: list[Example],
    ids: TokenIds,
    vocab_size: int,
    generator: torch.Generator,
    corruption: float = 0.0,
) -> Batch:
    """Pad, draw one mask ratio per sequence, mask, and lay out targets and loss weights."""
    batch = len(examples)
    length = max(len(e.ids) for e in examples)
    input_ids = torch.full((batch, length), ids.pad, dtype=torch.long)  # (B, T)
    attention = torch.zeros((batch, length), dtype=torch.long)  # (B, T)
    ratios = sample_mask_ratios(batch, generator)  # (B,)
    positions: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    weights: list[torch.Tensor] = []
    for row, example in enumerate(examples):
        clean = torch.tensor(example.ids, dtype=torch.long)
        input_ids[row, : len(clean)] = clean
        attention[row, : len(clean)] = 1
        maskable = torch.tensor(example.maskable, dtype=torch.long)  # (M,)
        if len(maskable) == 0:
            continue
        is_filler = torch.zeros(length, dtype=torch.bool)
        is_filler[example.fillers] = True
        masked = torch.rand(len(maskable), generator=generator) < ratios[row]
        if not masked.any():  # every sequence teaches something
            masked[torch.randint(len(maskable), (1,), generator=generator)] = True
        chosen = maskable[masked]  # (N_b,)
        input_ids[row, chosen] = ids.mask
        # Every masked token weighs 1, fillers too, so p(filler) is learnt unskewed (module doc).
        positions.append(row * length + chosen)
        targets.append(clean[chosen])
        weights.append(torch.ones(len(chosen)))
        if corruption > 0:
            visible = maskable[~masked & ~is_filler[maskable]]
            hit = visible[torch.rand(len(visible), generator=generator) < corruption]
            if len(hit):
                special = {*ids.non_text(), ids.filler}
                text = torch.tensor([i for i in range(vocab_size) if i not in special])
                noise = text[torch.randint(len(text), (len(hit),), generator=generator)]
                input_ids[row, hit] = noise
                positions.append(row * length + hit)
                targets.append(clean[hit])
                weights.append(torch.ones(len(hit)))
    flat_weights = torch.cat(weights)
    return Batch(
        input_ids,
        attention,
        torch.cat(positions),
        torch.cat(targets),
        flat_weights / flat_weights.sum(),  # the mean over masked units
        int(attention.sum()),
    )


Encoder = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def encode(network: torch.nn.Module, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Hidden states (B, T, H) of a masked LM's encoder, through the model's own accessor."""
    body: torch.nn.Module = network.base_model  # type: ignore[assignment]
    return body(input_ids=input_ids, attention_mask=mask).last_hidden_state


# Masked LMs' prediction heads that take hidden states to logits in one module (RoBERTa, XLM-R,
# CamemBERT: `lm_head`; BERT: `cls`); ModernBERT's is `head` then the output embeddings.
WHOLE_HEADS = ("lm_head", "cls")


def head_logits(network: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """The masked LM's own head on some positions' hidden states (N, H) -> logits (N, V): the
    prediction transform where the model has one (ModernBERT's `head`), then the output
    embeddings; RoBERTa's `lm_head` and BERT's `cls` hold both in one module."""
    for name in WHOLE_HEADS:
        whole = getattr(network, name, None)
        if isinstance(whole, torch.nn.Module):
            return whole(hidden)  # type: ignore[no-any-return]
    transform = getattr(network, "head", None)
    if isinstance(transform, torch.nn.Module):
        hidden = transform(hidden)
    output: torch.nn.Module = network.get_output_embeddings()  # type: ignore[operator]
    return output(hidden)


def masked_loss(
    network: torch.nn.Module, batch: Batch, mask_id: int, encoder: Encoder = encode
) -> torch.Tensor:
    """Weighted cross-entropy on the predicted positions; the head runs only there.

    `encoder` gives the hidden states (token routing swaps in its own, `training.routing`).
    """
    hidden = encoder(network, batch.input_ids, batch.attention_mask)  # (B, T, H)
    picked = hidden.reshape(-1, hidden.shape[-1])[batch.positions]  # (N, H)
    logits = head_logits(network, picked).float()  # (N, V)
    logits[:, mask_id] = float("-inf")  # <mask> is never an answer
    losses = F.cross_entropy(logits, batch.targets, reduction="none")  # (N,)
    return (losses * batch.weights).sum()
