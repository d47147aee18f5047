"""Give a tokenizer and its network the special tokens our objective needs, growing both.

A model trained before a special token existed (our v6 before `<|expand|>`), or a Hugging Face
masked LM without our filler, gets the missing tokens appended to its tokenizer and as many new
rows in its input embeddings and tied output head; transformers' own resizing initialises the
new rows from the existing ones' mean and spread, so they start as an average token.
"""

from __future__ import annotations

import torch
from tokenizers import AddedToken, Tokenizer


def add_special_tokens(
    network: torch.nn.Module, tokenizer: Tokenizer, names: list[str]
) -> list[str]:
    """Append each of `names` the tokenizer lacks as a special token and resize the network's
    embeddings to the tokenizer's new size. Returns the names added (none: nothing changes)."""
    missing = [name for name in names if tokenizer.token_to_id(name) is None]
    if missing:
        tokenizer.add_special_tokens([AddedToken(name, special=True) for name in missing])
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    embeddings: torch.nn.Module = network.get_input_embeddings()  # type: ignore[operator]
    if size > embeddings.weight.shape[0]:  # type: ignore[union-attr]
        network.resize_token_embeddings(size, mean_resizing=True)  # type: ignore[operator]
    return missing
