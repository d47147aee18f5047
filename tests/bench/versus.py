"""Diffusion against the autoregressive baseline: latency on the same prompts, exact match on the
same held-out spans.

Latency: the baseline decodes each server request's prompt right after the server answered it
(a companion of `latency.measure`), once forced to exactly the canvas size in tokens and once
stopping at its own end sentinel, both greedy with a KV cache. Quality: both models fill the same
held-out spans (single lines, 2-8 lines, syntax nodes; length unknown to either), alternating
span by span. This module knows both models' public calls, not their internals.
"""

from __future__ import annotations

import difflib
import time
from typing import Any

from infill_lsp.engine import DecodeOptions, Engine
from infill_lsp.model import InfillModel
from infill_train.baseline import Baseline
from infill_train.evaluate import CANVAS_TOKENS, KINDS, normalize
from tests.bench.common import Heldout, RunConfig, log, median, p95, span_sample
from tests.bench.latency import Companion, Request


def companion(baseline: Baseline) -> Companion:
    """Time the baseline on a server request's prompt: exactly N tokens, and free length."""

    def measure(request: Request) -> dict[str, Any]:
        started = time.perf_counter()
        exact = baseline.infill(
            request.prefix, request.suffix, max_tokens=request.span_tokens, exact_tokens=True
        )
        middle = time.perf_counter()
        free = baseline.infill(request.prefix, request.suffix, max_tokens=request.span_tokens)
        end = time.perf_counter()
        return {
            "ar_exact_seconds": middle - started,
            "ar_exact_passes": exact.passes,
            "ar_free_seconds": end - middle,
            "ar_free_tokens": free.tokens,
        }

    return measure


def latency_ratios(requests: list[Request], companions: list[dict[str, Any]]) -> list[dict]:
    """Per canvas size and compared server settings, over all files: server, engine and
    baseline medians and their ratios."""
    rows = []
    # by canvas size, the settings in the order they were asked (the defaults first)
    cells = sorted(dict.fromkeys((r.span_tokens, r.variant) for r in requests), key=lambda c: c[0])
    for span, variant in cells:
        picked = [
            i for i, r in enumerate(requests) if (r.span_tokens, r.variant) == (span, variant)
        ]
        server = median([requests[i].seconds for i in picked])
        engine = median([companions[i]["engine_seconds"] for i in picked])
        exact = median([companions[i]["ar_exact_seconds"] for i in picked])
        free = median([companions[i]["ar_free_seconds"] for i in picked])
        rows.append(
            {
                "span_tokens": span,
                "variant": variant,
                "requests": len(picked),
                "server_median_ms": 1000 * server,
                "engine_median_ms": 1000 * engine,
                "ar_exact_median_ms": 1000 * exact,
                "ar_free_median_ms": 1000 * free,
                "ar_free_tokens_median": median(
                    [float(companions[i]["ar_free_tokens"]) for i in picked]
                ),
                "diffusion_steps_median": median([float(companions[i]["steps"]) for i in picked]),
                "ratio_server_vs_ar_exact": server / exact,
                "ratio_engine_vs_ar_exact": engine / exact,
                "ratio_server_vs_ar_free": server / free,
            }
        )
    return rows


def similarity(guess: str, target: str) -> float:
    """Character-level similarity in 0..1 (a smoother signal than exact match)."""
    return difflib.SequenceMatcher(None, guess, target, autojunk=False).ratio()


def quality(
    config: RunConfig, model: InfillModel, baseline: Baseline, heldout: Heldout
) -> list[dict[str, Any]]:
    """Exact match, similarity, passes and latency of both models on the same held-out spans."""
    engine = Engine(model, DecodeOptions(seed=config.seed))
    rows = []
    for kind in KINDS:
        log(f"versus: {kind} spans")
        canvas = CANVAS_TOKENS[kind]
        spans = span_sample(heldout, kind, config.spans, config.seed)
        spans = [
            s
            for s in spans
            if len(model.encode(s.target)) <= canvas and len(baseline.encode(s.target)) <= canvas
        ]
        single = kind == "line"
        found: dict[str, list[float]] = {}
        for span in spans:
            started = time.perf_counter()
            [fill] = engine.infill(span.prefix, span.suffix, single_line=single, max_tokens=canvas)
            seconds = time.perf_counter() - started
            started = time.perf_counter()
            ar = baseline.infill(span.prefix, span.suffix, max_tokens=canvas, single_line=single)
            ar_seconds = time.perf_counter() - started
            for name, text, passes, spent in (
                ("diffusion", fill.text, fill.passes, seconds),
                ("ar", ar.text, ar.passes, ar_seconds),
            ):
                found.setdefault(f"{name}_exact", []).append(float(text == span.target))
                found.setdefault(f"{name}_normalized", []).append(
                    float(normalize(text) == normalize(span.target))
                )
                found.setdefault(f"{name}_similarity", []).append(similarity(text, span.target))
                found.setdefault(f"{name}_passes", []).append(float(passes))
                found.setdefault(f"{name}_seconds", []).append(spent)
        count = max(1, len(spans))
        row: dict[str, Any] = {"kind": kind, "spans": len(spans), "canvas_tokens": canvas}
        for name in ("diffusion", "ar"):
            row[f"{name}_exact"] = sum(found.get(f"{name}_exact", [])) / count
            row[f"{name}_normalized"] = sum(found.get(f"{name}_normalized", [])) / count
            row[f"{name}_similarity"] = sum(found.get(f"{name}_similarity", [])) / count
            row[f"{name}_passes_mean"] = sum(found.get(f"{name}_passes", [])) / count
            row[f"{name}_median_ms"] = 1000 * median(found.get(f"{name}_seconds", []))
            row[f"{name}_p95_ms"] = 1000 * p95(found.get(f"{name}_seconds", []))
        row["latency_ratio"] = row["diffusion_median_ms"] / max(1e-9, row["ar_median_ms"])
        rows.append(row)
    return rows
