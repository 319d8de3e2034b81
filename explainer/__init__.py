"""explain-graph: make backpropagation visible.

Stages, data flowing one way: `run` (execute a script) -> `trace` (record one step)
-> `graph` (the networkx model) -> `fold` / `story` / `layout` (module views, the steps,
Graphviz positions) -> `render` (diagram, video, slides, page) -> `cli` / `notebook`,
with `pipeline` the one orchestrator. The names below are the Python API for notebooks
and tools::

    import explainer
    with explainer.Tracer() as tr:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    g = explainer.build_graph(tr.result)
    explainer.draw(g, "out/")

In a notebook, ``with explainer.show(): ...`` traces the block and displays its diagram.

torch is imported only when a trace starts, so importing this package is cheap.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from .errors import ExplainerError

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from .notebook import Diagram, show
    from .trace import Trace, Tracer, trace_call

__all__ = [
    "Diagram",
    "ExplainerError",
    "Trace",
    "Tracer",
    "build_graph",
    "draw",
    "load_graph",
    "save_graph",
    "show",
    "trace_call",
]


def __getattr__(name: str) -> Any:
    # Lazy: `import explainer` must not import torch (the CLI's --help stays instant).
    if name in ("Tracer", "Trace", "trace_call"):
        if "IPython" in sys.modules:
            # In a notebook, the notebook layer registers how a Trace displays itself.
            from . import notebook

        from . import trace

        return getattr(trace, name)
    if name in ("build_graph", "load_graph", "save_graph"):
        from . import graph

        return getattr(graph, name)
    if name in ("show", "Diagram"):
        from . import notebook

        return getattr(notebook, name)
    if name == "draw":
        from .pipeline import draw

        return draw
    raise AttributeError(f"module 'explainer' has no attribute {name!r}")
