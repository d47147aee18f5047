"""Family "llada": LLaDA and models in its layout.

Llama layers from transformers run with full attention; no shift (the model was trained as a
masked denoiser from the start). LLaDA's own folders ask for remote code and name their sizes
and weights after OLMo (`d_model`, `model.transformer.blocks.N.att_out`...): both are mapped to
transformers' `LlamaForCausalLM`, whose own layout is read as it is. No filler token: the end of
text fills the rest of a canvas.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from infill_lsp.models.budget import resolve_dtype
from infill_lsp.models.decoders import full_attention, load_decoder, renamer, require
from infill_lsp.models.dream import special_ids
from infill_lsp.models.files import read_config, read_tokenizer, weight_files
from infill_lsp.models.loaded import InfillModel

log = logging.getLogger(__name__)

NAME = "llada"
# LLaDA's config names -> Llama's
CONFIG_NAMES = {
    "d_model": "hidden_size",
    "n_layers": "num_hidden_layers",
    "n_heads": "num_attention_heads",
    "n_kv_heads": "num_key_value_heads",
    "mlp_hidden_size": "intermediate_size",
    "max_sequence_length": "max_position_embeddings",
    "weight_tying": "tie_word_embeddings",
    "embedding_size": "vocab_size",
}
LLAMA_KEYS = (
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "hidden_act", "max_position_embeddings", "rms_norm_eps",
    "tie_word_embeddings", "rope_theta", "rope_scaling", "rope_parameters", "head_dim",
    "attention_bias", "mlp_bias",
)  # fmt: skip
# LLaDA's weight names -> Llama's
WEIGHT_NAMES = renamer(
    [
        (r"^model\.transformer\.wte\.", "model.embed_tokens."),
        (r"^model\.transformer\.ln_f\.", "model.norm."),
        (r"^model\.transformer\.ff_out\.", "lm_head."),
        (r"^model\.transformer\.blocks\.(\d+)\.attn_norm\.", r"model.layers.\1.input_layernorm."),
        (
            r"^model\.transformer\.blocks\.(\d+)\.ff_norm\.",
            r"model.layers.\1.post_attention_layernorm.",
        ),
        (
            r"^model\.transformer\.blocks\.(\d+)\.([qkv])_proj\.",
            r"model.layers.\1.self_attn.\2_proj.",
        ),
        (r"^model\.transformer\.blocks\.(\d+)\.attn_out\.", r"model.layers.\1.self_attn.o_proj."),
        (r"^model\.transformer\.blocks\.(\d+)\.ff_proj\.", r"model.layers.\1.mlp.gate_proj."),
        (r"^model\.transformer\.blocks\.(\d+)\.up_proj\.", r"model.layers.\1.mlp.up_proj."),
        (r"^model\.transformer\.blocks\.(\d+)\.ff_out\.", r"model.layers.\1.mlp.down_proj."),
    ]
)


def claims(directory: Path, config: dict[str, Any]) -> bool:
    """Whether config.json describes a LLaDA model."""
    architectures = [str(name).lower() for name in config.get("architectures") or []]
    return str(config.get("model_type", "")).lower() == "llada" or any(
        name.startswith("llada") for name in architectures
    )


def llama_values(config: dict[str, Any]) -> dict[str, Any]:
    """config.json's sizes under Llama's names."""
    values = {CONFIG_NAMES.get(key, key): value for key, value in config.items()}
    if "embedding_size" in config and "vocab_size" in config:
        values["vocab_size"] = max(int(config["vocab_size"]), int(config["embedding_size"] or 0))
    if values.get("activation_type") == "silu" or "hidden_act" not in values:
        values["hidden_act"] = "silu"
    return {key: values[key] for key in LLAMA_KEYS if values.get(key) is not None}


def load(directory: Path, device: str, dtype: str) -> InfillModel:
    """Load a LLaDA-family directory with transformers' Llama layers."""
    config_data = read_config(directory)
    values = llama_values(config_data)
    require(
        values, ["hidden_size", "intermediate_size", "num_hidden_layers", "vocab_size"], directory
    )
    weight_files(directory)  # pickle-only or broken weights: refused before anything else
    tokenizer = read_tokenizer(directory)
    ids = special_ids(directory, tokenizer, config_data)
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**values)
    network = load_decoder(
        directory, lambda: LlamaForCausalLM(config), device, resolve_dtype(dtype, device),
        WEIGHT_NAMES,
    )  # fmt: skip
    log.info("loaded LLaDA-family model %s", directory)
    metadata = {"name": directory.name, "architecture": "llada (Llama layers, full attention)"}
    return InfillModel(
        directory, network, tokenizer, ids, metadata, device, NAME, full_attention(shift=False),
        {"length": "fillers"},
    )  # fmt: skip
