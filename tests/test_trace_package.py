"""The trace package's shape: a torch-free data model, no edges up to later stages.

`explainer.trace` is the only stage that touches torch internals; the stages after
it read its `Trace` without importing torch, and it imports none of them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "explainer" / "trace"

#: What the trace package may import from the rest of explainer (earlier stages only).
ALLOWED_UP = {"errors", "values"}


def _imports(path: Path) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """(node, is at module level) for every import statement of a module
    (``if TYPE_CHECKING:`` blocks count as module level)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    top |= {id(n) for block in tree.body if isinstance(block, ast.If) for n in block.body}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, id(node) in top


def test_the_data_model_and_the_graph_stage_do_not_import_torch() -> None:
    code = (
        "import sys, explainer.trace, explainer.trace.model, explainer.trace.engine_order, explainer.graph, "
        "explainer.run\n"
        "from explainer.trace import Trace, TraceNode, RecordOptions, engine_order\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_no_edges_up_no_hidden_imports_no_private_names() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) > 10
    for path in modules:
        for node, at_top in _imports(path):
            if isinstance(node, ast.ImportFrom) and node.level == 2:  # from ..x import y
                assert node.module in ALLOWED_UP, f"{path.name} imports explainer.{node.module}"
            if isinstance(node, ast.ImportFrom) and node.level == 1:  # from .x import y
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports private names {private} from .{node.module}"
            # Imports inside functions would only hide a cycle here (torch is imported at the top).
            assert at_top, f"{path.name}:{node.lineno} imports inside a function"
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 420, f"{path.name} has {lines} lines: split it (the trace aims for ~400 per module)"


def test_nothing_outside_the_package_uses_its_private_names() -> None:
    for path in sorted((ROOT / "explainer").rglob("*.py")):
        if PACKAGE in path.parents:
            continue
        for node, _ in _imports(path):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "trace":
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.relative_to(ROOT)} imports {private} from explainer.{node.module}"
