"""`infill-lsp fill` end to end in a subprocess: results, JSON, steps, and every bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infill_lsp.model import DEFAULT_MODEL_DIR

SOURCE = 'import os\n\n\ndef add(a, b):\n    """Add."""\n    return a + b\n\nprint(add(1, 2))\n'


def infill_lsp(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infill_lsp", *map(str, args)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
    )


def launch(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "infill_lsp", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "example.py"
    path.write_text(SOURCE, encoding="utf-8", newline="")
    return path


def test_fill_at_a_cursor_prints_json_and_steps(tiny_model_dir: Path, tmp_path: Path) -> None:
    # A file of several megabytes: the window keeps the work bounded.
    big = tmp_path / "big.py"
    big.write_text("x = compute(1, 2)\n" * 200_000 + SOURCE, encoding="utf-8")
    line = 200_000 + 6  # "    return a + b"
    done = infill_lsp(
        "fill", big, "--at", f"{line}:12", "--model", tiny_model_dir,
        "--steps", "3", "--json", "--show-steps", timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["mode"] == "infill"
    assert result["start"] == result["end"] == {"line": line, "col": 12}
    assert isinstance(result["text"], str) and 1 <= result["steps"] <= 3
    assert all(0 <= c <= 1 for c in result["confidences"])
    assert done.stderr.count("--- step") == result["steps"]
    assert "--- step 3/3" in done.stderr or result["steps"] < 3


def test_rewrite_a_range(tiny_model_dir: Path, source: Path) -> None:
    done = infill_lsp(
        "fill", source, "--range", "6:12-6:17", "--model", tiny_model_dir, "--steps", "2"
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("\n") and "Traceback" not in done.stderr


def test_the_fillers_length_rule_and_a_bad_one(tiny_model_dir: Path, source: Path) -> None:
    model = ["--model", tiny_model_dir, "--steps", "2", "--json"]
    done = infill_lsp("fill", source, "--at", "6:12", "--length", "fillers", *model)
    assert done.returncode == 0, done.stderr
    assert 1 <= json.loads(done.stdout)["steps"] <= 2
    bad = infill_lsp("fill", source, "--at", "6:12", "--length", "guess", *model)
    assert bad.returncode == 2 and "invalid choice: 'guess'" in bad.stderr


def test_bad_inputs_give_one_message_and_exit_code_2(
    tiny_model_dir: Path, source: Path, tmp_path: Path
) -> None:
    binary = tmp_path / "binary.py"
    binary.write_bytes(b"x = '\xff\xfe'\n")
    pickle_only = tmp_path / "pickle_only"
    shutil.copytree(tiny_model_dir, pickle_only)
    (pickle_only / "model.safetensors").unlink()
    (pickle_only / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    wrong_vocab = tmp_path / "wrong_vocab"
    shutil.copytree(tiny_model_dir, wrong_vocab)
    config = json.loads((wrong_vocab / "config.json").read_text())
    config["vocab_size"] = 50
    (wrong_vocab / "config.json").write_text(json.dumps(config))
    model = ["--model", str(tiny_model_dir)]
    cases = {
        "line out of range": (["--at", "99:1", *model], "line 99"),
        "column out of range": (["--at", "1:50", *model], "column 50"),
        "malformed position": (["--at", "one:two", *model], "LINE:COL"),
        "reversed range": (["--range", "6:10-4:1", *model], "before the start"),
        "revise at a cursor": (["--at", "1:1", "--mode", "revise", *model], "--range"),
        "missing model": (["--at", "1:1", "--model", str(tmp_path / "none")], "does not exist"),
        "pickle weights only": (["--at", "1:1", "--model", str(pickle_only)], "pickle"),
        "wrong vocabulary": (["--at", "1:1", "--model", str(wrong_vocab)], "vocabulary"),
    }
    processes = {name: launch("fill", source, *args) for name, (args, _) in cases.items()}
    processes["directory"] = launch("fill", tmp_path, "--at", "1:1", *model)
    processes["not utf-8"] = launch("fill", binary, "--at", "1:1", *model)
    processes["missing file"] = launch("fill", tmp_path / "nope.py", "--at", "1:1", *model)
    expected = {name: needle for name, (_, needle) in cases.items()}
    expected |= {"directory": "directory", "not utf-8": "UTF-8", "missing file": "does not exist"}
    if not DEFAULT_MODEL_DIR.exists():
        processes["no default model"] = launch("fill", source, "--at", "1:1")
        expected["no default model"] = "--model"
    for name, process in processes.items():
        out, err = process.communicate(timeout=60)
        assert process.returncode == 2, (name, err)
        assert "Traceback" not in err, name
        assert err.startswith("infill-lsp: ") and err.count("\n") == 1, (name, err)
        assert expected[name] in err, (name, err)
        assert out == "", name
