"""A model directory's files: checked before anything is allocated, written atomically.

JSON files that must hold an object, config.json that must not ask for remote code, weights that
must be safetensors (a pickle-only directory is refused: unpickling runs code) with a header
whose offsets match the file's length, and a tokenizer.json that tokenizers can read. Every
problem is a ModelError naming the file. Knows files and JSON; nothing about networks.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from infill_lsp.errors import ModelError

WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"  # sharded weights


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in `path`; ModelError when it is missing, unreadable or not an object."""
    if not path.is_file():
        raise ModelError(f"model directory {path.parent} has no {path.name}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise ModelError(f"{path} must hold a JSON object")
    return data


def model_directory(directory: Path) -> Path:
    """`directory` when it is an existing directory; ModelError otherwise."""
    if not directory.exists():
        raise ModelError(f"model directory {directory} does not exist")
    if not directory.is_dir():
        raise ModelError(f"model path {directory} is not a directory")
    return directory


def read_config(directory: Path) -> dict[str, Any]:
    """config.json as a dict."""
    return read_json(directory / "config.json")


def refuse_remote_code(directory: Path, config: dict[str, Any]) -> None:
    """ModelError when a config needs code from the download (a family that builds the network
    from transformers' own modules ignores that code instead)."""
    if config.get("auto_map") or config.get("trust_remote_code"):
        raise ModelError(f"{directory / 'config.json'} asks for remote code, which is never run")


def weight_files(directory: Path) -> list[Path]:
    """The checked safetensors files (one, or the shards an index names); ModelError for
    pickle-only, missing or broken weights."""
    single = directory / WEIGHTS_FILE
    index = directory / INDEX_FILE
    if single.is_file():
        files = [single]
    elif index.is_file():
        weight_map = read_json(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ModelError(f"{index} has no weight_map")
        names = sorted({str(name) for name in weight_map.values()})
        files = [directory / name for name in names]
        for path in files:
            if path.parent != directory or not path.name.endswith(".safetensors"):
                raise ModelError(f"{index} names {path.name!r}, not a safetensors file beside it")
            if not path.is_file():
                raise ModelError(f"{index} names {path.name}, which is missing")
    else:
        pickles = sorted(p.name for p in directory.glob("*.bin")) + sorted(
            p.name for p in directory.glob("*.pt*")
        )
        if pickles:
            raise ModelError(
                f"model directory {directory} has only pickle weights ({', '.join(pickles)}); "
                f"they can run code when loaded and are refused: convert them to {WEIGHTS_FILE}"
            )
        raise ModelError(f"model directory {directory} has no {WEIGHTS_FILE}")
    for path in files:
        check_safetensors(path)
    return files


def safetensors_weights(directory: Path) -> Path:
    """The first checked safetensors file (see `weight_files`)."""
    return weight_files(directory)[0]


def tensor_shapes(files: list[Path]) -> dict[str, tuple[list[int], str]]:
    """Every tensor's (shape, dtype) as the safetensors headers give them, read without loading."""
    found: dict[str, tuple[list[int], str]] = {}
    for path in files:
        for name, entry in check_safetensors(path).items():
            if name != "__metadata__":
                found[name] = ([int(n) for n in entry["shape"]], str(entry["dtype"]))
    return found


def check_safetensors(path: Path) -> dict[str, Any]:
    """The header of a safetensors file; ModelError when its header or length is broken."""
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
    return dict(header)


def read_tokenizer(directory: Path) -> Tokenizer:
    """tokenizer.json, set to read special-token text typed in a document as plain text."""
    path = directory / "tokenizer.json"
    if not path.is_file():
        raise ModelError(f"model directory {directory} has no tokenizer.json")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as error:
        raise ModelError(f"{path} cannot be read: {error}") from error
    tokenizer.encode_special_tokens = True  # "<mask>" typed in a document is text, not a mask
    return tokenizer


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
