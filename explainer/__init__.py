"""explain-graph: make backpropagation visible.

Stages, one module each: `run` (execute a script) -> `trace` (record one step)
-> `graph` (the networkx model) -> `layout` (Graphviz positions) -> `render`
(diagrams) -> `cli`. The names below are the Python API for notebooks and tools::

    import explainer
    with explainer.Tracer() as tr:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    g = tr.result.to_graph()
    explainer.render(g, "out/")

In a notebook, ``with explainer.show(): ...`` traces the block and displays its diagram.

torch is imported only when a trace starts, so importing this package is cheap.
"""

from __future__ import annotations

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
    "fold",
    "load_graph",
    "render",
    "save_graph",
    "show",
    "trace_call",
]


def __getattr__(name: str) -> Any:
    # Lazy: `import explainer` must not import torch (the CLI's --help stays instant).
    if name in ("Tracer", "Trace", "trace_call"):
        from . import trace

        return getattr(trace, name)
    if name in ("build_graph", "load_graph", "save_graph"):
        from . import graph

        return getattr(graph, name)
    if name in ("show", "Diagram"):
        from . import notebook

        return getattr(notebook, name)
    if name == "fold":
        from .fold import fold

        return fold
    if name == "render":
        from .pipeline import write_outputs

        def render(g: Any, out_dir: Any, slides: bool = False, html: bool = False, **options: Any) -> Any:
            """Write graph.svg/png/pdf and graph.json for graph ``g`` into ``out_dir``.

            ``slides=True`` adds slides.pdf and slides/page-NN.png, ``html=True`` index.html.
            """
            from pathlib import Path

            from .render.graphviz import DiagramOptions

            return write_outputs(g, Path(out_dir), DiagramOptions(**options), slides=slides, html=html)

        return render
    raise AttributeError(f"module 'explainer' has no attribute {name!r}")
