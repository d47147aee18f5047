"""The autoregressive baseline: a GPT-2-style decoder of the diffusion model's size and data.

It exists to be measured against (see `tests/bench`), never to be served. Same tokenizer plus
four fill-in-the-middle sentinels; a feed-forward width chosen so the parameter count lands
within a few percent of the diffusion preset; trained by `training.train`'s loop on the same
corpus and the same windows and spans (`training.objective.Examples`), laid out
prefix-suffix-middle (PSM):

    <|fim_prefix|> [<s>] prefix <|fim_suffix|> suffix [</s>] <|fim_middle|> middle <|fim_end|>

with next-token loss on every token (the usual FIM recipe); a document-mode example is a plain
left-to-right window. `Baseline` decodes greedily with a KV cache, one token per forward pass.
This module knows nothing about the server or the diffusion sampler.
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from transformers import GPT2Config, GPT2LMHeadModel

from infill_lsp.model import TokenIds
from infill_lsp.window import build_window, clip_context

from .objective import Batch, Example, Examples, ObjectiveConfig, token_ids
from .sizes import PRESETS, build_network
from .train import LoopObjective

FIM_TOKENS: dict[str, str] = {
    "prefix": "<|fim_prefix|>",
    "suffix": "<|fim_suffix|>",
    "middle": "<|fim_middle|>",
    "end": "<|fim_end|>",
}
OBJECTIVE_NAME = "autoregressive fill-in-the-middle (PSM sentinels, next-token loss on all tokens)"


@dataclass(frozen=True)
class FimIds:
    """Sentinel ids of a FIM tokenizer."""

    prefix: int
    suffix: int
    middle: int
    end: int


def fim_tokenizer(tokenizer: Tokenizer) -> Tokenizer:
    """A copy of `tokenizer` with the FIM sentinels appended (existing ids unchanged)."""
    copy = Tokenizer.from_str(tokenizer.to_str())
    missing = [t for t in FIM_TOKENS.values() if copy.token_to_id(t) is None]
    copy.add_special_tokens(missing)
    return copy


def fim_ids(tokenizer: Tokenizer) -> FimIds:
    """The sentinel ids; ValueError if the tokenizer lacks them."""
    found = {role: tokenizer.token_to_id(text) for role, text in FIM_TOKENS.items()}
    missing = [role for role, i in found.items() if i is None]
    if missing:
        raise ValueError(f"tokenizer lacks FIM sentinels: {', '.join(missing)}")
    return FimIds(**{role: int(i) for role, i in found.items() if i is not None})


def baseline_config(tokenizer: Tokenizer, size: str, context: int) -> GPT2Config:
    """A GPT-2 config as deep and wide as preset `size`, with the parameter count matched.

    The feed-forward width is the multiple of 64 that brings the total parameter count
    closest to the diffusion network's (position embeddings of a decoder cost parameters the
    rotary encoder does not have; the search absorbs that).
    """
    shape = PRESETS[size]
    target = sum(p.numel() for p in build_network(size, tokenizer).parameters())
    vocab = tokenizer.get_vocab_size()
    ids = token_ids(tokenizer)

    def config(inner: int) -> GPT2Config:
        return GPT2Config(
            vocab_size=vocab,
            n_positions=context,
            n_embd=shape.hidden,
            n_layer=shape.layers,
            n_head=shape.heads,
            n_inner=inner,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            bos_token_id=ids.bos,
            eos_token_id=ids.eos,
            pad_token_id=ids.pad,
            tie_word_embeddings=True,
        )

    def count(inner: int) -> int:
        h, layers = shape.hidden, shape.layers
        attention = 4 * h * h + 4 * h
        mlp = 2 * h * inner + inner + h
        norms = 4 * h
        return vocab * h + context * h + layers * (attention + mlp + norms) + 2 * h

    inner = min(range(64, 8 * shape.hidden + 1, 64), key=lambda i: abs(count(i) - target))
    return config(inner)


def build_baseline(tokenizer: Tokenizer, size: str, context: int) -> GPT2LMHeadModel:
    """A freshly initialised decoder for a FIM tokenizer."""
    network = GPT2LMHeadModel(baseline_config(tokenizer, size, context))
    network.config._attn_implementation = "sdpa"
    return network


# --- training: examples, batches and the loss for `training.train` --------------------------


class FimExamples(Examples):
    """The diffusion objective's windows and spans, laid out prefix-suffix-middle."""

    def __init__(
        self,
        texts: list[str],
        languages: list[str],
        tokenizer: Tokenizer,
        config: ObjectiveConfig,
        seed: int = 0,
    ) -> None:
        super().__init__(texts, languages, tokenizer, config, seed=seed)
        self.fim = fim_ids(tokenizer)

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
        middle = self.encode(window[start:end])
        if len(middle) > self.config.max_span_tokens:
            return None
        ids = psm_prompt(
            self.encode(window[:start]),
            self.encode(window[end:]),
            self.ids,
            self.fim,
            context=self.config.context - len(middle) - 1,
            prefix_reaches_start=at_start,
            suffix_reaches_end=at_end,
        )
        ids += [*middle, self.fim.end]
        return Example(ids, list(range(len(ids))), [], kind)


def psm_prompt(
    prefix_ids: list[int],
    suffix_ids: list[int],
    ids: TokenIds,
    fim: FimIds,
    *,
    context: int,
    prefix_reaches_start: bool,
    suffix_reaches_end: bool,
) -> list[int]:
    """`<pre> [<s>] prefix <suf> suffix [</s>] <mid>` in at most `context` tokens.

    Prefix and suffix are cut exactly as the diffusion window cuts them (`build_window`).
    """
    laid = build_window(
        prefix_ids,
        [],
        suffix_ids,
        context=context - 3,  # room for the three sentinels
        bos=ids.bos,
        eos=ids.eos,
        prefix_reaches_start=prefix_reaches_start,
        suffix_reaches_end=suffix_reaches_end,
    )
    head, tail = laid.ids[: laid.span_start], laid.ids[laid.span_start :]
    return [fim.prefix, *head, fim.suffix, *tail, fim.middle]


def make_examples(
    texts: list[str], languages: list[str], tokenizer: Tokenizer, config: ObjectiveConfig, seed: int
) -> FimExamples:
    """The loop's `examples` hook."""
    return FimExamples(texts, languages, tokenizer, config, seed=seed)


def collate_next_token(
    examples: list[Example],
    ids: TokenIds,
    vocab_size: int,
    generator: torch.Generator,
    corruption: float = 0.0,
) -> Batch:
    """Pad a batch; every real token but the last predicts the next one, weights averaging."""
    batch = len(examples)
    length = max(len(e.ids) for e in examples)
    input_ids = torch.full((batch, length), ids.pad, dtype=torch.long)  # (B, T)
    attention = torch.zeros((batch, length), dtype=torch.long)  # (B, T)
    positions: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    for row, example in enumerate(examples):
        clean = torch.tensor(example.ids, dtype=torch.long)
        input_ids[row, : len(clean)] = clean
        attention[row, : len(clean)] = 1
        positions.append(row * length + torch.arange(len(clean) - 1))
        targets.append(clean[1:])
    flat = torch.cat(positions)  # (N,)
    weights = torch.full((len(flat),), 1.0 / max(1, len(flat)))
    return Batch(input_ids, attention, flat, torch.cat(targets), weights, int(attention.sum()))


def next_token_loss(network: torch.nn.Module, batch: Batch, mask_id: int) -> torch.Tensor:
    """Cross-entropy of the next token at the predicted positions; the head runs only there."""
    decoder: Any = network  # a GPT2LMHeadModel: `.transformer` and `.lm_head`
    hidden = decoder.transformer(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask
    ).last_hidden_state  # (B, T, H)
    picked = hidden.reshape(-1, hidden.shape[-1])[batch.positions]  # (N, H)
    logits = decoder.lm_head(picked).float()  # (N, V)
    losses = F.cross_entropy(logits, batch.targets, reduction="none")  # (N,)
    return (losses * batch.weights).sum()


FIM = LoopObjective(OBJECTIVE_NAME, make_examples, collate_next_token, next_token_loss)


# --- decoding ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decoded:
    """One autoregressive infill."""

    text: str
    tokens: int  # tokens generated (the end sentinel not counted)
    passes: int  # forward passes (the prompt counts as one)


class Baseline:
    """A trained baseline directory, decoding greedily with a KV cache."""

    def __init__(self, directory: str | Path, device: str = "cpu") -> None:
        self.directory = Path(directory)
        self.network = GPT2LMHeadModel.from_pretrained(
            self.directory, local_files_only=True, use_safetensors=True
        )
        self.network.eval().to(device)
        self.device = device
        self.tokenizer = Tokenizer.from_file(str(self.directory / "tokenizer.json"))
        self.tokenizer.encode_special_tokens = True  # user text is text, never a sentinel
        self.ids = token_ids(self.tokenizer)
        self.fim = fim_ids(self.tokenizer)
        self.context = int(self.network.config.n_positions)
        vocab = self.tokenizer.get_vocab_size()
        texts = self.tokenizer.decode_batch([[i] for i in range(vocab)], skip_special_tokens=False)
        self._newlines = torch.tensor([i for i, t in enumerate(texts) if "\n" in t or "\r" in t])
        specials = [*self.ids.non_text(), self.ids.filler, self.fim.prefix, self.fim.suffix]
        self._specials = torch.tensor([*specials, self.fim.middle])

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.network.parameters())

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids) if text else []

    def prompt(self, prefix: str, suffix: str, max_tokens: int) -> list[int]:
        """The PSM prompt leaving room for `max_tokens` generated tokens and the end sentinel."""
        head, tail, at_start, at_end = clip_context(prefix, suffix, self.context)
        return psm_prompt(
            self.encode(head),
            self.encode(tail),
            self.ids,
            self.fim,
            context=self.context - max_tokens - 1,
            prefix_reaches_start=at_start,
            suffix_reaches_end=at_end,
        )

    @torch.inference_mode()
    def infill(
        self,
        prefix: str,
        suffix: str,
        *,
        max_tokens: int,
        single_line: bool = False,
        exact_tokens: bool = False,
    ) -> Decoded:
        """Greedy middle between prefix and suffix, at most `max_tokens` tokens.

        single_line stops at the first line break; exact_tokens forbids the end sentinel so
        exactly `max_tokens` tokens are generated (for timing a span of known length).
        """
        # 1. The prompt, in one forward pass that fills the cache.
        ids = torch.tensor([self.prompt(prefix, suffix, max_tokens)], device=self.device)
        out = self.network(input_ids=ids, use_cache=True)
        past, logits = out.past_key_values, out.logits[0, -1]  # (V,)
        passes = 1
        banned = self._specials if not exact_tokens else torch.cat(
            [self._specials, torch.tensor([self.fim.end])]
        )  # fmt: skip
        generated: list[int] = []
        # 2. One token per pass, reading the cache.
        while len(generated) < max_tokens:
            logits = logits.float().index_fill(0, banned.to(logits.device), float("-inf"))
            token = int(logits.argmax())
            if token == self.fim.end:
                break
            generated.append(token)
            if single_line and bool((self._newlines == token).any()):
                break
            if len(generated) == max_tokens:
                break
            step = torch.tensor([[token]], device=self.device)
            out = self.network(input_ids=step, past_key_values=past, use_cache=True)
            past, logits = out.past_key_values, out.logits[0, -1]
            passes += 1
        text = self.tokenizer.decode(generated, skip_special_tokens=True)
        if single_line:
            text = text.split("\n")[0].split("\r")[0]
        return Decoded(text, len(generated), passes)


# --- command line -------------------------------------------------------------------------------


def _train(args: argparse.Namespace) -> None:
    from .cli import train_config, writable
    from .corpus import corpus_sources, load_corpus
    from .tokenizer import load_tokenizer
    from .train import train

    out = writable(Path(args.out))
    corpus = load_corpus(Path(args.corpus))["train"]
    tokenizer = fim_tokenizer(load_tokenizer(Path(args.tokenizer)))
    network = build_baseline(tokenizer, args.size, args.context)
    diffusion = sum(p.numel() for p in build_network(args.size, tokenizer).parameters())
    parameters = sum(p.numel() for p in network.parameters())
    metadata: dict[str, Any] = {
        "kind": "autoregressive-fim-baseline",
        "fim_tokens": FIM_TOKENS,
        "recipe": {
            "size": f"gpt2 matched to {args.size} {PRESETS[args.size]}",
            "parameters": parameters,
            "diffusion_parameters": diffusion,
            "n_inner": network.config.n_inner,
            "corpus": corpus_sources(Path(args.corpus)),
        },
    }
    print(f"baseline: {parameters:,} parameters (diffusion {args.size}: {diffusion:,})")
    state = train(
        network, tokenizer, corpus["text"], corpus["language"], train_config(args), out,
        resume=args.resume, metadata=metadata, progress=not args.quiet, objective=FIM,
    )  # fmt: skip
    print(f"trained {state.tokens:,} tokens in {state.seconds / 60:.1f} min; baseline at {out}")


def build_parser() -> argparse.ArgumentParser:
    from .cli import add_train_options

    parser = argparse.ArgumentParser(prog="python -m training.baseline", description=__doc__)
    subs = parser.add_subparsers(dest="command", required=True)
    train = subs.add_parser("train", help="train the autoregressive FIM baseline")
    train.add_argument("--corpus", required=True)
    train.add_argument("--tokenizer", required=True, help="the diffusion model's tokenizer")
    train.add_argument("--size", choices=sorted(PRESETS), default="small", help="size to match")
    train.add_argument("--out", required=True, help="baseline directory to write")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    add_train_options(train, lr=1e-3)
    train.set_defaults(run=_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
