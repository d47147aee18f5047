"""Special token ids of a Hugging Face model directory: from config.json, else the tokenizer's
own configuration (tokenizer_config.json, special_tokens_map.json). Knows files and tokenizers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from infill_lsp.models.files import read_json

TOKENIZER_FILES = ("tokenizer_config.json", "special_tokens_map.json")


def token_text(directory: Path, role: str) -> str | None:
    """The text of the `role` token ("mask", "eos", "cls"...) as the tokenizer files name it."""
    for name in TOKENIZER_FILES:
        path = directory / name
        if not path.is_file():
            continue
        value = read_json(path).get(f"{role}_token")
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str) and value:
            return value
    return None


def token_id(
    tokenizer: Tokenizer, config: dict[str, Any], directory: Path, *roles: str
) -> int | None:
    """The id of the first of `roles` that config.json or the tokenizer files give."""
    for role in roles:
        value = config.get(f"{role}_token_id")
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        text = token_text(directory, role)
        found = tokenizer.token_to_id(text) if text else None
        if found is not None:
            return int(found)
    return None
