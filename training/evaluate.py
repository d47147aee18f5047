"""Measure a model on held-out files, through the same engine the server uses.

Reports masked-token accuracy at fixed mask ratios, and infill exact match for single lines,
multi-line spans of 2-8 lines and syntax-node spans, each with the span length unknown to the
model (decoded by the engine's length rule, as the server does) and with the oracle length (the
canvas told its size as training tells it); how often the unknown-length answer has exactly
the right number of tokens; how often it is a correct start: non-empty and the beginning of the
true text, which a person accepting ghost text word by word can use even when it is not the
whole span; and all of it per length bucket. Spans are drawn by character offsets from a fixed
seed, so two models (even with different tokenizers) are compared on the same work.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from infill_lsp.engine import DecodeOptions, Engine
from infill_lsp.model import InfillModel

from .spans import SpanRules, pick_span

KINDS = ("line", "lines", "node")
MAX_SPAN_CHARS = {"line": 100, "lines": 300, "node": 300}
CANVAS_TOKENS = {"line": 32, "lines": 96, "node": 96}
# A person's span: from the indentation to the line's end; multi-line syntax nodes only.
SPAN_RULES = SpanRules(max_node_chars=MAX_SPAN_CHARS["node"], multiline_nodes=True)


@dataclass(frozen=True)
class EvalConfig:
    """Which work an evaluation does."""

    spans: int = 300  # per kind
    kinds: tuple[str, ...] = KINDS
    seed: int = 0
    steps: int = 16
    context: int = 256
    oracle: bool = True
    length: str | None = None  # the engine's length rule for unknown lengths (None: the model's)
    lengths_decoded: int = DecodeOptions.lengths_decoded  # searching: lengths decoded and compared
    mask_ratios: tuple[float, ...] = (0.15, 0.5, 0.9)
    accuracy_windows: int = 64


@dataclass(frozen=True)
class Span:
    """One held-out span: the text around it and the text to recover."""

    prefix: str
    target: str
    suffix: str
    language: str


def normalize(text: str) -> str:
    """Whitespace-normalized form for the lenient exact match."""
    return re.sub(r"\s+", " ", text).strip()


def correct_start(guess: str, target: str) -> bool:
    """Whether `guess` is a non-empty beginning of `target` (whitespace at its end aside)."""
    guess = guess.rstrip()
    return bool(guess) and target.startswith(guess)


def sample_spans(
    texts: list[str], languages: list[str], kind: str, count: int, seed: int
) -> list[Span]:
    """`count` spans of `kind` from the files, the same for every model given the same seed."""
    rng = random.Random(f"eval:{kind}:{seed}")
    spans: list[Span] = []
    files = [i for i, t in enumerate(texts) if t.strip()]
    if not files:
        return spans
    for _ in range(count * 20):
        if len(spans) >= count:
            break
        index = rng.choice(files)
        text = texts[index]
        found = pick_span(kind, text, languages[index], rng, SPAN_RULES)
        if found is None:
            continue
        start, end = found
        target = text[start:end]
        if not target.strip() or len(target) > MAX_SPAN_CHARS[kind]:
            continue
        spans.append(Span(text[:start], target, text[end:], languages[index]))
    return spans


def masked_scores(
    model: InfillModel,
    texts: list[str],
    ratios: tuple[float, ...],
    windows: int,
    context: int,
    seed: int,
) -> tuple[dict[str, float], dict[str, float]]:
    """At each mask ratio, over the same held-out windows and masks (one forward pass each):
    the share of masked tokens predicted exactly (argmax), and their mean negative
    log-likelihood in nats, which still moves while an early model's argmax is the commonest
    token everywhere."""
    rng = random.Random(f"accuracy:{seed}")
    generator = torch.Generator().manual_seed(seed)
    chunks: list[torch.Tensor] = []
    files = [t for t in texts if t.strip()]
    for _ in range(windows * 5):
        if len(chunks) >= windows or not files:
            break
        text = rng.choice(files)
        start = rng.randrange(max(1, len(text) - context * 4))
        ids = model.encode(text[start : start + context * 5])[:context]
        if len(ids) >= 16:
            chunks.append(torch.tensor(ids))
    accuracy: dict[str, float] = {}
    loss: dict[str, float] = {}
    banned = torch.tensor([model.ids.mask])
    for ratio in ratios:
        right = total = 0
        nats = 0.0
        for clean in chunks:  # (T,) one window at a time: lengths differ
            masked = torch.rand(clean.shape, generator=generator) < ratio  # (T,)
            if not masked.any():
                continue
            logits = model.logits(clean.masked_fill(masked, model.ids.mask)[None])[0]  # (T, V)
            logits = logits.float().index_fill(-1, banned, float("-inf"))
            right += int((logits.argmax(-1)[masked] == clean[masked]).sum())
            logp = torch.log_softmax(logits[masked], dim=-1)  # (M, V)
            nats -= float(logp.gather(-1, clean[masked][:, None]).sum())
            total += int(masked.sum())
        accuracy[f"{ratio:g}"] = right / max(1, total)
        loss[f"{ratio:g}"] = nats / max(1, total)
    return accuracy, loss


def evaluate(
    model: InfillModel, texts: list[str], languages: list[str], config: EvalConfig = EvalConfig()
) -> dict[str, Any]:
    """The full quality report of `model` on held-out `texts`."""
    started = time.monotonic()
    base = replace(
        Engine(model).options,  # as the model decodes best, unless the config says otherwise
        steps=config.steps,
        context_tokens=config.context,
        seed=config.seed,
        lengths_decoded=config.lengths_decoded,
    )
    if config.length is not None:
        base = replace(base, length=config.length)
    engine = Engine(model, base)
    report: dict[str, Any] = {"config": asdict(config)}
    if config.accuracy_windows:
        report["masked_accuracy"], report["masked_loss"] = masked_scores(
            model, texts, config.mask_ratios, config.accuracy_windows, config.context, config.seed
        )
    for kind in config.kinds:
        spans = sample_spans(texts, languages, kind, config.spans, config.seed)
        # Rare spans of dense non-ASCII text outgrow the canvas: no model could fill them.
        spans = [s for s in spans if len(model.encode(s.target)) <= CANVAS_TOKENS[kind]]
        report[kind] = _infill_scores(engine, spans, kind, base, config.oracle)
    report["seconds"] = round(time.monotonic() - started, 1)
    return report


def _infill_scores(
    engine: Engine, spans: list[Span], kind: str, base: DecodeOptions, oracle: bool
) -> dict[str, Any]:
    single = kind == "line"
    totals = {"exact": 0, "normalized": 0, "starts": 0, "oracle_exact": 0, "oracle_normalized": 0}
    totals["length_right"] = 0
    buckets: dict[str, dict[str, int]] = {}
    passes = tokens = 0
    for span in spans:
        length = len(engine.model.encode(span.target))
        bucket = buckets.setdefault(length_bucket(length), dict.fromkeys(totals, 0) | {"spans": 0})
        before = dict(totals)
        [guess] = engine.infill(
            span.prefix,
            span.suffix,
            single_line=single,
            max_tokens=CANVAS_TOKENS[kind],
            options=base,
        )
        totals["exact"] += guess.text == span.target
        totals["normalized"] += normalize(guess.text) == normalize(span.target)
        totals["starts"] += correct_start(guess.text, span.target)
        totals["length_right"] += len(engine.model.encode(guess.text)) == length
        passes += guess.passes
        tokens += max(1, len(guess.confidences))
        if oracle and length:
            # Told the length as training tells it: masks up to it, a visible filler after.
            [exact] = engine.infill(
                span.prefix,
                span.suffix,
                single_line=single,
                max_tokens=CANVAS_TOKENS[kind],
                length=length,
                options=base,
            )
            totals["oracle_exact"] += exact.text == span.target
            totals["oracle_normalized"] += normalize(exact.text) == normalize(span.target)
        bucket["spans"] += 1
        for key, value in totals.items():
            bucket[key] += value - before[key]
    count = max(1, len(spans))
    scores: dict[str, Any] = {"spans": len(spans)}
    scores.update(
        {k: round(v / count, 4) for k, v in totals.items() if oracle or "oracle" not in k}
    )
    scores["forward_passes_per_token"] = round(passes / max(1, tokens), 3)
    scores["by_length"] = {
        name: {k: v if k == "spans" else round(v / b["spans"], 4) for k, v in b.items()}
        for name, b in sorted(buckets.items(), key=lambda item: LENGTH_BUCKETS.index(item[0]))
    }
    return scores


LENGTH_BUCKETS = ("1-4", "5-8", "9-16", "17-32", "33+")  # the target's tokens


def length_bucket(tokens: int) -> str:
    """Which LENGTH_BUCKETS entry a span of `tokens` tokens falls in."""
    for name in LENGTH_BUCKETS[:-1]:
        if tokens <= int(name.split("-")[1]):
            return name
    return LENGTH_BUCKETS[-1]


def format_report(report: dict[str, Any]) -> str:
    """A few readable lines of a report."""
    lines = []
    accuracy = report.get("masked_accuracy", {})
    if accuracy:
        lines.append(
            "masked-token accuracy: "
            + ", ".join(f"t={r}: {100 * a:.1f}%" for r, a in accuracy.items())
        )
    for kind in KINDS:
        if kind not in report:
            continue
        s = report[kind]
        line = (
            f"{kind:6s} ({s['spans']} spans) exact {100 * s['exact']:.1f}%, "
            f"normalized {100 * s['normalized']:.1f}%"
        )
        if "starts" in s:
            line += f", correct start {100 * s['starts']:.1f}%"
        if "length_right" in s:
            line += f", length right {100 * s['length_right']:.1f}%"
        if "oracle_exact" in s:
            line += (
                f"; oracle length: exact {100 * s['oracle_exact']:.1f}%, "
                f"normalized {100 * s['oracle_normalized']:.1f}%"
            )
        lines.append(line + f"; {s['forward_passes_per_token']} passes/token")
    return "\n".join(lines)
