"""Render a benchmark run's results as Markdown tables (the body of BENCHMARKS.md).

Pure formatting: a results dict in, text out. Targets from issue 7 are checked here so the
report says plainly which were met and by how much the others were missed.
"""

from __future__ import annotations

from typing import Any

TARGET_RATIO = 0.5  # server median / AR median at 32 tokens
TARGET_OVERHEAD = 0.10  # share of a request's time outside forward passes
TARGET_MATMUL_SHARE = 0.5  # training FLOP/s / dense matmul FLOP/s


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def latency_section(latency: dict[str, Any]) -> str:
    rows = [
        [
            r["file"],
            str(r["span_tokens"]),
            r.get("variant", "defaults"),
            str(r["requests"]),
            f"{r['median_ms']:.0f}",
            f"{r['p95_ms']:.0f}",
            f"{r['steps_median']:.0f}",
            f"{r.get('tokens_per_step', float('nan')):.2f}",
            f"{r['forward_median_ms']:.0f}",
            _pct(r["overhead_share"]),
            _pct(r["engine_overhead_share"]),
            f"{r['exact']}/{r['requests']}",
        ]
        for r in latency["rows"]
    ]
    table = _table(
        ["file", "canvas tokens", "settings", "requests", "median ms", "p95 ms", "steps (median)",
         "tokens per step", "forward ms (median)", "server: outside forwards",
         "engine: outside forwards", "exact line"],
        rows,
    )  # fmt: skip
    facts = (
        f"Cold start (process start to model ready): {latency['cold_start_ready_s']:.1f} s; "
        f"to the first completion: {latency['cold_start_first_completion_s']:.1f} s "
        f"(median of {latency['cold_starts']}); the first request itself: "
        f"{latency.get('first_request_ms', float('nan')):.0f} ms, the same request asked again "
        f"warm: {latency.get('first_request_warm_ms', float('nan')):.0f} ms. Resident memory: "
        f"{latency['rss_after_load_mib']:.0f} MiB after loading, {latency['rss_mib']:.0f} MiB "
        f"after all requests, peak {latency['peak_rss_mib']:.0f} MiB."
    )
    return table + "\n\n" + facts


def versus_section(ratios: list[dict[str, Any]], quality: list[dict[str, Any]]) -> str:
    latency = _table(
        ["canvas tokens", "settings", "requests", "server median ms", "engine median ms",
         "AR exactly N ms", "AR own stop ms (tokens)", "diffusion steps",
         "server / AR(N)", "engine / AR(N)", "server / AR(own stop)"],
        [
            [
                str(r["span_tokens"]), r.get("variant") or "defaults", str(r["requests"]),
                f"{r['server_median_ms']:.0f}",
                f"{r['engine_median_ms']:.0f}", f"{r['ar_exact_median_ms']:.0f}",
                f"{r['ar_free_median_ms']:.0f} ({r['ar_free_tokens_median']:.0f})",
                f"{r['diffusion_steps_median']:.0f}", f"{r['ratio_server_vs_ar_exact']:.2f}",
                f"{r['ratio_engine_vs_ar_exact']:.2f}", f"{r['ratio_server_vs_ar_free']:.2f}",
            ]
            for r in ratios
        ],
    )  # fmt: skip
    exact = _table(
        ["spans", "n", "canvas", "diffusion exact", "AR exact", "diffusion normalized",
         "AR normalized", "diffusion similarity", "AR similarity", "diffusion passes",
         "AR passes", "diffusion median ms", "AR median ms", "latency ratio"],
        [
            [
                q["kind"], str(q["spans"]), str(q["canvas_tokens"]), _pct(q["diffusion_exact"]),
                _pct(q["ar_exact"]), _pct(q["diffusion_normalized"]), _pct(q["ar_normalized"]),
                _pct(q["diffusion_similarity"]), _pct(q["ar_similarity"]),
                f"{q['diffusion_passes_mean']:.1f}", f"{q['ar_passes_mean']:.1f}",
                f"{q['diffusion_median_ms']:.0f}", f"{q['ar_median_ms']:.0f}",
                f"{q['latency_ratio']:.2f}",
            ]
            for q in quality
        ],
    )  # fmt: skip
    return (
        "Latency on the server's own requests (each prompt decoded by the baseline right after "
        "the server answered it):\n\n" + latency + "\n\nHeld-out exact match, same spans, "
        "length unknown to both:\n\n" + exact
    )


def sweep_section(rows: list[dict[str, Any]], chosen: dict[str, Any]) -> str:
    table = _table(
        ["confidence", "remask", "threshold", "step budget", "exact", "normalized",
         "similarity", "passes/span", "median ms"],
        [
            [
                r["confidence"], "yes" if r["remask"] else "no", f"{r['threshold']:g}",
                str(r["steps"]), _pct(r["exact"]), _pct(r["normalized"]),
                _pct(r["similarity"]), f"{r['passes_per_span']:.1f}", f"{r['median_ms']:.0f}",
            ]
            for r in rows
        ],
    )  # fmt: skip
    pick = (
        f"Chosen from the curve (cheapest within one span of the best exact match): "
        f"confidence={chosen['confidence']}, threshold={chosen['threshold']:g}, "
        f"steps={chosen['steps']}, remask={'on' if chosen['remask'] else 'off'} "
        f"({_pct(chosen['exact'])} exact, {chosen['passes_per_span']:.1f} passes per span)."
    )
    return table + "\n\n" + pick


def throughput_section(throughput: dict[str, Any]) -> str:
    table = _table(
        ["loop", "parameters", "batch x context", "tokens/s", "GFLOP/token (fwd+bwd)",
         "achieved GFLOP/s", "share of matmul"],
        [
            [
                r["name"], f"{r['parameters'] / 1e6:.2f} M", f"{r['batch']} x {r['context']}",
                f"{r['tokens_per_s']:,.0f}", f"{r['flops_per_token'] / 1e9:.4f}",
                f"{r['achieved_flops'] / 1e9:.1f}", _pct(r["share_of_matmul"]),
            ]
            for r in throughput["rows"]
        ],
    )  # fmt: skip
    return (
        f"Dense float32 matmul ({throughput['matmul_size']}x{throughput['matmul_size']}, "
        f"median, same run): {throughput['matmul_flops'] / 1e9:.1f} GFLOP/s.\n\n" + table
    )


def targets(results: dict[str, Any]) -> list[str]:
    """One line per issue-7 target: met or missed, and by how much."""
    lines = []
    # the server's defaults (the first compared settings) stand for the server
    ratios: dict[int, dict[str, Any]] = {}
    for r in results.get("versus_latency", []):
        ratios.setdefault(r["span_tokens"], r)
    quality = {q["kind"]: q for q in results.get("versus_quality", [])}
    if 32 in ratios:
        ratio = ratios[32]["ratio_server_vs_ar_exact"]
        met = ratio <= TARGET_RATIO
        lines.append(
            f"- Server median latency / AR at 32 tokens: {ratio:.2f} (target <= {TARGET_RATIO}): "
            + ("met" if met else f"missed by {ratio / TARGET_RATIO:.1f}x")
        )
    if quality:
        better = all(q["diffusion_exact"] >= q["ar_exact"] for q in quality.values())
        floor = all(q["diffusion_exact"] == q["ar_exact"] == 0 for q in quality.values())
        verdict = "yes" if better else "no"
        if floor:
            verdict = "no signal: both models at 0 % on every kind at this training budget"
        lines.append("- Exact match at least the baseline's on every span kind: " + verdict)
    if "latency" in results:
        shares = [r["overhead_share"] for r in results["latency"]["rows"]]
        worst = max(shares)
        lines.append(
            f"- Time outside forward passes: median per cell {_pct(min(shares))} to "
            f"{_pct(worst)} (target < {_pct(TARGET_OVERHEAD)}): "
            + ("met" if worst < TARGET_OVERHEAD else "missed in some cells")
        )
    if "throughput" in results:
        for row in results["throughput"]["rows"]:
            share = row["share_of_matmul"]
            lines.append(
                f"- {row['name']}: {_pct(share)} of matmul FLOP/s (target >= "
                f"{_pct(TARGET_MATMUL_SHARE)}): "
                + ("met" if share >= TARGET_MATMUL_SHARE else "missed")
            )
    return lines


def render(results: dict[str, Any]) -> str:
    """The whole report."""
    parts = ["## Run", "", "```", *[f"{k}: {v}" for k, v in results["run"].items()], "```", ""]
    sections = [
        ("latency", "1. Latency through the server (stdio)",
         lambda: latency_section(results["latency"])),
        ("versus_quality", "2. Diffusion against the autoregressive baseline",
         lambda: versus_section(results["versus_latency"], results["versus_quality"])),
        ("sweep", "3. Steps versus quality",
         lambda: sweep_section(results["sweep"], results["sweep_choice"])),
        ("throughput", "4. Training efficiency",
         lambda: throughput_section(results["throughput"])),
    ]  # fmt: skip
    for key, title, body in sections:
        if key in results:
            parts += [f"## {title}", "", body(), ""]
    parts += ["## Targets", "", *targets(results), ""]
    return "\n".join(parts)
