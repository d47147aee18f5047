"""Model directories that must be refused: pickles, broken weights, mismatched parts, remote code.

Each broken copy of the tiny model goes through `infill_lsp.model.load_model` (a ModelError with
a message that names the problem, and no code from the directory ever runs), and the worst ones
also through a running server: pointing `modelPath` at them leaves it serving on the model it had.
"""

from __future__ import annotations

import json
import pickle
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from infill_lsp.errors import ModelError
from infill_lsp.model import load_model
from infill_train.tokenizer import train_tokenizer
from tests.reliability.rpc import RpcPeer
from tests.tiny_model import SAMPLE_TEXTS

WEIGHTS = "model.safetensors"


class Trap:
    """Unpickling this touches a file: proof that a pickle was (or was not) loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str, str]]:
        return (shutil.copyfile, ("/etc/hostname", str(self.path)))


def _edit_json(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def pickle_only(model: Path, trap: Path) -> None:
    state = load_file(model / WEIGHTS)
    (model / WEIGHTS).unlink()
    torch.save(state, model / "pytorch_model.bin")
    (model / "training_args.bin").write_bytes(pickle.dumps(Trap(trap)))


def pickle_next_to_safetensors(model: Path, trap: Path) -> None:
    (model / "pytorch_model.bin").write_bytes(pickle.dumps(Trap(trap)))


def corrupted_header(model: Path, trap: Path) -> None:
    data = bytearray((model / WEIGHTS).read_bytes())
    data[8:40] = b"\x00garbage!" * 3 + b"\xff" * 5
    (model / WEIGHTS).write_bytes(bytes(data))


def absurd_header_length(model: Path, trap: Path) -> None:
    data = bytearray((model / WEIGHTS).read_bytes())
    data[:8] = struct.pack("<Q", 2**62)
    (model / WEIGHTS).write_bytes(bytes(data))


def truncated(model: Path, trap: Path) -> None:
    data = (model / WEIGHTS).read_bytes()
    (model / WEIGHTS).write_bytes(data[: len(data) // 2])


def empty_weights(model: Path, trap: Path) -> None:
    (model / WEIGHTS).write_bytes(b"")


def shapes_lie(model: Path, trap: Path) -> None:
    """A valid header whose tensor dtypes do not fit their byte ranges (F32 said to be F16)."""
    data = (model / WEIGHTS).read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = data[8 : 8 + length].replace(b'"F32"', b'"F16"')
    (model / WEIGHTS).write_bytes(data[:8] + header + data[8 + length :])


def config_wider(model: Path, trap: Path) -> None:
    _edit_json(model / "config.json", hidden_size=64, intermediate_size=128)


def config_deeper(model: Path, trap: Path) -> None:
    config = json.loads((model / "config.json").read_text())
    layers = config["num_hidden_layers"] + 1
    _edit_json(model / "config.json", num_hidden_layers=layers, layer_types=None)


def config_broken_json(model: Path, trap: Path) -> None:
    (model / "config.json").write_text('{"model_type": "modernbert",')


def tokenizer_larger(model: Path, trap: Path) -> None:
    bigger = train_tokenizer([*SAMPLE_TEXTS, "zebra quokka axolotl " * 50] * 8, vocab_size=600)
    assert bigger.get_vocab_size() > 400
    bigger.save(str(model / "tokenizer.json"))


def tokenizer_smaller(model: Path, trap: Path) -> None:
    smaller = train_tokenizer(SAMPLE_TEXTS * 4, vocab_size=300)
    assert smaller.get_vocab_size() < 400
    smaller.save(str(model / "tokenizer.json"))


def tokenizer_missing_mask(model: Path, trap: Path) -> None:
    data = json.loads((model / "tokenizer.json").read_text())
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] != "<mask>"]
    data["model"]["vocab"].pop("<mask>", None)
    (model / "tokenizer.json").write_text(json.dumps(data))


def remote_code(model: Path, trap: Path) -> None:
    (model / "modeling_evil.py").write_text(
        f"import shutil\nshutil.copyfile('/etc/hostname', {str(trap)!r})\n"
    )
    _edit_json(
        model / "config.json",
        auto_map={"AutoModelForMaskedLM": "modeling_evil.EvilModel"},
    )


def trust_remote_code_flag(model: Path, trap: Path) -> None:
    _edit_json(model / "config.json", trust_remote_code=True)


CASES: list[tuple[Callable[[Path, Path], None], str]] = [
    (pickle_only, "pickle"),
    (corrupted_header, "corrupted"),
    (absurd_header_length, "corrupted"),
    (truncated, "truncated"),
    (empty_weights, "corrupted"),
    (shapes_lie, "does not match"),
    (config_wider, "does not match"),
    (config_broken_json, "not valid JSON"),
    (tokenizer_larger, "do not belong together"),
    (tokenizer_missing_mask, "mask"),
    (remote_code, "remote code"),
    (trust_remote_code_flag, "remote code"),
    (config_deeper, "missing or misshapen"),  # transformers alone would only warn
    (tokenizer_smaller, "do not belong together"),
]


def broken_copy(tiny_model_dir: Path, where: Path, breaker: Callable[[Path, Path], None]) -> Path:
    model = where / breaker.__name__
    shutil.copytree(tiny_model_dir, model)
    breaker(model, where / "trap-was-sprung")
    return model


def assert_refused(model: Path, trap: Path, expected: str) -> None:
    with pytest.raises(ModelError) as caught:
        load_model(model)
    message = str(caught.value)
    assert expected in message, message
    assert not trap.exists(), "code from the model directory ran"


@pytest.mark.parametrize(("breaker", "expected"), CASES, ids=[c[0].__name__ for c in CASES])
def test_broken_model_is_refused(
    tiny_model_dir: Path, tmp_path: Path, breaker: Callable[[Path, Path], None], expected: str
) -> None:
    assert_refused(
        broken_copy(tiny_model_dir, tmp_path, breaker), tmp_path / "trap-was-sprung", expected
    )


def test_pickle_beside_safetensors_is_never_opened(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = broken_copy(tiny_model_dir, tmp_path, pickle_next_to_safetensors)
    load_model(model)
    assert not (tmp_path / "trap-was-sprung").exists()


def test_server_keeps_its_model(server: RpcPeer, tiny_model_dir: Path, tmp_path: Path) -> None:
    """A broken modelPath from the client: the server says so and serves on the old model."""
    uri = "file:///model-files/keep.py"
    server.open(uri, "def add(a, b):\n    return a + b\n", "python")
    for breaker in (pickle_only, truncated, remote_code, config_wider, tokenizer_larger):
        model = broken_copy(tiny_model_dir, tmp_path, breaker)
        seen = len(server.statuses())
        server.notify(
            "workspace/didChangeConfiguration", {"settings": {"infill": {"modelPath": str(model)}}}
        )
        status = server.wait_ready(timeout=60, after=seen)
        assert status["state"] == "ready" and status["model"] == str(tiny_model_dir), status
        assert "still using" in status["message"] and str(model) in status["message"], status
        assert server.result("infill/status")["model"] == str(tiny_model_dir)
        params = {
            "textDocument": {"uri": uri},
            "position": {"line": 1, "character": 4},
            "context": {"triggerKind": 1},
        }
        assert server.result("textDocument/inlineCompletion", params)["items"], breaker.__name__
        assert not (tmp_path / "trap-was-sprung").exists()
    server.notify(
        "workspace/didChangeConfiguration",
        {"settings": {"infill": {"modelPath": str(tiny_model_dir)}}},
    )
