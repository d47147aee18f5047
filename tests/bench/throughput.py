"""Training efficiency: tokens/s of each size preset and achieved FLOP/s against dense matmul.

The machine's ceiling is measured in the same run: the median of repeated float32 2048x2048
matrix products. Each preset trains for a few steps through `infill_train.train.train` itself (the
real loop: data, masking, forward, backward, optimizer) and reports tokens/s; the FLOPs of one
training step are counted by torch's FlopCounterMode on a batch of the same loop, so achieved
FLOP/s = FLOPs per token x tokens/s. The autoregressive baseline's loop is measured the same way.
Each loop runs in float32 and, where the hardware does bf16 natively, in bf16 (what training
uses there); the share is always of the float32 matmul rate.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer
from torch.utils.flop_counter import FlopCounterMode

from infill_train.baseline import FIM, build_baseline, fim_tokenizer
from infill_train.objective import ObjectiveConfig
from infill_train.sizes import build_network
from infill_train.tokenizer import token_ids
from infill_train.train import DIFFUSION, LoopObjective, TrainConfig, native_bf16, train
from tests.bench.common import Heldout, RunConfig, log, median

MATMUL_SIZE = 2048


def matmul_flops(repeats: int = 10, size: int = MATMUL_SIZE) -> float:
    """Median dense float32 matmul FLOP/s of this machine, now."""
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - started)
    return 2 * size**3 / median(times)


def step_flops(
    network: torch.nn.Module,
    tokenizer: Tokenizer,
    objective: LoopObjective,
    config: TrainConfig,
    heldout: Heldout,
) -> tuple[float, int]:
    """(FLOPs of one forward+backward training step, tokens in that step)."""
    examples = objective.examples(
        heldout.texts, heldout.languages, tokenizer, config.objective, config.seed
    )
    generator = torch.Generator().manual_seed(0)
    batch = objective.collate(
        [examples[i] for i in range(config.batch)],
        token_ids(tokenizer),
        tokenizer.get_vocab_size(),
        generator,
        0.0,
    )
    network.train()
    counter = FlopCounterMode(display=False)
    with counter:
        loss = objective.loss(network, batch, token_ids(tokenizer).mask)
        loss.backward()
    network.zero_grad(set_to_none=True)
    return float(counter.get_total_flops()), batch.tokens


def measure_loop(
    name: str,
    network: torch.nn.Module,
    tokenizer: Tokenizer,
    objective: LoopObjective,
    config: TrainConfig,
    heldout: Heldout,
    steps: int,
) -> dict[str, Any]:
    """Tokens/s of `steps` training steps through the real loop, and FLOP/s achieved."""
    flops, tokens = step_flops(network, tokenizer, objective, config, heldout)
    # The first step pays one-off costs (allocations, lazy init): train one, then time the rest.
    # The loop stops on tokens seen; `tokens` of the counted batch sets the number of steps.
    with tempfile.TemporaryDirectory(prefix="infill-bench-") as scratch:
        for label, budget in (("warm", 1), ("timed", steps * tokens)):
            state = train(
                network, tokenizer, heldout.texts, heldout.languages,
                replace(config, max_tokens=budget), Path(scratch) / label,
                progress=False, objective=objective,
            )  # fmt: skip
    rate = state.tokens / max(1e-9, state.seconds)
    return {
        "name": name,
        "parameters": sum(p.numel() for p in network.parameters()),
        "batch": config.batch,
        "context": config.objective.context,
        "steps": state.step,
        "tokens_per_s": rate,
        "flops_per_token": flops / tokens,
        "achieved_flops": rate * flops / tokens,
    }


def run(config: RunConfig, tokenizer: Tokenizer, heldout: Heldout) -> dict[str, Any]:
    """Every preset (and the baseline at the matched size) against the measured matmul rate."""
    peak_before = matmul_flops()
    context = 256 if not config.quick else 64
    batch = 32 if not config.quick else 4
    steps = 6 if not config.quick else 2
    objective = ObjectiveConfig(context=context)
    loop = TrainConfig(batch=batch, warmup_tokens=1, checkpoint_minutes=1e9, objective=objective)
    precisions = ["fp32", "bf16"] if native_bf16() else ["fp32"]
    rows = []
    for size in config.presets:
        for precision in precisions:
            log(f"training: {size}, {precision}")
            torch.manual_seed(0)
            network: torch.nn.Module = build_network(
                size, tokenizer, max_positions=max(1024, context)
            )
            rows.append(
                measure_loop(
                    f"diffusion {size}, {precision}", network, tokenizer, DIFFUSION,
                    replace(loop, size=size, precision=precision), heldout, steps,
                )
            )  # fmt: skip
    baseline_size = "small" if "small" in config.presets else config.presets[0]
    fim = fim_tokenizer(tokenizer)
    for precision in precisions:
        torch.manual_seed(0)
        network = build_baseline(fim, baseline_size, context)
        rows.append(
            measure_loop(
                f"autoregressive {baseline_size}, {precision}", network, fim, FIM,
                replace(loop, size=baseline_size, precision=precision), heldout, steps,
            )
        )  # fmt: skip
    peak = median([peak_before, matmul_flops()])
    for row in rows:
        row["share_of_matmul"] = row["achieved_flops"] / peak
    return {"matmul_flops": peak, "matmul_size": MATMUL_SIZE, "rows": rows}
