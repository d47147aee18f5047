"""The engine on a tiny real model: windows, exact text round trips, boundaries, candidates."""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from infill_lsp.decoder import FEWEST_PASSES
from infill_lsp.engine import (
    MASK_GLYPH,
    DecodeOptions,
    Engine,
    Progress,
    length_hypotheses,
    run,
)
from infill_lsp.errors import InputError
from infill_lsp.model import InfillModel, load_model
from infill_lsp.sampler import length_scores, probe_logprobs

FAST = DecodeOptions(steps=4, max_span_tokens=12, context_tokens=128)

AWKWARD = [
    "line one\r\nline two\r\n",  # CRLF
    "\tif x:\n\t\treturn 1\n",  # tabs
    "print('🎉 ünïcödé 漢字')\n",  # emoji and non-ASCII
    "<s> and <mask> are text here </s>\n",  # special-token look-alikes
    "trailing spaces   \n\n\n",
]


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path) -> InfillModel:
    return load_model(tiny_model_dir)


@pytest.fixture(scope="module")
def engine(model: InfillModel) -> Engine:
    return Engine(model, FAST)


class Spy:
    """Wraps model.logits and keeps every batch of ids the model was shown."""

    def __init__(self, model: InfillModel, monkeypatch: pytest.MonkeyPatch) -> None:
        self.windows: list[torch.Tensor] = []
        original = model.logits

        def logits(ids: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
            self.windows.append(ids.clone())
            return original(ids, positions)

        monkeypatch.setattr(model, "logits", logits)


@pytest.mark.parametrize("text", AWKWARD)
def test_the_model_sees_prefix_and_suffix_byte_identical(
    engine: Engine, model: InfillModel, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    spy = Spy(model, monkeypatch)
    cut = len(text) // 2
    prefix, suffix = text[:cut], text[cut:]
    engine.infill(prefix, suffix)
    window = spy.windows[0][0].tolist()
    assert window[0] == model.ids.bos and window[-1] == model.ids.eos  # whole file fits
    # Dropping bos, eos and the mask canvas leaves exactly prefix + suffix.
    assert model.decode(window) == prefix + suffix
    masks = [i for i, t in enumerate(window) if t == model.ids.mask]
    assert model.decode(window[: masks[0]]) == prefix
    assert model.decode(window[masks[-1] + 1 :]) == suffix


@pytest.mark.parametrize("text", AWKWARD)
def test_revise_without_unlikely_tokens_returns_the_region_exactly(
    engine: Engine, text: str
) -> None:
    result = engine.revise("x = 1\n", text, "y = 2\n", unlikely=-math.inf)
    assert result.text == text
    assert result.steps == 0
    assert all(0.0 <= c <= 1.0 for c in result.confidences)


@pytest.mark.parametrize("text", AWKWARD)
def test_revise_keeps_likely_tokens_and_redecodes_the_rest(
    engine: Engine, model: InfillModel, text: str
) -> None:
    scores = engine.score("", text, "")
    cutoff = sorted(s.logprob for s in scores)[len(scores) // 2]
    result = engine.revise("", text, "", unlikely=cutoff)
    assert 1 <= result.steps <= FAST.steps
    pieces = [model.decode([token]) for token in model.encode(text)]
    kept = [  # tokens made of whole characters (not a byte of an emoji) scored as likely
        piece
        for piece, s in zip(pieces, scores, strict=True)
        if s.logprob >= cutoff and piece == text[s.start : s.end]
    ]
    assert len(result.confidences) == len(scores)  # same token count: revise never deletes
    for piece in kept:  # every likely token's text survives, in order
        assert piece in result.text


def test_score_offsets_tile_the_region(engine: Engine) -> None:
    region = "x = '🎉'\r\n\ty"
    scores = engine.score("a = 1\n", region, "\n")
    assert scores[0].start == 0 and scores[-1].end == len(region)
    assert all(a.start <= b.start for a, b in itertools.pairwise(scores))
    assert all(s.logprob <= 0 for s in scores)


def test_rewrite_returns_text_and_confidences(engine: Engine) -> None:
    results = engine.rewrite("def f(a):\n    ", "return a + 1", "\n")
    assert results and all(isinstance(r.text, str) for r in results)
    for result in results:
        assert "<mask>" not in result.text and "<|fill|>" not in result.text
        assert all(0.0 <= c <= 1.0 for c in result.confidences)
        assert 1 <= result.steps <= FAST.steps


def test_infill_at_the_very_start_and_end_of_a_file(
    engine: Engine, model: InfillModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = Spy(model, monkeypatch)
    engine.infill("", "print(1)\n")
    first = len(spy.windows)
    engine.infill("print(1)\n", "")
    start, end = spy.windows[0][0].tolist(), spy.windows[first][0].tolist()
    assert start[0] == model.ids.bos and start[1] == model.ids.mask
    # The first pass ranks span lengths: a short hypothesis's canvas ends in fillers.
    assert end[-1] == model.ids.eos and end[-2] in (model.ids.mask, model.ids.filler)


def test_an_empty_file(engine: Engine) -> None:
    results = engine.infill("", "")
    assert len(results) == 1 and results[0].steps <= FAST.steps
    assert engine.fill_holes("") == []
    assert engine.revise("", "", "").text == ""


def test_a_multi_megabyte_file_stays_fast_and_bounded(
    engine: Engine, model: InfillModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = Spy(model, monkeypatch)
    big = "value = compute(1, 2)\n" * 150_000  # about 3.3 MB each side
    began = time.monotonic()
    engine.infill(big, big)
    assert time.monotonic() - began < 10
    window = spy.windows[0][0].tolist()
    assert len(window) <= FAST.context_tokens
    assert model.ids.bos not in window and model.ids.eos not in window  # cut on both sides


def test_candidates_are_distinct_and_best_first(engine: Engine) -> None:
    results = engine.infill("def f(", "):\n    pass\n", candidates=4)
    texts = [r.text for r in results]
    assert 1 <= len(texts) <= 4 and len(set(texts)) == len(texts)
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)


def test_the_same_seed_gives_the_same_candidates(engine: Engine) -> None:
    options = DecodeOptions(steps=4, max_span_tokens=12, temperature=1.0, seed=5)
    first = engine.infill("x = ", "\n", candidates=3, options=options)
    second = engine.infill("x = ", "\n", candidates=3, options=options)
    assert first == second


def test_single_line_never_breaks_the_line(engine: Engine) -> None:
    options = DecodeOptions(steps=4, max_span_tokens=24, temperature=1.0, seed=1)
    for result in engine.infill("x = ", "\ny = 2\n", single_line=True, options=options):
        assert "\n" not in result.text and "\r" not in result.text


def test_jobs_yield_progress_within_the_budget(engine: Engine) -> None:
    # One length decoded: the canvas shown is the top-ranked row, which is then the answer.
    job = engine.infill_job("a = ", "\n", options=replace(FAST, lengths_decoded=1))
    steps = []
    while True:
        try:
            steps.append(next(job))
        except StopIteration as stop:
            results = stop.value
            break
    assert steps and all(isinstance(p, Progress) for p in steps)
    assert [p.step for p in steps] == list(range(1, len(steps) + 1))
    # the total is the steps left once the length is decided (its passes come out of the
    # budget), the same at every step; every forward pass together stays within the budget
    assert len({p.total for p in steps}) == 1 and steps[0].total <= FAST.steps
    assert len(steps) <= FAST.steps and results[0].passes <= FAST.steps
    assert results[0].steps == len(steps)
    # The canvas is drawn on demand: masks show while decoding, the answer once it is done.
    if len(steps) > 1:
        assert MASK_GLYPH in steps[0].canvas
    assert steps[-1].canvas == results[0].text


@pytest.mark.parametrize("context", [128, 40])  # together in one window, then one at a time
def test_fill_holes_fills_every_marker(engine: Engine, context: int) -> None:
    text = "a = <mask>\nb = 2\nc = <mask>\n"
    options = DecodeOptions(steps=3, max_span_tokens=8, context_tokens=context)
    holes = engine.fill_holes(text, options=options)
    assert [text[h.start : h.end] for h in holes] == ["<mask>", "<mask>"]
    assert holes[0].start == 4 and holes[1].start == text.rindex("<mask>")
    assert all("<mask>" not in h.text for h in holes)


def test_bad_requests_raise_input_errors(engine: Engine) -> None:
    with pytest.raises(InputError):
        engine.rewrite("", "word " * 400, "")  # longer than the window
    with pytest.raises(InputError):
        engine.infill("a", "b", options=DecodeOptions(steps=0))
    with pytest.raises(InputError):
        engine.infill("a", "b", candidates=0)
    with pytest.raises(InputError):
        engine.fill_holes("a", marker="")
    with pytest.raises(InputError):
        run(engine.infill_job("a", "b", max_tokens=0))
    with pytest.raises(InputError):
        engine.infill("a", "b", options=DecodeOptions(length="guess"))


def test_length_hypotheses_cover_every_short_length_then_a_ladder() -> None:
    assert length_hypotheses(1) == [1]
    assert length_hypotheses(8) == list(range(1, 9))
    ladder = length_hypotheses(96)
    assert ladder[:8] == list(range(1, 9)) and ladder[-1] == 96
    steps = [b / a for a, b in itertools.pairwise(ladder[7:-1])]
    assert all(1.3 < ratio <= 1.45 for ratio in steps)
    assert length_hypotheses(40, shortest=30) == [*range(30, 38), 40]
    assert length_hypotheses(5, shortest=9) == [5]


def test_a_rewrite_searches_lengths_near_the_regions_own(
    engine: Engine, model: InfillModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = Spy(model, monkeypatch)
    region = "value = compute(first, second) + other(third)"
    count = len(model.encode(region))
    options = replace(FAST, length="search", rank_margin=0)  # every row a pass the spy sees
    engine.rewrite("x = 1\n", region, "\ny = 2\n", options=options)
    masks = (spy.windows[0] == model.ids.mask).sum(dim=1).tolist()
    assert min(masks) == count * 3 // 4 and max(masks) >= count


def test_length_search_ranks_every_length_then_decodes_the_best(
    engine: Engine, model: InfillModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = Spy(model, monkeypatch)
    options = DecodeOptions(
        steps=4, max_span_tokens=8, context_tokens=128, length="search", lengths_decoded=1,
        context_refresh=1,  # every step a full pass the spy sees; 8 lengths: one ranking pass
        rank_margin=0,
    )  # fmt: skip
    [result] = engine.infill("total = ", "\nprint(total)\n", options=options)
    ranking, decoding = spy.windows[0], spy.windows[1:]
    columns = (ranking == model.ids.mask).sum(dim=1).tolist()
    assert columns == list(range(1, 9))  # one row per length, fillers after it
    chosen = len(result.confidences)  # the decode kept its row's length
    positions = torch.nonzero(ranking[-1] == model.ids.mask).flatten()  # the full canvas
    banned = [*engine._banned(False), model.ids.filler]
    mask = model.ids.mask
    scores = length_scores(
        model.logits(ranking, positions), ranking[:, positions] == mask, banned, mask_id=mask
    )
    assert chosen == columns[int(scores.argmax())]  # the best-ranked length, not just any
    spy.windows.pop()  # the check's own pass
    # Then one row, already one step along: the ranking pass was its first denoising step.
    assert all(w.shape[0] == 1 and int((w == model.ids.mask).sum()) < chosen for w in decoding)
    assert result.steps == len(spy.windows) <= options.steps


def test_a_cached_ranking_whose_margin_covers_the_window_decodes_as_full_passes(
    engine: Engine,
) -> None:
    # Ranking from one cached pass, the denoising steps going on from that cache: with a margin
    # over the whole window every cached step is exact, so the answer is the full passes' own.
    full = DecodeOptions(
        steps=6, max_span_tokens=12, context_tokens=128, context_refresh=1, rank_margin=0
    )
    cached = replace(full, context_refresh=4, rank_margin=10_000)
    prefix, suffix = "def total(values):\n    return ", "\n\nprint(total([1, 2]))\n"
    for single_line in (True, False):
        [want] = engine.infill(prefix, suffix, single_line=single_line, options=full)
        [got] = engine.infill(prefix, suffix, single_line=single_line, options=cached)
        assert got.text == want.text
        assert got.confidences == pytest.approx(want.confidences, abs=1e-4)
        assert got.deciding == want.deciding + 1  # the cache's own pass over the masks row...
        assert got.passes == want.passes  # ...comes out of the same budget


def test_the_denoising_steps_go_on_from_the_rankings_cache(
    engine: Engine, model: InfillModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No refresh due within the budget: the pass over the masks row is the only full pass of
    # the whole decode (a denoiser starting a cache of its own would add one).
    spy = Spy(model, monkeypatch)
    options = DecodeOptions(
        steps=6, max_span_tokens=12, context_tokens=128, context_refresh=64, rank_margin=4
    )
    [result] = engine.infill("total = ", "\nprint(total)\n", options=options)
    assert result.steps >= 2  # at least one denoising step after the ranking's
    assert len(spy.windows) == 1 and spy.windows[0].shape[0] == 1


def test_tokens_per_step_allows_one_pass_for_every_so_many_tokens(engine: Engine) -> None:
    # threshold 1 commits one token a step: only the budget makes a step commit more
    one_by_one = replace(FAST, steps=16, threshold=1.0, max_span_tokens=12)
    fuller = replace(one_by_one, tokens_per_step=2)
    [slow] = engine.infill("total = ", "\n", length=12, options=one_by_one)
    [told] = engine.infill("total = ", "\n", length=12, options=fuller)
    assert slow.passes == 12 and len(slow.confidences) == 12
    assert told.passes == 6 and len(told.confidences) == 12  # 12 / 2, all of it written
    # a short span keeps FEWEST_PASSES: 6 tokens in 4 passes, not 3; 3 tokens one a pass
    [short] = engine.infill("total = ", "\n", length=6, options=fuller)
    assert short.passes == FEWEST_PASSES and len(short.confidences) == 6
    [shorter] = engine.infill("total = ", "\n", length=3, options=fuller)
    assert shorter.passes == 3
    # searching, the passes that ranked the lengths count too
    [found] = engine.infill("total = ", "\n", options=fuller)
    written = len(found.confidences)
    assert found.deciding >= 1
    assert found.passes <= max(math.ceil(written / 2), FEWEST_PASSES, found.deciding + 1)


def test_length_search_decodes_the_best_lengths_and_keeps_the_likeliest_canvas(
    engine: Engine, model: InfillModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = Spy(model, monkeypatch)
    options = DecodeOptions(
        steps=4, max_span_tokens=8, context_tokens=128, lengths_decoded=3, rank_margin=0
    )
    [result] = engine.infill("total = ", "\nprint(total)\n", options=options)
    ranking, probe = spy.windows[0], spy.windows[-1]
    mask, filler = model.ids.mask, model.ids.filler
    positions = torch.nonzero(ranking[-1] == mask).flatten()
    banned = [*engine._banned(False), filler]
    with torch.no_grad():
        scores = length_scores(
            model.logits(ranking, positions), ranking[:, positions] == mask, banned, mask_id=mask
        )
    best = (ranking == mask).sum(dim=1)[scores.argsort(descending=True)[:3]].tolist()
    assert spy.windows[1].shape[0] == 3  # the three best-ranked lengths, decoded together
    # The last pass probes the three finished canvases, four rows each, masks only in the span.
    assert probe.shape[0] == 12 and not bool((probe[:, : int(positions[0])] == mask).any())
    groups = probe.view(3, 4, -1)  # each span column is masked in exactly one row of its group
    finished = torch.where(groups[:, 0] == mask, groups[:, 1], groups[:, 0])  # (3, T)
    assert [int((row[positions] != filler).sum()) for row in finished] == best
    with torch.no_grad():
        likelihood = probe_logprobs(model.logits, finished, positions, mask_id=mask).sum(dim=1)
    winner = finished[int(likelihood.argmax()), positions].tolist()
    assert result.text == model.decode([t for t in winner if t != filler])
    assert result.score == pytest.approx(float(likelihood.max()), abs=1e-4)


def test_the_fillers_rule_decodes_one_oversized_canvas(
    engine: Engine, model: InfillModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = Spy(model, monkeypatch)
    options = DecodeOptions(
        steps=4, max_span_tokens=10, context_tokens=128, length="fillers", context_refresh=1
    )  # every step a full pass the spy sees
    [result] = engine.infill("total = ", "\nprint(total)\n", options=options)
    assert spy.windows[0].shape[0] == 1 and int((spy.windows[0] == model.ids.mask).sum()) == 10
    assert result.steps == len(spy.windows) <= options.steps


def test_decode_options_reach_the_sampler_whole() -> None:
    """Every sampler knob DecodeOptions has is copied (in one place), and the defaults agree."""
    from dataclasses import fields

    from infill_lsp.decoder import sampling_of
    from infill_lsp.options import DECODE_DEFAULTS
    from infill_lsp.sampler import Sampling

    shared = [f.name for f in fields(Sampling) if hasattr(DECODE_DEFAULTS, f.name)]
    assert {"steps", "threshold", "schedule", "confidence", "remask"} <= set(shared)
    for name in shared:
        assert getattr(Sampling(), name) == getattr(DECODE_DEFAULTS, name), name
    changed = DecodeOptions(
        steps=3, threshold=0.5, schedule="linear", confidence="margin", temperature=0.7,
        top_p=0.9, filler_penalty=1.5, remask=True, remask_count=1, remask_floor=0.3,
    )  # fmt: skip
    sampling = sampling_of(changed)
    assert {name: getattr(sampling, name) for name in shared} == {
        name: getattr(changed, name) for name in shared
    }
