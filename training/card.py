"""The model card (`README.md` of a model directory), written from its `infill.json` metadata."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from infill_lsp.model import METADATA_FILE, SPECIAL_TOKENS

ABOUT = """A ModernBERT-style bidirectional encoder trained from scratch by infill-lsp's own
training code with an absorbing-state masked-diffusion objective (mask ratio t ~ U(0, 1),
loss averaged over masked tokens, document and infill modes, filler tokens for spans of
unknown length, and, from version 7, canvases of the wrong size: fillers where a span has ended
and `<|expand|>` where it goes on past the canvas, so the model itself says how long a span is).
It fills, rewrites and revises code and text between a prefix and a suffix.
""".replace("\n", " ").strip()
KIND_NAMES = {"line": "single line", "lines": "2-8 lines", "node": "syntax node"}


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def evaluation_table(report: dict[str, Any]) -> list[str]:
    """Markdown lines for an `infill-train eval` report."""
    lines = []
    accuracy = report.get("masked_accuracy", {})
    if accuracy:
        cells = ", ".join(f"t = {ratio}: {_percent(value)}" for ratio, value in accuracy.items())
        lines += [f"Masked-token accuracy (one forward pass, argmax): {cells}.", ""]
    lines += [
        "| span | spans | exact | whitespace-normalized | correct start | length right "
        "| oracle length: exact | oracle: normalized | forward passes / token |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, name in KIND_NAMES.items():
        if kind in report:
            s = report[kind]
            lines.append(
                f"| {name} | {s['spans']} | {_percent(s['exact'])} | {_percent(s['normalized'])} "
                f"| {_percent(s.get('starts'))} | {_percent(s.get('length_right'))} "
                f"| {_percent(s.get('oracle_exact'))} | {_percent(s.get('oracle_normalized'))} "
                f"| {s['forward_passes_per_token']} |"
            )
    for kind, name in KIND_NAMES.items():
        buckets = report.get(kind, {}).get("by_length")
        if buckets:
            lines += [
                "",
                f"{name.capitalize()} by the true span's length in tokens:",
                "",
                "| tokens | spans | exact | length right | correct start | oracle length: exact |",
                "|---|---|---|---|---|---|",
            ]
            lines += [
                f"| {bucket} | {b['spans']} | {_percent(b['exact'])} "
                f"| {_percent(b.get('length_right'))} | {_percent(b.get('starts'))} "
                f"| {_percent(b.get('oracle_exact'))} |"
                for bucket, b in buckets.items()
            ]
    config = report.get("config", {})
    if config:
        lines += [
            "",
            f"Held-out files never trained on (split by file); length unknown to the model "
            f"unless 'oracle'; {config.get('steps')} denoising steps, "
            f"{config.get('context')}-token window, seed {config.get('seed')}.",
        ]
    return lines


def _cpu_hours(recipe: dict[str, Any]) -> str:
    """The measured CPU time, and from where it was counted when older sittings did not count."""
    cpu = recipe.get("train_cpu_seconds", 0) / 3600
    if not cpu:
        return ""
    start = recipe.get("cpu_counted_from_tokens", 0)
    since = f" since {start:,} tokens (earlier sittings recorded wall time only)" if start else ""
    return f"; {cpu:.2f} CPU hours measured (process time, all threads){since}"


def _gpu_time(recipe: dict[str, Any]) -> str:
    """A sitting on an accelerator, which the CPU counts above do not include."""
    seconds = recipe.get("gpu_seconds")
    if not seconds:
        return ""
    tokens = recipe.get("gpu_tokens")
    of = f" ({tokens:,} of the tokens)" if tokens else ""
    return f"; then {seconds / 60:.1f} minutes on {recipe.get('gpu', 'a GPU')}{of}"


def model_card(metadata: dict[str, Any]) -> str:
    """A README.md for a model directory, from its metadata."""
    recipe = metadata.get("recipe", {})
    hours = recipe.get("train_seconds", 0) / 3600
    lines = [
        "# infill-lsp model",
        "",
        ABOUT,
        "",
        "## Facts",
        "",
        f"- architecture: {recipe.get('size', 'see config.json')}",
        f"- parameters: {recipe.get('parameters', 'see config.json'):,}"
        if isinstance(recipe.get("parameters"), int)
        else "- parameters: see config.json",
        "- tokenizer: byte-level BPE with code-aware pre-tokenization (indentation runs, "
        "newlines), lossless on any text; special tokens "
        + " ".join(f"`{t}`" for t in (metadata.get("special_tokens") or SPECIAL_TOKENS).values()),
        f"- tokens seen: {recipe.get('tokens_seen', 0):,} ({recipe.get('steps', 0):,} steps)",
        f"- training time: {hours:.2f} hours on 2 CPU cores{_cpu_hours(recipe)}{_gpu_time(recipe)}",
        "- final training loss (nats per masked unit, smoothed): "
        f"{recipe.get('final_loss', float('nan')):.3f}",
    ]
    if metadata.get("finetuned_from"):
        lines.append(f"- fine-tuned from: {metadata['finetuned_from']}")
    corpus = metadata.get("corpus") or {}
    if corpus:
        lines += ["", "## Corpus", "", str(corpus.get("description", ""))]
        for name, license_name in corpus.get("licenses", {}).items():
            lines.append(f"- {name}: {license_name}")
    elif recipe.get("corpus"):
        lines += ["", "## Corpus", "", ", ".join(str(r) for r in recipe["corpus"])]
    if "evaluation" in metadata:
        lines += [
            "",
            "## Evaluation (`infill-train eval`)",
            "",
            *evaluation_table(metadata["evaluation"]),
        ]
    if metadata.get("sampler"):
        lines += [
            "",
            "## Sampler defaults",
            "",
            "```json",
            json.dumps(metadata["sampler"], indent=2),
            "```",
        ]
    if metadata.get("notes"):
        lines += ["", "## Notes", "", str(metadata["notes"])]
    return "\n".join(lines) + "\n"


def record(directory: str | Path, **fields: Any) -> None:
    """Add `fields` to a model directory's infill.json and rewrite its card, atomically."""
    path = Path(directory)
    metadata = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
    metadata.update(fields)
    for name, text in (
        (METADATA_FILE, json.dumps(metadata, indent=2) + "\n"),
        ("README.md", model_card(metadata)),
    ):
        handle, scratch = tempfile.mkstemp(dir=path, prefix=f".{name}.")
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(scratch, 0o644)
        os.replace(scratch, path / name)
