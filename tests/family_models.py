"""Tiny random models of each pretrained family, saved as their publishers save them.

RoBERTa and ModernBERT folders come from transformers' `save_pretrained`; the Dream folder is a
Qwen2 network saved the same way with Dream's config (model_type "Dream", a mask token id and an
`auto_map` asking for remote code that must be ignored); the LLaDA folder has LLaDA's own layout
(OLMo-style config keys and `model.transformer.blocks.N...` weight names). Every tokenizer is a
byte-level BPE trained here, in-process, on a few code snippets. Nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from tests.tiny_model import SAMPLE_TEXTS

SIZES = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
         "intermediate_size": 64}  # fmt: skip


def train_tokenizer(special: list[str], vocab_size: int = 320) -> Tokenizer:
    """A byte-level BPE whose first ids are `special`."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(SAMPLE_TEXTS * 4, trainer)
    return tokenizer


def write_tokenizer(out: Path, tokenizer: Tokenizer, roles: dict[str, str]) -> None:
    tokenizer.save(str(out / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **{f"{r}_token": t for r, t in roles.items()},
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2))


def build_roberta(out: Path, seed: int = 0, shard: bool = False) -> Path:
    from transformers import RobertaConfig, RobertaForMaskedLM

    torch.manual_seed(seed)
    roles = {"bos": "<s>", "pad": "<pad>", "eos": "</s>", "unk": "<unk>", "mask": "<mask>"}
    tokenizer = train_tokenizer(list(roles.values()))
    config = RobertaConfig(
        vocab_size=tokenizer.get_vocab_size(), max_position_embeddings=514, pad_token_id=1,
        bos_token_id=0, eos_token_id=2, **SIZES,
    )  # fmt: skip
    network = RobertaForMaskedLM(config)
    network.save_pretrained(out, safe_serialization=True, max_shard_size="20KB" if shard else "5GB")
    write_tokenizer(out, tokenizer, roles)
    return out


def build_modernbert(out: Path, seed: int = 0, spare_rows: int = 0) -> Path:
    """A ModernBERT masked LM; `spare_rows` vocabulary rows past its tokenizer, as the published
    ones have."""
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    torch.manual_seed(seed)
    roles = {"cls": "[CLS]", "sep": "[SEP]", "pad": "[PAD]", "unk": "[UNK]", "mask": "[MASK]"}
    tokenizer = train_tokenizer(list(roles.values()))
    ids = {role: tokenizer.token_to_id(text) for role, text in roles.items()}
    config = ModernBertConfig(
        vocab_size=tokenizer.get_vocab_size() + spare_rows, max_position_embeddings=512,
        pad_token_id=ids["pad"], cls_token_id=ids["cls"], sep_token_id=ids["sep"],
        bos_token_id=ids["cls"], eos_token_id=ids["sep"], local_attention=64, **SIZES,
    )  # fmt: skip
    ModernBertForMaskedLM(config).save_pretrained(out, safe_serialization=True)
    write_tokenizer(out, tokenizer, roles)
    return out


DREAM_ROLES = {"bos": "<|beginoftext|>", "eos": "<|endoftext|>", "mask": "<|mask|>"}


def build_dream(out: Path, seed: int = 0) -> Path:
    """A Qwen2 network saved with Dream's config (the reference test loads the same weights)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    tokenizer = train_tokenizer(list(DREAM_ROLES.values()))
    ids = {role: tokenizer.token_to_id(text) for role, text in DREAM_ROLES.items()}
    config = Qwen2Config(
        vocab_size=tokenizer.get_vocab_size() + 8, max_position_embeddings=1024,
        num_key_value_heads=1, tie_word_embeddings=False, **SIZES,
    )  # fmt: skip
    Qwen2ForCausalLM(config).save_pretrained(out, safe_serialization=True)
    data = json.loads((out / "config.json").read_text())
    data.update(
        model_type="Dream",
        architectures=["DreamModel"],
        auto_map={"AutoConfig": "configuration_dream.DreamConfig",
                  "AutoModel": "modeling_dream.DreamModel"},
        mask_token_id=ids["mask"], bos_token_id=ids["bos"], eos_token_id=ids["eos"],
        pad_token_id=ids["eos"],
    )  # fmt: skip
    (out / "config.json").write_text(json.dumps(data, indent=2))
    write_tokenizer(out, tokenizer, {"bos": DREAM_ROLES["bos"], "eos": DREAM_ROLES["eos"]})
    return out


LLADA_ROLES = {"bos": "<|startoftext|>", "eos": "<|endoftext|>", "mask": "<|mdm_mask|>"}


def llada_reference_config(vocab_size: int) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size, max_position_embeddings=1024, num_key_value_heads=2,
        tie_word_embeddings=False, rope_theta=500000.0, rms_norm_eps=1e-5, **SIZES,
    )  # fmt: skip


def to_llada_name(name: str) -> str:
    """A Llama weight name in LLaDA's layout."""
    head = {"model.embed_tokens.": "model.transformer.wte.",
            "model.norm.": "model.transformer.ln_f.",
            "lm_head.": "model.transformer.ff_out."}  # fmt: skip
    for llama, llada in head.items():
        if name.startswith(llama):
            return llada + name[len(llama) :]
    parts = name.split(".")  # model.layers.N.<module>.<proj>.weight
    block = f"model.transformer.blocks.{parts[2]}."
    inner = ".".join(parts[3:-1])
    names = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ff_norm",
             "self_attn.q_proj": "q_proj", "self_attn.k_proj": "k_proj",
             "self_attn.v_proj": "v_proj",
             "self_attn.o_proj": "attn_out", "mlp.gate_proj": "ff_proj", "mlp.up_proj": "up_proj",
             "mlp.down_proj": "ff_out"}  # fmt: skip
    return block + names[inner] + "." + parts[-1]


def build_llada(out: Path, seed: int = 0) -> tuple[Path, dict[str, torch.Tensor]]:
    """A LLaDA folder in LLaDA's own layout; also the Llama state dict it was made from."""
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    tokenizer = train_tokenizer(list(LLADA_ROLES.values()))
    ids = {role: tokenizer.token_to_id(text) for role, text in LLADA_ROLES.items()}
    vocab = tokenizer.get_vocab_size()
    state = LlamaForCausalLM(llada_reference_config(vocab)).state_dict()
    out.mkdir(parents=True, exist_ok=True)
    save_file({to_llada_name(k): v.contiguous() for k, v in state.items()},
              str(out / "model.safetensors"), metadata={"format": "pt"})  # fmt: skip
    config = {
        "architectures": ["LLaDAModelLM"], "model_type": "llada",
        "auto_map": {"AutoConfig": "configuration_llada.LLaDAConfig",
                     "AutoModel": "modeling_llada.LLaDAModelLM"},
        "d_model": SIZES["hidden_size"], "n_layers": SIZES["num_hidden_layers"],
        "n_heads": SIZES["num_attention_heads"], "n_kv_heads": 2,
        "mlp_hidden_size": SIZES["intermediate_size"], "max_sequence_length": 1024,
        "vocab_size": vocab, "embedding_size": vocab, "rope_theta": 500000.0,
        "rms_norm_eps": 1e-5, "weight_tying": False, "activation_type": "silu",
        "mask_token_id": ids["mask"], "eos_token_id": ids["eos"], "pad_token_id": ids["eos"],
    }  # fmt: skip
    (out / "config.json").write_text(json.dumps(config, indent=2))
    write_tokenizer(out, tokenizer, {"bos": LLADA_ROLES["bos"], "eos": LLADA_ROLES["eos"]})
    return out, state
