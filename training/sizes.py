"""Size presets of the ModernBERT-style encoder, and building a fresh network from one."""

from __future__ import annotations

from dataclasses import dataclass

from tokenizers import Tokenizer
from transformers import ModernBertConfig, ModernBertForMaskedLM

from .tokenizer import token_ids


@dataclass(frozen=True)
class Size:
    """Shape of an encoder: layers, width, attention heads and feed-forward width."""

    layers: int
    hidden: int
    heads: int
    intermediate: int


PRESETS: dict[str, Size] = {
    "test": Size(layers=2, hidden=32, heads=2, intermediate=64),
    "tiny": Size(layers=4, hidden=192, heads=3, intermediate=384),
    "small": Size(layers=4, hidden=256, heads=4, intermediate=512),
    "wide": Size(layers=4, hidden=384, heads=6, intermediate=768),  # small's depth, base's width
    "deep": Size(layers=8, hidden=192, heads=3, intermediate=384),  # base's depth, tiny's width
    "base": Size(layers=8, hidden=384, heads=6, intermediate=768),
}


def build_network(
    size: str | Size, tokenizer: Tokenizer, max_positions: int = 1024
) -> ModernBertForMaskedLM:
    """A freshly initialised encoder for `tokenizer`, with no dropout and no biases."""
    shape = PRESETS[size] if isinstance(size, str) else size
    ids = token_ids(tokenizer)
    config = ModernBertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        max_position_embeddings=max_positions,
        pad_token_id=ids.pad,
        bos_token_id=ids.bos,
        eos_token_id=ids.eos,
        cls_token_id=ids.bos,
        sep_token_id=ids.eos,
        local_attention=128,
        # Every layer global on short windows: sliding attention buys nothing at <= 512 tokens.
        layer_types=["full_attention"] * shape.layers,
        tie_word_embeddings=True,
    )
    config._attn_implementation = "sdpa"
    return ModernBertForMaskedLM(config)
