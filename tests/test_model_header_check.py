"""A model folder whose config declares far more weights than its safetensors file holds is
refused in well under a second, before anything is allocated (issue 23: it cost 30-82 s and
3 GB at full CPU before it was refused)."""

from __future__ import annotations

import json
import shutil
import struct
import time
from pathlib import Path

import pytest


def _large_config(model: Path) -> None:
    config = json.loads((model / "config.json").read_text())
    config.update(
        hidden_size=1536, intermediate_size=6144, num_hidden_layers=20, num_attention_heads=24,
        layer_types=["full_attention"] * 20,
    )  # fmt: skip
    (model / "config.json").write_text(json.dumps(config))


def _empty_weights(model: Path) -> None:
    (model / "model.safetensors").write_bytes(struct.pack("<Q", 2) + b"{}")  # valid, no tensors


@pytest.mark.parametrize("weights", ["tiny", "empty"])
def test_a_config_larger_than_its_weights_is_refused_at_once(
    tiny_model_dir: Path, tmp_path: Path, weights: str
) -> None:
    from infill_lsp.errors import ModelError
    from infill_lsp.model import load_model

    model = tmp_path / "lying"
    shutil.copytree(tiny_model_dir, model)
    _large_config(model)
    if weights == "empty":
        _empty_weights(model)
    load_model(tiny_model_dir)  # transformers imported: what is timed is the check alone
    started = time.monotonic()
    with pytest.raises(ModelError, match="does not match"):
        load_model(model)
    assert time.monotonic() - started < 1.0
