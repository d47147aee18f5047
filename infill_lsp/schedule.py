"""The masking schedule shared by the training loss and the sampler.

Absorbing-state masked diffusion with a linear schedule: at time t in (0, 1] each maskable token
is masked independently with probability t. The sampler walks the same schedule backwards, from
all-masked towards clean.
"""

import math

import torch

EPS = 1e-3


def sample_mask_ratios(batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one mask ratio t per sequence, stratified over [EPS, 1] so a batch covers the range.

    Returns: (B,) float32.
    """
    u = (torch.arange(batch) + torch.rand(batch, generator=generator)) / batch  # (B,)
    u = u[torch.randperm(batch, generator=generator)]
    return EPS + (1 - EPS) * u


def masked_fraction(step: int, steps: int, kind: str) -> float:
    """The fraction of the span still masked after `step` of `steps` denoising steps.

    kind: "linear" (equal counts per step) or "cosine" (few commits early, more late).
    """
    s = min(max(step, 0), steps) / steps
    if kind == "linear":
        return 1.0 - s
    if kind == "cosine":
        return math.cos(math.pi / 2 * s)
    raise ValueError(f"unknown schedule {kind!r}: expected 'linear' or 'cosine'")


def commits_this_step(masked: int, total: int, step: int, steps: int, kind: str) -> int:
    """How many of `masked` remaining positions (of `total`) a fixed-count schedule commits now.

    Always at least one, and everything at the last step, so the budget always holds.
    """
    if masked <= 0:
        return 0
    if step >= steps - 1:
        return masked
    target_masked = math.floor(total * masked_fraction(step + 1, steps, kind))
    return max(1, min(masked, masked - target_masked))
