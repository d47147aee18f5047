"""Run the VS Code extension's checks from pytest: `tsc` compiles it (strict), `node --test` runs
the unit tests of its pure modules and the end-to-end test in which Node starts the real
infill-lsp server (the command line the extension computes) and talks to it over vscode-jsonrpc,
and `vsce` packages it to a .vsix. Needs `npm ci --prefix editor-clients/vscode` beforehand.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import NoReturn

import pytest

EXTENSION = Path(__file__).resolve().parent.parent / "editor-clients" / "vscode"


def missing(message: str) -> NoReturn:
    """A missing tool fails in CI and skips elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def compiled() -> str:
    """Compile the extension with tsc; return the node executable."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing("node/npm not found (Node 20+ is needed for the VS Code extension)")
    if not (EXTENSION / "node_modules" / ".bin" / "tsc").exists():
        missing(
            "editor-clients/vscode/node_modules is missing: npm ci --prefix editor-clients/vscode"
        )
    result = subprocess.run(
        [npm, "run", "compile"], cwd=EXTENSION, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"tsc failed:\n{result.stdout}\n{result.stderr}"
    return node


def node_test(node: str, test_file: str, env: dict[str, str], timeout: float) -> dict[str, int]:
    """Run one compiled test file with `node --test`; return its TAP counts."""
    result = subprocess.run(
        [node, "--test", f"out/test/{test_file}"],
        cwd=EXTENSION,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = result.stdout + result.stderr
    counts = {
        k: int(v)
        for k, v in re.findall(r"^# (tests|pass|fail|skipped) (\d+)$", result.stdout, re.M)
    }
    assert result.returncode == 0, output
    assert counts.get("fail") == 0, output
    return counts


def test_vscode_unit(compiled: str) -> None:
    """Settings -> server command and initializationOptions, status view, command arguments."""
    counts = node_test(compiled, "settings.test.js", dict(os.environ), timeout=120)
    assert counts["pass"] >= 8


def test_vscode_against_real_server(compiled: str, tiny_model_dir: Path) -> None:
    """Initialize, model load, inline completion and rewrite (edit and applyEdit) over stdio."""
    env = dict(os.environ, INFILL_PYTHON=sys.executable, INFILL_MODEL_PATH=str(tiny_model_dir))
    counts = node_test(compiled, "server.test.js", env, timeout=600)
    assert counts.get("skipped") == 0
    assert counts["pass"] >= 4


def test_vscode_packages_to_vsix(compiled: str, tmp_path: Path) -> None:
    """vsce packages the compiled extension with its runtime dependency and no sources."""
    npm = shutil.which("npm")
    assert npm is not None
    vsix = tmp_path / "infill-lsp.vsix"
    result = subprocess.run(
        [npm, "run", "package", "--", "--out", str(vsix)],
        cwd=EXTENSION,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"vsce failed:\n{result.stdout}\n{result.stderr}"
    names = set(zipfile.ZipFile(vsix).namelist())
    assert "extension/package.json" in names
    assert "extension/out/extension.js" in names
    assert "extension/node_modules/vscode-languageclient/package.json" in names
    assert not any(name.startswith("extension/src/") for name in names)
    assert not any(name.startswith("extension/out/test/") for name in names)
