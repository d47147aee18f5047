"""Our own model format (family "ours"): a masked-LM encoder trained with a filler token.

The directory holds `config.json`, `model.safetensors`, `tokenizer.json` (plus tokenizer
config), `infill.json` (our metadata: special token ids, recipe, measured metrics) and a
`README.md` model card. The filler token means "nothing here": it lets a fixed-size canvas hold
a span of unknown length. Training writes through `save`, the server reads through `load`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from infill_lsp.errors import ModelError
from infill_lsp.models.budget import resolve_dtype
from infill_lsp.models.files import (
    atomic_directory,
    read_config,
    read_json,
    read_tokenizer,
    refuse_remote_code,
    weight_files,
)
from infill_lsp.models.loaded import InfillModel, TokenIds
from infill_lsp.models.masked_lm import check_vocabulary, load_network, masked_lm_config
from infill_lsp.options import DecodeOptions

log = logging.getLogger(__name__)

NAME = "ours"
FORMAT = "infill-lsp/1"
METADATA_FILE = "infill.json"

# Role -> token text.
SPECIAL_TOKENS: dict[str, str] = {
    "bos": "<s>",
    "eos": "</s>",
    "pad": "<pad>",
    "unk": "<unk>",
    "mask": "<mask>",
    "filler": "<|fill|>",
    "expand": "<|expand|>",
}
# Roles a model may lack: it was trained before they existed (the length rule then searches).
OPTIONAL_ROLES = frozenset({"expand"})


def claims(directory: Path, config: dict[str, Any]) -> bool:
    """Whether `directory` is in our format (it has our metadata file)."""
    return (directory / METADATA_FILE).is_file()


def _token_ids(tokenizer: Tokenizer, metadata: dict[str, Any], directory: Path) -> TokenIds:
    names = metadata.get("special_tokens", SPECIAL_TOKENS)
    found: dict[str, int] = {}
    for role, default in SPECIAL_TOKENS.items():
        text = names.get(role, default) if isinstance(names, dict) else default
        token_id = tokenizer.token_to_id(text)
        if token_id is None and role in OPTIONAL_ROLES:
            continue
        if token_id is None:
            raise ModelError(f"{directory / 'tokenizer.json'} has no {role} token {text!r}")
        found[role] = token_id
    recorded = metadata.get("token_ids")
    if isinstance(recorded, dict):
        for role, token_id in found.items():
            if role in recorded and recorded[role] != token_id:
                raise ModelError(
                    f"{directory / METADATA_FILE} says the {role} token is {recorded[role]}, "
                    f"but tokenizer.json has it at {token_id}: the tokenizer does not belong "
                    "to this model"
                )
    return TokenIds(**found)


def load(directory: Path, device: str, dtype: str) -> InfillModel:
    """Load one of our directories (or a masked-LM one with our special tokens)."""
    config_data = read_config(directory)
    refuse_remote_code(directory, config_data)
    weight_files(directory)
    tokenizer = read_tokenizer(directory)
    metadata = read_json(directory / METADATA_FILE) if claims(directory, {}) else {}
    ids = _token_ids(tokenizer, metadata, directory)
    config = masked_lm_config(directory, config_data)
    # Our own directories (with infill.json) pair a tokenizer with exactly its vocabulary.
    check_vocabulary(tokenizer.get_vocab_size(), config.vocab_size, exact=bool(metadata))
    network = load_network(directory, config, device, resolve_dtype(dtype, device))
    log.info("loaded model %s (%s, %d tokens)", directory, config.model_type, config.vocab_size)
    return InfillModel(
        directory, network, tokenizer, ids, metadata, device, NAME,
        decode_defaults=_decode_defaults(metadata, ids, directory),
    )  # fmt: skip


def _decode_defaults(metadata: dict[str, Any], ids: TokenIds, directory: Path) -> dict[str, Any]:
    """How this model decodes best: `decode` in its metadata (picked by measurement when it was
    trained), else the length rule its tokens allow (a model trained to say where a span ends
    reads the length off its own predictions)."""
    recorded = metadata.get("decode", {})
    known = {item.name for item in fields(DecodeOptions)}
    if not isinstance(recorded, dict) or set(recorded) - known:
        raise ModelError(f"{directory / METADATA_FILE}: 'decode' holds unknown settings")
    defaults = {"length": "predict"} if ids.expand is not None else {}
    return {**defaults, **recorded}


def save(
    directory: str | Path,
    network: torch.nn.Module,
    tokenizer: Tokenizer,
    metadata: dict[str, Any],
    card: str = "",
) -> Path:
    """Write a complete model directory atomically: build it under a temporary name, then rename.

    A crash or a full disk leaves either the old directory or none, never a half-written one.
    """
    target = Path(directory)
    with atomic_directory(target) as scratch:
        network.save_pretrained(scratch, safe_serialization=True)  # type: ignore[operator]
        tokenizer.save(str(scratch / "tokenizer.json"))
        # A pretrained masked LM fine-tuned here keeps its own texts for the roles it had.
        given = {**SPECIAL_TOKENS, **(metadata.get("special_tokens") or {})}
        ids = {role: tokenizer.token_to_id(text) for role, text in given.items()}
        ids = {role: i for role, i in ids.items() if i is not None}
        names = {role: given[role] for role in ids}
        (scratch / "tokenizer_config.json").write_text(
            json.dumps(_tokenizer_config(names), indent=2) + "\n", encoding="utf-8"
        )
        full = {"format": FORMAT, "special_tokens": names, "token_ids": ids, **metadata}
        (scratch / METADATA_FILE).write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
        if card:
            (scratch / "README.md").write_text(card, encoding="utf-8")
    return target


def _tokenizer_config(names: dict[str, str]) -> dict[str, Any]:
    """What `AutoTokenizer` needs to load tokenizer.json with our special tokens."""
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **{f"{r}_token": names[r] for r in ("bos", "eos", "pad", "unk", "mask") if r in names},
        "additional_special_tokens": [names[r] for r in ("filler", "expand") if r in names],
        "model_max_length": 1_000_000,
    }
