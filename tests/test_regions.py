"""Behaviour of infill_lsp.regions: grammars, completion scope, selection snapping, spans."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infill_lsp.regions import (
    completion_scope,
    introduces_error,
    language_for,
    parse_errors,
    snap_to_nodes,
    syntax_spans,
)

GRAMMARS = ["python", "javascript", "typescript", "tsx", "go", "rust", "java", "c", "cpp"]

PYTHON = (
    "def f(a, b):\n"
    "    x = foo(bar, baz)\n"
    "    if x:\n"
    "        return a + b\n"
    "    return 0\n"
    "\n"
    "\n"
    "def g():\n"
    "    pass\n"
)
JAVASCRIPT = "function f(a) {\n  const x = g(a, 1) + 2;\n  return x;\n}\nf(3);\n"
GO = "package main\n\nfunc add(a int, b int) int {\n\ts := a + b\n\treturn s\n}\n"
RUST = (
    "fn main() {\n    let v = vec![1, 2, 3];\n    for x in v.iter() {\n        go(x);\n    }\n}\n"
)
C = "int add(int a, int b) {\n    int s = a + b;\n    return s;\n}\n"
PROSE = "Some prose line\nsecond line here\nthird\n"
NON_ASCII = "def f():\n    s = 'héllo wörld 🎉'\n    return len(s) + 1\n"


def scope(marked: str, language: str | None) -> str:
    """completion_scope at the `|` in `marked`."""
    offset = marked.index("|")
    return completion_scope(marked.replace("|", "", 1), offset, language)


def snap(text: str, selected: str, language: str | None) -> str:
    """Text that snap_to_nodes keeps for the first occurrence of `selected`."""
    start = text.index(selected)
    new_start, new_end = snap_to_nodes(text, start, start + len(selected), language)
    return text[new_start:new_end]


def spans_by_text(text: str, language: str | None) -> dict[str, str]:
    return {text[start:end]: kind for start, end, kind in syntax_spans(text, language)}


# --- languages ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "language_id", "expected"),
    [
        ("a/b/c.py", None, "python"),
        ("file:///home/me/proj/app.tsx", None, "tsx"),
        ("file:///home/me/proj/app.ts?x=1#frag", None, "typescript"),
        ("main.go", None, "go"),
        ("lib.rs", None, "rust"),
        ("Main.java", None, "java"),
        ("x.h", None, "c"),
        ("x.hpp", None, "cpp"),
        ("C:\\src\\x.CC", None, "cpp"),
        ("file:///x/untitled", "typescriptreact", "tsx"),
        ("file:///x/untitled", "javascriptreact", "javascript"),
        ("file:///x/a.txt", "cpp", "cpp"),
        ("file:///x/a.c", "c", "c"),
        ("file:///x/a.py", "plaintext", None),
        ("file:///x/README.md", "markdown", None),
        ("notes.txt", None, None),
        ("README.md", None, None),
        ("Makefile", None, None),
        ("file:///x/a.py", "some-unknown-id", "python"),
    ],
)
def test_language_for_maps_paths_uris_and_language_ids(path, language_id, expected):
    assert language_for(path, language_id) == expected


@pytest.mark.parametrize("language", GRAMMARS)
def test_every_supported_grammar_ships_with_the_package(language):
    # Loaded from the installed wheel; an on-demand download would leave language_for at None.
    assert language_for("x", language if language != "tsx" else "typescriptreact") == language
    assert parse_errors("", language) == 0


# --- parse errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "good", "bad"),
    [
        ("python", "x = f(1)\n", "x = f(1\n"),
        ("javascript", "let x = f(1);\n", "let x = f(1;\n"),
        ("go", GO, GO.replace("a + b", "a +")),
        ("rust", RUST, RUST.replace("go(x);", "go(x;")),
        ("c", C, C.replace("return s;", "return s")),
    ],
)
def test_parse_errors_and_introduces_error(language, good, bad):
    assert parse_errors(good, language) == 0
    assert parse_errors(bad, language) >= 1
    assert introduces_error(good, bad, language)
    assert not introduces_error(bad, good, language)
    assert not introduces_error(good, good, language)


def test_missing_nodes_count_as_errors():
    assert parse_errors("int main() { return 0 }", "c") == 1  # a MISSING ";"


def test_an_error_already_there_is_not_introduced():
    assert not introduces_error("x = (1\n", "x = (2\n", "python")


CLAMP = "def clamp(low, high, width):\n    return max(low, min(<mask>, high))\n"
HOLES = 'x = f(<mask>)\ny = re.compile(r"<mask>")\nz = {"mask": "<mask>"}\n'


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # The marker's own errors vanish; the fill brings fewer, elsewhere (issue 25, in Neovim).
        (CLAMP, CLAMP.replace("<mask>", "width,\n,,,,,,,,,,,,,,,height")),
        # A real hole filled well, markers in a string and a dict filled with broken text: the
        # error count even drops, but the new errors are where no error was.
        (HOLES, 'x = f(a)\ny = re.compile(r"a\nb(")\nz = {"mask": "<mask>"}\n'),
        (HOLES, 'x = f(a)\ny = re.compile(r"<mask>")\nz = {"mask": "}\n'),
    ],
)
def test_an_error_in_a_new_place_is_introduced_whatever_the_count(before, after):
    assert parse_errors(after, "python") <= parse_errors(before, "python")
    assert introduces_error(before, after, "python")


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (CLAMP, CLAMP.replace("<mask>", "width")),  # the hole's errors go with the marker
        ("def f(:\n    pass\nx = min(<mask>, 2)\n", "def f(:\n    pass\nx = min(1, 2)\n"),
        ("a = 1\nb = (\n", "a = 100\nb = (\n"),  # an error right of the change moves with it
        ("def f(:\n    return 1\n", "def f(:\n    return 12345\n"),
    ],
)
def test_an_error_already_there_stays_the_same_error(before, after):
    assert parse_errors(before, "python") >= 1
    assert not introduces_error(before, after, "python")


def test_without_grammar_nothing_is_an_error():
    assert parse_errors("def f(:\n", None) == 0
    assert not introduces_error("ok", "def f(:", None)


# --- completion scope --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("marked", "language", "expected"),
    [
        # code on the cursor line: one line
        ("x = fo|o(1)\n", "python", "line"),
        ("x = foo(1)|\n", "python", "line"),
        ("if x:|\n    y = 1\n", "python", "line"),  # the block already has a body
        ("let x = {|};", "javascript", "line"),  # an object literal, not a block
        ("foo(|)", "javascript", "line"),
        # an opener whose block is still empty: a body
        ("def f():|", "python", "block"),
        ("function f() {|}", "javascript", "block"),
        ("func f() {|}", "go", "block"),
        ("fn f() {|}", "rust", "block"),
        ("int f() {|}", "c", "block"),
        # a blank line after an opener or inside a block: a body
        ("def f():\n    |", "python", "block"),
        ("def f():\n    x = 1\n    |\n", "python", "block"),
        ("function f() {\n  let a = 1;\n|\n  return a;\n}", "javascript", "block"),
        ("func f() {\n\t|\n}", "go", "block"),
        ("fn f() {\n    |\n}", "rust", "block"),
        ("int f() {\n    |\n}", "c", "block"),
        # a blank line at top level: one line
        ("x = 1\n|\ny = 2\n", "python", "line"),
        ("let x = 1;\n|\nlet y = 2;", "javascript", "line"),
        ("int x = 1;\n|\n", "c", "line"),
        # no grammar: the same rules on the text alone
        ("Some words|\n", None, "line"),
        ("\n|\n", None, "line"),
        ("Example:\n|", None, "block"),
        ("if (x) {\n    |\n}", None, "block"),
        # non-ASCII before the cursor does not shift the offsets
        ("x = 'é🎉'\ndef f():|", "python", "block"),
        ("s = '🎉🎉🎉'\nif s:\n    |", "python", "block"),
        ("s = '🎉🎉🎉'\n|\n", "python", "line"),
    ],
)
def test_completion_scope(marked, language, expected):
    assert scope(marked, language) == expected


def test_completion_scope_clamps_offsets():
    assert completion_scope("x = 1", 99, "python") == "line"
    assert completion_scope("", 0, "python") == "line"
    assert completion_scope("", -3, None) == "line"


# --- snapping selections -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "selected", "language", "expected"),
    [
        # most of a statement or expression becomes that node
        (PYTHON, "x = foo(bar, baz", "python", "x = foo(bar, baz)"),
        (PYTHON, "oo(bar", "python", "foo(bar, baz)"),
        (PYTHON, "bar, ba", "python", "bar, baz"),  # arguments stay arguments
        (PYTHON, "x", "python", "x"),  # a whole token stays as it is
        (JAVASCRIPT, "const x = g(a, 1) + 2", "javascript", "const x = g(a, 1) + 2;"),
        (RUST, "vec![1, 2", "rust", "vec![1, 2, 3]"),
        (C, "int s = a + b", "c", "int s = a + b;"),
        # a selection crossing lines becomes whole lines and whole statements
        (
            PYTHON,
            "(bar, baz)\n    if x",
            "python",
            "    x = foo(bar, baz)\n    if x:\n        return a + b",
        ),
        (PYTHON, "a + b\n    return", "python", "    if x:\n        return a + b\n    return 0"),
        (GO, "a + b\n\tre", "go", "\ts := a + b\n\treturn s"),
        (C, "s = a + b;\n    ret", "c", "    int s = a + b;\n    return s;"),
        # inside a comment or string the selection is left alone
        ("# a long comment here\nx = 1\n", "long com", "python", "long com"),
        # without a grammar only lines
        (PROSE, "line\nsec", None, "Some prose line\nsecond line here"),
        (PROSE, "prose", None, "prose"),
        # non-ASCII text before and inside the selection
        (NON_ASCII, "len(s) +", "python", "len(s) + 1"),
        (
            NON_ASCII,
            "wörld 🎉'\n    return",
            "python",
            "    s = 'héllo wörld 🎉'\n    return len(s) + 1",
        ),
    ],
)
def test_snap_to_nodes(text, selected, language, expected):
    assert snap(text, selected, language) == expected


def test_crlf_lines_snap_before_the_carriage_return():
    text = "a = 1\r\nb = 2\r\nc = 3\r\n"
    assert snap(text, "1\r\nb", None) == "a = 1\r\nb = 2"
    assert snap(text, "1\r\nb", "python") == "a = 1\r\nb = 2"


def test_a_whole_line_selection_keeps_its_newline():
    start = PROSE.index("second")
    end = PROSE.index("third")
    assert snap_to_nodes(PROSE, start, end, None) == (start, end)


def test_empty_selection_stays_empty():
    offset = PYTHON.index("foo")
    assert snap_to_nodes(PYTHON, offset, offset, "python") == (offset, offset)
    assert snap_to_nodes(PROSE, 3, 3, None) == (3, 3)


def test_reversed_and_out_of_range_selections_are_normalized():
    start = PYTHON.index("x = foo")
    end = start + len("x = foo(bar, baz")
    assert snap_to_nodes(PYTHON, end, start, "python") == snap_to_nodes(
        PYTHON, start, end, "python"
    )
    assert snap_to_nodes("abc", -5, 99, None) == (0, 3)


@settings(max_examples=150, deadline=None)
@given(
    source=st.sampled_from(
        [
            (PYTHON, "python"),
            (JAVASCRIPT, "javascript"),
            (GO, "go"),
            (RUST, "rust"),
            (C, "c"),
            (NON_ASCII, "python"),
            (PROSE, None),
            ("def f(:\n  é = [1,\n", "python"),
        ]
    ),
    a=st.integers(0, 200),
    b=st.integers(0, 200),
)
def test_snapping_never_shrinks_and_stays_in_the_text(source, a, b):
    text, language = source
    start, end = sorted((min(a, len(text)), min(b, len(text))))
    new_start, new_end = snap_to_nodes(text, start, end, language)
    assert 0 <= new_start <= start <= end <= new_end <= len(text)
    if start == end:
        assert (new_start, new_end) == (start, end)


# --- training spans ----------------------------------------------------------------------


def test_python_spans_have_every_kind():
    spans = spans_by_text(PYTHON, "python")
    assert spans["x = foo(bar, baz)"] == "statement"
    assert spans["return 0"] == "statement"
    assert spans["foo(bar, baz)"] == "expression"
    assert spans["a + b"] == "expression"
    assert spans["bar, baz"] == "arguments"
    assert spans["a, b"] == "arguments"
    assert spans["pass"] == "block"
    assert spans[PYTHON[PYTHON.index("x = foo") : PYTHON.index("return 0") + 8]] == "block"
    assert "x" not in spans  # single tokens are not expression spans


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        (
            JAVASCRIPT,
            "javascript",
            {
                "const x = g(a, 1) + 2;": "statement",
                "g(a, 1) + 2": "expression",
                "a, 1": "arguments",
                "const x = g(a, 1) + 2;\n  return x;": "block",
                "f(3);": "statement",
            },
        ),
        (
            GO,
            "go",
            {
                "s := a + b": "statement",
                "a int, b int": "arguments",
                "s := a + b\n\treturn s": "block",
            },
        ),
        (
            RUST,
            "rust",
            {"let v = vec![1, 2, 3];": "statement", "x": "arguments", "go(x);": "block"},
        ),
        (
            C,
            "c",
            {"int s = a + b;": "statement", "int a, int b": "arguments", "a + b": "expression"},
        ),
    ],
)
def test_spans_in_other_languages(text, language, expected):
    spans = spans_by_text(text, language)
    for span_text, kind in expected.items():
        assert spans.get(span_text) == kind, span_text


def test_spans_are_sorted_in_bounds_and_trimmed():
    for text, language in [(PYTHON, "python"), (GO, "go"), (NON_ASCII, "python")]:
        spans = syntax_spans(text, language)
        assert spans == sorted(spans, key=lambda span: (span[0], -span[1]))
        for start, end, kind in spans:
            assert 0 <= start < end <= len(text)
            assert kind in {"block", "statement", "expression", "arguments"}
            assert text[start:end] == text[start:end].strip()


def test_spans_use_code_point_offsets_with_non_ascii_text():
    spans = spans_by_text(NON_ASCII, "python")
    assert spans["s = 'héllo wörld 🎉'"] == "statement"
    assert spans["len(s) + 1"] == "expression"
    assert spans["s"] == "arguments"


def test_truncated_windows_still_give_their_complete_parts():
    window = PYTHON[5:-3]  # starts inside the def's parameters, ends mid-"pass"
    spans = spans_by_text(window, "python")
    assert spans["if x:\n        return a + b"] == "statement"
    assert spans["return 0"] == "statement"
    assert spans["bar, baz"] == "arguments"
    for cut in range(0, len(JAVASCRIPT), 7):  # any cut of the window parses without raising
        for start, end, _ in syntax_spans(JAVASCRIPT[cut:], "javascript"):
            assert 0 <= start < end <= len(JAVASCRIPT) - cut


def test_no_grammar_gives_no_spans():
    assert syntax_spans(PROSE, None) == []
    assert syntax_spans("", "python") == []


def test_regions_work_from_several_threads():
    results: list[list[tuple[int, int, str]]] = []
    expected = syntax_spans(PYTHON, "python")

    def work() -> None:
        for _ in range(20):
            results.append(syntax_spans(PYTHON, "python"))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 80
    assert all(result == expected for result in results)
