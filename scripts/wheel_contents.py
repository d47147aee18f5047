"""Checks for scripts/check_wheel.sh: what a built wheel holds, and that it imports once installed.

    wheel_contents.py WHEEL SOURCE     the wheel has the default model and every module of
                                       SOURCE's infill_lsp/ and training/, and no tests
    wheel_contents.py --imports VENV   (run by VENV's Python) every installed module imports,
                                       from VENV and not from a checkout

The training code installs under whatever top-level name the `infill-train` script imports.
"""

from __future__ import annotations

import configparser
import importlib
import importlib.metadata
import pkgutil
import sys
import zipfile
from pathlib import Path

MODEL_FILES = ("config.json", "infill.json", "model.safetensors", "tokenizer.json")
NOT_SHIPPED = ("tests", "scripts", "examples", "benchmarks", "editor-clients")


def check_wheel(wheel_path: str, source: Path) -> str | None:
    wheel = zipfile.ZipFile(wheel_path)
    names = set(wheel.namelist())
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    scripts = configparser.ConfigParser()
    scripts.read_string(wheel.read(entry_points).decode())
    trainer = scripts["console_scripts"]["infill-train"].split(".")[0]
    wanted = {f"infill_lsp/default_model/{name}" for name in MODEL_FILES}
    for folder, package in (("infill_lsp", "infill_lsp"), ("training", trainer)):
        root = source / folder
        wanted |= {f"{package}/{path.relative_to(root)}" for path in root.rglob("*.py")}
    missing = sorted(wanted - names)
    shipped = sorted(name for name in names if name.split("/")[0] in NOT_SHIPPED)
    if missing or shipped:
        return f"check_wheel: the wheel lacks {missing[:8]} and holds {shipped[:8]}"
    return None


def check_imports(venv: str) -> str | None:
    (script,) = importlib.metadata.entry_points(group="console_scripts", name="infill-train")
    for name in ("infill_lsp", script.module.split(".")[0]):
        package = importlib.import_module(name)
        if not str(package.__file__).startswith(venv):
            return f"check_wheel: {name} comes from {package.__file__}, not the wheel"
        for module in pkgutil.walk_packages(package.__path__, f"{name}."):
            if not module.name.endswith("__main__"):  # that one would start the server
                importlib.import_module(module.name)
    return None


if __name__ == "__main__":
    if sys.argv[1] == "--imports":
        sys.exit(check_imports(sys.argv[2]))
    sys.exit(check_wheel(sys.argv[1], Path(sys.argv[2])))
