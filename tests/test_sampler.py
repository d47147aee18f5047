"""The sampler with fake models of fixed logits: what it commits, when, and what it keeps."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from infill_lsp.lengths import choose_lengths
from infill_lsp.sampler import (
    LENGTH_BIAS,
    Denoised,
    Sampling,
    StepState,
    denoise,
    length_scores,
    probe_logprobs,
    rows_at,
    span_runs,
    spread_filler,
    text_to_the_right,
)
from infill_lsp.schedule import commits_this_step

# The fake vocabulary: ids are named, never written as bare numbers in the tests.
MASK, FILLER, PAD = 0, 1, 2
TEXT = [3, 4, 5, 6, 7]
VOCAB = 8


class FixedModel:
    """logits_fn whose logits depend only on the column: table (T, V)."""

    def __init__(self, table: torch.Tensor) -> None:
        self.table = table
        self.calls = 0
        self.seen: list[torch.Tensor] = []

    def __call__(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.seen.append(ids.clone())
        return self.table[positions].expand(ids.shape[0], -1, -1).clone()  # (B, S, V)


def peaked(token: int, prob: float) -> torch.Tensor:
    """Logits (V,) giving `token` probability `prob` and sharing the rest over text tokens."""
    others = [t for t in TEXT if t != token]
    probs = torch.full((VOCAB,), 1e-9)
    probs[others] = (1 - prob) / len(others)
    probs[token] = prob
    return probs.log()


def run_all(job) -> tuple[list[StepState], Denoised]:  # type: ignore[no-untyped-def]
    states = []
    while True:
        try:
            states.append(next(job))
        except StopIteration as stop:
            return states, stop.value


def canvas(batch: int, length: int, masked: list[int]) -> torch.Tensor:
    """(B, T) ids of text tokens with MASK at the given columns."""
    ids = torch.tensor([TEXT[i % len(TEXT)] for i in range(length)]).repeat(batch, 1)
    ids[:, masked] = MASK
    return ids


def test_every_mask_is_filled_and_nothing_else_changes() -> None:
    torch.manual_seed(0)
    model = FixedModel(torch.randn(12, VOCAB))
    ids = canvas(2, 12, [3, 4, 6, 7])
    ids[:, 10] = MASK  # a mask outside the span must stay a mask
    positions = torch.tensor([3, 4, 5, 6, 7])  # column 5 is a kept token inside the span
    states, result = run_all(
        denoise(model, ids, positions, mask_id=MASK, filler_id=FILLER, banned_ids=[PAD])
    )
    span = result.ids[:, positions]
    assert not (span == MASK).any()
    keep = torch.ones(12, dtype=torch.bool)
    keep[[3, 4, 6, 7]] = False
    assert torch.equal(result.ids[:, keep], ids[:, keep])
    for state in states:  # also in every intermediate canvas
        assert torch.equal(state.ids[:, keep], ids[:, keep])
    assert result.generated[:, 2].logical_not().all()


def test_banned_ids_are_never_produced() -> None:
    table = torch.stack([peaked(TEXT[0], 0.5)] * 6)
    table[:, PAD] = 50.0  # the model loves the banned token
    table[:, MASK] = 50.0
    model = FixedModel(table)
    ids = canvas(1, 6, [0, 1, 2, 3, 4, 5])
    _, result = run_all(
        denoise(model, ids, torch.arange(6), mask_id=MASK, filler_id=None, banned_ids=[PAD])
    )
    assert not torch.isin(result.ids, torch.tensor([PAD, MASK, FILLER])).any()


@pytest.mark.parametrize("schedule", ["threshold", "linear", "cosine"])
def test_the_step_budget_holds(schedule: str) -> None:
    torch.manual_seed(1)
    model = FixedModel(torch.randn(30, VOCAB) * 0.1)  # never confident
    ids = canvas(2, 30, list(range(30)))
    sampling = Sampling(steps=3, schedule=schedule, threshold=0.99)
    states, result = run_all(
        denoise(model, ids, torch.arange(30), mask_id=MASK, filler_id=None, sampling=sampling)
    )
    assert model.calls == 3 == result.steps == len(states)
    assert [s.step for s in states] == [1, 2, 3]
    assert not (result.ids == MASK).any()


def test_linear_schedule_commits_the_scheduled_counts() -> None:
    torch.manual_seed(2)
    model = FixedModel(torch.randn(10, VOCAB))
    ids = canvas(1, 10, list(range(10)))
    sampling = Sampling(steps=4, schedule="linear")
    states, _ = run_all(
        denoise(model, ids, torch.arange(10), mask_id=MASK, filler_id=None, sampling=sampling)
    )
    left = [int((s.ids == MASK).sum()) for s in states]
    expected, masked = [], 10
    for step in range(4):
        masked -= commits_this_step(masked, 10, step, 4, "linear")
        expected.append(masked)
    assert left == expected


def test_threshold_rule_commits_several_per_step() -> None:
    confident = [peaked(TEXT[i % 5], 0.97) for i in range(8)]
    unsure = [peaked(TEXT[0], 0.3)] * 4
    model = FixedModel(torch.stack(confident + unsure))
    ids = canvas(1, 12, list(range(12)))
    states, result = run_all(denoise(model, ids, torch.arange(12), mask_id=MASK, filler_id=None))
    # Step 1 commits all 8 confident positions plus nothing else (they exceed 0.9).
    assert int((states[0].ids == MASK).sum()) == 4
    # Then at least one per step: the 4 unsure ones take at most 4 more steps.
    assert result.steps <= 5
    assert not (result.ids == MASK).any()


def test_threshold_rule_commits_at_least_one_per_row() -> None:
    model = FixedModel(torch.stack([peaked(TEXT[1], 0.2)] * 5))
    ids = canvas(3, 5, list(range(5)))
    states, result = run_all(
        denoise(model, ids, torch.arange(5), mask_id=MASK, filler_id=None, sampling=Sampling())
    )
    left = [(s.ids == MASK).sum(dim=1).tolist() for s in states]
    assert left == [[4, 4, 4], [3, 3, 3], [2, 2, 2], [1, 1, 1], [0, 0, 0]]
    assert result.steps == 5


def test_same_seed_same_output_different_seed_differs() -> None:
    torch.manual_seed(3)
    model = FixedModel(torch.randn(40, VOCAB))
    ids = canvas(2, 40, list(range(40)))
    sampling = Sampling(temperature=1.0, steps=8)

    def sample(seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        job = denoise(
            model, ids, torch.arange(40), mask_id=MASK, filler_id=None,
            sampling=sampling, generator=generator,
        )  # fmt: skip
        return run_all(job)[1].ids

    assert torch.equal(sample(7), sample(7))
    assert not torch.equal(sample(7), sample(8))


def test_top_p_keeps_only_the_nucleus() -> None:
    model = FixedModel(torch.stack([peaked(TEXT[2], 0.6)] * 50))
    ids = canvas(1, 50, list(range(50)))
    sampling = Sampling(temperature=1.0, top_p=0.5)
    job = denoise(
        model, ids, torch.arange(50), mask_id=MASK, filler_id=None, sampling=sampling,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert (run_all(job)[1].ids == TEXT[2]).all()


def test_a_committed_filler_fills_the_rest_of_its_run() -> None:
    # Columns 0..5 are one run, 8..10 another. Column 2 is a sure filler; the rest is unsure.
    table = torch.stack([peaked(TEXT[i % 5], 0.3) for i in range(11)])
    table[2] = peaked(TEXT[0], 0.01)
    table[2, FILLER] = 10.0
    model = FixedModel(table)
    ids = canvas(1, 11, [0, 1, 2, 3, 4, 5, 8, 9, 10])
    positions = torch.tensor([0, 1, 2, 3, 4, 5, 8, 9, 10])
    states, result = run_all(
        denoise(model, ids, positions, mask_id=MASK, filler_id=FILLER, sampling=Sampling(steps=9))
    )
    first = states[0].ids[0]
    assert first[2] == FILLER
    assert first[3:6].tolist() == [FILLER] * 3  # claimed in the same step
    assert first[[0, 1, 8, 9, 10]].tolist() == [MASK] * 5  # the left side and other run wait
    assert result.steps == 6  # one step for the filler run, then one per unsure position
    assert (result.ids[0, [8, 9, 10]] != FILLER).all()


def test_filler_spread_is_per_run() -> None:
    positions = torch.tensor([4, 5, 6, 9, 10, 11])
    runs = span_runs(positions)
    assert runs.tolist() == [0, 0, 0, 3, 3, 3]
    fillers = torch.tensor([[False, True, False, False, False, False]])
    assert spread_filler(fillers, runs).tolist() == [[False, True, True, False, False, False]]


def test_filler_penalty_turns_fillers_into_text() -> None:
    table = torch.stack([peaked(TEXT[0], 0.3)] * 4)
    table[:, FILLER] = table[:, TEXT[0]] + 1.0
    ids = canvas(1, 4, [0, 1, 2, 3])
    plain = run_all(
        denoise(FixedModel(table), ids, torch.arange(4), mask_id=MASK, filler_id=FILLER)
    )
    assert (plain[1].ids == FILLER).all()
    sampling = Sampling(filler_penalty=5.0)
    job = denoise(
        FixedModel(table), ids, torch.arange(4), mask_id=MASK, filler_id=FILLER, sampling=sampling
    )
    assert (run_all(job)[1].ids == TEXT[0]).all()


class ShiftingModel:
    """Sure of columns 0-3; unsure of 4-5, whose favourite token changes at every call."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        rows = [peaked(TEXT[c % 5], 0.99) for c in range(4)]
        rows += [peaked(TEXT[(self.calls + c) % 5], 0.3) for c in range(4, 6)]
        return torch.stack(rows)[positions].expand(ids.shape[0], -1, -1).clone()


def test_remasking_only_touches_tokens_below_the_floor() -> None:
    model = ShiftingModel()
    ids = canvas(1, 6, list(range(6)))
    sampling = Sampling(
        steps=10, remask=True, remask_count=1, remask_floor=0.5, remask_window=(0.0, 1.0)
    )
    states, result = run_all(
        denoise(model, ids, torch.arange(6), mask_id=MASK, filler_id=None, sampling=sampling)
    )
    history = torch.stack([s.ids[0] for s in states])  # (steps, T)
    # The sure tokens are committed at step 1 and never change again.
    assert (history[:, :4] == history[0, :4]).all()
    # The unsure ones were re-masked and decoded again (the model's favourite moved on),
    # at most remask_count of them per step.
    changed = (history[1:, 4:] != history[:-1, 4:]) & (history[:-1, 4:] != MASK)
    assert changed.any()
    assert changed.sum(dim=1).max() <= 1
    assert result.steps == model.calls <= 10
    assert not (result.ids == MASK).any()
    assert (result.probs[0, 4:] < 0.5).all()


def test_remasking_respects_the_budget_and_the_kept_tokens() -> None:
    model = ShiftingModel()
    ids = canvas(1, 6, [4, 5])  # columns 0-3 are given, so they are never re-masked
    sampling = Sampling(steps=4, remask=True, remask_count=2, remask_floor=1.0)
    states, result = run_all(
        denoise(model, ids, torch.arange(6), mask_id=MASK, filler_id=None, sampling=sampling)
    )
    assert result.steps <= 4
    assert all(torch.equal(s.ids[0, :4], ids[0, :4]) for s in states)
    assert not (result.ids == MASK).any()


class ProbeModel:
    """A masked column predicts TEXT[0] with probability 0.5; a visible one is uniform."""

    def __init__(self) -> None:
        self.batches: list[torch.Tensor] = []

    def __call__(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        self.batches.append(ids.clone())
        hidden = ids[:, positions] == MASK  # (B, S)
        sure = peaked(TEXT[0], 0.5)
        return torch.where(hidden[..., None], sure, torch.zeros(VOCAB))  # (B, S, V)


def test_probe_reads_each_token_with_it_masked() -> None:
    model = ProbeModel()
    ids = torch.tensor([TEXT[0], TEXT[1], TEXT[0], TEXT[2], TEXT[0], TEXT[3], TEXT[4]])
    positions = torch.tensor([1, 2, 3, 4, 5, 6])
    logprobs = probe_logprobs(model, ids, positions, mask_id=MASK, stride=3)
    assert len(model.batches) == 1 and model.batches[0].shape == (3, 7)  # one batched pass
    expected = torch.log_softmax(
        peaked(TEXT[0], 0.5).masked_fill(torch.arange(VOCAB) == MASK, -math.inf), -1
    )
    assert torch.allclose(logprobs, expected[ids[positions]])
    assert logprobs[1] == pytest.approx(math.log(0.5), abs=1e-5)  # column 2 holds TEXT[0]
    masked_per_column = (model.batches[0] == MASK).sum(dim=0)
    assert masked_per_column[positions].tolist() == [1] * 6  # disjoint subsets cover the region
    assert masked_per_column[0] == 0  # never outside the region


def test_probe_scores_a_batch_in_one_pass_as_it_scores_each_sequence() -> None:
    model = ProbeModel()
    first = torch.tensor([TEXT[0], TEXT[1], TEXT[0], TEXT[2], TEXT[0], TEXT[3], TEXT[4]])
    second = torch.tensor([TEXT[4], TEXT[0], TEXT[0], TEXT[0], TEXT[3], TEXT[0], TEXT[1]])
    positions = torch.tensor([1, 2, 3, 4, 5])
    both = probe_logprobs(model, torch.stack([first, second]), positions, mask_id=MASK, stride=2)
    assert len(model.batches) == 1 and model.batches[0].shape == (4, 7)
    alone = [
        probe_logprobs(model, row, positions, mask_id=MASK, stride=2) for row in (first, second)
    ]
    assert both.shape == (2, 5) and torch.allclose(both, torch.stack(alone))
    assert not torch.allclose(both[0], both[1])  # each row is scored on its own tokens


@pytest.mark.parametrize(
    "bad",
    [
        {"sampling": Sampling(steps=0)},
        {"sampling": Sampling(schedule="random")},
        {"sampling": Sampling(confidence="vibes")},
        {"sampling": Sampling(top_p=0.0)},
        {"positions": torch.tensor([2, 99])},
        {"positions": torch.tensor([3, 2])},
    ],
)
def test_bad_arguments_raise_value_error(bad: dict) -> None:  # type: ignore[type-arg]
    model = FixedModel(torch.zeros(6, VOCAB))
    kwargs = {"positions": torch.tensor([1, 2]), "sampling": Sampling(), **bad}
    with pytest.raises(ValueError):
        run_all(denoise(model, canvas(1, 6, [1, 2]), mask_id=MASK, filler_id=None, **kwargs))


def hypotheses(span: int) -> torch.Tensor:
    """(H, S) bool: row r masks the first r + 1 positions (the hypothesis "r + 1 tokens")."""
    return torch.arange(span)[None, :] <= torch.arange(span)[:, None]


def test_length_scores_do_not_always_prefer_the_shortest_length() -> None:
    # Every position of every row is about as sure as a real model's (-1.8 nats a token), and
    # the true length, 6, a little surer: a sum falls with length and picks one token; the
    # length-corrected mean picks 6 (issue 25: 109 of 119 lines got one token).
    span = 10
    typical, sure = peaked(TEXT[0], math.exp(-1.8)), peaked(TEXT[0], math.exp(-1.0))
    logits = torch.stack([(sure if r == 5 else typical).expand(span, -1) for r in range(span)])
    scores = length_scores(logits, hypotheses(span), banned_ids=[FILLER], mask_id=MASK)
    assert scores.shape == (span,)
    assert int(scores.argmax()) + 1 == 6


def test_length_scores_count_filler_mass_against_a_row() -> None:
    # Two rows of three masks whose text tokens have the same odds among themselves; in the
    # second the model puts 80 % on the filler (the canvas is too long). Renormalised after
    # banning the filler, they would tie; normalised first, the second loses. A huge mask logit
    # changes nothing: no model predicts the mask.
    text_only = peaked(TEXT[0], 0.6)
    too_long = text_only.clone()
    too_long[FILLER] = math.log(4.0)  # 0.8 of the mass once normalised
    logits = torch.stack([text_only.expand(3, -1), too_long.expand(3, -1)])  # (2, 3, V)
    logits[..., MASK] = 50.0
    masked = torch.ones(2, 3, dtype=torch.bool)
    scores = length_scores(logits, masked, banned_ids=[FILLER], mask_id=MASK)
    assert float(scores[0] - scores[1]) == pytest.approx(math.log(5.0), abs=1e-4)


def test_length_scores_with_a_prior_pick_the_expected_length_when_nothing_else_differs() -> None:
    span = 12
    logits = peaked(TEXT[0], math.exp(-1.8)).expand(span, span, -1)  # every row alike
    for expected in (4, 9):
        scores = length_scores(
            logits, hypotheses(span), banned_ids=[FILLER], mask_id=MASK, expected=expected
        )
        assert int(scores.argmax()) + 1 == expected


def test_length_scores_never_count_a_banned_token() -> None:
    logits = torch.stack([peaked(FILLER, 0.9)] * 4)[None]  # the filler is the favourite
    masked = torch.tensor([[True, True, False, False]])
    score = length_scores(logits, masked, banned_ids=[FILLER], mask_id=MASK)
    # The best allowed token is a text token at 0.1 / 5 of the whole mass.
    expected = math.log(0.02) + LENGTH_BIAS * math.log(2)
    assert float(score[0]) == pytest.approx(expected, abs=1e-5)


def test_first_logits_stand_in_for_the_first_forward_pass() -> None:
    table = torch.stack([peaked(TEXT[i % 5], 0.6) for i in range(6)])  # (T, V) never sure
    model = FixedModel(table)
    ids = canvas(1, 6, [1, 2, 3])
    positions = torch.arange(1, 4)
    given = table[positions][None].clone()  # (1, S, V): the same logits the model would give
    _, with_given = run_all(
        denoise(model, ids, positions, mask_id=MASK, filler_id=None, first_logits=given)
    )
    with_given_calls = model.calls
    _, plain = run_all(denoise(model, ids, positions, mask_id=MASK, filler_id=None))
    plain_calls = model.calls - with_given_calls
    assert with_given_calls == plain_calls - 1  # one forward pass saved
    assert torch.equal(with_given.ids, plain.ids) and with_given.steps == plain.steps


# ----- issue 25: fillers never glue fragments; remasking moves forward ------------------------


def stripped(row: torch.Tensor) -> list[int]:
    """The canvas as the engine returns it: fillers dropped."""
    return [t for t in row.tolist() if t != FILLER]


def fillers_only_at_the_end(row: list[int]) -> bool:
    """No text right of a filler (the design's filler contiguity) in one run."""
    first = row.index(FILLER) if FILLER in row else len(row)
    return all(t == FILLER for t in row[first:])


def filler_favourite(prob: float) -> torch.Tensor:
    """Logits (V,) whose favourite is the filler with `prob`, TEXT[1] second."""
    probs = torch.full((VOCAB,), 1e-9)
    probs[FILLER], probs[TEXT[1]] = prob, 1 - prob - 1e-6
    return probs.log()


def test_a_late_filler_never_glues_text_committed_right_of_it() -> None:
    # Step 1 commits the sure text at columns 0, 1 and 5; every other column leans to the
    # filler without passing the threshold. The canvas [2,2,F,F,F,7,F,F] would strip to
    # [2,2,7]: the columns between the fragments must be text, the fillers only at the end.
    table = torch.stack([filler_favourite(0.6)] * 8)
    table[0] = table[1] = peaked(TEXT[0], 0.99)
    table[5] = peaked(TEXT[4], 0.99)
    model = FixedModel(table)
    _, result = run_all(
        denoise(
            model, canvas(1, 8, list(range(8))), torch.arange(8), mask_id=MASK, filler_id=FILLER
        )
    )
    row = result.ids[0].tolist()
    assert fillers_only_at_the_end(row), row
    assert row == [TEXT[0], TEXT[0], TEXT[1], TEXT[1], TEXT[1], TEXT[4], FILLER, FILLER]


@pytest.mark.parametrize("steps", [1, 4])
def test_a_filler_chosen_left_of_text_in_the_same_step_gives_way(steps: int) -> None:
    # Column 0 is a sure filler and column 1 sure text, both committed at once (and, with a
    # one-step budget, at the last step): the filler would sit left of text.
    table = torch.stack([filler_favourite(0.95), peaked(TEXT[2], 0.99), filler_favourite(0.95)])
    model = FixedModel(table)
    sampling = Sampling(steps=steps)
    _, result = run_all(
        denoise(
            model, canvas(1, 3, [0, 1, 2]), torch.arange(3), mask_id=MASK, filler_id=FILLER,
            sampling=sampling,
        )
    )  # fmt: skip
    row = result.ids[0].tolist()
    assert row == [TEXT[1], TEXT[2], FILLER]
    assert result.steps <= steps


def test_holes_that_touch_are_separate_runs() -> None:
    # Two holes of three columns each, side by side (`<mask><mask>`): a filler ending the first
    # hole must not claim the second.
    table = torch.stack([peaked(TEXT[0], 0.3)] * 6)
    table[1] = filler_favourite(0.99)
    model = FixedModel(table)
    runs = torch.tensor([0, 0, 0, 3, 3, 3])
    states, result = run_all(
        denoise(
            model, canvas(1, 6, list(range(6))), torch.arange(6), mask_id=MASK,
            filler_id=FILLER, sampling=Sampling(steps=8), runs=runs,
        )
    )  # fmt: skip
    assert states[0].ids[0].tolist()[:3] == [MASK, FILLER, FILLER]
    assert FILLER not in result.ids[0, 3:].tolist()


def test_bad_runs_raise_value_error() -> None:
    model = FixedModel(torch.zeros(4, VOCAB))
    with pytest.raises(ValueError):
        run_all(
            denoise(
                model, canvas(1, 4, [0, 1, 2, 3]), torch.arange(4), mask_id=MASK,
                filler_id=FILLER, runs=torch.tensor([0, 2, 1, 3]),
            )
        )  # fmt: skip


def test_text_to_the_right_is_per_run() -> None:
    runs = torch.tensor([0, 0, 0, 3, 3])
    text = torch.tensor([[False, False, True, False, True]])
    assert text_to_the_right(text, runs).tolist() == [[True, True, False, True, False]]


class UnsureModel:
    """Sure of column 0 only; every other column favours TEXT[0] (0.3) among even odds."""

    def __init__(self, sure: int = 1) -> None:
        self.calls = 0
        self.sure = sure

    def __call__(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        rows = [peaked(TEXT[c % 5], 0.99) if c < self.sure else peaked(TEXT[0], 0.3)
                for c in range(12)]  # fmt: skip
        return torch.stack(rows)[positions].expand(ids.shape[0], -1, -1).clone()


def test_remasking_never_removes_more_than_a_step_commits() -> None:
    model = UnsureModel()
    sampling = Sampling(
        steps=12, remask=True, remask_count=2, remask_floor=0.5, remask_window=(0.0, 1.0)
    )
    states, result = run_all(
        denoise(
            model, canvas(1, 8, list(range(8))), torch.arange(8), mask_id=MASK, filler_id=None,
            sampling=sampling, generator=torch.Generator().manual_seed(0),
        )
    )  # fmt: skip
    left = [8] + [int((s.ids == MASK).sum()) for s in states]
    assert all(b <= a for a, b in itertools.pairwise(left)), left  # masks never grow
    # The budget's last step never argmaxes a backlog: one masked position at most is left.
    assert left[-2] <= 1, left
    assert not (result.ids == MASK).any()


def test_remasked_tokens_are_sampled_again_not_re_argmaxed() -> None:
    # Greedy decoding: TEXT[0] is every unsure column's argmax. Re-decoding greedily would give
    # it back every time; a re-masked token is sampled, so some come back different.
    model = UnsureModel()
    sampling = Sampling(
        steps=16, remask=True, remask_count=2, remask_floor=0.5, remask_window=(0.0, 1.0)
    )
    _, result = run_all(
        denoise(
            model, canvas(1, 6, list(range(6))), torch.arange(6), mask_id=MASK, filler_id=None,
            sampling=sampling, generator=torch.Generator().manual_seed(0),
        )
    )  # fmt: skip
    assert set(result.ids[0, 1:].tolist()) - {TEXT[0]}


def test_a_span_finished_early_is_still_revised() -> None:
    # The span is done in two steps (three sure columns, then the unsure one) of a budget of
    # 16, long before a quarter of the budget; the remasking window is by progress (the share
    # of the span committed), so the unsure token is still decoded again.
    model = UnsureModel(sure=3)
    sampling = Sampling(steps=16, remask=True, remask_count=1, remask_floor=0.5)
    _, result = run_all(
        denoise(
            model, canvas(1, 4, list(range(4))), torch.arange(4), mask_id=MASK, filler_id=None,
            sampling=sampling, generator=torch.Generator().manual_seed(0),
        )
    )  # fmt: skip
    assert model.calls == result.steps > 2


def test_a_rewrite_keeps_its_regions_length_when_the_model_has_no_preference() -> None:
    # Issue 25: every rewrite came back at exactly 3/4 of its region (the shortest length the
    # search allowed). A model alike at every length and position now leaves the length as is.
    model = FixedModel(torch.stack([peaked(TEXT[0], math.exp(-1.8))] * 40))
    region = 20
    positions = torch.arange(4, 4 + 29)  # a canvas a quarter longer than the region, and more
    ids = canvas(1, 40, positions.tolist())
    choice = choose_lengths(
        model, ids, positions, mask_id=MASK, filler_id=FILLER, banned_ids=[PAD],
        shortest=region * 3 // 4, rows=1, decoded=1, temperature=0.0, extra_temperature=0.8,
        expected=region,
    )  # fmt: skip
    assert int((choice.ids[0] == MASK).sum()) == region


def test_rows_at_gathers_what_boolean_indexing_gathers() -> None:
    values = torch.randn(3, 5, 7)  # (B, S, V)
    where = torch.rand(3, 5) > 0.5
    where[0, 0] = True
    assert torch.equal(rows_at(values, where), values[where])
    strided = torch.randn(5, 3, 7).transpose(0, 1)  # a full pass's logits need not be contiguous
    assert torch.equal(rows_at(strided, where), strided[where])
