"""What a newcomer meets after installing: `infill-lsp --version`, and `infill-train` without the
training extras (one line naming the install command, exit 2, no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from infill_lsp import __version__
from infill_lsp.cli import main

# Runs the installed `infill-train` entry point, wherever its module lives.
RUN_INFILL_TRAIN = (
    "import sys; from importlib.metadata import entry_points; "
    "(script,) = entry_points(group='console_scripts', name='infill-train'); "
    "sys.exit(script.load()())"
)


def test_version_prints_the_package_version_and_exits_0(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"infill-lsp {__version__}\n"
    assert metadata.version("infill-lsp") == __version__  # one version, read from one place


def hide_modules(folder: Path, names: list[str]) -> dict[str, str]:
    """An environment whose Python cannot import `names`, as if they were never installed."""
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(
        f"import sys\nsys.modules.update(dict.fromkeys({names!r}))  # None: 'No module named'\n"
    )
    paths = [str(folder), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


@pytest.mark.parametrize(
    ("hidden", "command"),
    [
        (["pathspec"], ["finetune", "--repo", "{repo}", "--out", "{out}"]),
        (["pathspec", "datasets", "accelerate"], ["corpus", "{repo}", "--out", "{out}"]),
    ],
)
def test_train_without_the_extras_names_the_install_in_one_line(
    tmp_path: Path, hidden: list[str], command: list[str]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.py").write_text("print('hi')\n")
    argv = [part.format(repo=repo, out=tmp_path / "out") for part in command]
    env = hide_modules(tmp_path / "shim", hidden)
    done = subprocess.run(
        [sys.executable, "-c", RUN_INFILL_TRAIN, *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"missing: {', '.join(hidden)}" in lines[0]
    assert f"{sys.executable} -m pip install" in lines[0]
    assert "[train]" in lines[0]
    assert not (tmp_path / "out").exists()  # stopped before doing anything


def load_script(name: str):  # -> module
    """A module of scripts/ (not a package), imported by path."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def test_the_demo_places_are_in_the_example_once() -> None:
    """Editing examples/invoices.py must not silently move or drop a place the demo asks at."""
    demo = load_script("demo")
    text = demo.EXAMPLE.read_text(encoding="utf-8")
    kinds = {place.kind for place in demo.PLACES}
    assert kinds == {"line", "block", "rewrite", "revise"}
    for place in demo.PLACES:
        assert text.count(place.truth) == 1, place.title
        assert place.truth.startswith(place.typed)
        assert (place.kind == "revise") == bool(place.slip) and place.slip != place.truth


def test_the_screenshot_places_are_in_the_example_once() -> None:
    pytest.importorskip("PIL")
    shot = load_script("screenshot")
    lines = shot.EXAMPLE.read_text(encoding="utf-8").split("\n")
    assert lines.count(shot.TYPED_LINE) == 1 and shot.TYPED_LINE.startswith(shot.TYPED)
    assert lines.count(shot.REWRITE_FIRST) == 1
