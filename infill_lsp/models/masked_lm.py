"""Family "masked-lm": RoBERTa, XLM-R, BERT, ModernBERT... through transformers' own
`*ForMaskedLM` classes (never remote code).

These models have no filler token, so the span length comes from the length search, and the
canvas positions past a length hypothesis hold pad tokens the model does not see (attention mask
0, positions numbered as if they were absent; a ModernBERT's local-attention layers still count
them in their window's width). Mask, pad and end tokens come from the config and the tokenizer
files.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from infill_lsp.errors import ModelError
from infill_lsp.models.budget import check_fits, check_shapes, on_meta, resolve_dtype
from infill_lsp.models.files import (
    read_config,
    read_tokenizer,
    refuse_remote_code,
    tensor_shapes,
    weight_files,
)
from infill_lsp.models.loaded import Forward, InfillModel, TokenIds
from infill_lsp.models.special import token_id

log = logging.getLogger(__name__)

NAME = "masked-lm"
# Models whose embeddings skip pad tokens when numbering positions by themselves.
NUMBERS_AROUND_PADS = ("roberta", "xlm-roberta", "camembert")


def claims(directory: Path, config: dict[str, Any]) -> bool:
    """Whether config.json names a masked-LM architecture."""
    architectures = config.get("architectures") or []
    return any(str(name).endswith("ForMaskedLM") for name in architectures)


def masked_lm_config(directory: Path, config_data: dict[str, Any]) -> Any:
    """The transformers config of a masked-LM directory (never one that needs remote code)."""
    refuse_remote_code(directory, config_data)
    # transformers takes seconds to import: only after the cheap checks of the directory passed.
    from transformers import AutoConfig
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its bars would only clutter the server's log
    try:
        return AutoConfig.from_pretrained(directory, local_files_only=True, trust_remote_code=False)
    except Exception as error:
        raise ModelError(
            f"{directory / 'config.json'} is not a usable model config: {error}"
        ) from error


def load_network(directory: Path, config: Any, device: str, dtype: torch.dtype) -> torch.nn.Module:
    """The `*ForMaskedLM` network of a directory, its size and weight names checked first."""
    from transformers import AutoModelForMaskedLM

    files = weight_files(directory)
    config_file = directory / "config.json"
    try:
        skeleton = on_meta(lambda: AutoModelForMaskedLM.from_config(config))
    except Exception as error:
        raise ModelError(f"{config_file} is not a masked-LM config: {error}") from error
    check_fits(skeleton, dtype, device, directory)
    tied = set(getattr(skeleton, "_tied_weights_keys", None) or ())
    check_shapes(skeleton, tensor_shapes(files), files[0], optional=tied | _buffers(skeleton))
    try:
        network, info = AutoModelForMaskedLM.from_pretrained(
            directory,
            config=config,
            local_files_only=True,
            trust_remote_code=False,
            use_safetensors=True,
            output_loading_info=True,
            dtype=dtype,
        )
    except Exception as error:
        raise ModelError(f"{files[0]} does not match {config_file}: {error}") from error
    # from_pretrained only warns about weights it had to invent; a model that needed any is wrong.
    missing = [k for k in info.get("missing_keys", ()) if k not in tied]
    wrong = list(info.get("mismatched_keys", ()))
    if missing or wrong:
        shown = ", ".join(str(k) for k in (missing + wrong)[:3])
        raise ModelError(
            f"{files[0]} does not match {config_file}: "
            f"{len(missing) + len(wrong)} weights are missing or misshapen ({shown})"
        )
    network.eval().to(device)
    return network


def check_vocabulary(tokens: int, declared: int, exact: bool) -> None:
    """ModelError when the tokenizer and the config do not belong together (other models often
    pad the vocabulary past the tokenizer, which is harmless; ours must match exactly)."""
    if tokens > declared or (exact and tokens != declared):
        raise ModelError(
            f"tokenizer.json has {tokens} tokens but config.json "
            f"declares a vocabulary of {declared}: they do not belong together"
        )


def _buffers(network: torch.nn.Module) -> set[str]:
    """State-dict entries that are buffers (position ids...), which weights need not hold."""
    return {name for name, _ in network.named_buffers()}


def hidden_pad_forward(pad: int, number_positions: bool) -> Forward:
    """Logits with pad tokens unseen: attention mask 0, and (where the model does not do it
    itself) positions numbered as if the pads were absent."""

    def forward(
        network: torch.nn.Module,
        ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        positions: torch.Tensor | None,
    ) -> torch.Tensor:
        if attention_mask is None:
            attention_mask = (ids != pad).long()  # (B, T)
        extra = {}
        if number_positions:
            extra["position_ids"] = (attention_mask.cumsum(1) - 1).clamp_min(0)  # (B, T)
        logits = network(input_ids=ids, attention_mask=attention_mask, **extra).logits
        return logits if positions is None else logits[:, positions.to(logits.device)]

    return forward


def load(directory: Path, device: str, dtype: str) -> InfillModel:
    """Load a Hugging Face masked-LM directory."""
    config_data = read_config(directory)
    weight_files(directory)  # pickle-only or broken weights: refused before anything else
    tokenizer = read_tokenizer(directory)
    ids = {
        "mask": token_id(tokenizer, config_data, directory, "mask"),
        "bos": token_id(tokenizer, config_data, directory, "bos", "cls"),
        "eos": token_id(tokenizer, config_data, directory, "eos", "sep"),
        "pad": token_id(tokenizer, config_data, directory, "pad"),
        "unk": token_id(tokenizer, config_data, directory, "unk", "pad"),
    }
    absent = [role for role, value in ids.items() if value is None]
    if absent:
        raise ModelError(
            f"{directory} names no {' or '.join(absent)} token (config.json, "
            "tokenizer_config.json): a masked LM needs them"
        )
    found = {role: int(value) for role, value in ids.items() if value is not None}
    token_ids = TokenIds(**found, filler=found["pad"])  # the unseen pad ends a span
    config = masked_lm_config(directory, config_data)
    check_vocabulary(tokenizer.get_vocab_size(), config.vocab_size, exact=False)
    network = load_network(directory, config, device, resolve_dtype(dtype, device))
    log.info("loaded masked LM %s (%s)", directory, config.model_type)
    forward = hidden_pad_forward(found["pad"], config.model_type not in NUMBERS_AROUND_PADS)
    metadata = {"name": directory.name, "architecture": config.model_type}
    return InfillModel(
        directory,
        network,
        tokenizer,
        token_ids,
        metadata,
        device,
        NAME,
        forward,
        {"length": "search"},
    )
