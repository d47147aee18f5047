"""`infill-train finetune --init DIR` from Hugging Face masked-LM folders (issue 16, item 3), and
`infill-lsp fill` decoding as the model's family does unless told otherwise.

Tiny random RoBERTa and ModernBERT folders are saved by transformers' `save_pretrained` with a
tokenizer trained here (`tests.family_models`); the real commands run as subprocesses on a few
small files, then `infill-lsp fill --model OUT` fills with the result. Nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from infill_lsp import cli
from infill_lsp.engine import Engine
from infill_lsp.model import SPECIAL_TOKENS, load_model
from infill_train.objective import head_logits
from infill_train.train import diffusion_start
from tests.family_models import build_dream, build_modernbert, build_roberta

CODE = '''\
def area_{i}(width, height):
    """Return the area of a rectangle."""
    if width < 0 or height < 0:
        raise ValueError("negative size")
    return width * height


class Counter{i}:
    def __init__(self):
        self.count = {i}

    def bump(self, step=1):
        self.count += step
        return self.count
'''
# One thread: the two CPUs here are shared, and many threads on tiny matrices wait on each other.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("init")
    repo = base / "repo"
    repo.mkdir()
    for i in range(12):
        (repo / f"module_{i}.py").write_text(CODE.format(i=i))
    return {
        "repo": repo,
        "roberta": build_roberta(base / "roberta"),
        "modernbert": build_modernbert(base / "modernbert", spare_rows=8),
    }


def run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", module, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=ENV)


def finetune(init: Path, repo: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return run(
        "infill_train.cli", "finetune", "--init", str(init), "--repo", str(repo), "--out",
        str(out), "--max-tokens", "1500", "--batch", "4", "--context", "64", "--eval-spans", "1",
        "--heldout-percent", "30", "--quiet",
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", ["roberta", "modernbert"])
def test_finetune_from_a_masked_lm_folder_then_fill(
    folders: dict[str, Path], tmp_path: Path, name: str
) -> None:
    init, out = folders[name], tmp_path / "tuned"
    before = load_model(init)
    done = finetune(init, folders["repo"], out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "before:" in done.stdout and "after:" in done.stdout

    tuned = load_model(out)
    assert tuned.family == "ours"  # our format: the filler ends a span, no length search needed
    for role in ("bos", "eos", "pad", "unk", "mask"):  # the model's own tokens, by their ids
        assert getattr(tuned.ids, role) == getattr(before.ids, role), role
    assert tuned.tokenizer.id_to_token(tuned.ids.filler) == SPECIAL_TOKENS["filler"]
    # transformers' AutoTokenizer reads the same tokens from the folder
    config = json.loads((out / "tokenizer_config.json").read_text())
    assert config["mask_token"] == before.tokenizer.id_to_token(before.ids.mask)
    assert config["pad_token"] == before.tokenizer.id_to_token(before.ids.pad)
    assert tuned.vocab_size == tuned.tokenizer.get_vocab_size()
    recipe = tuned.metadata["recipe"]
    assert recipe["steps"] > 0 and recipe["tokens_seen"] >= 1500
    assert tuned.metadata["finetuned_from"] == name
    # trained: the weights moved from the folder's
    start = before.network.get_input_embeddings().weight[:50]
    assert not torch.equal(tuned.network.get_input_embeddings().weight[:50], start)

    source = tmp_path / "a.py"
    source.write_text(CODE.format(i=99))
    filled = run(
        "infill_lsp", "fill", str(source), "--at", "5:5", "--model", str(out), "--steps", "4",
        "--json",
    )  # fmt: skip
    assert filled.returncode == 0, filled.stderr[-3000:]
    answer = json.loads(filled.stdout)
    assert answer["mode"] == "infill" and isinstance(answer["text"], str)
    assert 1 <= answer["steps"] <= 4


def test_a_masked_lm_keeps_its_tokens_and_gets_a_filler_row(folders: dict[str, Path]) -> None:
    model = load_model(folders["modernbert"], dtype="float32")
    known = model.tokenizer.get_vocab_size()
    embeddings = model.network.get_input_embeddings().weight
    rows, first = embeddings.shape[0], embeddings[:known].detach().clone()
    network, tokenizer, names = diffusion_start(model)

    assert rows == known + 8  # the folder pads its vocabulary past the tokenizer...
    size = tokenizer.get_vocab_size()
    grown = network.get_input_embeddings().weight
    assert grown.shape[0] == size  # ...ours pairs a tokenizer with exactly its vocabulary
    assert network.get_output_embeddings().weight.shape[0] == size
    assert names["mask"] == "[MASK]" and names["pad"] == "[PAD]" and names["bos"] == "[CLS]"
    filler = tokenizer.token_to_id(names["filler"])
    assert filler == known  # appended, on a row the model had but never used: the mean token
    assert torch.allclose(grown[filler], first.mean(0), atol=1e-6)
    assert torch.equal(grown[:known], first)


@pytest.mark.parametrize("name", ["roberta", "modernbert"])
def test_the_loss_uses_the_models_whole_prediction_head(
    folders: dict[str, Path], name: str
) -> None:
    """RoBERTa's lm_head (dense, gelu, norm, decoder) and ModernBERT's head + decoder give the
    logits the model's own forward gives; the output embeddings alone do not."""
    network: Any = load_model(folders[name], dtype="float32").network
    ids = torch.tensor([[0, 7, 9, 4, 11, 2]])
    with torch.no_grad():
        hidden = network.base_model(input_ids=ids).last_hidden_state[0]  # (T, H)
        want = network(input_ids=ids).logits[0]  # (T, V)
        assert torch.allclose(head_logits(network, hidden), want, atol=1e-5)


@pytest.mark.parametrize("kind", ["pickle", "dream"])
def test_an_unusable_init_folder_exits_2_in_one_line(
    folders: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    folder = tmp_path / kind
    if kind == "pickle":
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"architectures": ["BertForMaskedLM"]}))
        (folder / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
        (folder / "tokenizer.json").write_text("{}")
    else:
        build_dream(folder)
    done = finetune(folder, folders["repo"], tmp_path / "out")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert ("pickle" if kind == "pickle" else "dream model") in done.stderr
    assert not (tmp_path / "out").exists()


# --- infill-lsp fill decodes as the model's family does -------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"), [([], "fillers"), (["--length", "search"], "search")]
)
def test_fill_uses_the_models_own_length_rule_unless_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: list[str], expected: str
) -> None:
    folder = build_dream(tmp_path / "dream")
    assert load_model(folder).decode_defaults == {"length": "fillers"}
    seen: list[Any] = []
    original = Engine.infill_job

    def record(self: Engine, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["options"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Engine, "infill_job", record)
    source = tmp_path / "a.py"
    source.write_text("def add(a, b):\n    return a + b\n")
    assert cli.main(["fill", str(source), "--at", "2:5", "--model", str(folder), "--steps", "2",
                     "--seed", "3", *given]) == 0  # fmt: skip
    assert [o.length for o in seen] == [expected]
    assert seen[0].steps == 2 and seen[0].seed == 3
