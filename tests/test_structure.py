"""The package's shape: imports go down the layers of `infill_lsp`, never up and never round.

Every module is read with `ast` (imports inside functions and under TYPE_CHECKING count too: a
lazy import is still a dependency) and placed in a layer; a module may import its own layer and
the layers below. A new module must be given a layer here, which is the point: say where it sits.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "infill_lsp"

# Lowest first. Base: no dependencies inside the package (settings, errors, the job driver, the
# token window); models: tensors and model directories; text: strings in, strings out (the engine,
# tree-sitter); lsp: the server; entry: the command line.
LAYERS: dict[str, tuple[str, ...]] = {
    "base": ("infill_lsp", "errors", "options", "jobs", "window", "schedule"),
    "models": ("model", "models", "sampler", "lengths"),
    "text": ("decoder", "engine", "regions", "postprocess"),
    "lsp": ("lsp",),
    "entry": ("cli", "__main__"),
}
RANK = {name: rank for rank, names in enumerate(LAYERS.values()) for name in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else parts[0]
    if key not in RANK:
        raise AssertionError(f"{module} has no layer: add it to LAYERS in {__file__}")
    return RANK[key]


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The package modules `module` imports (a name imported from a package counts as its
    submodule when there is one)."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
            names = [n for n in names if n in known] or [base]
        else:
            continue
        for name in names:
            while name and name not in known and "." in name:
                name = name.rpartition(".")[0]
            if name in known and name != module:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def test_every_module_has_a_layer_and_imports_only_its_own_or_lower() -> None:
    upward = [
        f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})"
        for module, targets in graph().items()
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert not upward, "\n".join(upward)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in `edges` (module -> modules it imports), or None."""
    state: dict[str, str] = {}  # "open" while on the path, "done" after
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for target in sorted(edges[module]):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = "done"
        return None

    for module in sorted(edges):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_no_import_cycles() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_pygls_private_attributes_are_touched_in_the_protocol_only() -> None:
    """`x._name` on anything but self/cls happens in `lsp/wire.py` and nowhere else."""
    wire = PACKAGE / "lsp" / "wire.py"
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == wire:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} .{node.attr}")
    assert not found, "\n".join(found)


def test_the_checks_see_a_cycle_and_an_upward_import(tmp_path: Path) -> None:
    """The walker itself: an upward lazy import is found, as the old server->handlers was."""
    source = tmp_path / "server.py"
    source.write_text("def f():\n    from infill_lsp.lsp import handlers\n")
    known = {"infill_lsp.lsp.handlers", "infill_lsp.lsp", "infill_lsp.engine"}
    assert "infill_lsp.lsp.handlers" in imports_of("infill_lsp.engine", source, known)
    assert layer_of("infill_lsp.lsp.handlers") > layer_of("infill_lsp.engine")
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(edges) == ["a", "b", "c", "a"]
    assert find_cycle({**edges, "c": set()}) is None
