"""What every benchmark shares: the run's settings, held-out text, statistics and the machine.

Held-out text comes from a corpus's held-out split (files never trained on) when one is given,
else from the Python standard library (quick mode, CI). Statistics are medians and 95th
percentiles; absolute times on a shared machine are noisy, so tables lead with ratios.
This module knows nothing about LSP or about either model's internals.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from infill_train.evaluate import Span, sample_spans

STDLIB = Path(os.__file__).parent


@dataclass
class RunConfig:
    """One benchmark run: which models, which data, how much work."""

    model: Path
    baseline: Path | None
    corpus: Path | None
    out: Path
    quick: bool = False
    seed: int = 0
    requests: int = 30  # per (file, span) cell of the server table
    spans: int = 100  # held-out spans per kind for exact match
    sweep_spans: int = 60  # spans per point of the steps-versus-quality curve
    cold_starts: int = 3
    span_tokens: tuple[int, ...] = (8, 32, 64)
    file_lines: tuple[int, ...] = (100, 500, 2000)
    presets: tuple[str, ...] = ("test", "tiny", "small", "base")
    threads: int | None = None  # torch threads here and in the server (None: torch's default)
    # Server settings compared in the latency section, request by request on the same lines
    # (each a dict of camelCase settings; {} is the server's defaults).
    variants: tuple[dict[str, Any], ...] = ({},)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def quick_mode(cls, **kwargs: Any) -> RunConfig:
        """Settings small enough for CI (well under two minutes on the tiny model)."""
        return cls(
            quick=True,
            requests=3,
            spans=3,
            sweep_spans=3,
            cold_starts=1,
            span_tokens=(8, 32),
            file_lines=(100,),
            presets=("test",),
            **kwargs,
        )


def log(message: str) -> None:
    """Progress on stderr (stdout stays free for results)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p95(values: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered) + 0.5) - 1))]


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """`with stopwatch() as elapsed:` then `elapsed()` in seconds (frozen at exit)."""
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


# --- held-out text --------------------------------------------------------------------------


@dataclass(frozen=True)
class Heldout:
    """Held-out files: their paths, languages and texts."""

    paths: list[str]
    languages: list[str]
    texts: list[str]
    source: str


def load_heldout(corpus: Path | None) -> Heldout:
    """The corpus's held-out split, or standard-library Python files when there is no corpus."""
    if corpus is not None and (corpus / "corpus.json").is_file():
        from infill_train.corpus import load_corpus

        split = load_corpus(corpus)["heldout"]
        return Heldout(
            list(split["path"]), list(split["language"]), list(split["text"]), str(corpus)
        )
    paths = sorted(str(p) for p in STDLIB.glob("*.py"))
    texts = [Path(p).read_text(encoding="utf-8", errors="replace") for p in paths]
    return Heldout(paths, ["python"] * len(paths), texts, f"{STDLIB}/*.py")


def python_files_by_lines(heldout: Heldout, targets: tuple[int, ...]) -> list[tuple[str, str]]:
    """For each target line count, the held-out Python file closest to it: (path, text)."""
    chosen: list[tuple[str, str]] = []
    candidates = [
        (path, text)
        for path, language, text in zip(
            heldout.paths, heldout.languages, heldout.texts, strict=True
        )
        if language == "python" and "\t" not in text
    ]
    for target in targets:
        path, text = min(candidates, key=lambda c: abs(c[1].count("\n") - target))
        chosen.append((path, text))
    return chosen


def span_sample(heldout: Heldout, kind: str, count: int, seed: int) -> list[Span]:
    """Held-out spans of `kind`, the same for every model (drawn by character offsets)."""
    return sample_spans(heldout.texts, heldout.languages, kind, count, seed)


# --- the machine --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What ran the benchmark."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = int(line.split()[1]) // 1024
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_mib": memory,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in load],
    }


def rss_mib(pid: int) -> tuple[float, float]:
    """(resident, peak resident) memory of a process in MiB, from /proc."""
    now = peak = float("nan")
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                now = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    except OSError:
        pass
    return now, peak
