"""The server warms its model up before saying it is ready, and a failing warm-up loads anyway."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from infill_lsp.engine import Engine
from infill_lsp.lsp import server
from infill_lsp.model import load_model


def test_loading_runs_one_completion_before_the_model_is_ready(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, str, bool]] = []
    original = Engine.infill

    def infill(self: Engine, prefix: str, suffix: str, **kwargs: object) -> object:
        asked.append((prefix, suffix, bool(kwargs.get("single_line"))))
        return original(self, prefix, suffix, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Engine, "infill", infill)
    engine = server._build_engine(str(tiny_model_dir), "cpu", "auto", "auto")
    assert len(asked) == 1 and asked[0][2]  # one single-line completion, as ghost text asks
    assert engine._newline_ids is not None  # its line-break table is built, not the user's


def test_a_failing_warm_up_is_logged_and_the_model_still_loads(
    tiny_model_dir: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Engine, *args: object, **kwargs: object) -> object:
        raise RuntimeError("no completion today")

    engine = Engine(load_model(tiny_model_dir))
    monkeypatch.setattr(Engine, "infill", broken)
    with caplog.at_level(logging.WARNING, logger=server.__name__):
        server._warm_up(engine)
    assert "warm-up completion failed: no completion today" in caplog.text
