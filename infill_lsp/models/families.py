"""The model families: which module reads a directory, detected from its files or forced.

Each family is one small module with `NAME`, `claims(directory, config)` (whether config.json's
`model_type` / `architectures` or the files say it is theirs) and `load(directory, device,
dtype)`. Adding a family is adding its module to `FAMILIES`. Detection asks each family in turn;
a forced family skips detection. No family ever runs code from a download.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from infill_lsp.errors import ModelError
from infill_lsp.models import dream, llada, masked_lm, ours
from infill_lsp.models.budget import resolve_device
from infill_lsp.models.files import model_directory, read_config
from infill_lsp.models.loaded import InfillModel

AUTO = "auto"


class Family(Protocol):
    """What a family's module provides."""

    NAME: str

    def claims(self, directory: Path, config: dict[str, Any]) -> bool: ...

    def load(self, directory: Path, device: str, dtype: str) -> InfillModel: ...


# Asked in this order: our own format first (it is also a masked LM).
FAMILIES: dict[str, Family] = {family.NAME: family for family in (ours, dream, llada, masked_lm)}


def detect(directory: Path, config: dict[str, Any]) -> str:
    """The family of a directory: the first whose module claims it, else "ours"."""
    for name, module in FAMILIES.items():
        if module.claims(directory, config):
            return name
    return ours.NAME  # today's behaviour: read it as ours, which says what is missing


def load(
    directory: Path, device: str = "cpu", family: str = AUTO, dtype: str = "auto"
) -> InfillModel:
    """Load a model directory through its family's module; ModelError if it is unusable."""
    model_directory(directory)
    config = read_config(directory)
    if family != AUTO and family not in FAMILIES:
        known = ", ".join(sorted(FAMILIES))
        raise ModelError(f"unknown model family {family!r}: expected {AUTO} or one of {known}")
    name = detect(directory, config) if family == AUTO else family
    return FAMILIES[name].load(directory, resolve_device(device), dtype)
