"""The training loop: from scratch or from a model directory, resumable, bounded by time or tokens.

Runs on `accelerate`, so the same code trains on one CPU, one GPU or many machines
(`accelerate launch -m training.cli train ...`). Matrix products run in bf16 (weights and
optimizer stay float32) wherever the hardware does bf16 natively: on a CPU with AVX-512 BF16 or
AMX that is 1.3 times the tokens per second of float32 at the same loss. The learning rate
follows the tokens seen (linear warm-up, cosine decay), so a run resumed any number of times
follows one schedule.
A checkpoint (weights, optimizer, step, data position, network config, tokenizer) is written
every few minutes and on Ctrl-C; `--resume` continues exactly where it stopped. At the end the
model directory is written atomically next to the checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer
from tqdm import tqdm
from transformers import ModernBertConfig, ModernBertForMaskedLM
from transformers.utils import logging as hf_logging

from infill_lsp.model import atomic_directory, save_model
from training.card import model_card
from training.objective import (
    Batch,
    Example,
    Examples,
    ObjectiveConfig,
    collate,
    masked_loss,
    token_ids,
)

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything that shapes a training run."""

    size: str = "small"
    batch: int = 32
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_tokens: int = 2_000_000
    schedule_tokens: int = 200_000_000  # the cosine decay's length, across all resumptions
    weight_decay: float = 0.01
    clip: float = 1.0
    max_tokens: int | None = None  # stop after this many tokens in total
    max_minutes: float | None = None  # stop after this many minutes in this sitting
    checkpoint_minutes: float = 10.0
    seed: int = 0
    precision: str = "auto"  # "auto" (bf16 where the hardware has it), "bf16" or "fp32"
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)


@dataclass
class TrainState:
    """Where a run stands; saved with every checkpoint."""

    step: int = 0
    tokens: int = 0
    seconds: float = 0.0
    # Process CPU time (all threads), the budget's real unit. Runs older than this counter
    # recorded only wall time: cpu_counted_from says at how many tokens the count began.
    cpu_seconds: float = 0.0
    cpu_counted_from: int = 0
    loss: float = float("nan")
    history: list[dict[str, float]] = field(default_factory=list)  # loss curve, coarse


@dataclass(frozen=True)
class LoopObjective:
    """What the loop optimises: examples, batches and the loss (masked diffusion by default).

    The hook lets another objective (the autoregressive baseline in `training.baseline`) reuse
    the loop, its schedule, checkpoints and model directory as they are.
    """

    name: str
    examples: Callable[[list[str], list[str], Tokenizer, ObjectiveConfig, int], Any]
    collate: Callable[[list[Example], Any, int, torch.Generator, float], Batch]
    loss: Callable[[torch.nn.Module, Batch, int], torch.Tensor]


DIFFUSION = LoopObjective(
    "absorbing-state masked diffusion (linear schedule, mean over masked units)",
    lambda texts, languages, tokenizer, objective, seed: Examples(
        texts, languages, tokenizer, objective, seed=seed
    ),
    collate,
    masked_loss,
)


class TrainingError(Exception):
    """Training cannot start or continue; the message says why."""


def native_bf16() -> bool:
    """Whether this machine multiplies bf16 matrices natively: a CUDA GPU, or a CPU with the
    AVX-512 BF16 or AMX instructions (elsewhere bf16 is emulated and slower than float32)."""
    if torch.cuda.is_available():
        return True
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def uses_bf16(precision: str) -> bool:
    """Whether a run of TrainConfig.precision multiplies in bf16."""
    if precision not in ("auto", "bf16", "fp32"):
        raise TrainingError(f"precision must be auto, bf16 or fp32, not {precision!r}")
    return precision == "bf16" or (precision == "auto" and native_bf16())


def learning_rate(config: TrainConfig, tokens: int) -> float:
    """Linear warm-up, then cosine decay to min_lr_ratio over schedule_tokens."""
    if tokens < config.warmup_tokens:
        return config.lr * max(tokens, 1) / config.warmup_tokens
    progress = min(1.0, (tokens - config.warmup_tokens) / max(1, config.schedule_tokens))
    floor = config.lr * config.min_lr_ratio
    return floor + (config.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def checkpoint_dir(out: Path) -> Path:
    """Where the resumable state of the run writing model directory `out` lives."""
    return out.with_name(out.name + ".checkpoint")


def save_checkpoint(
    where: Path,
    network: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    config: TrainConfig,
    tokenizer: Tokenizer | None = None,
) -> None:
    """Write weights, optimizer and state under a temporary name, then swap it in. With the
    network's config and the tokenizer beside them, `--resume` needs nothing else."""
    with atomic_directory(where) as scratch:
        network.config.to_json_file(str(scratch / "config.json"))
        if tokenizer is not None:
            tokenizer.save(str(scratch / "tokenizer.json"))
        weights = {k: v.detach().contiguous() for k, v in network.state_dict().items()}
        # Tied embeddings share storage; safetensors wants each tensor once.
        seen: dict[int, str] = {}
        for key in list(weights):
            pointer = weights[key].data_ptr()
            if pointer in seen:
                del weights[key]
            else:
                seen[pointer] = key
        save_file(weights, str(scratch / "weights.safetensors"))
        torch.save(optimizer.state_dict(), scratch / "optimizer.pt")
        (scratch / "state.json").write_text(
            json.dumps({"state": asdict(state), "config": asdict(config)}, indent=2)
        )


def resumable_network(where: Path) -> tuple[torch.nn.Module, Tokenizer]:
    """The network (untrained, its checkpoint's shape) and tokenizer a checkpoint was made with;
    TrainingError when the checkpoint does not hold them (made before they were saved)."""
    config_file, tokenizer_file = where / "config.json", where / "tokenizer.json"
    if not (config_file.is_file() and tokenizer_file.is_file()):
        raise TrainingError(
            f"checkpoint {where} does not record its network and tokenizer; "
            "resume with --tokenizer DIR and the run's --size"
        )
    config = ModernBertConfig.from_json_file(str(config_file))
    config._attn_implementation = "sdpa"
    return ModernBertForMaskedLM(config), Tokenizer.from_file(str(tokenizer_file))


def load_checkpoint(
    where: Path, network: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> TrainState:
    """Restore weights, optimizer and state; raise TrainingError on a corrupt checkpoint."""
    try:
        meta = json.loads((where / "state.json").read_text())
        weights = load_file(str(where / "weights.safetensors"))
        missing, unexpected = network.load_state_dict(weights, strict=False)
        missing = [k for k in missing if not k.endswith(("decoder.weight", "lm_head.weight"))]
        if missing or unexpected:
            raise ValueError(f"weights do not fit the model (missing {missing[:3]})")
        optimizer.load_state_dict(torch.load(where / "optimizer.pt", weights_only=True))
        return TrainState(**meta["state"])
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
        raise TrainingError(f"checkpoint {where} is unusable: {error}") from error


def train(
    network: torch.nn.Module,
    tokenizer: Tokenizer,
    texts: list[str],
    languages: list[str],
    config: TrainConfig,
    out: Path,
    *,
    resume: bool = False,
    start: TrainState | None = None,
    metadata: dict[str, Any] | None = None,
    progress: bool = True,
    objective: LoopObjective = DIFFUSION,
) -> TrainState:
    """Train `network` on `texts` and write the model directory `out`; return the final state.

    `start` continues the counts (steps, tokens, time) of the run that made `network`'s weights,
    so a model grown over many sittings keeps one schedule and one data stream.
    """
    from accelerate import Accelerator

    hf_logging.disable_progress_bar()
    # The loop casts by itself rather than through accelerate's mixed_precision, which is fixed
    # once per process: runs of either precision can share one (the training benchmark does).
    bf16 = uses_bf16(config.precision)
    accelerator = Accelerator()
    ids = token_ids(tokenizer)
    examples = objective.examples(texts, languages, tokenizer, config.objective, config.seed)
    optimizer = torch.optim.AdamW(
        network.parameters(), lr=config.lr, betas=(0.9, 0.98), weight_decay=config.weight_decay
    )
    state = start or TrainState()
    where = checkpoint_dir(out)
    if resume:
        if not (where / "state.json").exists():
            raise TrainingError(f"nothing to resume: {where} holds no checkpoint")
        state = load_checkpoint(where, network, optimizer)
        log.info("resumed at step %d, %d tokens", state.step, state.tokens)
    network, optimizer = accelerator.prepare(network, optimizer)
    network.train()
    generator = torch.Generator()
    started = time.monotonic()
    last_checkpoint = started
    seconds_before = state.seconds
    if state.cpu_seconds == 0.0:
        state.cpu_counted_from = state.tokens
    cpu_before = state.cpu_seconds
    cpu_started = time.process_time()
    tokens_before = state.tokens
    stop = {"now": False}

    def on_interrupt(signum: int, frame: object) -> None:
        stop["now"] = True  # finish the step, save, leave

    previous = signal.signal(signal.SIGINT, on_interrupt)
    total = config.max_tokens or 0
    bar = tqdm(
        total=total or None, initial=state.tokens, unit="tok", unit_scale=True,
        disable=not progress, dynamic_ncols=True,
    )  # fmt: skip
    running = state.loss if math.isfinite(state.loss) else None
    try:
        while not stop["now"]:
            elapsed = time.monotonic() - started
            if config.max_tokens is not None and state.tokens >= config.max_tokens:
                break
            if config.max_minutes is not None and elapsed >= config.max_minutes * 60:
                break
            first = state.step * config.batch
            batch_examples = [examples[i] for i in range(first, first + config.batch)]
            generator.manual_seed(config.seed * 1_000_003 + state.step)
            batch = objective.collate(
                batch_examples, ids, tokenizer.get_vocab_size(), generator,
                config.objective.corruption,
            )  # fmt: skip
            device = accelerator.device
            for name in ("input_ids", "attention_mask", "positions", "targets", "weights"):
                setattr(batch, name, getattr(batch, name).to(device))
            lr = learning_rate(config, state.tokens)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with torch.autocast(accelerator.device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = objective.loss(accelerator.unwrap_model(network), batch, ids.mask)
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(network.parameters(), config.clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            value = float(loss.detach())
            running = value if running is None else 0.98 * running + 0.02 * value
            state.step += 1
            state.tokens += batch.tokens
            state.loss = running
            state.seconds = seconds_before + time.monotonic() - started
            state.cpu_seconds = cpu_before + time.process_time() - cpu_started
            if state.step % 50 == 0:
                state.history.append(
                    {"step": state.step, "tokens": state.tokens, "loss": running, "lr": lr}
                )
            rate = (state.tokens - tokens_before) / max(1e-9, time.monotonic() - started)
            bar.update(batch.tokens)
            bar.set_postfix(loss=f"{running:.3f}", tok_s=f"{rate:,.0f}", lr=f"{lr:.1e}")
            if time.monotonic() - last_checkpoint >= config.checkpoint_minutes * 60:
                save_checkpoint(
                    where, accelerator.unwrap_model(network), optimizer, state, config, tokenizer
                )
                last_checkpoint = time.monotonic()
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.close()
    network = accelerator.unwrap_model(network)
    save_checkpoint(where, network, optimizer, state, config, tokenizer)
    network.eval()
    recipe = {
        "objective": objective.name,
        "train_config": asdict(config),
        "steps": state.step,
        "tokens_seen": state.tokens,
        "train_seconds": round(state.seconds, 1),
        "train_cpu_seconds": round(state.cpu_seconds, 1),
        "cpu_counted_from_tokens": state.cpu_counted_from,
        "final_loss": state.loss,
        "loss_curve": state.history[-200:],
    }
    full = {**(metadata or {}), "recipe": {**(metadata or {}).get("recipe", {}), **recipe}}
    save_model(out, network, tokenizer, full, card=model_card(full))
    if stop["now"]:
        log.info("interrupted: checkpoint saved at step %d", state.step)
    return state
