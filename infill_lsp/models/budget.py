"""Where a model runs and whether it fits: device and dtype settings, sizes checked first.

A network is first built on torch's "meta" device (shapes only, no memory), so its size in the
chosen dtype is known, and its parameter names and shapes can be compared with the safetensors
headers, before a byte is allocated. Knows torch; nothing about tokenizers or families.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from infill_lsp.errors import ModelError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
HEADROOM = 0.9  # of the free memory a model may take (activations need the rest)
GIB = 1024**3


def resolve_device(setting: str) -> str:
    """The torch device for a `device` setting ("auto": CUDA when there is one, else CPU)."""
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device {setting!r} asked for, but torch sees no CUDA device here")
    return setting


def cpu_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (AVX-512 BF16 or AMX); elsewhere bf16
    is emulated and slower than float32."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(setting: str, device: str) -> torch.dtype:
    """The dtype for a `dtype` setting ("auto": bfloat16 on a GPU that has it and on a CPU that
    multiplies it natively, where a completion takes 0.6x the time at the same exact match, see
    BENCHMARKS.md; else float32)."""
    if setting == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        return torch.bfloat16 if device == "cpu" and cpu_bf16() else torch.float32
    if setting not in DTYPES:
        raise ModelError(f"unknown dtype {setting!r}: expected auto or one of {', '.join(DTYPES)}")
    return DTYPES[setting]


def free_bytes(device: str) -> int:
    """Memory free for a model on `device` (RAM for the CPU)."""
    if device.startswith("cuda"):
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def on_meta(build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """The network `build` makes, with shapes only (nothing allocated)."""
    with torch.device("meta"):
        return build()


def check_fits(network: torch.nn.Module, dtype: torch.dtype, device: str, directory: Path) -> None:
    """ModelError, with the numbers, when the network would not fit in the free memory."""
    count = sum(p.numel() for p in network.parameters())
    need = count * torch.empty((), dtype=dtype).element_size()
    free = free_bytes(device)
    if need > free * HEADROOM:
        raise ModelError(
            f"{directory / 'config.json'} describes {count / 1e9:.2f} billion parameters: "
            f"{need / GIB:.1f} GiB in {str(dtype).removeprefix('torch.')}, but {device} has "
            f"{free / GIB:.1f} GiB free; nothing was loaded"
        )


def check_shapes(
    network: torch.nn.Module,
    header: Mapping[str, tuple[list[int], str]],
    weights: Path,
    rename: Callable[[str], str] = lambda name: name,
    optional: set[str] | frozenset[str] = frozenset(),
) -> None:
    """ModelError when the weights' names and shapes (safetensors headers, renamed to the
    network's names) differ from what config.json describes; `optional` may be absent (tied)."""
    expected = {name: list(p.shape) for name, p in network.state_dict().items()}
    found = {rename(name): shape for name, (shape, _) in header.items()}
    missing = sorted(set(expected) - set(found) - set(optional))
    extra = sorted(set(found) - set(expected))
    wrong = sorted(n for n in set(expected) & set(found) if expected[n] != found[n])
    if missing or extra or wrong:
        problems = [f"{n}: config says {expected[n]}, weights hold {found[n]}" for n in wrong[:2]]
        problems += [f"missing {n}" for n in missing[:2]] + [f"unexpected {n}" for n in extra[:2]]
        count = len(missing) + len(extra) + len(wrong)
        raise ModelError(
            f"{weights} does not match {weights.parent / 'config.json'}: "
            f"{count} weights are missing or misshapen ({'; '.join(problems)})"
        )
