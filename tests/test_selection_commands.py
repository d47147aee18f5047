"""Issue 25: commands do what they say. Over stdio with the real server (the tiny random model):
a character-wise rewrite changes only the selection, and widening it happens when asked and is
said. With the engine: fill holes fills only the markers it is given, each hole its own span.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from pytest_lsp import LanguageClient

import infill_lsp.decoder
from infill_lsp.engine import Engine
from infill_lsp.model import load_model
from infill_lsp.options import DecodeOptions
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
