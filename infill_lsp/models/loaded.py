"""What a loaded model is to the engine: a network, its tokenizer, its special ids and logits.

Every family hands the engine an `InfillModel`; the family decides how logits are computed
(`forward`), so the engine, sampler, remasking, revise and fill-holes stay the same for all.
Knows torch and tokenizers; nothing about files or families.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

# (network, ids (B, T), attention_mask (B, T) or None, positions (S,) or None) -> (B, S, V)
Forward = Callable[
    [torch.nn.Module, torch.Tensor, torch.Tensor | None, torch.Tensor | None], torch.Tensor
]


@dataclass(frozen=True)
class TokenIds:
    """The ids of the special tokens of one model."""

    bos: int
    eos: int
    pad: int
    unk: int
    mask: int
    filler: int
    # "The span goes on past the canvas": a model trained with too-short canvases predicts it
    # at a canvas's last position (None for models that never learnt it).
    expand: int | None = None

    def non_text(self) -> list[int]:
        """Ids a sampler must never produce as text (everything but the filler, which a family
        without one of its own may share with another special token)."""
        special = (self.bos, self.eos, self.pad, self.unk, self.mask, self.expand)
        return [i for i in special if i is not None and i != self.filler]


def head_logits(
    network: torch.nn.Module,
    ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    positions: torch.Tensor | None,
) -> torch.Tensor:
    """Run the encoder, then the output head only at `positions` when the architecture allows.

    The head over a large vocabulary costs about as much as the encoder on a CPU, so predicting
    only where it is needed nearly halves a forward pass. Returns (B, S, V).
    """
    body = getattr(network, "model", None)
    head = getattr(network, "head", None)
    decoder = getattr(network, "decoder", None)
    if body is None or head is None or decoder is None:  # not ModernBERT-shaped: full forward
        logits = network(input_ids=ids, attention_mask=attention_mask).logits  # (B, T, V)
        return logits if positions is None else logits[:, positions.to(logits.device)]
    hidden = body(input_ids=ids, attention_mask=attention_mask).last_hidden_state  # (B, T, H)
    if positions is not None:
        hidden = hidden[:, positions.to(hidden.device)]  # (B, S, H)
    return decoder(head(hidden))  # (B, S, V)


@dataclass
class ForwardMeter:
    """What the model's forward passes have cost since it was loaded (read it before and after
    a request for that request's share: the rest of its time is everything but the network)."""

    passes: int = 0
    seconds: float = 0.0

    @contextmanager
    def timing(self, passes: int = 1) -> Iterator[None]:
        """Count `passes` forward passes (0: more of the last one) and their wall time."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - started
            self.passes += passes


@dataclass
class InfillModel:
    """A loaded model: the network, its tokenizer and its metadata."""

    directory: Path
    network: torch.nn.Module
    tokenizer: Tokenizer
    ids: TokenIds
    metadata: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    family: str = "ours"
    forward: Forward = head_logits
    # DecodeOptions fields this model decodes best with (e.g. how a span's length is found)
    decode_defaults: dict[str, Any] = field(default_factory=dict)
    meter: ForwardMeter = field(default_factory=ForwardMeter)

    @property
    def name(self) -> str:
        """What the model is called: `name` in its metadata, else its directory's name."""
        return str(self.metadata.get("name") or self.directory.name)

    @property
    def version(self) -> str:
        """The model's version as its metadata gives it ("" when it gives none)."""
        return str(self.metadata.get("version", ""))

    @property
    def vocab_size(self) -> int:
        config: Any = self.network.config
        return int(config.vocab_size)

    @property
    def max_positions(self) -> int:
        return int(getattr(self.network.config, "max_position_embeddings", 512))

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, no special tokens added."""
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: list[int]) -> str:
        """Text of `ids`, exactly as encoded (special tokens dropped)."""
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    @torch.inference_mode()
    def logits(
        self,
        ids: torch.Tensor,
        positions: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits of the tokens at `positions` (all when None).

        Args:
            ids: (B, T) token ids.
            positions: (S,) column indices to predict; the output head runs only there.
            attention_mask: (B, T) 1 for real tokens, 0 for padding.
        Returns: (B, S, V) float32.
        """
        with self.meter.timing():
            ids = ids.to(self.device)
            if attention_mask is not None:
                attention_mask = attention_mask.to(self.device)
            return self.forward(self.network, ids, attention_mask, positions).float()
