"""The context cache: refresh steps are the model's own forward pass, cached steps stay close.

A tiny ModernBERT is built in each test (random weights, local sliding-window layers between
global ones, a window narrower than the sequence) so the rotary positions and the local masks
both matter; the reference is transformers' own forward pass through `InfillModel.logits`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer
from tokenizers.models import WordLevel

from infill_lsp.engine import Engine
from infill_lsp.errors import InputError
from infill_lsp.model import InfillModel, load_model
from infill_lsp.models.context_cache import (
    ContextCache,
    denoising_logits,
    ranking_logits,
    supports,
)
from infill_lsp.models.loaded import TokenIds

WINDOW = 48  # columns in the test window
CANVAS = torch.arange(20, 28)  # span columns in the middle: context on both sides


def tiny_modernbert(seed: int = 0) -> InfillModel:
    """A random 3-layer ModernBERT: local (window 8), global, local; rotary base 100 so a
    position error of a few columns changes the output."""
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    torch.manual_seed(seed)
    config = ModernBertConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=3,
        num_attention_heads=4,
        max_position_embeddings=128,
        pad_token_id=2,
        bos_token_id=0,
        eos_token_id=1,
        cls_token_id=0,
        sep_token_id=1,
        local_attention=8,
        initializer_range=0.3,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"],
        rope_parameters={
            "full_attention": {"rope_theta": 100.0, "rope_type": "default"},
            "sliding_attention": {"rope_theta": 100.0, "rope_type": "default"},
        },
    )
    config._attn_implementation = "sdpa"
    network = ModernBertForMaskedLM(config).eval()
    tokenizer = Tokenizer(WordLevel({"<unk>": 0}, unk_token="<unk>"))
    ids = TokenIds(bos=0, eos=1, pad=2, unk=3, mask=4, filler=5)
    return InfillModel(Path("tiny"), network, tokenizer, ids)


def window(seed: int, batch: int = 2) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(6, 64, (batch, WINDOW), generator=generator)  # (B, T)


MASK = 4


def with_canvas(ids: torch.Tensor, seed: int) -> torch.Tensor:
    """`ids` with new tokens on the canvas only (what a denoising step changes): text and
    fillers, and masks on about half the columns (where a cached step predicts)."""
    generator = torch.Generator().manual_seed(seed)
    changed = ids.clone()
    shape = (ids.shape[0], len(CANVAS))
    tokens = torch.randint(5, 64, shape, generator=generator)
    masked = torch.rand(shape, generator=generator) < 0.5
    masked[:, 0] = True  # every row predicts somewhere
    changed[:, CANVAS] = tokens.masked_fill(masked, MASK)
    return changed


def predicted(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The logits at the masked canvas positions (N, V): all a cached step predicts."""
    return logits[ids[:, CANVAS] == MASK]


def test_refreshing_every_step_equals_the_full_forward() -> None:
    model = tiny_modernbert()
    cache = ContextCache(model, refresh_every=1)
    ids = window(0)
    for step in range(3):
        ids = with_canvas(ids, step)
        expected = model.logits(ids, CANVAS)  # (B, S, V)
        assert torch.allclose(cache(ids, CANVAS), expected, atol=1e-5, rtol=0)
    assert (cache.full_passes, cache.canvas_passes) == (3, 0)


def test_a_cached_step_on_an_unchanged_window_equals_the_full_forward() -> None:
    # Context keys and values are exact here, so any error is the canvas's own: a rotary
    # position, a local window counted from the wrong column, a layer left out.
    model = tiny_modernbert()
    cache = ContextCache(model, refresh_every=8)
    ids = with_canvas(window(1), 11)
    cache(ids, CANVAS)
    got = cache(ids, CANVAS)
    assert cache.canvas_passes == 1
    expected = predicted(model.logits(ids, CANVAS), ids)
    assert torch.allclose(predicted(got, ids), expected, atol=1e-5, rtol=0)
    assert not bool(got[ids[:, CANVAS] != MASK].any())  # no head where a token already is


def test_cached_steps_stay_close_to_the_full_forward_as_the_canvas_changes() -> None:
    model = tiny_modernbert()
    cache = ContextCache(model, refresh_every=4)
    before = with_canvas(window(2), 12)
    cache(before, CANVAS)
    after = with_canvas(before, 7)
    truth = predicted(model.logits(after, CANVAS), after)
    error = (predicted(cache(after, CANVAS), after) - truth).abs().mean()
    moved = (predicted(model.logits(before, CANVAS), after) - truth).abs().mean()  # the change
    assert cache.canvas_passes == 1
    assert error < 0.25 * moved  # the cached step follows the canvas, not the stale pass


def test_the_cache_refreshes_every_k_steps_and_whenever_the_context_changes() -> None:
    model = tiny_modernbert()
    cache = ContextCache(model, refresh_every=3)
    ids = window(3)
    for step in range(7):  # refreshes at calls 1, 4 and 7
        ids = with_canvas(ids, step)
        cache(ids, CANVAS)
    assert (cache.full_passes, cache.canvas_passes) == (3, 4)
    other = window(4)  # another request's context: a refresh, exactly the full forward
    assert torch.allclose(cache(other, CANVAS), model.logits(other, CANVAS), atol=1e-5, rtol=0)
    assert cache.full_passes == 4
    wider = torch.arange(20, 30)  # another canvas: a refresh too
    assert torch.allclose(cache(other, wider), model.logits(other, wider), atol=1e-5, rtol=0)
    assert cache.full_passes == 5


def test_unsupported_models_and_a_refresh_of_one_use_the_full_forward() -> None:
    model = tiny_modernbert()
    assert supports(model)
    assert isinstance(denoising_logits(model, 4), ContextCache)
    assert not isinstance(denoising_logits(model, 1), ContextCache)
    other = replace(model, forward=lambda network, ids, mask, positions: ids)  # another family
    assert not supports(other)
    plain = denoising_logits(other, 4)
    assert not isinstance(plain, ContextCache)
    ids = window(5)
    assert torch.equal(plain(ids, CANVAS), ids.float())  # the family's own forward, every step


def test_the_engine_decodes_with_the_cache_and_refuses_a_refresh_below_one(
    tiny_model_dir: Path,
) -> None:
    model = load_model(tiny_model_dir)
    engine = Engine(model)
    options = replace(engine.options, context_refresh=4, steps=8, max_span_tokens=8)
    [cached] = engine.infill("def add(a, b):\n    return ", "\n", single_line=True, options=options)
    assert cached.steps >= 1
    with pytest.raises(InputError, match="context_refresh"):
        engine.infill("x = ", "\n", options=replace(options, context_refresh=0))


def hypotheses(ids: torch.Tensor) -> torch.Tensor:
    """Length hypotheses on one window: row r keeps r + 1 masks, fillers after them."""
    rows = ids[:1].repeat(len(CANVAS), 1)  # (S, T)
    rows[:, CANVAS] = MASK
    for row in range(len(CANVAS)):
        rows[row, CANVAS[row + 1 :]] = 5
    return rows


def test_a_margin_that_covers_the_window_recomputes_every_column_exactly() -> None:
    # Nothing left to cache: a cached step is the full forward, margin columns and all.
    model = tiny_modernbert()
    cache = ContextCache(model, refresh_every=8, margin=WINDOW)
    ids = with_canvas(window(6), 13)
    cache(ids, CANVAS)
    after = with_canvas(ids, 14)
    got = cache(after, CANVAS)
    assert cache.canvas_passes == 1
    expected = predicted(model.logits(after, CANVAS), after)
    assert torch.allclose(predicted(got, after), expected, atol=1e-5, rtol=0)


def test_a_margin_brings_a_cached_step_closer_to_the_full_forward() -> None:
    model = tiny_modernbert()
    errors = []
    for margin in (0, 6):
        cache = ContextCache(model, refresh_every=8, margin=margin)
        before = with_canvas(window(7), 15)
        cache(before, CANVAS)
        after = with_canvas(before, 16)
        truth = predicted(model.logits(after, CANVAS), after)
        errors.append((predicted(cache(after, CANVAS), after) - truth).abs().mean())
    assert errors[1] < 0.7 * errors[0]


def test_a_primed_cache_of_one_row_ranks_many_rows_in_one_canvas_step() -> None:
    model = tiny_modernbert()
    rows = hypotheses(window(8, batch=1))  # (S, T): they differ on the canvas only
    ranked = ranking_logits(model, refresh_every=64, margin=WINDOW)  # margin over everything: exact
    passes = model.meter.passes
    got = ranked(rows, CANVAS)
    assert model.meter.passes - passes == 2  # one full pass over the masks row, one canvas step
    expected = predicted(model.logits(rows, CANVAS), rows)
    assert torch.allclose(predicted(got, rows), expected, atol=1e-5, rtol=0)
    passes = model.meter.passes
    ranked(rows[:3], CANVAS)  # a second ranking pass (fewer rows) reuses the cache
    assert model.meter.passes - passes == 1
    plain = ranking_logits(model, refresh_every=64, margin=0)  # no margin: full passes
    assert torch.allclose(plain(rows, CANVAS), model.logits(rows, CANVAS), atol=0, rtol=0)


def test_the_meter_counts_every_forward_pass_and_its_time() -> None:
    model = tiny_modernbert()
    passes, seconds = model.meter.passes, model.meter.seconds
    cache = ContextCache(model, refresh_every=4)
    ids = window(9)
    for step in range(4):  # a refresh and three cached steps
        ids = with_canvas(ids, step)
        cache(ids, CANVAS)
    assert model.meter.passes - passes == 4
    assert model.meter.seconds > seconds
