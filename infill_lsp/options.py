"""The server's settings: one typed object parsed once from the camelCase wire format.

Settings arrive from `initializationOptions`, `workspace/didChangeConfiguration` and
`workspace/configuration`, either flat or under the section "infill". A bad value falls back to
its default and produces one problem string for the user; an unknown key produces one too.
Decoding settings left unset (None) mean "the model's own default". This module knows nothing
about pygls or the model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

SECTION = "infill"
CONFIDENCE_KINDS = ("maxprob", "margin", "entropy")
# The same as engine.LENGTH_RULES (a test ties them); kept here so settings load without torch.
LENGTH_RULES = ("search", "fillers")
DEVICES = ("cpu", "cuda", "mps")


@dataclass(frozen=True)
class Settings:
    """Everything a user can configure, in Python names."""

    model_path: str | None = None  # None: the embedded default model
    device: str = "cpu"
    threads: int = 0  # CPU threads for the model; 0: all cores
    steps: int | None = None
    threshold: float | None = None
    temperature: float | None = None
    confidence: str | None = None
    remask: bool | None = None
    length: str | None = None  # "search": rank every span length first; "fillers": one canvas
    lengths_decoded: int | None = None  # searching: the best-ranked lengths decoded and compared
    max_span_tokens: int | None = None
    context_tokens: int | None = None
    hole_marker: str = "<mask>"
    debounce_ms: int = 75
    languages: tuple[str, ...] = ()  # languageIds enabled; empty: all
    hints: bool = False
    candidates: int = 3  # on an explicit (Invoked) request

    def enabled_for(self, language_id: str | None) -> bool:
        """Whether completion and actions are on for documents of `language_id`."""
        return not self.languages or (language_id or "") in self.languages

    def decode_overrides(self) -> dict[str, Any]:
        """DecodeOptions fields the user set explicitly (Python names)."""
        names = (
            "steps", "threshold", "temperature", "confidence", "remask", "length", "lengths_decoded"
        )  # fmt: skip
        found = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        if self.max_span_tokens is not None:
            found["max_span_tokens"] = self.max_span_tokens
        if self.context_tokens is not None:
            found["context_tokens"] = self.context_tokens
        return found


def _int_between(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"an integer from {low} to {high}")
        return value

    return check


def _float_between(low: float, high: float) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or not low <= value <= high:
            raise ValueError(f"a number from {low} to {high}")
        return float(value)

    return check


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError("one of " + ", ".join(repr(c) for c in choices))
        return str(value)

    return check


def _device(value: Any) -> str:
    if not isinstance(value, str) or value.split(":")[0] not in DEVICES:
        raise ValueError("'cpu', 'cuda', 'cuda:N' or 'mps'")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("true or false")
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


# wire name -> (field name, checker)
_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "modelPath": ("model_path", _path),
    "device": ("device", _device),
    "threads": ("threads", _int_between(0, 256)),
    "steps": ("steps", _int_between(1, 512)),
    "threshold": ("threshold", _float_between(0.0, 1.0)),
    "temperature": ("temperature", _float_between(0.0, 10.0)),
    "confidence": ("confidence", _one_of(CONFIDENCE_KINDS)),
    "remask": ("remask", _bool),
    "length": ("length", _one_of(LENGTH_RULES)),
    "lengthsDecoded": ("lengths_decoded", _int_between(1, 8)),
    "maxSpanTokens": ("max_span_tokens", _int_between(1, 4096)),
    "contextTokens": ("context_tokens", _int_between(16, 65536)),
    "holeMarker": ("hole_marker", _marker),
    "debounceMs": ("debounce_ms", _int_between(0, 10_000)),
    "languages": ("languages", _languages),
    "hints": ("hints", _bool),
    "candidates": ("candidates", _int_between(1, 8)),
}


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
    default = Settings()
    changes: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in section.items():
        if key not in _FIELDS:
            problems.append(f"unknown setting infill.{key} ignored")
            continue
        name, check = _FIELDS[key]
        if value is None:
            changes[name] = getattr(default, name)
            continue
        try:
            changes[name] = check(value)
        except ValueError as error:
            fallback = getattr(default, name)
            shown = "the model's default" if fallback is None else repr(fallback)
            problems.append(f"infill.{key} must be {error}, got {value!r}; using {shown}")
            changes[name] = fallback
    return replace(base, **changes), problems
