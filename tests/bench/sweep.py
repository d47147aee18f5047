"""Steps versus quality: exact match and forward passes per span as the sampler settings vary.

The same held-out single-line spans (canvas of 32 tokens, length unknown) are filled at every
point of a grid over the step budget, the commit threshold, the confidence kind and remasking.
The plot shows exact match (and a smoother character similarity) against forward passes per
span, one line per confidence kind. This module knows `DecodeOptions`, nothing of the server.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from infill_lsp.engine import DecodeOptions, Engine
from infill_lsp.model import InfillModel
from infill_train.evaluate import CANVAS_TOKENS, normalize
from tests.bench.common import Heldout, RunConfig, log, median, span_sample
from tests.bench.versus import similarity

KIND = "line"


@dataclass(frozen=True)
class Point:
    """One setting of the sampler."""

    steps: int
    threshold: float
    confidence: str = "maxprob"
    remask: bool = False


def grid(quick: bool) -> list[Point]:
    """The settings measured: thresholds x budgets per confidence kind, plus remasking."""
    if quick:
        return [Point(4, 0.9), Point(8, 0.9), Point(8, 0.9, "margin"), Point(8, 0.9, remask=True)]
    points = [Point(s, t) for s in (4, 8, 16, 32) for t in (0.5, 0.7, 0.9, 0.97)]
    points += [
        Point(s, t, kind) for kind in ("margin", "entropy") for s in (8, 16) for t in (0.5, 0.9)
    ]
    points += [Point(s, t, "maxprob", True) for s in (16, 32) for t in (0.7, 0.9)]
    return points


def run(config: RunConfig, model: InfillModel, heldout: Heldout) -> list[dict[str, Any]]:
    """Measure every grid point on the same spans."""
    canvas = CANVAS_TOKENS[KIND]
    spans = span_sample(heldout, KIND, config.sweep_spans, config.seed + 1)
    spans = [s for s in spans if len(model.encode(s.target)) <= canvas]
    engine = Engine(model)
    rows = []
    for point in grid(config.quick):
        log(f"sweep: {point}")
        options = DecodeOptions(
            steps=point.steps,
            threshold=point.threshold,
            confidence=point.confidence,
            remask=point.remask,
            seed=config.seed,
        )
        exact = normalized = close = passes = 0.0
        seconds: list[float] = []
        for span in spans:
            started = time.perf_counter()
            [fill] = engine.infill(
                span.prefix, span.suffix, single_line=True, max_tokens=canvas, options=options
            )
            seconds.append(time.perf_counter() - started)
            exact += fill.text == span.target
            normalized += normalize(fill.text) == normalize(span.target)
            close += similarity(fill.text, span.target)
            passes += fill.passes
        count = max(1, len(spans))
        rows.append(
            {
                **asdict(point),
                "spans": len(spans),
                "exact": exact / count,
                "normalized": normalized / count,
                "similarity": close / count,
                "passes_per_span": passes / count,
                "median_ms": 1000 * median(seconds),
            }
        )
    return rows


def choose_defaults(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The cheapest setting within one span's worth of the best exact match (ties: similarity).

    With N spans a difference of one span is noise, so anything within 1/N of the best exact
    match counts as equally good; among those the fewest forward passes win.
    """
    spans = max(1, max(r["spans"] for r in rows))
    best = max(r["exact"] for r in rows)
    close = [r for r in rows if r["exact"] >= best - 1.0 / spans]
    top = max(r["similarity"] for r in close)
    close = [r for r in close if r["similarity"] >= top - 0.02] or close
    return min(close, key=lambda r: (r["passes_per_span"], -r["exact"]))


def plot(rows: list[dict[str, Any]], out: Path, title: str) -> Path:
    """Exact match and similarity against forward passes per span; a PNG at `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"maxprob": ("o", "-"), "margin": ("s", "--"), "entropy": ("^", ":")}
    thresholds = sorted({r["threshold"] for r in rows})
    colors = {t: plt.get_cmap("viridis")(i / max(1, len(thresholds) - 1))
              for i, t in enumerate(thresholds)}  # fmt: skip
    for metric, axis in zip(("exact", "similarity"), axes, strict=True):
        for kind, (marker, dash) in styles.items():
            for remask in (False, True):
                picked = [r for r in rows if r["confidence"] == kind and r["remask"] == remask]
                # one curve per threshold: the step budget moves along it
                for threshold in sorted({r["threshold"] for r in picked}):
                    line = sorted(
                        (r for r in picked if r["threshold"] == threshold),
                        key=lambda r: r["passes_per_span"],
                    )
                    label = f"{kind} t={threshold:g}" + (" +remask" if remask else "")
                    axis.plot(
                        [r["passes_per_span"] for r in line],
                        [100 * r[metric] for r in line],
                        marker=marker,
                        linestyle=dash if not remask else "-.",
                        color=colors[threshold],
                        markerfacecolor="white" if remask else colors[threshold],
                        label=label,
                        alpha=0.85,
                    )
        axis.set_xlabel("forward passes per span (mean)")
        axis.set_ylabel(
            "exact match (%)" if metric == "exact" else "character similarity to target (%)"
        )
        axis.grid(alpha=0.3)
    axes[1].legend(fontsize=7, ncol=2)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out
