"""The settings, each defined once: its wire name, default, check and description.

`DecodeOptions` holds how one call decodes (the sampler's knobs and the window); its defaults are
the only place a decode default is written. `Settings` is everything a user can configure; each
of its fields carries a `Setting` (camelCase wire name, JSON type, bounds, choices, description),
from which the wire parser, `settings_schema()` (what the clients' settings lists are tested
against) and `python -m infill_lsp.options --schema` are derived. Settings arrive from
`initializationOptions`, `workspace/didChangeConfiguration` and `workspace/configuration`, either
flat or under the section "infill". A bad value falls back to its default and produces one
problem string for the user; an unknown key produces one too. Decoding settings left unset (None)
mean "the model's own default" (a `DecodeOptions` default). This module knows nothing about
pygls, torch or the model.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import Field, dataclass, field, fields, replace
from typing import Any

SECTION = "infill"
CONFIDENCE_KINDS = ("maxprob", "margin", "entropy")
SCHEDULES = ("threshold", "linear", "cosine")
# How a span of unknown length gets its length: "predict" reads it off the model's own end and
# expand predictions in a pass or two (models trained with `<|expand|>`); "search" ranks every
# candidate length in one batched pass and decodes the best; "fillers" decodes an oversized
# canvas and lets filler tokens take up the slack (one row, but the model must place the span's
# end itself).
LENGTH_RULES = ("predict", "search", "fillers")
DEVICES = ("auto", "cpu", "cuda", "mps")
MODEL_FAMILIES = ("auto", "ours", "masked-lm", "dream", "llada")  # models.families, torch-free
DTYPES = ("auto", "float32", "bfloat16")
# When rewrite and revise widen a selection to whole syntax nodes (and say so): only a selection
# of whole lines (a line-wise one), always, or never. A character-wise selection is kept as made.
SNAP_SELECTIONS = ("lines", "always", "never")


@dataclass(frozen=True)
class DecodeOptions:
    """Sampler and window settings for one call (see `sampler.Sampling` for the maths)."""

    steps: int = 16  # hard budget of denoising steps (forward passes) per call
    threshold: float = 0.9  # commit every masked position whose confidence is above this
    schedule: str = "threshold"  # one of SCHEDULES
    confidence: str = "maxprob"  # one of CONFIDENCE_KINDS
    temperature: float = 0.0
    top_p: float = 1.0
    filler_penalty: float = 0.0
    remask: bool = False
    remask_count: int = 2
    remask_floor: float = 0.5
    context_tokens: int = 256
    max_span_tokens: int = 48
    seed: int | None = 0
    length: str = "search"  # one of LENGTH_RULES
    # Searching, the best-ranked lengths decoded in full, then compared by how likely the model
    # finds each finished canvas (text and fillers alike). Measured on 396 held-out lines with
    # the v4 model, 3 instead of 1 made 56 lines exact instead of 51 but gave a correct start on
    # 97 instead of 113, at 1.6 times the time: a choice for the user, not the default.
    lengths_decoded: int = 1
    # revise re-decodes, and hints mark, the tokens whose log-probability is below this cut
    unlikely_below: float = math.log(0.2)
    # Denoising steps per full pass over the window: the steps between run over the span only,
    # attending to the context's keys and values cached at the last full pass (1: no cache).
    # 4 measured on the v6 model: told-length lines 1069 -> 593 ms median, 17/98 exact either
    # way; unknown-length lines 5/59 exact either way (BENCHMARKS.md, issue 18).
    context_refresh: int = 4
    # Ranking a span's lengths: context columns either side of the canvas recomputed for every
    # hypothesis row, the rest cached from one full pass over a row of masks, the denoising
    # steps going on from that cache (0: a full pass over every row). 16 measured on the v6
    # model: 396 held-out lines in 35.9 instead of 71.2 s, exact 29 against 30 lines, correct
    # starts 57 either way; 98 lines 9/98 exact either way (BENCHMARKS.md, issue 18).
    rank_margin: int = 16
    # At most one forward pass (those deciding a length included) for every this many tokens
    # to write, within `steps` and never under `decoder.FEWEST_PASSES`; the last step commits
    # what is left. 0: `steps` alone. The default model's is 4 (its infill.json): 396 held-out
    # lines 29 exact either way, 2.14 instead of 1.64 tokens a pass (BENCHMARKS.md, issue 18).
    tokens_per_step: float = 0.0


DECODE_DEFAULTS = DecodeOptions()


@dataclass(frozen=True)
class Setting:
    """How one `Settings` field looks on the wire and what values it takes."""

    key: str  # camelCase wire name
    kind: str  # JSON type: "integer", "number", "string", "boolean" or "array"
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    decode: bool = False  # a DecodeOptions field: unset (None) means the model's default
    check: Callable[[Any], Any] | None = None  # a check beyond kind, bounds and choices

    def parse(self, value: Any) -> Any:
        """The value in Python form; ValueError saying what is expected."""
        if self.check is not None:
            return self.check(value)
        if self.choices:
            if value not in self.choices:
                raise ValueError("one of " + ", ".join(repr(c) for c in self.choices))
            return str(value)
        if self.kind == "boolean":
            if not isinstance(value, bool):
                raise ValueError("true or false")
            return value
        low = -math.inf if self.minimum is None else self.minimum
        high = math.inf if self.maximum is None else self.maximum
        if self.kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"an integer from {low} to {high}")
            return value
        if self.kind == "number":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or not math.isfinite(value) or not low <= value <= high:
                raise ValueError(f"a number from {low} to {high}")
            return float(value)
        raise TypeError(f"setting {self.key} has no check")  # a definition error, not user input


def _setting(default: Any, key: str, kind: str, description: str, **details: Any) -> Any:
    """A Settings field carrying its wire definition."""
    return field(default=default, metadata={"setting": Setting(key, kind, description, **details)})


def _device(value: Any) -> str:
    if not isinstance(value, str) or value.split(":")[0] not in DEVICES:
        raise ValueError("'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    return value


def _path(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError("a directory path")
    return value


def _marker(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 32:
        raise ValueError("a non-empty string of at most 32 characters")
    return value


def _languages(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("a list of languageIds")
    return tuple(value)


@dataclass(frozen=True)
class Settings:
    """Everything a user can configure, in Python names; each field's `Setting` is its wire form."""

    model_path: str | None = _setting(
        None, "modelPath", "string", "Model directory. Empty or null: the embedded default model.",
        check=_path,
    )  # fmt: skip
    model_family: str = _setting(
        "auto", "modelFamily", "string",
        "How to read modelPath: auto (from its config.json), ours, masked-lm (RoBERTa, BERT, "
        "ModernBERT...), dream (Dream, DiffuCoder...) or llada.",
        choices=MODEL_FAMILIES,
    )  # fmt: skip
    device: str = _setting(
        "cpu", "device", "string",
        "Torch device for the model: auto (CUDA when there is one), cpu, cuda, cuda:N or mps.",
        check=_device,
    )  # fmt: skip
    dtype: str = _setting(
        "auto", "dtype", "string",
        "Weights' precision: auto (bfloat16 on a GPU that has it and on a CPU that multiplies "
        "it natively, else float32), float32 or bfloat16.",
        choices=DTYPES,
    )  # fmt: skip
    threads: int = _setting(
        0, "threads", "integer", "CPU threads for the model; 0: all cores.", minimum=0, maximum=256
    )
    steps: int | None = _setting(
        None, "steps", "integer", "Denoising steps (forward passes) per request.",
        minimum=1, maximum=512, decode=True,
    )  # fmt: skip
    threshold: float | None = _setting(
        None, "threshold", "number",
        "Commit every masked token whose confidence is above this in one step.",
        minimum=0.0, maximum=1.0, decode=True,
    )  # fmt: skip
    temperature: float | None = _setting(
        None, "temperature", "number", "Sampling temperature; 0 is greedy.",
        minimum=0.0, maximum=10.0, decode=True,
    )  # fmt: skip
    confidence: str | None = _setting(
        None, "confidence", "string", "How a token's confidence is measured.",
        choices=CONFIDENCE_KINDS, decode=True,
    )  # fmt: skip
    remask: bool | None = _setting(
        None, "remask", "boolean", "Re-mask a few low-confidence tokens mid-way and decode again.",
        decode=True,
    )  # fmt: skip
    length: str | None = _setting(
        None, "length", "string",
        "How an infill's length is found: predict reads it off the model's own end predictions "
        "(models trained for it); search ranks every span length first; fillers decodes one "
        "oversized canvas.",
        choices=LENGTH_RULES, decode=True,
    )  # fmt: skip
    lengths_decoded: int | None = _setting(
        None, "lengthsDecoded", "integer",
        "Searching: the best-ranked lengths decoded in full and compared.",
        minimum=1, maximum=8, decode=True,
    )  # fmt: skip
    max_span_tokens: int | None = _setting(
        None, "maxSpanTokens", "integer", "Longest infill in tokens.",
        minimum=1, maximum=4096, decode=True,
    )  # fmt: skip
    context_tokens: int | None = _setting(
        None, "contextTokens", "integer", "Tokens of context around the span the model reads.",
        minimum=16, maximum=65536, decode=True,
    )  # fmt: skip
    context_refresh: int | None = _setting(
        None, "contextRefresh", "integer",
        "Denoising steps per full pass over the window; the steps between run over the span "
        "only, reusing the context's cached keys and values (faster, approximate). 1: no cache.",
        minimum=1, maximum=64, decode=True,
    )  # fmt: skip
    rank_margin: int | None = _setting(
        None, "rankMargin", "integer",
        "Ranking a span's lengths: context tokens either side of the span the model reads "
        "afresh for every length tried; the rest comes from one cached pass (faster, "
        "approximate). 0: a full pass for every length.",
        minimum=0, maximum=65536, decode=True,
    )  # fmt: skip
    tokens_per_step: float | None = _setting(
        None, "tokensPerStep", "number",
        "At most one forward pass for every this many tokens to write (the passes deciding a "
        "span's length included), never fewer than 4: fewer, fuller steps. 0: only the steps "
        "setting bounds them.",
        minimum=0.0, maximum=64.0, decode=True,
    )  # fmt: skip
    hole_marker: str = _setting(
        "<mask>", "holeMarker", "string", "The marker Fill Holes fills.", check=_marker
    )
    snap_selection: str = _setting(
        "lines", "snapSelection", "string",
        "Widen a rewrite or revise selection to whole syntax nodes (saying so): lines (only a "
        "selection of whole lines), always, or never.",
        choices=SNAP_SELECTIONS,
    )  # fmt: skip
    debounce_ms: int = _setting(
        75, "debounceMs", "integer", "Server-side debounce of inline completion in milliseconds.",
        minimum=0, maximum=10_000,
    )  # fmt: skip
    languages: tuple[str, ...] = _setting(
        (), "languages", "array", "languageIds enabled; empty: all.", check=_languages
    )
    hints: bool = _setting(
        False, "hints", "boolean", "Show revise hints (unlikely tokens) as diagnostics."
    )
    candidates: int = _setting(
        3, "candidates", "integer", "Inline completion candidates on an explicit request.",
        minimum=1, maximum=8,
    )  # fmt: skip

    def enabled_for(self, language_id: str | None) -> bool:
        """Whether completion and actions are on for documents of `language_id`."""
        return not self.languages or (language_id or "") in self.languages

    def decode_overrides(self) -> dict[str, Any]:
        """DecodeOptions fields the user set explicitly (Python names)."""
        return {
            item.name: getattr(self, item.name)
            for item, setting in _SETTINGS.values()
            if setting.decode and getattr(self, item.name) is not None
        }


# wire name -> (Settings field, its definition)
_SETTINGS: dict[str, tuple[Field[Any], Setting]] = {
    item.metadata["setting"].key: (item, item.metadata["setting"]) for item in fields(Settings)
}


def settings_schema() -> dict[str, dict[str, Any]]:
    """Every server setting by camelCase name, as JSON-schema-like dicts.

    Each has `type`, `default` (what the server uses when the setting is unset or null; for a
    decode setting the model's default), `description` and, where they apply, `minimum`,
    `maximum` and `enum`. Every setting also accepts null, which restores the default.
    """
    schema: dict[str, dict[str, Any]] = {}
    for key, (item, setting) in _SETTINGS.items():
        default = getattr(DECODE_DEFAULTS, item.name) if setting.decode else item.default
        entry: dict[str, Any] = {
            "type": setting.kind,
            "default": list(default) if isinstance(default, tuple) else default,
            "description": setting.description,
        }
        if setting.kind == "array":
            entry["items"] = {"type": "string"}
        if setting.minimum is not None:
            entry["minimum"] = setting.minimum
        if setting.maximum is not None:
            entry["maximum"] = setting.maximum
        if setting.choices:
            entry["enum"] = list(setting.choices)
        schema[key] = entry
    return schema


def section_of(raw: Any) -> Mapping[str, Any] | None:
    """The settings object inside `raw`: raw["infill"] when present, else raw itself."""
    if not isinstance(raw, Mapping):
        return None
    inner = raw.get(SECTION)
    return inner if isinstance(inner, Mapping) else raw


def parse_settings(raw: Any, base: Settings | None = None) -> tuple[Settings, list[str]]:
    """Apply the camelCase settings in `raw` over `base`; return the settings and any problems.

    Keys absent from `raw` keep their value in `base`; a null value restores the default.
    """
    base = base or Settings()
    section = section_of(raw)
    if section is None:
        bad = [] if raw is None else [f"infill settings must be an object, got {raw!r}"]
        return base, bad
    changes: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in section.items():
        if key not in _SETTINGS:
            problems.append(f"unknown setting infill.{key} ignored")
            continue
        item, setting = _SETTINGS[key]
        if value is None:
            changes[item.name] = item.default
            continue
        try:
            changes[item.name] = setting.parse(value)
        except ValueError as error:
            fallback = item.default
            shown = "the model's default" if fallback is None else repr(fallback)
            problems.append(f"infill.{key} must be {error}, got {value!r}; using {shown}")
            changes[item.name] = fallback
    return replace(base, **changes), problems


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m infill_lsp.options --schema`: print the settings schema as JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m infill_lsp.options", description="The infill-lsp server's settings."
    )
    parser.add_argument("--schema", action="store_true", help="print every setting as JSON")
    args = parser.parse_args(argv)
    if not args.schema:
        parser.print_help(sys.stderr)
        return 2
    json.dump(settings_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
