"""The server's pure parts: positions in three encodings, settings parsing, completion shaping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infill_lsp.errors import InputError
from infill_lsp.lsp.positions import UTF8, UTF16, UTF32, LineIndex, code_units
from infill_lsp.options import Settings, parse_settings
from infill_lsp.postprocess import changed_span, shape_insertion

TEXT = "a😀b\r\nüx\rlast\n"


@pytest.mark.parametrize(
    ("encoding", "character", "offset"),
    [(UTF16, 1, 1), (UTF16, 2, 1), (UTF16, 3, 2), (UTF8, 5, 2), (UTF8, 3, 1), (UTF32, 2, 2)],
)
def test_offsets_in_each_encoding(encoding: str, character: int, offset: int):
    assert LineIndex(TEXT).offset_at(0, character, encoding) == offset


def test_lines_follow_lsp_breaks_only():
    index = LineIndex(TEXT + "form\x0cfeed\u2028x")
    assert index.line_count == 4
    assert index.line_text(1) == "üx"
    assert index.line_text(3) == "form\x0cfeed\u2028x"
    assert index.offset_at(1, 99, UTF16) == TEXT.index("\r", 5)  # past the line end: its end
    with pytest.raises(InputError):
        index.offset_at(9, 0, UTF16)
    assert index.offset_at(9, 0, UTF16, clamp=True) == len(index.text)


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40), st.data())
def test_position_round_trip(text: str, data: st.DataObject):
    index = LineIndex(text)
    offset = data.draw(st.integers(0, len(text)))
    if text[offset - 1 : offset + 1] == "\r\n":
        offset -= 1  # no position sits between "\r" and "\n"
    for encoding in (UTF8, UTF16, UTF32):
        line, character = index.position_at(offset, encoding)
        assert index.offset_at(line, character, encoding) == offset
        assert character == code_units(
            index.line_text(line)[: offset - index.starts[line]], encoding
        )


def test_settings_parse_and_fall_back():
    settings, problems = parse_settings(
        {"infill": {"steps": 0, "candidates": 2, "languages": ["python"], "nope": 1}}
    )
    assert settings.steps is None and settings.candidates == 2
    assert settings.enabled_for("python") and not settings.enabled_for("go")
    assert len(problems) == 2 and "infill.steps" in problems[0] and "infill.nope" in problems[1]
    again, _ = parse_settings({"candidates": None}, settings)
    assert again.candidates == Settings().candidates and again.languages == ("python",)
    assert parse_settings("yes")[1] and parse_settings(None) == (Settings(), [])


def test_threads_setting_sets_torch_threads_and_null_restores_all_cores():
    import torch

    from infill_lsp import model
    from infill_lsp.model import use_threads

    settings, problems = parse_settings({"threads": 1})
    assert settings.threads == 1 and not problems
    assert parse_settings({"threads": -1})[0].threads == 0
    before = torch.get_num_threads()
    try:
        use_threads(settings.threads)
        assert torch.get_num_threads() == 1
        use_threads(parse_settings({"threads": None}, settings)[0].threads)
        assert torch.get_num_threads() == model._DEFAULT_THREADS  # torch's own choice again
    finally:
        torch.set_num_threads(before)


def test_settings_decode_overrides():
    settings, _ = parse_settings({"steps": 8, "threshold": 0.5, "contextTokens": 512})
    assert settings.decode_overrides() == {"steps": 8, "threshold": 0.5, "context_tokens": 512}


def test_insertion_swallows_closers_right_of_the_cursor():
    insertion = shape_insertion("a, b)", "f(", ")\nnext", single_line=True)
    assert insertion is not None and insertion.text == "a, b)" and insertion.replace == 1
    plain = shape_insertion("a, b", "f(", ")\nnext", single_line=True)
    assert plain is not None and plain.replace == 0


def test_insertion_drops_repeated_lines_and_empty_text():
    shaped = shape_insertion("    y = 2\n    return x", "def f():\n", "\n    return x\n", False)
    assert shaped is not None and shaped.text == "    y = 2"
    assert shape_insertion("  \n", "a", "b", False) is None
    assert shape_insertion(")", "f(", ")", True) is None
    assert shape_insertion("first\nsecond", "", "", True).text == "first"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("old", "new"), [("abc", "abc"), ("abc", "aXc"), ("a\r\nb", "a\r\nc"), ("x\r\ny", "x\rz\ny")]
)
def test_changed_span_is_minimal_and_exact(old: str, new: str):
    start, end, text = changed_span(old, new)
    assert old[:start] + text + old[end:] == new
    assert old[start - 1 : start + 1] != "\r\n" and old[end - 1 : end + 1] != "\r\n"


def test_length_setting_reaches_the_decode_options():
    settings, problems = parse_settings({"length": "fillers"})
    assert settings.length == "fillers" and not problems
    assert settings.decode_overrides()["length"] == "fillers"
    settings, problems = parse_settings({"length": "guess"})
    assert (
        settings.length is None
        and "infill.length must be one of 'predict', 'search', 'fillers'" in problems[0]
    )


def test_lengths_decoded_setting_reaches_the_decode_options():
    settings, problems = parse_settings({"lengthsDecoded": 1})
    assert settings.decode_overrides() == {"lengths_decoded": 1} and not problems
    settings, problems = parse_settings({"lengthsDecoded": 0})
    assert settings.lengths_decoded is None and "infill.lengthsDecoded" in problems[0]


def test_settings_schema_names_every_setting_with_its_default_and_bounds():
    from infill_lsp.options import DECODE_DEFAULTS, settings_schema

    schema = settings_schema()
    assert schema["threshold"] == {
        "type": "number",
        "default": DECODE_DEFAULTS.threshold,
        "description": schema["threshold"]["description"],
        "minimum": 0.0,
        "maximum": 1.0,
    }
    assert schema["steps"]["default"] == 16 and schema["steps"]["type"] == "integer"
    assert schema["length"]["enum"] == ["predict", "search", "fillers"]
    assert schema["debounceMs"]["default"] == Settings().debounce_ms
    assert schema["languages"] == {**schema["languages"], "type": "array", "default": []}
    # every key the schema names is accepted by the parser, and nothing else is
    assert not parse_settings({key: None for key in schema})[1]
    assert parse_settings({"noSuchSetting": 1})[1]
    for key, entry in schema.items():
        assert entry["description"], key
        if "minimum" in entry:  # the bounds are the parser's bounds
            assert parse_settings({key: entry["minimum"]})[1] == [], key
            below = entry["minimum"] - 1
            assert parse_settings({key: below})[1], key


def test_schema_module_prints_json_without_torch():
    import json
    import subprocess
    import sys

    code = (
        "import sys, runpy; sys.argv = ['x', '--schema'];"
        "\ntry: runpy.run_module('infill_lsp.options', run_name='__main__')"
        "\nexcept SystemExit: pass"
        "\nassert 'torch' not in sys.modules, 'options imported torch'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    from infill_lsp.options import settings_schema

    assert json.loads(done.stdout) == settings_schema()


def test_the_vscode_extension_mirrors_the_wire_names():
    from pathlib import Path

    from infill_lsp.lsp import wire

    mirror = Path(__file__).resolve().parents[1] / "editor-clients/vscode/src/protocol.ts"
    text = mirror.read_text(encoding="utf-8")
    assert f'STATUS_METHOD = "{wire.STATUS}"' in text
    for name in (*wire.COMMANDS, wire.LOADING, wire.READY, wire.ERROR):
        assert f'"{name}"' in text, name


def test_model_family_setting_names_every_registered_family():
    from infill_lsp.models import families
    from infill_lsp.options import MODEL_FAMILIES

    assert MODEL_FAMILIES[0] == families.AUTO and set(MODEL_FAMILIES[1:]) == set(families.FAMILIES)
    settings, problems = parse_settings({"modelFamily": "dream", "dtype": "bfloat16"})
    assert (settings.model_family, settings.dtype, problems) == ("dream", "bfloat16", [])
    settings, problems = parse_settings({"modelFamily": "gpt2", "device": "auto"})
    assert settings.model_family == "auto" and settings.device == "auto"
    assert problems == ["infill.modelFamily must be one of " + ", ".join(
        repr(name) for name in MODEL_FAMILIES) + ", got 'gpt2'; using 'auto'"]  # fmt: skip
