"""A byte-level BPE tokenizer for code: lossless on any text, dense on indentation and names."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from infill_lsp.model import OPTIONAL_ROLES, SPECIAL_TOKENS, TokenIds

# Pre-tokens: a newline; an identifier or keyword with at most one leading space; a number; a
# run of punctuation with at most one leading space; a run of spaces or tabs (indentation).
# Indentation stays one piece so BPE learns 4-, 8- and 12-space tokens.
CODE_SPLIT = (
    r"\r?\n|\r| ?[\p{L}_][\p{L}\p{N}_]*| ?\p{N}{1,4}| ?[^\s\p{L}\p{N}_]{1,4}|[ \t]+(?=\S)|[ \t]+|\s"
)


def new_tokenizer() -> Tokenizer:
    """An untrained tokenizer with our pre-tokenization and byte-level decoding."""
    tokenizer = Tokenizer(models.BPE(byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(CODE_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """Train on `texts`; the special tokens take the first ids, in SPECIAL_TOKENS order."""
    tokenizer = new_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tokenizer.train_from_iterator(_batches(texts), trainer=trainer)
    return tokenizer


def _batches(texts: Iterable[str], size: int = 256) -> Iterator[list[str]]:
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def load_tokenizer(directory: str | Path) -> Tokenizer:
    """Read `tokenizer.json` from a tokenizer or model directory."""
    return Tokenizer.from_file(str(Path(directory) / "tokenizer.json"))


def token_ids(tokenizer: Tokenizer, names: Mapping[str, str] = SPECIAL_TOKENS) -> TokenIds:
    """The special token ids of a tokenizer, each role found by its text in `names` (ours by
    default; a pretrained masked LM keeps its own); ValueError when one is missing."""
    ids = {role: tokenizer.token_to_id(text) for role, text in names.items()}
    missing = [role for role, i in ids.items() if i is None and role not in OPTIONAL_ROLES]
    if missing:
        raise ValueError(f"tokenizer lacks special tokens: {', '.join(missing)}")
    return TokenIds(**{role: i for role, i in ids.items() if i is not None})
