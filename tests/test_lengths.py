"""The "predict" length rule: the model's own end and expand predictions shrink and grow a canvas.

A stand-in model that knows the true length answers as a model trained by the length-aware
objective should: text before the span's end, fillers after it, `<|expand|>` at the last
position of a canvas too short. The rule must read exactly that length, in as few passes as the
doublings need, and the engine must decode at it.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from infill_lsp.engine import DecodeOptions, Engine
from infill_lsp.errors import InputError
from infill_lsp.lengths import (
    PROBE_TOKENS,
    choose_lengths,
    length_distribution,
    length_hypotheses,
    predict_lengths,
)
from infill_lsp.model import InfillModel, load_model

MASK, FILLER, EXPAND, TEXT, NEWLINE, VOCAB = 4, 5, 6, 9, 10, 12


def knows_length(length: int, canvas_columns: list[int]):
    """Logits of a model sure that the span has `length` tokens: (B, T) ids -> (B, S, V)."""

    def logits(ids: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        assert positions is not None
        canvas_columns.append(positions.numel())
        out = torch.full((ids.shape[0], positions.numel(), VOCAB), -10.0)
        for i in range(positions.numel()):
            if i < length:
                out[:, i, TEXT] = 10.0
            else:
                out[:, i, FILLER] = 10.0
        if positions.numel() < length:
            out[:, -1, :] = -10.0
            out[:, -1, EXPAND] = 10.0
        return out

    return logits


def window_of(canvas: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor([[1] * 3 + [MASK] * canvas + [2] * 3])
    return ids, torch.arange(3, 3 + canvas)


def predict(length: int, size: int, first: int = PROBE_TOKENS, rows: int = 1):
    seen: list[int] = []
    guess = predict_lengths(
        knows_length(length, seen),
        window_of,
        size=size,
        first=first,
        mask_id=MASK,
        filler_id=FILLER,
        expand_id=EXPAND,
        end_ids=(),
        shortest=1,
        rows=rows,
    )
    return guess, seen


def test_a_canvas_too_long_shrinks_to_where_the_fillers_start_in_one_pass() -> None:
    guess, seen = predict(length=5, size=48)
    assert guess.lengths == [5] and guess.passes == 1 and seen == [PROBE_TOKENS]


def test_a_canvas_too_short_grows_while_the_model_says_expand() -> None:
    guess, seen = predict(length=40, size=100)
    assert seen == [16, 32, 64], "doubled until the span fits"
    assert guess.lengths == [40] and guess.passes == 3


def test_growth_stops_at_the_largest_canvas_allowed() -> None:
    guess, seen = predict(length=70, size=48)
    assert seen == [16, 32, 48] and guess.lengths == [48]


def test_the_distribution_is_the_cdf_of_the_end_and_expand_is_longer() -> None:
    ended = torch.tensor([0.1, 0.05, 0.8, 0.9])  # not monotone: made so
    chances = length_distribution(ended, goes_on=0.05)
    assert chances.shape == (6,)
    expected = [0.1, 0.0, 0.7, 0.1, 0.05, 0.05]  # lengths 0..4, then "longer"
    assert chances.tolist() == pytest.approx(expected)
    assert float(chances.sum()) == pytest.approx(1.0)


def test_a_single_line_ends_at_a_line_break() -> None:
    def breaks_at_three(ids: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        assert positions is not None
        out = torch.full((1, positions.numel(), VOCAB), -10.0)
        out[:, :3, TEXT] = 10.0
        out[:, 3:, NEWLINE] = 10.0  # the model would go on to the next line: the line ends here
        return out

    guess = predict_lengths(
        breaks_at_three, window_of, size=48, first=16, mask_id=MASK, filler_id=FILLER,
        expand_id=EXPAND, end_ids=[NEWLINE], shortest=1, rows=1,
    )  # fmt: skip
    assert guess.lengths == [3]


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path) -> InfillModel:
    return load_model(tiny_model_dir)


@pytest.mark.parametrize("length", [3, 21])
def test_the_engine_decodes_at_the_predicted_length(
    model: InfillModel, monkeypatch: pytest.MonkeyPatch, length: int
) -> None:
    """End to end: a model built to predict end/expand gets exactly its length back, whether
    the first canvas was too long (3) or too short (21 > 16)."""
    ids = model.ids
    assert ids.expand is not None
    text_id = model.encode(" x")[0]
    shown: list[torch.Tensor] = []

    def logits(batch: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        assert positions is not None
        shown.append(batch.clone())
        out = torch.full((batch.shape[0], positions.numel(), model.vocab_size), -10.0)
        out[:, :length, text_id] = 10.0
        out[:, length:, ids.filler] = 10.0
        if positions.numel() < length:
            out[:, -1, :] = -10.0
            out[:, -1, ids.expand] = 10.0
        return out

    monkeypatch.setattr(model, "logits", logits)
    engine = Engine(model)
    assert engine.options.length == "predict", "a model with <|expand|> predicts by default"
    options = DecodeOptions(steps=4, max_span_tokens=48, context_tokens=128, length="predict")
    [result] = engine.infill("total = ", "\nprint(total)\n", options=options)
    assert result.text == " x" * length
    # The probes: a canvas of 16, or 16 then 32; then the rows, told their length (a filler after).
    probes = 2 if length > PROBE_TOKENS else 1
    assert [int((w == ids.mask).sum()) for w in shown[:probes]] == [16, 32][:probes]
    first_decode = shown[probes]
    assert int((first_decode == ids.mask).sum()) == length
    assert int((first_decode == ids.filler).sum()) >= 1


def test_predict_on_a_model_without_expand_says_what_to_use(
    model: InfillModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model, "ids", model.ids.__class__(**{**vars(model.ids), "expand": None}))
    with pytest.raises(InputError, match="'search' or 'fillers'"):
        Engine(model).infill("a = ", "\n", options=DecodeOptions(length="predict"))


def test_a_told_length_is_decoded_without_probing(
    model: InfillModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The oracle path: masks up to the told length, a visible filler after, no length pass."""
    shown: list[torch.Tensor] = []
    original = model.logits

    def logits(batch: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        shown.append(batch.clone())
        return original(batch, positions)

    monkeypatch.setattr(model, "logits", logits)
    options = DecodeOptions(steps=4, max_span_tokens=48, context_tokens=128)
    for rule in ("predict", "search", "fillers"):
        shown.clear()
        engine = Engine(model, replace(options, length=rule))
        [result] = engine.infill("total = ", "\nprint(total)\n", length=7)
        first = shown[0]
        assert int((first == model.ids.mask).sum()) == 7, rule
        assert int((first == model.ids.filler).sum()) == 1, rule
        assert len(result.confidences) == 7
    with pytest.raises(InputError, match="length must be between 1 and 48"):
        Engine(model, options).infill("a", "b", length=49)


def test_a_model_records_how_it_decodes_best(tiny_model_dir: Path, tmp_path: Path) -> None:
    """`decode` in infill.json (picked by measurement at training time) sets the model's own
    defaults; a setting the engine does not know is refused when loading."""
    import json
    import shutil

    from infill_lsp.errors import ModelError

    copy = Path(shutil.copytree(tiny_model_dir, tmp_path / "m"))
    metadata = json.loads((copy / "infill.json").read_text())
    (copy / "infill.json").write_text(json.dumps({**metadata, "decode": {"length": "search"}}))
    assert Engine(load_model(copy)).options.length == "search"
    (copy / "infill.json").write_text(json.dumps({**metadata, "decode": {"lenght": "search"}}))
    with pytest.raises(ModelError, match="unknown settings"):
        load_model(copy)


# ----- the "search" rule: a ranking pass, refined around a winning rung ----------------------


def peaked_at(best: int, seen: list[int]):
    """Ranking logits whose length score (`sampler.length_scores`) falls off linearly on either
    side of `best`: each row's masked positions get a best log-probability of
    -LENGTH_BIAS ln L - 0.05 |L - best| - 0.01, which the score's length term turns into
    -0.05 |L - best| - 0.01."""
    from infill_lsp.sampler import LENGTH_BIAS

    def logits(ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        seen.append(ids.shape[0])
        out = torch.zeros(ids.shape[0], positions.numel(), VOCAB)
        for row in range(ids.shape[0]):
            length = int((ids[row, positions] == MASK).sum())
            target = -LENGTH_BIAS * math.log(length) - 0.05 * abs(length - best) - 0.01
            # TEXT wins with log-probability `target` among the VOCAB - 1 ids that are not MASK
            out[row, :, TEXT] = math.log(VOCAB - 2) + target - math.log(1 - math.exp(target))
        return out

    return logits


@pytest.mark.parametrize(("best", "passes"), [(13, 2), (4, 1), (32, 2), (1, 1)])
def test_the_search_ranks_a_ladder_then_the_lengths_around_its_best_rung(
    best: int, passes: int
) -> None:
    size = 32
    ids = torch.full((1, size + 8), TEXT)
    positions = torch.arange(4, 4 + size)
    ids[0, positions] = MASK
    seen: list[int] = []
    choice = choose_lengths(
        peaked_at(best, seen), ids, positions, mask_id=MASK, filler_id=FILLER, banned_ids=[],
        shortest=1, rows=1, decoded=1, temperature=0.0, extra_temperature=0.8,
    )  # fmt: skip
    assert int((choice.ids[0, positions] == MASK).sum()) == best  # found, rung or not
    assert choice.passes == passes == len(seen)
    first = length_hypotheses(size)
    assert seen[0] == len(first) < size // 2  # far fewer rows than lengths
    assert (best in first) == (passes == 1 or best == size)  # a rung: refined all the same
