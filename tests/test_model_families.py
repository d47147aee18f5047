"""Pretrained model families (issue 16): tiny random RoBERTa, ModernBERT, Dream and LLaDA folders,
saved as their publishers save them (`tests.family_models`), loaded through the public paths:
`infill-lsp fill --model DIR`, the server's inlineCompletion / rewrite / revise, and modelPath
switched live. The Dream and LLaDA forwards are compared with transformers' own Qwen2 / Llama
run with an all-ones attention mask on the same weights.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from infill_lsp.errors import ModelError
from infill_lsp.model import load_model
from infill_lsp.models import families
from infill_lsp.models.files import read_config, weight_files
from tests.family_models import (
    build_dream,
    build_llada,
    build_modernbert,
    build_roberta,
    llada_reference_config,
)
from tests.reliability.conftest import start_server

SOURCE = "def add(a, b):\n    return a + b\n\n\nprint(add(1, 2))\n"
FAMILY_OF = {"roberta": "masked-lm", "modernbert": "masked-lm", "dream": "dream", "llada": "llada"}
GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("families")
    llada, _ = build_llada(base / "llada")
    return {
        "roberta": build_roberta(base / "roberta"),
        "modernbert": build_modernbert(base / "modernbert"),
        "dream": build_dream(base / "dream"),
        "llada": llada,
    }


def copy(folder: Path, to: Path) -> Path:
    shutil.copytree(folder, to)
    return to


def edit_config(folder: Path, **changes: Any) -> None:
    data = json.loads((folder / "config.json").read_text())
    data.update(changes)
    (folder / "config.json").write_text(json.dumps(data))


def fill(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "infill_lsp", "fill", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


# --- detection and loading ------------------------------------------------------------------


def test_each_family_is_detected_from_config_json(folders: dict[str, Path]) -> None:
    for name, folder in folders.items():
        assert families.detect(folder, read_config(folder)) == FAMILY_OF[name], name


def test_remote_code_is_ignored_not_run(folders: dict[str, Path]) -> None:
    """Dream's and LLaDA's folders ask for remote code; their networks are transformers' own."""
    for name in ("dream", "llada"):
        assert read_config(folders[name])["auto_map"]
        model = load_model(folders[name])
        assert type(model.network).__module__.startswith("transformers.models."), name


@pytest.mark.parametrize("name", ["roberta", "modernbert", "dream", "llada"])
def test_fill_from_the_command_line(folders: dict[str, Path], tmp_path: Path, name: str) -> None:
    source = tmp_path / "a.py"
    source.write_text(SOURCE)
    done = fill(
        str(source), "--at", "2:12", "--model", str(folders[name]), "--steps", "4", "--json"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout)
    assert answer["mode"] == "infill" and isinstance(answer["text"], str)
    assert 1 <= answer["steps"] <= 4


def test_a_sharded_folder_loads(tmp_path: Path) -> None:
    folder = build_roberta(tmp_path / "sharded", shard=True)
    assert len(weight_files(folder)) > 1 and (folder / "model.safetensors.index.json").is_file()
    whole = load_model(build_roberta(tmp_path / "whole"))
    sharded = load_model(folder)
    ids = torch.tensor([[0, 5, 4, 4, 9, 2]])
    assert torch.equal(whole.logits(ids), sharded.logits(ids))


def test_a_pickle_only_folder_exits_2_without_a_traceback(tmp_path: Path) -> None:
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["RobertaForMaskedLM"]}))
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    source = tmp_path / "a.py"
    source.write_text(SOURCE)
    done = fill(str(source), "--at", "1:1", "--model", str(folder))
    assert done.returncode == 2
    assert "pickle" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["roberta", "dream"])
def test_an_absurd_config_is_refused_before_allocating(
    folders: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    folder = copy(folders[name], tmp_path / name)
    edit_config(folder, hidden_size=32768, intermediate_size=131072, num_hidden_layers=4000)

    def allocated(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("weights were allocated before the size check")

    monkeypatch.setattr(torch.nn.Module, "to_empty", allocated)
    monkeypatch.setattr("transformers.AutoModelForMaskedLM.from_pretrained", allocated)
    started = time.monotonic()
    with pytest.raises(ModelError, match=r"billion parameters: .* GiB .* free; nothing was loaded"):
        load_model(folder)
    assert time.monotonic() - started < 60


def test_weights_that_do_not_match_the_config_are_named(
    folders: dict[str, Path], tmp_path: Path
) -> None:
    folder = copy(folders["roberta"], tmp_path / "three")
    edit_config(folder, num_hidden_layers=3)
    with pytest.raises(ModelError, match=r"does not match .*config.json: .*missing .*layer\.2"):
        load_model(folder)


def test_a_forced_family_and_a_wrong_one(folders: dict[str, Path]) -> None:
    assert load_model(folders["roberta"], family="masked-lm").family == "masked-lm"
    with pytest.raises(ModelError, match="no filler token"):
        load_model(folders["roberta"], family="ours")
    with pytest.raises(ModelError, match="unknown model family 'gpt'"):
        load_model(folders["roberta"], family="gpt")


def test_auto_precision_is_bfloat16_only_where_the_cpu_multiplies_it(
    folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from infill_lsp.models import budget

    monkeypatch.setattr(budget, "cpu_bf16", lambda: True)
    assert next(load_model(folders["roberta"]).network.parameters()).dtype == torch.bfloat16
    monkeypatch.setattr(budget, "cpu_bf16", lambda: False)  # emulated bf16 is slower: float32
    assert next(load_model(folders["roberta"]).network.parameters()).dtype == torch.float32


def test_bfloat16_weights_on_the_cpu(folders: dict[str, Path]) -> None:
    model = load_model(folders["llada"], dtype="bfloat16")
    assert next(model.network.parameters()).dtype == torch.bfloat16
    logits = model.logits(torch.tensor([[0, 7, 2, 2, 9]]))
    assert logits.dtype == torch.float32 and bool(torch.isfinite(logits).all())


# --- the forwards against transformers' own modules ----------------------------------------


def reference_logits(network: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """transformers' forward with an all-ones (bidirectional) 4D attention mask."""
    batch, length = ids.shape
    mask = torch.ones(batch, 1, length, length, dtype=torch.bool)
    with torch.inference_mode():
        return network(input_ids=ids, attention_mask=mask).logits.float()  # (B, T, V)


def test_dream_is_qwen2_with_full_attention_and_shifted_logits(folders: dict[str, Path]) -> None:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    model = load_model(folders["dream"], dtype="float32")  # against a float32 reference
    data = read_config(folders["dream"])
    sizes = {k: data[k] for k in ("vocab_size", "hidden_size", "intermediate_size",
             "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
             "max_position_embeddings", "tie_word_embeddings")}  # fmt: skip
    reference = Qwen2ForCausalLM.from_pretrained(folders["dream"], config=Qwen2Config(**sizes))
    ids = torch.tensor([[0, 11, 2, 2, 2, 17, 23, 1], [0, 5, 6, 2, 2, 2, 2, 1]])  # 2: the mask
    plain = reference_logits(reference.eval(), ids)  # (B, T, V)
    shifted = torch.cat([plain[:, :1], plain[:, :-1]], dim=1)
    ours = model.logits(ids)
    torch.testing.assert_close(ours, shifted, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(ours, plain, atol=1e-3)  # the shift is really there
    positions = torch.tensor([2, 3, 4])
    torch.testing.assert_close(model.logits(ids, positions), shifted[:, positions], atol=1e-5,
                               rtol=1e-5)  # fmt: skip
    causal = reference(input_ids=ids).logits  # what the decoder would do left to right
    assert not torch.allclose(plain, causal.float(), atol=1e-3)  # full attention is not causal


def test_llada_is_llama_with_full_attention_and_no_shift(tmp_path: Path) -> None:
    from transformers import LlamaForCausalLM

    folder, state = build_llada(tmp_path / "llada", seed=3)
    model = load_model(folder, dtype="float32")  # against a float32 reference
    reference = LlamaForCausalLM(llada_reference_config(model.tokenizer.get_vocab_size()))
    reference.load_state_dict(state)
    ids = torch.tensor([[0, 11, 2, 2, 2, 17, 23, 1]])
    plain = reference_logits(reference.eval(), ids)
    torch.testing.assert_close(model.logits(ids), plain, atol=1e-5, rtol=1e-5)
    shifted = torch.cat([plain[:, :1], plain[:, :-1]], dim=1)
    assert not torch.allclose(model.logits(ids), shifted, atol=1e-3)


@pytest.mark.parametrize("name", ["roberta", "modernbert"])
def test_a_masked_lm_never_sees_the_canvas_padding(folders: dict[str, Path], name: str) -> None:
    """Past a length hypothesis the canvas holds pads the model does not see: the logits are
    those of the window without them."""
    model = load_model(folders[name])
    ids = model.ids
    head, tail = [ids.bos, 40, 41], [42, 43, ids.eos]
    compact = torch.tensor([[*head, ids.mask, ids.mask, *tail]])
    padded = torch.tensor([[*head, ids.mask, ids.mask, ids.pad, ids.pad, ids.pad, *tail]])
    torch.testing.assert_close(
        model.logits(padded, torch.tensor([3, 4, 8, 9])),
        model.logits(compact, torch.tensor([3, 4, 5, 6])),
        atol=1e-5,
        rtol=1e-5,
    )


# --- the server ---------------------------------------------------------------------------


def switch(peer: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """Change settings and wait for the model they name to settle."""
    count = len(peer.statuses())
    peer.notify("workspace/didChangeConfiguration", {"settings": {"infill": settings}})
    return dict(peer.wait_ready(after=count))


def serve_once(peer: Any, uri: str) -> None:
    """inlineCompletion, rewrite and revise answer (the text is noise: random weights)."""
    position = {"line": 1, "character": 11}
    answer = peer.request(
        "textDocument/inlineCompletion",
        {"textDocument": {"uri": uri}, "position": position, "context": {"triggerKind": 1}},
        timeout=120,
    )
    assert isinstance(answer["result"]["items"], list), answer
    selection = {"start": {"line": 1, "character": 11}, "end": {"line": 1, "character": 16}}
    for command in ("infill.rewrite", "infill.revise"):
        argument = {"uri": uri, "range": selection, "apply": False}
        reply = peer.request(
            "workspace/executeCommand", {"command": command, "arguments": [argument]}, timeout=120
        )
        assert "error" not in reply, reply
        edit = reply["result"]
        assert edit is None or "changes" in edit or "documentChanges" in edit, reply


def test_the_server_serves_each_family_and_switches_live(
    folders: dict[str, Path], tmp_path: Path
) -> None:
    peer = start_server(folders["roberta"], tmp_path / "server.log")
    try:
        uri = "file:///families/a.py"
        peer.open(uri, SOURCE, "python")
        serve_once(peer, uri)
        for name in ("modernbert", "dream", "llada", "roberta"):
            status = switch(peer, {"modelPath": str(folders[name])})
            assert (status["state"], status["model"]) == ("ready", str(folders[name])), status
            serve_once(peer, uri)
        pickled = tmp_path / "pickled"
        pickled.mkdir()
        (pickled / "config.json").write_text("{}")
        (pickled / "pytorch_model.bin").write_bytes(b"x")
        status = switch(peer, {"modelPath": str(pickled)})
        assert status["state"] == "ready" and status["model"] == str(folders["roberta"])
        assert "pickle" in status["message"]
        serve_once(peer, uri)  # still serving with the model it kept
    finally:
        assert peer.close() == 0


# --- on a GPU (skipped without one) ------------------------------------------------------------


@GPU
@pytest.mark.parametrize("name", ["roberta", "modernbert", "dream", "llada"])
def test_each_family_infills_on_cuda_in_bfloat16(folders: dict[str, Path], name: str) -> None:
    from infill_lsp.engine import Engine

    model = load_model(folders[name], device="cuda", dtype="bfloat16")
    assert next(model.network.parameters()).device.type == "cuda"
    [result] = Engine(model).infill("def add(a, b):\n    return ", "\n")
    assert isinstance(result.text, str) and result.steps >= 1
