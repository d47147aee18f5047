"""Run the VS Code extension's checks from pytest: package.json declares every server setting
as the server's schema defines it; `tsc` compiles it (strict) and esbuild bundles it; `node --test`
runs the unit tests of its pure modules, the end-to-end test in which Node starts the real
infill-lsp server and talks to it over vscode-jsonrpc, and the extension test in which the real
`activate()` and the real vscode-languageclient run through a stand-in for the `vscode` module;
`vsce` packages it to a .vsix without warnings. Needs `npm ci --prefix editor-clients/vscode`
beforehand (CI=true turns a missing Node into a failure, never a skip).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, NoReturn

import pytest

from infill_lsp.options import settings_schema

EXTENSION = Path(__file__).resolve().parent.parent / "editor-clients" / "vscode"
# Settings the extension reads itself; every other infill.* setting is the server's.
CLIENT_SETTINGS = {"pythonPath", "serverCommand", "completionFallback", "trace.server"}


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


def test_package_json_declares_every_server_setting() -> None:
    """contributes.configuration lists the server's settings with the server's types, defaults,
    limits and choices (the extension forwards exactly these), and nothing else of the server's."""
    manifest = json.loads((EXTENSION / "package.json").read_text(encoding="utf-8"))
    declared: dict[str, dict[str, Any]] = {
        key.removeprefix("infill."): value
        for key, value in manifest["contributes"]["configuration"]["properties"].items()
    }
    schema = settings_schema()
    fix = "the server's settings changed: run `npm run sync-settings` in editor-clients/vscode"
    assert set(declared) - CLIENT_SETTINGS == set(schema), fix
    for name, server in schema.items():
        mine = declared[name]
        # A null default (the embedded model) is shown as "", which the server reads the same way.
        if server["default"] is None and server["type"] == "string":
            assert mine["default"] == "", f"{name}: {fix}"
        else:
            assert mine["default"] == server["default"], f"{name}: {fix}"
        assert mine["type"] == server["type"], f"{name}: {fix}"
        for limit in ("minimum", "maximum", "enum", "items"):
            assert mine.get(limit) == server.get(limit), f"{name}.{limit}: {fix}"
        assert mine.get("description") or mine.get("markdownDescription"), name


def test_vscode_unit(compiled: str) -> None:
    """Settings -> server command and initializationOptions, status view, command arguments."""
    counts = node_test(compiled, "settings.test.js", dict(os.environ), timeout=120)
    assert counts["pass"] >= 8


def test_vscode_launcher(compiled: str) -> None:
    """Restarts one at a time, a failed start dropped not disposed, the preflight's message."""
    counts = node_test(compiled, "launcher.test.js", dict(os.environ), timeout=120)
    assert counts["pass"] >= 3


def test_vscode_against_real_server(compiled: str, tiny_model_dir: Path) -> None:
    """Initialize, model load, inline completion and rewrite (edit and applyEdit) over stdio."""
    env = dict(os.environ, INFILL_PYTHON=sys.executable, INFILL_MODEL_PATH=str(tiny_model_dir))
    counts = node_test(compiled, "server.test.js", env, timeout=600)
    assert counts.get("skipped") == 0
    assert counts["pass"] >= 4


def test_vscode_extension_in_node(compiled: str, tiny_model_dir: Path) -> None:
    """activate() and vscode-languageclient against the server: --stdio, debounce, trigger kinds,
    settings, the completion fallback, a Python without the package, restarts."""
    env = dict(os.environ, INFILL_PYTHON=sys.executable, INFILL_MODEL_PATH=str(tiny_model_dir))
    counts = node_test(compiled, "extension.test.js", env, timeout=900)
    assert counts.get("skipped") == 0
    assert counts["pass"] >= 6


def test_vscode_packages_to_vsix(compiled: str, tmp_path: Path) -> None:
    """vsce packages the bundled extension with the LICENSE, no sources, and no warnings."""
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
    assert "WARNING" not in result.stdout + result.stderr, result.stdout + result.stderr
    names = set(zipfile.ZipFile(vsix).namelist())
    assert "extension/package.json" in names
    assert "extension/dist/extension.js" in names
    assert "extension/LICENSE.txt" in names
    assert not any(name.startswith("extension/node_modules/") for name in names)
    assert not any(name.startswith(("extension/src/", "extension/out/")) for name in names)
