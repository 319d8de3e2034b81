"""The package's shape: stages that import one way, small modules, no private names across modules.

Read from the source with ``ast`` (nothing is imported), so function-level imports count
as much as the ones at the top of a module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
from conftest import ROOT

PKG = ROOT / "explainer"
#: Hard limit on a module's length (the style guide aims for ~400).
MAX_LINES = 500


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py")) if "examples" not in p.parts}


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


@dataclass(frozen=True)
class Import:
    """One import statement's target: a package module (``explainer.fold``) or a third-party
    package by its top-level name (``torch``), with the names taken from it."""

    target: str
    names: tuple[str, ...]
    in_function: bool
    for_types: bool  # inside ``if TYPE_CHECKING:``


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> Iterator[Import]:
    """Every import in module ``name``, at any depth of its code."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        in_function, for_types = False, False
        up = parents.get(id(node))
        while up is not None:
            in_function |= isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef))
            for_types |= isinstance(up, ast.If) and "TYPE_CHECKING" in ast.unparse(up.test)
            up = parents.get(id(up))
        targets: list[tuple[str, tuple[str, ...]]] = []
        if isinstance(node, ast.Import):
            targets = [(a.name, ()) for a in node.names]
        else:
            base = _resolve(name, node, path.name == "__init__.py")
            for a in node.names:
                sub = f"{base}.{a.name}"
                targets.append((sub, ()) if sub in modules else (base, (a.name,)))
        for target, names in targets:
            if target.startswith("explainer"):
                while target and target not in modules:
                    target = target.rpartition(".")[0]
            else:
                target = target.split(".")[0]
            yield Import(target, names, in_function, for_types)


def import_graph() -> nx.DiGraph:
    """Module -> the package modules it imports (at any depth of its code), with the names used."""
    modules = _modules()
    g = nx.DiGraph()
    g.add_nodes_from(modules)
    for name, path in modules.items():
        for imp in imports_of(name, path, modules):
            if imp.target in modules and imp.target != name:
                g.add_edge(name, imp.target)
                g.edges[name, imp.target].setdefault("names", set()).update(imp.names)
    return g


def test_no_import_cycles_at_any_depth() -> None:
    g = import_graph()
    # The package's __init__ is the public API over every stage; it is what users import.
    g.remove_node("explainer")
    cycles = list(nx.simple_cycles(g))
    assert cycles == [], f"import cycles (function-level imports included): {cycles[:5]}"


def test_no_private_names_across_modules() -> None:
    g = import_graph()
    crossing = sorted(
        f"{u} uses {v}.{n}"
        for u, v, d in g.edges(data=True)
        for n in d.get("names", ())
        if n.startswith("_") and not n.startswith("__")
    )
    assert crossing == []


def test_modules_stay_small() -> None:
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these along their seams: {long}"


def test_the_trace_is_the_only_stage_that_imports_torch_internals() -> None:
    for name, path in _modules().items():
        if name.startswith("explainer.trace"):
            continue
        text = path.read_text(encoding="utf-8")
        assert "torch._C" not in text and "torch.utils._" not in text, f"{name} reaches into torch internals"


#: Third-party packages worth deferring: each costs a noticeable share of a second to import.
HEAVY = {"torch", "networkx", "numpy", "manim", "matplotlib", "pptx", "PIL", "av", "IPython", "nbformat", "nbclient"}


def test_function_level_imports_only_defer_heavy_packages() -> None:
    """A module imports another of the package inside a function only when that brings in a heavy
    package the importer does not load already (torch for ``--help``, Manim for ``--video``...);
    otherwise the import belongs at the top, where a reader sees what the module depends on."""
    modules = _modules()
    top: dict[str, set[str]] = {name: set() for name in modules}
    lazy: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for imp in imports_of(name, path, modules):
            if not imp.for_types:
                (lazy if imp.in_function else top)[name].add(imp.target)
    heavy: dict[str, set[str]] = {}

    def heavy_of(name: str) -> set[str]:
        if name not in heavy:
            heavy[name] = set()  # a cycle adds nothing; the cycle test reports it
            found = set(top[name] & HEAVY)
            for target in top[name]:
                if target in modules:
                    found |= heavy_of(target)
            heavy[name] = found
        return heavy[name]

    needless = sorted(
        f"{name} -> {target}"
        for name in modules
        for target in lazy[name]
        if target in modules and not heavy_of(target) - heavy_of(name)
    )
    assert needless == [], f"import these at the top of the module: {needless}"
