"""Shared fixtures: a tiny model directory built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny_model import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A loadable model directory with a tiny random encoder and an in-process tokenizer."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")
