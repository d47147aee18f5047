"""Training recipes of issue 21: token routing, Muon, the language mix, and the efficiency bench."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from infill_train.objective import Examples, ObjectiveConfig, collate, masked_loss
from infill_train.routing import Route, routed_encoder, routed_hidden
from infill_train.sizes import Size, build_network
from infill_train.tokenizer import token_ids, train_tokenizer
from infill_train.train import (
    Optimizers,
    TrainConfig,
    Trainer,
    checkpoint_dir,
    hidden_matrices,
    train,
)
from tests.bench.efficiency import (
    RECIPES,
    Contestant,
    Data,
    Settings,
    cpu_for_accuracy,
    render,
    summarize,
)
from tests.tiny_model import SAMPLE_TEXTS

FOUR_LAYERS = Size(layers=4, hidden=32, heads=2, intermediate=64)


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(SAMPLE_TEXTS, vocab_size=300)


def tiny_config(**changes) -> TrainConfig:
    objective = ObjectiveConfig(context=64, max_span_tokens=16, chars_per_window=300)
    base = {"size": "test", "batch": 4, "lr": 3e-3, "warmup_tokens": 100, "objective": objective}
    return TrainConfig(**{**base, **changes})


def batch_of(tokenizer, count: int = 4):
    examples = Examples(SAMPLE_TEXTS, ["python"] * len(SAMPLE_TEXTS), tokenizer,
                        tiny_config().objective)  # fmt: skip
    ids = token_ids(tokenizer)
    return collate([examples[i] for i in range(count)], ids, tokenizer.get_vocab_size(),
                   torch.Generator().manual_seed(0)), ids  # fmt: skip


# ----- token routing ------------------------------------------------------------------------


def test_routing_nothing_is_the_plain_encoder(tokenizer) -> None:
    network = build_network(FOUR_LAYERS, tokenizer)
    ids = torch.randint(6, 300, (3, 40))
    mask = torch.ones(3, 40, dtype=torch.long)
    mask[2, 30:] = 0
    plain = network.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
    routed = routed_hidden(network, ids, mask, Route(share=0.0), torch.Generator())
    assert torch.allclose(plain, routed)


def test_routed_tokens_keep_their_rotary_positions(tokenizer, monkeypatch) -> None:
    network = build_network(FOUR_LAYERS, tokenizer)
    body = network.base_model
    seen: list[torch.Tensor] = []
    original = body.rotary_emb.forward

    def spy(hidden, positions, *args, **kwargs):
        seen.append(positions.clone())
        return original(hidden, positions, *args, **kwargs)

    monkeypatch.setattr(body.rotary_emb, "forward", spy)
    ids = torch.randint(6, 300, (2, 40))
    routed = routed_hidden(network, ids, torch.ones(2, 40, dtype=torch.long), Route(share=0.5),
                           torch.Generator().manual_seed(1))  # fmt: skip
    assert routed.shape == (2, 40, 32), "every token rejoins"
    full, kept = seen[0], seen[-1]
    assert full.shape == (2, 40) and kept.shape == (2, 20)
    for row in kept:
        assert (row[1:] > row[:-1]).all(), "kept tokens stay in order"
        assert int(row[-1]) > 19, "positions are the tokens' own, not 0..K-1"


def test_every_masked_token_gets_its_loss_when_routed(tokenizer) -> None:
    network = build_network(FOUR_LAYERS, tokenizer)
    batch, ids = batch_of(tokenizer)
    encoder = routed_encoder(Route(share=0.5), torch.Generator().manual_seed(0))
    loss = masked_loss(network, batch, ids.mask, encoder)
    loss.backward()
    assert math.isfinite(float(loss.detach()))
    embeddings = network.base_model.embeddings.tok_embeddings.weight.grad
    # Each predicted token's own embedding row gets a gradient through the head's tied weights.
    assert (embeddings[batch.targets].abs().sum(-1) > 0).all()


# ----- Muon ---------------------------------------------------------------------------------


def test_muon_takes_the_hidden_matrices_and_adamw_the_rest(tokenizer) -> None:
    network = build_network(FOUR_LAYERS, tokenizer)
    matrices = set(hidden_matrices(network))
    assert matrices and all(".layers." in name for name in matrices)
    assert not any("embeddings" in name or "head" in name for name in matrices)
    shapes = {name: p.ndim for name, p in network.named_parameters()}
    assert all(shapes[name] == 2 for name in matrices)


@pytest.mark.skipif(not hasattr(torch.optim, "Muon"), reason="torch without Muon")
def test_a_muon_run_trains_and_resumes(tmp_path, tokenizer) -> None:
    torch.manual_seed(0)
    network = build_network(FOUR_LAYERS, tokenizer)
    config = tiny_config(optimizer="muon", max_tokens=2_000)
    out = tmp_path / "model"
    state = train(network, tokenizer, SAMPLE_TEXTS, ["python"] * len(SAMPLE_TEXTS), config, out,
                  progress=False)  # fmt: skip
    saved = torch.load(checkpoint_dir(out) / "optimizer.pt", weights_only=True)
    assert len(saved["parts"]) == 2, "both optimizers' state is kept"
    again = build_network(FOUR_LAYERS, tokenizer)
    resumed = train(again, tokenizer, SAMPLE_TEXTS, ["python"] * len(SAMPLE_TEXTS),
                    replace(config, max_tokens=state.tokens + 500), out, resume=True,
                    progress=False)  # fmt: skip
    assert resumed.step > state.step and math.isfinite(resumed.loss)
    trainer = Trainer(build_network(FOUR_LAYERS, tokenizer), tokenizer, SAMPLE_TEXTS,
                      ["python"] * len(SAMPLE_TEXTS), config)  # fmt: skip
    parts = trainer.optimizer.optimizer if hasattr(trainer.optimizer, "optimizer") else None
    assert isinstance(parts or trainer.optimizer, Optimizers)
    trainer.step()
    rates = {round(group["lr"] / trainer.optimizer.param_groups[-1]["lr"], 3)
             for group in trainer.optimizer.param_groups}  # fmt: skip
    assert rates == {1.0, round(0.02 / 3e-3, 3)}, "Muon follows the schedule at its own rate"


# ----- the language mix ---------------------------------------------------------------------


def test_the_language_mix_flattens_towards_rare_languages(tokenizer) -> None:
    texts = [SAMPLE_TEXTS[0] * 40, "package main\n\nfunc main() {}\n" * 2]
    languages = ["python", "go"]

    def go_share(mix: float) -> float:
        config = replace(tiny_config().objective, language_mix=mix, document_share=1.0)
        stream = Examples(texts, languages, tokenizer, config)
        go = sum("func" in tokenizer.decode(stream[i].ids) for i in range(300))
        return go / 300

    natural, even = go_share(1.0), go_share(0.0)
    assert natural < 0.1, "the corpus's own mix: go is a sliver of the characters"
    assert 0.35 < even < 0.65, "mix 0: every language equally often"


# ----- the efficiency bench -----------------------------------------------------------------


def test_speedup_reads_the_current_curve_in_log_cpu_time() -> None:
    curve = [(100.0, 0.10), (200.0, 0.14), (400.0, 0.18)]
    assert cpu_for_accuracy(curve, 0.14) == pytest.approx(200.0)
    assert cpu_for_accuracy(curve, 0.16) == pytest.approx(200.0 * math.sqrt(2))
    # Beyond the last point: the fitted line, 4 points per doubling here.
    assert cpu_for_accuracy(curve, 0.22) == pytest.approx(800.0, rel=1e-6)
    assert cpu_for_accuracy([(100.0, 0.1), (200.0, 0.1)], 0.2) is None


def test_the_report_renders_a_run_stopped_between_marks() -> None:
    """Lines are decoded only at the last mark: a report written before it must still render."""
    point = {"cpu_seconds": 60.0, "tokens": 23_188, "steps": 23, "loss": 8.5,
             "masked_accuracy": {"0.15": 0.01, "0.5": 0.1, "0.9": 0.1}}  # fmt: skip
    recipe = {"name": "current", "what": "the current recipe", "parameters": 4_794_880,
              "compile": False, "compile_cpu_seconds": 0.0, "cpu_ms_per_token": 2.6,
              "points": [point]}  # fmt: skip
    settings = {"cpu_seconds": 120.0, "slice_seconds": 10.0, "batch": 8, "context": 128,
                "windows": 32, "spans": 6}  # fmt: skip
    results = {"run": {"cpu": "AMD EPYC", "cores": 2, "torch": "2", "native_bf16": True,
                       "heldout": "corpus", "settings": settings},
               "matmul_gflops": {"2048 fp32": 31.8}, "recipes": [recipe]}  # fmt: skip
    results["summary"] = summarize(results["recipes"])
    report = render(results)
    assert "| current | 4.79 M | 60 | 23,188 |" in report and "not yet measured" in report


def test_a_recipe_trains_on_its_own_batch_window_and_rate() -> None:
    settings = Settings.quick()
    languages = ["python"] * len(SAMPLE_TEXTS)
    data = Data(SAMPLE_TEXTS, languages, SAMPLE_TEXTS, languages, "samples")
    v6 = Contestant(RECIPES["v6"], settings, data, quick=True).trainer.config
    assert (v6.batch, v6.objective.context, v6.lr) == (16, 256, settings.lr)
    first = Contestant(RECIPES["v6-start"], settings, data, quick=True).trainer.config
    assert (first.batch, first.objective.context, first.lr) == (16, 256, 1e-3)
    faster = Contestant(RECIPES["lr4x"], settings, data, quick=True).trainer.config
    assert (faster.batch, faster.objective.context) == (settings.batch, settings.context)
    assert faster.lr == pytest.approx(4 * settings.lr)
    dense = Contestant(RECIPES["dense"], settings, data, quick=True).trainer
    assert {dense.examples[i].mode for i in range(40)} == {"document"}
    current = Contestant(RECIPES["current"], settings, data, quick=True).trainer
    assert "document" in {current.examples[i].mode for i in range(40)}
    assert len({current.examples[i].mode for i in range(40)}) > 1, "infill windows as well"


def test_the_speedups_are_read_against_the_chosen_recipe() -> None:
    def recipe(name: str, accuracies: list[float]) -> dict:
        points = [
            {"cpu_seconds": 100.0 * (i + 1), "masked_accuracy": {"0.15": a},
             "masked_loss": {"0.15": 5.0 - 10 * a}}
            for i, a in enumerate(accuracies)
        ]  # fmt: skip
        return {"name": name, "points": points}

    # v6 gains 0.04 a doubling of CPU time, so current's 0.30 at 400 s is v6's at 3200 s: 8x.
    on_v6_line = [0.10 + 0.04 * math.log2(i) for i in (1, 2, 3, 4)]
    recipes = [recipe("current", [0.20, 0.24, 0.26, 0.30]), recipe("v6", on_v6_line)]
    summary = summarize(recipes, against="v6")
    assert summary["v6"]["speedup"] == 1.0
    assert summary["current"]["speedup"] == pytest.approx(8.0, rel=0.01)
    assert summary["current"]["accuracy_gain_points"] == 12.0
    assert summarize(recipes)["current"]["speedup"] == 1.0, "current is the default reference"


@pytest.mark.slow
def test_the_quick_efficiency_bench_compares_every_recipe_at_equal_cpu(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench", "efficiency", "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "efficiency.json").read_text())
    names = [recipe["name"] for recipe in results["recipes"]]
    assert names[0] == "current" and {"muon", "routed", "mix", "deep"} <= set(names)
    budget = results["run"]["settings"]["cpu_seconds"]
    for recipe in results["recipes"]:
        last = recipe["points"][-1]
        assert budget <= last["cpu_seconds"] < budget + 2.0, "the same CPU budget for each"
        assert all(0.0 <= value <= 1.0 for value in last["masked_accuracy"].values())
        assert set(last["masked_loss"]) == set(last["masked_accuracy"])
        assert all(0.0 < value < 20.0 for value in last["masked_loss"].values())
        assert 0.0 <= last["line_exact"] <= 1.0 and 0.0 <= last["line_exact_told"] <= 1.0
        assert last["tokens"] > 0 and "by_language" in last
    assert results["summary"]["current"]["speedup"] in (1.0, None)
    assert results["summary"]["current"]["speedup_by_loss"] in (1.0, None)
    assert set(results["matmul_gflops"]) >= {"2048 fp32", "2048 bf16"}
    report = (tmp_path / "efficiency.md").read_text()
    assert all(f"| {name} |" in report for name in names)
