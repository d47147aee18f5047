"""Model directories, the front door: load one offline and safely, save one atomically.

`load_model` detects the directory's family and loads it through that family's module (see
`models.families`); `save_model` writes our own format (`models.ours`). Only safetensors weights
are read; no remote code runs. The rest of the package and training load and save through here.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from infill_lsp.models import families
from infill_lsp.models.files import WEIGHTS_FILE, atomic_directory
from infill_lsp.models.loaded import InfillModel, TokenIds, head_logits
from infill_lsp.models.ours import FORMAT, METADATA_FILE, OPTIONAL_ROLES, SPECIAL_TOKENS
from infill_lsp.models.ours import save as save_model

__all__ = [
    "DEFAULT_MODEL_DIR",
    "FORMAT",
    "METADATA_FILE",
    "OPTIONAL_ROLES",
    "SPECIAL_TOKENS",
    "WEIGHTS_FILE",
    "InfillModel",
    "TokenIds",
    "atomic_directory",
    "head_logits",
    "load_model",
    "save_model",
    "use_threads",
]

log = logging.getLogger(__name__)

DEFAULT_MODEL_DIR = Path(__file__).parent / "default_model"


_DEFAULT_THREADS = torch.get_num_threads()


def use_threads(count: int | None) -> None:
    """Run the model's CPU kernels on `count` threads (None or 0: torch's own choice, all cores).

    Process-wide. One thread keeps latency steady when something else (a build, a training run)
    has the other cores: several threads then wait on each other at every kernel.
    """
    torch.set_num_threads(count or _DEFAULT_THREADS)


def load_model(
    directory: str | Path | None = None,
    device: str = "cpu",
    family: str = families.AUTO,
    dtype: str = "auto",
) -> InfillModel:
    """Load a model directory (the embedded default when None); raise ModelError if unusable.

    `family` forces a model family instead of detecting it from the directory's files; `device`
    and `dtype` may be "auto" (CUDA and bfloat16 where there is a GPU, else CPU and float32).
    """
    path = Path(directory).expanduser() if directory else DEFAULT_MODEL_DIR
    return families.load(path, device, family, dtype)
