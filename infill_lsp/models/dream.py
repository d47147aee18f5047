"""Family "dream": Dream, Dream-Coder, DiffuCoder, DreamOn, Open-dCoder.

Qwen2 layers from transformers run with full attention; the logits are shifted by one position
(the models were adapted from autoregressive ones). Their folders' remote code is never run:
config.json's Qwen2 sizes build transformers' own `Qwen2ForCausalLM`. No filler token: the end
of text fills the rest of a canvas, so the span's length comes from where the model ends it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from infill_lsp.errors import ModelError
from infill_lsp.models.budget import resolve_dtype
from infill_lsp.models.decoders import full_attention, load_decoder, require
from infill_lsp.models.files import read_config, read_tokenizer, weight_files
from infill_lsp.models.loaded import InfillModel, TokenIds
from infill_lsp.models.special import token_id

log = logging.getLogger(__name__)

NAME = "dream"
SIZES = ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"]
# config.json keys a Qwen2 config takes (what else Dream's config holds is its own business)
QWEN2_KEYS = (
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "hidden_act", "max_position_embeddings", "rms_norm_eps",
    "tie_word_embeddings", "rope_theta", "rope_scaling", "rope_parameters", "attention_dropout",
    "head_dim",
)  # fmt: skip


def claims(directory: Path, config: dict[str, Any]) -> bool:
    """Whether config.json describes a Dream model."""
    architectures = [str(name).lower() for name in config.get("architectures") or []]
    return str(config.get("model_type", "")).lower() == "dream" or any(
        name.startswith("dream") for name in architectures
    )


def special_ids(directory: Path, tokenizer: Any, config: dict[str, Any]) -> TokenIds:
    """Mask and end-of-text from config.json or the tokenizer files; the end of text also ends
    a span (there is no filler)."""
    mask = token_id(tokenizer, config, directory, "mask")
    eos = token_id(tokenizer, config, directory, "eos")
    if mask is None or eos is None:
        raise ModelError(
            f"{directory} names no {'mask' if mask is None else 'end-of-text'} token "
            "(config.json, tokenizer_config.json): a diffusion model needs both"
        )
    pad = token_id(tokenizer, config, directory, "pad")
    bos = token_id(tokenizer, config, directory, "bos")
    pad = eos if pad is None else pad
    return TokenIds(
        bos=eos if bos is None else bos, eos=eos, pad=pad, unk=pad, mask=mask, filler=eos
    )


def load(directory: Path, device: str, dtype: str) -> InfillModel:
    """Load a Dream-family directory with transformers' Qwen2 layers."""
    config_data = read_config(directory)
    require(config_data, [*SIZES, "vocab_size"], directory)
    weight_files(directory)  # pickle-only or broken weights: refused before anything else
    tokenizer = read_tokenizer(directory)
    ids = special_ids(directory, tokenizer, config_data)
    from transformers import Qwen2Config, Qwen2ForCausalLM

    values = {key: config_data[key] for key in QWEN2_KEYS if config_data.get(key) is not None}
    config = Qwen2Config(**values, use_sliding_window=False)
    network = load_decoder(
        directory, lambda: Qwen2ForCausalLM(config), device, resolve_dtype(dtype, device)
    )
    log.info("loaded Dream-family model %s", directory)
    metadata = {"name": directory.name, "architecture": "dream (Qwen2 layers, full attention)"}
    return InfillModel(
        directory, network, tokenizer, ids, metadata, device, NAME, full_attention(shift=True),
        {"length": "fillers"},
    )  # fmt: skip
