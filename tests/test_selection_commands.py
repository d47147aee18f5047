"""Issue 25: commands do what they say. Over stdio with the real server (the tiny random model):
a character-wise rewrite changes only the selection, and widening it happens when asked and is
said. With the engine: fill holes fills only the markers it is given, each hole its own span.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from lsprotocol import types
from pytest_lsp import LanguageClient

import infill_lsp.decoder
from infill_lsp.engine import Engine
from infill_lsp.model import load_model, save_model
from infill_lsp.options import DecodeOptions
from infill_train.sizes import build_network
from infill_train.tokenizer import train_tokenizer
from tests.editing_client import FILL_HOLES, REVISE, REWRITE, VERSIONED_CAPABILITIES, Editor
from tests.test_server import (  # the same server and client fixture, as Neovim and VS Code
    apply_edits,
    assert_outside_identical,
    client,
    command,
    configure,
    encoding_of,
    open_document,
    position_of,
    text_edits,
)
from tests.tiny_model import SAMPLE_TEXTS

__all__ = ["client"]  # a fixture, used by name

NOTES = "first line of notes\nsecond line here\nthird line\n"
PRICES = "def total(items):\n    total = 0\n    for item in items:\n        total += item.price * item.quantity\n    return total\n"  # noqa: E501


def wire_range(text: str, start: int, end: int, encoding: str) -> dict[str, Any]:
    low, high = position_of(text, start, encoding), position_of(text, end, encoding)
    return {
        "start": {"line": low.line, "character": low.character},
        "end": {"line": high.line, "character": high.character},
    }


async def test_a_character_wise_rewrite_changes_only_the_selection(client: LanguageClient):
    # From mid-line to mid-line: the old server widened it to the two whole lines.
    uri = "file:///work/charwise.txt"
    open_document(client, uri, NOTES, "plaintext")
    encoding = encoding_of(client)
    start, end = NOTES.index("line of"), NOTES.index(" here")
    argument = {"uri": uri, "range": wire_range(NOTES, start, end, encoding), "apply": False}
    edits = text_edits(await command(client, "infill.rewrite", argument), uri)
    after = apply_edits(NOTES, edits, encoding)
    assert after != NOTES
    assert_outside_identical(NOTES, after, start, end)


async def test_widening_a_selection_is_asked_for_and_said(client: LanguageClient):
    uri = "file:///work/prices.py"
    open_document(client, uri, PRICES, "python")
    encoding = encoding_of(client)
    start = PRICES.index("item.price")
    end = PRICES.index("\n", start)
    argument = {"uri": uri, "range": wire_range(PRICES, start, end, encoding), "apply": False}
    seen = len(client.messages)
    edit = await command(client, "infill.rewrite", argument)
    after = apply_edits(PRICES, text_edits(edit, uri), encoding)
    assert_outside_identical(PRICES, after, start, end)  # `total += ` stays
    assert not any("widened" in m.message for m in client.messages[seen:])
    await configure(client, {"snapSelection": "always"})
    try:
        seen = len(client.messages)
        await command(client, "infill.rewrite", argument)
        said = [m.message for m in client.messages[seen:] if "widened" in m.message]
        assert said and "line 4" in said[0]
    finally:
        await configure(client, {"snapSelection": None})


async def test_revise_progress_moves_from_the_probe_on(client: LanguageClient):
    # The probe that finds the unlikely tokens is a step of its own: progress moves before the
    # first denoising pass (it sat at 0 % through the probe and that pass).
    uri = "file:///work/revise-progress.txt"
    open_document(client, uri, NOTES, "plaintext")
    token = f"revise-{id(client)}"
    client.progress_reports.setdefault(token, [])
    argument = {"uri": uri, "range": wire_range(NOTES, 0, len(NOTES), encoding_of(client))}
    await command(client, "infill.revise", {**argument, "apply": False}, work_done_token=token)
    steps = [
        r for r in client.progress_reports[token] if isinstance(r, types.WorkDoneProgressReport)
    ]
    # the client fixture's server runs 4 denoising steps; every token of a random model is unlikely
    assert [r.message for r in steps] == [f"step {n} of 5" for n in range(1, 6)]
    assert [r.percentage for r in steps] == [20, 40, 60, 80, 100]


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> Engine:
    return Engine(load_model(tiny_model_dir), DecodeOptions(steps=3, max_span_tokens=4))


def test_fill_holes_within_a_range_fills_only_its_markers(engine: Engine) -> None:
    text = 'x = f(<mask>)\ny = re.compile(r"<mask>")\n'
    inside = (0, text.index("\n"))
    holes = engine.fill_holes(text, within=inside)
    assert [(h.start, h.end) for h in holes] == [(6, 12)]
    assert len(engine.fill_holes(text)) == 2


def test_markers_that_touch_are_holes_of_their_own(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[torch.Tensor | None] = []
    real = infill_lsp.decoder.denoise

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("runs"))
        return real(*args, **kwargs)

    monkeypatch.setattr(infill_lsp.decoder, "denoise", spy)
    holes = engine.fill_holes("a = (<mask><mask>)\n")
    assert len(holes) == 2
    runs = seen[0]
    assert runs is not None and runs.tolist() == [0] * 4 + [1] * 4


# --- "no change" always says why: each reason over stdio, made certain -----------------------


def build_stubborn_model(out: Path, piece: str = ")") -> tuple[Path, str]:
    """A tiny model that writes `piece` at every position, with certainty (a large output bias):
    its fills never parse as Python, and it finds text made of `piece` likely everywhere.
    Returns the directory and a short text that is `piece` tokens only."""
    torch.manual_seed(0)
    tokenizer = train_tokenizer(SAMPLE_TEXTS * 4, vocab_size=400)
    network = build_network("test", tokenizer, max_positions=1024)
    token = tokenizer.token_to_id(piece)
    assert token is not None and network.decoder.bias is not None
    with torch.no_grad():
        network.decoder.bias[token] = 50.0
    text = piece * 4
    assert tokenizer.encode(text).ids == [token] * 4
    metadata = {"recipe": {"size": "test", "note": f"writes {piece!r} everywhere, for tests"}}
    return save_model(out, network, tokenizer, metadata, card="# stubborn test model\n"), text


@pytest.fixture(scope="module")
def stubborn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Editor, str]]:
    folder = tmp_path_factory.mktemp("stubborn")
    model, text = build_stubborn_model(folder / "model")
    settings = {"modelPath": str(model), "threads": 1, "steps": 4, "candidates": 1}
    peer = Editor(folder / "server.log", {**settings, "debounceMs": 0}, VERSIONED_CAPABILITIES)
    assert peer.wait_ready()["state"] == "ready"
    yield peer, text
    assert peer.stop() == 0


def said(peer: Editor, since: int) -> list[str]:
    """The window/showMessage texts the server sent since notification `since`."""
    with peer._lock:
        return [
            n["params"]["message"]
            for n in peer.notifications[since:]
            if n["method"] == "window/showMessage"
        ]


def configure_peer(peer: Editor, settings: dict[str, Any]) -> None:
    peer.notify("workspace/didChangeConfiguration", {"settings": {"infill": settings}})
    peer.barrier()  # applied


def no_change_reason(
    peer: Editor, name: str, uri: str, text: str, span: tuple[int, int] | None
) -> list[str]:
    """Run command `name` (apply false) over `span` of `text`; assert it edits nothing and
    return what the server said meanwhile."""
    with peer._lock:
        since = len(peer.notifications)
    answer = peer.wait(peer.command_async(name, uri, span, False), 120)
    assert "result" in answer, answer
    edits = [e for change in answer["result"]["documentChanges"] for e in change["edits"]]
    assert edits == [], edits
    peer.barrier()  # any message sent before the answer has arrived
    return said(peer, since)


def test_fill_holes_on_a_range_without_a_marker_says_so(stubborn: tuple[Editor, str]) -> None:
    peer, _ = stubborn
    uri, text = "file:///work/nomarker.txt", "no marker here\nx = <mask>\n"
    peer.open(uri, text)
    messages = no_change_reason(peer, FILL_HOLES, uri, text, (0, text.index("\n")))
    assert any("no <mask> marker to fill" in m for m in messages), messages


def test_filled_holes_that_do_not_parse_are_refused_and_said(
    stubborn: tuple[Editor, str],
) -> None:
    peer, _ = stubborn
    uri, text = "file:///work/holes.py", "def f(a):\n    return g(<mask>, a)\n"
    peer.open(uri, text, "python")
    messages = no_change_reason(peer, FILL_HOLES, uri, text, None)
    assert any("the filled holes do not parse" in m for m in messages), messages


def test_a_rewrite_that_breaks_the_syntax_is_refused_and_said(
    stubborn: tuple[Editor, str],
) -> None:
    peer, _ = stubborn
    uri, text = "file:///work/broken.py", PRICES
    peer.open(uri, text, "python")
    start = text.index("item.price")
    span = (start, start + len("item.price * item.quantity"))
    messages = no_change_reason(peer, REWRITE, uri, text, span)
    assert any("every candidate broke the syntax" in m for m in messages), messages


def test_revise_with_no_unlikely_token_says_so(stubborn: tuple[Editor, str]) -> None:
    peer, likely = stubborn
    uri, text = "file:///work/likely.txt", f"before\n{likely}\nafter\n"
    peer.open(uri, text)
    start = text.index(likely)
    messages = no_change_reason(peer, REVISE, uri, text, (start, start + len(likely)))
    assert any("no token of the selection is unlikely enough" in m for m in messages), messages


def test_a_rewrite_giving_back_the_selection_says_so(stubborn: tuple[Editor, str]) -> None:
    # A 48-token region in a 64-token window: the canvas can be no longer than the region, the
    # model is as sure of every length (the region's own is the prior) and of its one token.
    peer, likely = stubborn
    region = likely * 12
    uri, text = "file:///work/same.txt", f"before\n{region}\nafter\n"
    peer.open(uri, text)
    start = text.index(region)
    configure_peer(peer, {"contextTokens": 64})
    try:
        messages = no_change_reason(peer, REWRITE, uri, text, (start, start + len(region)))
    finally:
        configure_peer(peer, {"contextTokens": None})
    assert any("gave back the selection as it was" in m for m in messages), messages


def test_a_command_applied_while_the_model_loads_says_so(tmp_path: Path, tiny_model_dir: Path):
    # Torch alone takes a second or more to import: a command sent right after `initialized`
    # finds the model loading.
    settings = {"modelPath": str(tiny_model_dir), "threads": 1, "debounceMs": 0}
    peer = Editor(tmp_path / "server.log", settings, VERSIONED_CAPABILITIES)
    try:
        uri, text = "file:///work/early.txt", "one\ntwo\n"
        peer.open(uri, text)
        answer = peer.wait(peer.command_async(REWRITE, uri, (0, 3), True), 60)
        assert answer.get("result") == {"applied": False}, answer
        peer.barrier()
        assert any("still loading" in m for m in said(peer, 0)), said(peer, 0)
        assert peer.wait_ready()["state"] == "ready"
    finally:
        assert peer.stop() == 0
