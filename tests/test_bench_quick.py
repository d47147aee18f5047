"""The benchmark suite's quick mode, end to end, on the tiny random model.

Runs `python -m tests.bench all --quick` as a real process (it starts the real server over
stdio itself) and checks that the report holds every table with numbers that make sense. The
model's text is noise: the tests check the measurements, not the model's quality.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infill_train.train import native_bf16

pytestmark = pytest.mark.slow  # a whole benchmark run: `pytest -m "not slow"` leaves it out

HEADINGS = (
    "## 1. Latency through the server (stdio)",
    "## 2. Diffusion against the autoregressive baseline",
    "## 3. Steps versus quality",
    "## 4. Training efficiency",
    "## Targets",
)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("bench")
    command = [sys.executable, "-m", "tests.bench", "all", "--quick",
               "--model", str(tiny_model_dir), "--out", str(out)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def results(bench: Path) -> dict[str, Any]:
    return json.loads((bench / "results.json").read_text())


def finite_positive(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_report_has_every_table(bench: Path) -> None:
    report = (bench / "report.md").read_text()
    for heading in HEADINGS:
        assert heading in report
    assert report.count("\n|---|") >= 5  # latency, two versus tables, sweep, training
    assert "server / AR(N)" in report and "share of matmul" in report


def test_server_latency_is_measured_per_cell(results: dict[str, Any]) -> None:
    latency = results["latency"]
    cells = {(row["file"], row["span_tokens"]) for row in latency["rows"]}
    assert len(cells) == len(latency["rows"]) == 2  # one file, canvases 8 and 32 in quick mode
    for row in latency["rows"]:
        assert row["requests"] == 3
        assert finite_positive(row["median_ms"]) and row["p95_ms"] >= row["median_ms"]
        assert 1 <= row["steps_median"] <= 16  # the default step budget bounds the passes
        assert 0.0 <= row["overhead_share"] <= 1.0
        assert 0.0 < row["forward_median_ms"] <= row["engine_median_ms"]
    assert latency["cold_start_first_completion_s"] >= latency["cold_start_ready_s"] > 0
    assert 50 < latency["rss_mib"] <= latency["peak_rss_mib"] + 1


def test_baseline_comparison_uses_the_same_work(results: dict[str, Any]) -> None:
    ratios = results["versus_latency"]
    assert [row["span_tokens"] for row in ratios] == [8, 32]
    for row in ratios:
        assert finite_positive(row["ratio_server_vs_ar_exact"])
        assert finite_positive(row["ar_exact_median_ms"])
        assert row["ar_free_tokens_median"] <= row["span_tokens"]
    kinds = [row["kind"] for row in results["versus_quality"]]
    assert kinds == ["line", "lines", "node"]
    for row in results["versus_quality"]:
        for name in ("diffusion", "ar"):
            assert 0.0 <= row[f"{name}_exact"] <= row[f"{name}_normalized"] <= 1.0
            assert 0.0 <= row[f"{name}_similarity"] <= 1.0
        if row["spans"]:
            assert 1 <= row["diffusion_passes_mean"] <= 16
            assert 1 <= row["ar_passes_mean"] <= row["canvas_tokens"]
    run = results["run"]
    gap = abs(run["baseline_parameters"] - run["model_parameters"])
    assert gap <= 0.1 * run["model_parameters"]  # the baseline is of the same size


def test_steps_versus_quality_curve(results: dict[str, Any], bench: Path) -> None:
    rows = results["sweep"]
    assert {row["confidence"] for row in rows} >= {"maxprob", "margin"}
    assert any(row["remask"] for row in rows)
    for row in rows:
        assert 1 <= row["passes_per_span"] <= row["steps"]
        assert 0.0 <= row["exact"] <= 1.0
    assert results["sweep_choice"] in rows
    assert (bench / "steps_quality.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_training_efficiency_against_matmul(results: dict[str, Any]) -> None:
    throughput = results["throughput"]
    assert throughput["matmul_flops"] > 1e8
    names = [row["name"] for row in throughput["rows"]]
    precisions = ["fp32", "bf16"] if native_bf16() else ["fp32"]
    expected = [f"{loop} test, {p}" for loop in ("diffusion", "autoregressive") for p in precisions]
    assert names == expected
    for row in throughput["rows"]:
        assert finite_positive(row["tokens_per_s"]) and finite_positive(row["flops_per_token"])
        assert 0.0 < row["share_of_matmul"] < 2.0
