"""The training loop: from scratch or from a model directory, resumable, bounded by time or tokens.

Runs on `accelerate`, so the same code trains on one CPU, one GPU or many machines
(`accelerate launch -m infill_train.cli train ...`). Matrix products run in bf16 (weights and
optimizer stay float32) wherever the hardware does bf16 natively: on a CPU with AVX-512 BF16 or
AMX that is 1.3 times the tokens per second of float32 at the same loss. The learning rate
follows the tokens seen (linear warm-up, cosine decay), so a run resumed any number of times
follows one schedule.
A checkpoint (weights, optimizer, step, data position, network config, tokenizer) is written
every few minutes and on Ctrl-C; `--resume` continues exactly where it stopped. At the end the
model directory is written atomically next to the checkpoint.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer
from tqdm import tqdm
from transformers import ModernBertConfig, ModernBertForMaskedLM
from transformers.utils import logging as hf_logging

from infill_lsp.model import SPECIAL_TOKENS, InfillModel, atomic_directory, save_model
from infill_lsp.models.budget import cpu_bf16
from infill_lsp.models.masked_lm import NUMBERS_AROUND_PADS

from .card import model_card
from .objective import Batch, Example, Examples, ObjectiveConfig, collate, masked_loss
from .routing import Route, routed_encoder
from .tokenizer import token_ids
from .vocab import add_special_tokens

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
    # When set, the decay runs over this many minutes of the sitting instead, so a sitting bounded
    # by time (a fine-tune) ends at the floor whatever the machine's speed.
    schedule_minutes: float | None = None
    weight_decay: float = 0.01
    clip: float = 1.0
    max_tokens: int | None = None  # stop after this many tokens in total
    max_minutes: float | None = None  # stop after this many minutes in this sitting
    checkpoint_minutes: float = 10.0
    seed: int = 0
    precision: str = "auto"  # "auto" (bf16 where the hardware has it), "bf16" or "fp32"
    optimizer: str = "adamw"  # "adamw", or "muon": Muon for hidden matrices, AdamW for the rest
    muon_lr: float = 0.02  # Muon's peak rate (the schedule scales it as it scales lr)
    route: float = 0.0  # share of tokens that skip the middle layers in training (TREAD)
    compile: bool = False  # torch.compile the forward and loss
    # Processes that build batches ahead of the loop (0: the loop builds its own). On an
    # accelerator one process cannot cut and mask windows as fast as the model eats them.
    # Their CPU time is not in the run's count: that counts the loop's process only.
    workers: int = 0
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
    # The tokens at which this run's optimizer started: its warm-up counts from here (0 from
    # scratch; the initial model's count when continued with a fresh optimizer, --init).
    warmup_from: int = 0
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
    return torch.cuda.is_available() or cpu_bf16()


def uses_bf16(precision: str) -> bool:
    """Whether a run of TrainConfig.precision multiplies in bf16."""
    if precision not in ("auto", "bf16", "fp32"):
        raise TrainingError(f"precision must be auto, bf16 or fp32, not {precision!r}")
    return precision == "bf16" or (precision == "auto" and native_bf16())


class Optimizers(torch.optim.Optimizer):
    """Several optimizers stepped as one (Muon for hidden matrices, AdamW for the rest)."""

    def __init__(self, *parts: torch.optim.Optimizer) -> None:
        self.parts = list(parts)
        self.defaults: dict[str, Any] = {}
        self.state: Any = {}

    @property  # type: ignore[override]
    def param_groups(self) -> list[dict[str, Any]]:
        return [group for part in self.parts for group in part.param_groups]

    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        for part in self.parts:
            part.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self.parts:
            part.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"parts": [part.state_dict() for part in self.parts]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if len(state_dict.get("parts", [])) != len(self.parts):
            raise ValueError("the checkpoint's optimizer is not this run's (adamw or muon?)")
        for part, saved in zip(self.parts, state_dict["parts"], strict=True):
            part.load_state_dict(saved)


def hidden_matrices(network: torch.nn.Module) -> list[str]:
    """Names of the encoder layers' weight matrices: what Muon updates. Embeddings (tied with
    the output), norms and the prediction head stay with AdamW."""
    return [
        name
        for name, parameter in network.named_parameters()
        if parameter.ndim == 2 and ".layers." in f".{name}"
    ]


def build_optimizer(network: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW on everything, or Muon on the hidden matrices and AdamW on the rest."""
    if config.optimizer not in ("adamw", "muon"):
        raise TrainingError(f"optimizer must be adamw or muon, not {config.optimizer!r}")
    adamw = {"betas": (0.9, 0.98), "weight_decay": config.weight_decay}
    if config.optimizer == "adamw":
        return torch.optim.AdamW(network.parameters(), lr=config.lr, **adamw)  # type: ignore[arg-type]
    if not hasattr(torch.optim, "Muon"):
        raise TrainingError(f"torch {torch.__version__} has no torch.optim.Muon (2.9 and later)")
    matrices = set(hidden_matrices(network))
    named = list(network.named_parameters())
    muon = torch.optim.Muon(
        [p for n, p in named if n in matrices], lr=config.muon_lr,
        weight_decay=config.weight_decay, adjust_lr_fn="original",
    )  # fmt: skip
    rest = torch.optim.AdamW([p for n, p in named if n not in matrices], lr=config.lr, **adamw)  # type: ignore[arg-type]
    for group in muon.param_groups:
        group["lr_scale"] = config.muon_lr / config.lr  # the schedule sets lr * lr_scale
    return Optimizers(muon, rest)


def learning_rate(config: TrainConfig, tokens: int, minutes: float = 0.0, since: int = 0) -> float:
    """Cosine decay to min_lr_ratio over schedule_tokens (or over schedule_minutes of the
    sitting, `minutes` being how long it has run), after a linear warm-up over the first
    warmup_tokens since `since` (TrainState.warmup_from) that rises to the decay's rate."""
    if config.schedule_minutes:
        progress = min(1.0, minutes / config.schedule_minutes)
    else:
        progress = min(1.0, max(0, tokens - config.warmup_tokens) / max(1, config.schedule_tokens))
    floor = config.lr * config.min_lr_ratio
    rate = floor + (config.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    warmed = tokens - since
    if warmed < config.warmup_tokens:
        return rate * max(warmed, 1) / config.warmup_tokens
    return rate


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


# The roles a pretrained masked LM brings its own tokens for (by id: its embeddings learnt them).
OWN_ROLES = ("bos", "eos", "pad", "unk", "mask")


def diffusion_start(model: InfillModel) -> tuple[torch.nn.Module, Tokenizer, dict[str, str]]:
    """A loaded model made ready for the masked-diffusion objective: its network, its tokenizer
    and the text of each special-token role (`ObjectiveConfig.special_tokens`).

    One of ours is ready as it is. A Hugging Face masked LM keeps its own start, end, pad,
    unknown and mask tokens and gets ours that it lacks (the filler...) appended to its tokenizer
    with new embedding rows, started as the mean token; its vocabulary is then sized to the
    tokenizer exactly, as our format pairs them (rows past a tokenizer are never produced by it).
    Other families are refused with TrainingError.
    """
    check_startable(model)
    if model.family == "ours":
        recorded = model.metadata.get("special_tokens")
        return model.network, model.tokenizer, {**SPECIAL_TOKENS, **(recorded or {})}
    network: Any = model.network
    tokenizer = model.tokenizer
    names = dict(SPECIAL_TOKENS)
    for role in OWN_ROLES:
        text = tokenizer.id_to_token(getattr(model.ids, role))
        if text is None:
            raise TrainingError(f"{model.directory}: its {role} token is not in tokenizer.json")
        names[role] = text
    known = tokenizer.get_vocab_size()
    rows = network.get_input_embeddings().weight.shape[0]
    added = add_special_tokens(network, tokenizer, [names[r] for r in names if r not in OWN_ROLES])
    size = tokenizer.get_vocab_size()
    if network.get_input_embeddings().weight.shape[0] != size:
        network.resize_token_embeddings(size, mean_resizing=False)
    # Added tokens that landed on rows the model had but its tokenizer never used start as the
    # mean token too (the rows grown past the old size were started so by the resize).
    reused = [i for i in (tokenizer.token_to_id(name) for name in added) if i is not None]
    _start_as_mean(network, [i for i in reused if i < rows], known)
    log.info("added %s to %s; vocabulary %d -> %d", added, model.directory, known, size)
    return network, tokenizer, names


# Modules whose presence says the loss (`objective.head_logits`) knows the model's head.
KNOWN_HEADS = ("lm_head", "cls", "head")


def check_startable(model: InfillModel) -> None:
    """TrainingError unless `diffusion_start` can make the model ready (ours, or a masked LM
    whose prediction head the loss knows)."""
    if model.family not in ("ours", "masked-lm"):
        raise TrainingError(
            f"{model.directory} holds a {model.family} model; fine-tuning starts from a masked "
            "LM (RoBERTa, BERT, ModernBERT...) or one of ours"
        )
    if not any(isinstance(getattr(model.network, n, None), torch.nn.Module) for n in KNOWN_HEADS):
        raise TrainingError(
            f"{model.directory}: the loss knows the prediction heads of RoBERTa, XLM-R, BERT "
            f"and ModernBERT, not {type(model.network).__name__}'s"
        )


@torch.no_grad()
def _start_as_mean(network: Any, ids: list[int], known: int) -> None:
    """Set the embedding and output rows (and output bias) of `ids` to the mean of the first
    `known` rows."""
    if not ids:
        return
    inputs = network.get_input_embeddings().weight
    output = network.get_output_embeddings()
    inputs[ids] = inputs[:known].mean(0)
    if output.weight is not inputs:
        output.weight[ids] = output.weight[:known].mean(0)
    if getattr(output, "bias", None) is not None:
        output.bias[ids] = output.bias[:known].mean()


def usable_positions(network: torch.nn.Module) -> int:
    """How many tokens a window of the network may hold (RoBERTa-like models number positions
    from after their pad id, so their table holds that many fewer)."""
    config: Any = network.config
    limit = int(getattr(config, "max_position_embeddings", 512))
    if config.model_type in NUMBERS_AROUND_PADS:
        limit -= int(config.pad_token_id) + 1
    return limit


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


class Trainer:
    """One run in progress: network, optimizer, data stream and counts.

    `step()` trains on one batch and `finish()` writes the model directory; `train` drives them
    with its stopping rules, progress bar and checkpoints, and the efficiency benchmark
    interleaves several trainers' steps in one process. Each trainer counts only its own steps'
    time (process CPU time, all threads), so interleaved runs are charged fairly.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        tokenizer: Tokenizer,
        texts: list[str],
        languages: list[str],
        config: TrainConfig,
        *,
        start: TrainState | None = None,
        resume_from: Path | None = None,
        objective: LoopObjective = DIFFUSION,
    ) -> None:
        from accelerate import Accelerator

        hf_logging.disable_progress_bar()
        # The loop casts by itself rather than through accelerate's mixed_precision, which is
        # fixed once per process: runs of either precision can share one (the benchmarks do).
        self.bf16 = uses_bf16(config.precision)
        self.accelerator = Accelerator()
        self.tokenizer = tokenizer
        self.config = config
        self.objective = objective
        if objective is DIFFUSION:  # a model from before `<|expand|>` grows a row for it
            add_special_tokens(network, tokenizer, [SPECIAL_TOKENS["expand"]])
        self.ids = token_ids(tokenizer, config.objective.special_tokens)
        self.examples = objective.examples(
            texts, languages, tokenizer, config.objective, config.seed
        )
        self.batch = BatchMaker(
            self.examples, self.ids, tokenizer.get_vocab_size(), config, objective.collate
        )
        optimizer = build_optimizer(network, config)
        self.state = start or TrainState()
        if resume_from is not None:
            if not (resume_from / "state.json").exists():
                raise TrainingError(f"nothing to resume: {resume_from} holds no checkpoint")
            self.state = load_checkpoint(resume_from, network, optimizer)
            log.info("resumed at step %d, %d tokens", self.state.step, self.state.tokens)
        else:  # a fresh optimizer warms up from here, also on a model that has trained before
            self.state.warmup_from = self.state.tokens
        if self.state.cpu_seconds == 0.0:
            self.state.cpu_counted_from = self.state.tokens
        self.network, self.optimizer = self.accelerator.prepare(network, optimizer)
        self.network.train()
        self.route_rng = torch.Generator()  # which tokens skip the middle layers
        self.loss = self._loss_function()
        self.running = self.state.loss if math.isfinite(self.state.loss) else None
        self.sitting_started = time.monotonic()
        self.lr = 0.0  # the rate of the last step

    def _loss_function(self) -> Callable[[Batch], torch.Tensor]:
        """The loss of one batch: the objective's, with token routing and compiled if asked."""
        model, mask, config = self.model, self.ids.mask, self.config
        if config.route > 0:
            if self.objective is not DIFFUSION:
                raise TrainingError("token routing is for the masked-diffusion objective only")
            encoder = routed_encoder(Route(share=config.route), self.route_rng)

            def loss(batch: Batch) -> torch.Tensor:
                return masked_loss(model, batch, mask, encoder)
        else:

            def loss(batch: Batch) -> torch.Tensor:
                return self.objective.loss(model, batch, mask)

        if config.compile:
            return torch.compile(loss, dynamic=True)
        return loss

    def minutes(self) -> float:
        """How long this sitting has run (the clock a `schedule_minutes` decay follows)."""
        return (time.monotonic() - self.sitting_started) / 60

    @property
    def model(self) -> torch.nn.Module:
        """The network itself, outside any wrapper accelerate put around it."""
        return self.accelerator.unwrap_model(self.network)

    def batches(self) -> Iterator[Batch]:
        """The batches of the steps from the current one on, built by `config.workers` processes
        when there are any (the same batches either way)."""
        start = self.state.step
        if self.config.workers <= 0:
            return (self.batch(step) for step in itertools.count(start))
        loader = torch.utils.data.DataLoader(
            _Steps(self.batch, start), batch_size=None, num_workers=self.config.workers,
            prefetch_factor=4, persistent_workers=True,
        )  # fmt: skip
        return iter(loader)

    def step(self, batch: Batch | None = None) -> float:
        """Train on `batch` (the current step's, built here when not given); return its loss.
        Counts the step's wall and CPU time."""
        wall, cpu = time.monotonic(), time.process_time()
        state, config = self.state, self.config
        batch = self.batch(state.step) if batch is None else batch
        self.route_rng.manual_seed(config.seed * 7_919 + state.step)
        device = self.accelerator.device
        for name in ("input_ids", "attention_mask", "positions", "targets", "weights"):
            setattr(batch, name, getattr(batch, name).to(device, non_blocking=True))
        lr = self.lr = learning_rate(config, state.tokens, self.minutes(), state.warmup_from)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        with torch.autocast(self.accelerator.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            loss = self.loss(batch)
        self.accelerator.backward(loss)
        self.accelerator.clip_grad_norm_(self.network.parameters(), config.clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        value = float(loss.detach())
        self.running = value if self.running is None else 0.98 * self.running + 0.02 * value
        state.step += 1
        state.tokens += batch.tokens
        state.loss = self.running
        if state.step % 50 == 0:
            state.history.append(
                {"step": state.step, "tokens": state.tokens, "loss": self.running, "lr": lr}
            )
        self.charge(time.monotonic() - wall, time.process_time() - cpu)
        return value

    def charge(self, wall: float, cpu: float) -> None:
        """Add time spent on this run outside `step` (checkpoints) to its counts."""
        self.state.seconds += wall
        self.state.cpu_seconds += cpu

    def checkpoint(self, where: Path) -> None:
        """Write the resumable state to `where`."""
        save_checkpoint(where, self.model, self.optimizer, self.state, self.config, self.tokenizer)

    def finish(self, out: Path, metadata: dict[str, Any] | None = None) -> TrainState:
        """Write the final checkpoint and the model directory `out`; return the final state."""
        self.checkpoint(checkpoint_dir(out))
        network = self.model
        network.eval()
        state = self.state
        recipe = {
            "objective": self.objective.name,
            "train_config": asdict(self.config),
            "steps": state.step,
            "tokens_seen": state.tokens,
            "train_seconds": round(state.seconds, 1),
            "train_cpu_seconds": round(state.cpu_seconds, 1),
            "cpu_counted_from_tokens": state.cpu_counted_from,
            "final_loss": state.loss,
            "loss_curve": state.history[-200:],
        }
        full = {**(metadata or {}), "recipe": {**(metadata or {}).get("recipe", {}), **recipe}}
        save_model(out, network, self.tokenizer, full, card=model_card(full))
        return state


@dataclass(frozen=True)
class BatchMaker:
    """Builds the batch of a step from the examples: what the loop or a worker process runs."""

    examples: Any
    ids: Any
    vocab_size: int
    config: TrainConfig
    collate: Callable[[list[Example], Any, int, torch.Generator, float], Batch]

    def __call__(self, step: int) -> Batch:
        first = step * self.config.batch
        examples = [self.examples[i] for i in range(first, first + self.config.batch)]
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + step)
        return self.collate(
            examples, self.ids, self.vocab_size, generator, self.config.objective.corruption
        )


class _Steps(torch.utils.data.Dataset):
    """Step numbers from `start` on, as batches (endless: the loop decides when to stop)."""

    def __init__(self, make: BatchMaker, start: int) -> None:
        self.make, self.start = make, start

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, index: int) -> Batch:
        return self.make(self.start + index)


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
    so a model grown over many sittings keeps one schedule and one data stream. Stops at
    max_tokens, after max_minutes of this sitting, or on Ctrl-C (the step ends, then it saves).
    """
    where = checkpoint_dir(out)
    trainer = Trainer(
        network, tokenizer, texts, languages, config,
        start=start, resume_from=where if resume else None, objective=objective,
    )  # fmt: skip
    state = trainer.state
    started = last_checkpoint = time.monotonic()
    tokens_before = state.tokens
    stop = {"now": False}

    def on_interrupt(signum: int, frame: object) -> None:
        stop["now"] = True  # finish the step, save, leave

    previous = signal.signal(signal.SIGINT, on_interrupt)
    bar = tqdm(
        total=config.max_tokens or None, initial=state.tokens, unit="tok", unit_scale=True,
        disable=not progress, dynamic_ncols=True,
    )  # fmt: skip
    batches = trainer.batches()
    try:
        while not stop["now"]:
            if config.max_tokens is not None and state.tokens >= config.max_tokens:
                break
            elapsed = time.monotonic() - started
            if config.max_minutes is not None and elapsed >= config.max_minutes * 60:
                break
            before = state.tokens
            trainer.step(next(batches))
            rate = (state.tokens - tokens_before) / max(1e-9, time.monotonic() - started)
            bar.update(state.tokens - before)
            bar.set_postfix(
                loss=f"{state.loss:.3f}", tok_s=f"{rate:,.0f}",
                lr=f"{trainer.lr:.1e}",
            )  # fmt: skip
            if time.monotonic() - last_checkpoint >= config.checkpoint_minutes * 60:
                wall, cpu = time.monotonic(), time.process_time()
                trainer.checkpoint(where)
                trainer.charge(time.monotonic() - wall, time.process_time() - cpu)
                last_checkpoint = time.monotonic()
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.close()
    state = trainer.finish(out, metadata)
    if stop["now"]:
        log.info("interrupted: checkpoint saved at step %d", state.step)
    return state
