"""Model directories: load one offline and safely, save one atomically, and run the network.

A model directory holds `config.json`, `model.safetensors`, `tokenizer.json` (plus tokenizer
config), `infill.json` (our metadata: special token ids, recipe, measured metrics, sampler
defaults) and a `README.md` model card. Only safetensors weights are read; no remote code runs.
This module is the one place that knows the directory format: training writes through
`save_model`, the server reads through `load_model`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from infill_lsp.errors import ModelError

log = logging.getLogger(__name__)

FORMAT = "infill-lsp/1"
METADATA_FILE = "infill.json"
WEIGHTS_FILE = "model.safetensors"

# Role -> token text. The filler token means "nothing here": it lets a fixed-size canvas hold a
# span of unknown length.
SPECIAL_TOKENS: dict[str, str] = {
    "bos": "<s>",
    "eos": "</s>",
    "pad": "<pad>",
    "unk": "<unk>",
    "mask": "<mask>",
    "filler": "<|fill|>",
}

DEFAULT_MODEL_DIR = Path(__file__).parent / "default_model"


@dataclass(frozen=True)
class TokenIds:
    """The ids of the special tokens of one model."""

    bos: int
    eos: int
    pad: int
    unk: int
    mask: int
    filler: int

    def non_text(self) -> list[int]:
        """Ids a sampler must never produce as text (everything but the filler)."""
        return [self.bos, self.eos, self.pad, self.unk, self.mask]


@dataclass
class InfillModel:
    """A loaded model: the network, its tokenizer and its metadata."""

    directory: Path
    network: torch.nn.Module
    tokenizer: Tokenizer
    ids: TokenIds
    metadata: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"

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
        ids = ids.to(self.device)
        if attention_mask is not None:
            attention_mask = attention_mask.to(self.device)
        return head_logits(self.network, ids, attention_mask, positions).float()


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


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelError(f"model directory {path.parent} has no {path.name}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise ModelError(f"{path} must hold a JSON object")
    return data


def _check_safetensors(path: Path) -> None:
    """Refuse a weights file whose header or length is broken, before torch touches it."""
    size = path.stat().st_size
    try:
        with path.open("rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            if header_len <= 0 or 8 + header_len > size:
                raise ValueError("header length past the end of the file")
            header = json.loads(f.read(header_len))
        end = max(
            (int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"),
            default=0,
        )
        if 8 + header_len + end != size:
            raise ValueError(f"expected {8 + header_len + end} bytes, found {size}")
    except (struct.error, ValueError, KeyError, TypeError, json.JSONDecodeError) as error:
        raise ModelError(f"{path} is corrupted or truncated ({error})") from error


def _token_ids(tokenizer: Tokenizer, metadata: dict[str, Any], directory: Path) -> TokenIds:
    names = metadata.get("special_tokens", SPECIAL_TOKENS)
    found: dict[str, int] = {}
    for role, default in SPECIAL_TOKENS.items():
        text = names.get(role, default) if isinstance(names, dict) else default
        token_id = tokenizer.token_to_id(text)
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


_DEFAULT_THREADS = torch.get_num_threads()


def use_threads(count: int | None) -> None:
    """Run the model's CPU kernels on `count` threads (None or 0: torch's own choice, all cores).

    Process-wide. One thread keeps latency steady when something else (a build, a training run)
    has the other cores: several threads then wait on each other at every kernel.
    """
    torch.set_num_threads(count or _DEFAULT_THREADS)


def load_model(directory: str | Path | None = None, device: str = "cpu") -> InfillModel:
    """Load a model directory (the embedded default when None); raise ModelError if unusable."""
    path = Path(directory).expanduser() if directory else DEFAULT_MODEL_DIR
    if not path.exists():
        raise ModelError(f"model directory {path} does not exist")
    if not path.is_dir():
        raise ModelError(f"model path {path} is not a directory")
    config_data = _read_json(path / "config.json")
    if config_data.get("auto_map") or config_data.get("trust_remote_code"):
        raise ModelError(f"{path / 'config.json'} asks for remote code, which is never run")
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        pickles = sorted(p.name for p in path.glob("*.bin")) + sorted(
            p.name for p in path.glob("*.pt*")
        )
        if pickles:
            raise ModelError(
                f"model directory {path} has only pickle weights ({', '.join(pickles)}); "
                f"they can run code when loaded and are refused: convert them to {WEIGHTS_FILE}"
            )
        raise ModelError(f"model directory {path} has no {WEIGHTS_FILE}")
    _check_safetensors(weights)
    tokenizer_file = path / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise ModelError(f"model directory {path} has no tokenizer.json")
    try:
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
    except Exception as error:
        raise ModelError(f"{tokenizer_file} cannot be read: {error}") from error
    tokenizer.encode_special_tokens = True  # "<mask>" typed in a document is text, not a mask
    metadata = _read_json(path / METADATA_FILE) if (path / METADATA_FILE).exists() else {}
    ids = _token_ids(tokenizer, metadata, path)
    # transformers takes seconds to import: only after the cheap checks of the directory passed.
    from transformers import AutoConfig, AutoModelForMaskedLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its bars would only clutter the server's log
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    except Exception as error:
        raise ModelError(f"{path / 'config.json'} is not a usable model config: {error}") from error
    # Our own directories (with infill.json) pair a tokenizer with exactly its vocabulary; other
    # Hugging Face models often pad the vocabulary past the tokenizer, which is harmless.
    ours = bool(metadata)
    size = tokenizer.get_vocab_size()
    if size > config.vocab_size or (ours and size != config.vocab_size):
        raise ModelError(
            f"tokenizer.json has {tokenizer.get_vocab_size()} tokens but config.json "
            f"declares a vocabulary of {config.vocab_size}: they do not belong together"
        )
    try:
        network = AutoModelForMaskedLM.from_pretrained(
            path,
            config=config,
            local_files_only=True,
            trust_remote_code=False,
            use_safetensors=True,
            output_loading_info=True,
        )
    except Exception as error:
        raise ModelError(f"{weights} does not match {path / 'config.json'}: {error}") from error
    # from_pretrained only warns about weights it had to invent; a model that needed any is wrong.
    network, info = network
    tied = set(getattr(network, "_tied_weights_keys", None) or ())
    missing = [k for k in info.get("missing_keys", ()) if k not in tied]
    wrong = list(info.get("mismatched_keys", ()))
    if missing or wrong:
        shown = ", ".join(str(k) for k in (missing + wrong)[:3])
        raise ModelError(
            f"{weights} does not match {path / 'config.json'}: "
            f"{len(missing) + len(wrong)} weights are missing or misshapen ({shown})"
        )
    network.eval().to(device)
    log.info("loaded model %s (%s, %d tokens)", path, config.model_type, config.vocab_size)
    return InfillModel(path, network, tokenizer, ids, metadata, device)


def save_model(
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
        (scratch / "tokenizer_config.json").write_text(
            json.dumps(_tokenizer_config(), indent=2) + "\n", encoding="utf-8"
        )
        ids = {role: tokenizer.token_to_id(text) for role, text in SPECIAL_TOKENS.items()}
        full = {"format": FORMAT, "special_tokens": SPECIAL_TOKENS, "token_ids": ids, **metadata}
        (scratch / METADATA_FILE).write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
        if card:
            (scratch / "README.md").write_text(card, encoding="utf-8")
    return target


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a scratch folder beside `target` that replaces it, in one rename, if all went well.

    A crash or a full disk leaves either the old directory or none, never a half-written one.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    scratch.chmod(0o755)
    try:
        yield scratch
        backup = target.with_name(f".{target.name}.old")
        if target.exists():
            shutil.rmtree(backup, ignore_errors=True)
            os.replace(target, backup)
        os.replace(scratch, target)
        shutil.rmtree(backup, ignore_errors=True)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def _tokenizer_config() -> dict[str, Any]:
    """What `AutoTokenizer` needs to load tokenizer.json with our special tokens."""
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": SPECIAL_TOKENS["bos"],
        "eos_token": SPECIAL_TOKENS["eos"],
        "pad_token": SPECIAL_TOKENS["pad"],
        "unk_token": SPECIAL_TOKENS["unk"],
        "mask_token": SPECIAL_TOKENS["mask"],
        "additional_special_tokens": [SPECIAL_TOKENS["filler"]],
        "model_max_length": 1_000_000,
    }
