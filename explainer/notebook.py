"""Notebooks (Jupyter, Colab): a traced step displayed inline as its diagram.

Three ways, from the shortest::

    import explainer

    with explainer.show():                 # trace the block, draw it when the block ends
        pred = model(x)
        loss = criterion(pred, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    explainer.show(trace_or_graph)         # draw a trace, a Tracer or a graph now
    explainer.show(g, steps=True)          # the step-through page (index.html) instead

A `Trace` (``tr.result``) and a `Diagram` also display themselves when they are the
last expression of a cell (a `Trace` through an IPython formatter this module
registers). The diagram is exactly ``graph.svg`` (same DOT, folded above
``max_nodes`` nodes like the command line); the step-through page is
``index.html`` in an ``<iframe>``, so its script and styles stay out of the notebook.
Graphviz's ``dot`` must be installed (it is on Colab).
"""

from __future__ import annotations

import html as _html
import sys
import tempfile
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import networkx as nx

from .defaults import DEFAULT_DIGITS, DEFAULT_MAX_NODES, FORMATS
from .errors import ExplainerError
from .fold import FoldOptions, FoldResult, fold_for_display
from .graph import build_graph
from .pipeline import write_outputs
from .render.graphviz import DiagramOptions, render_static
from .render.html import build_html
from .story import build_story
from .themes import FONT, SVG_FONT_FALLBACK
from .tools import check_font, find_tool
from .trace.model import RecordOptions, Trace

#: Height of the step-through page's frame in a notebook (px).
STEPS_HEIGHT = 760


def _graph_of(obj: Any) -> nx.DiGraph:
    """The graph of a graph, a `Trace`, a `Tracer` or a `Show`."""
    if isinstance(obj, nx.DiGraph):
        return obj
    if isinstance(obj, Diagram):
        return obj.graph
    result = getattr(obj, "result", None)  # Tracer, Show
    if isinstance(result, Trace):
        return build_graph(result)
    if isinstance(obj, Trace):
        return build_graph(obj)
    if isinstance(obj, Show):
        raise ExplainerError("the `with explainer.show():` block has not finished (or raised): nothing to draw yet")
    raise ExplainerError(
        f"cannot draw a {type(obj).__name__}: pass a trace (tr.result), a Tracer or a graph (explainer.load_graph)"
    )


class Diagram:
    """A graph that displays itself inline as its diagram (``graph.svg``).

    Parameters
    ----------
    obj
        A graph (`explainer.graph`), a `Trace`, or a `Tracer` whose block ended.
    theme, lang, digits, rankdir
        As on the command line (`explainer.render.graphviz.DiagramOptions`).
    depth, expand, max_nodes
        Folding of large models, as ``--depth``, ``--expand``, ``--max-nodes``.
    title
        Shown above the diagram (default: none, the notebook has its own headings).
    """

    def __init__(
        self,
        obj: Any,
        *,
        theme: str = "light",
        lang: str = "en",
        digits: int = DEFAULT_DIGITS,
        rankdir: str | None = None,
        depth: int | None = None,
        expand: Sequence[str] = (),
        max_nodes: int = DEFAULT_MAX_NODES,
        title: str | None = None,
    ) -> None:
        find_tool("dot")
        check_font(lang)
        self.graph: nx.DiGraph = _graph_of(obj)
        self.options = DiagramOptions(theme=theme, lang=lang, digits=digits, rankdir=rankdir, title=title)
        self.fold: FoldResult = fold_for_display(
            self.graph, FoldOptions(depth=depth, expand=tuple(expand), max_nodes=max_nodes)
        )

    @property
    def shown(self) -> nx.DiGraph:
        """The graph as drawn: folded when large, else the full graph."""
        return self.fold.graph

    @cached_property
    def svg(self) -> str:
        """The diagram's SVG, as in ``graph.svg``; fonts fall back for viewers without Noto CJK."""
        with tempfile.TemporaryDirectory(prefix="explain-graph-nb-") as tmp:
            _, paths = render_static(self.shown, Path(tmp), self.options, ("svg",))
            text = paths["svg"].read_text(encoding="utf-8")
        text = text.replace(f'font-family="{FONT}"', f'font-family="{SVG_FONT_FALLBACK}"')
        # Natural size at most, narrower cells scale it down (the viewBox keeps its shape).
        return text.replace("<svg width=", '<svg style="max-width: 100%; height: auto;" width=', 1)

    def _repr_svg_(self) -> str:
        return self.svg

    def steps(self) -> StepThrough:
        """The step-through page (``index.html``) for this graph, displayable inline."""
        return StepThrough(build_html(build_story(self.shown, self.options)))

    def save(
        self,
        out_dir: str | Path,
        *,
        slides: bool = False,
        html: bool = False,
        formats: tuple[str, ...] = FORMATS,
        force: bool = False,
    ) -> list[Path]:
        """Write graph.svg/png/pdf and graph.json (and the deck, the page) into ``out_dir``.

        Files of yours with those names stay untouched (an error says so) unless ``force``.
        """
        shown = self.shown if self.fold.folded else None
        return write_outputs(
            self.graph, Path(out_dir), self.options, formats, shown=shown, slides=slides, html=html, force=force
        )

    def __repr__(self) -> str:
        loss_id = self.graph.graph.get("loss")
        loss = self.graph.nodes[loss_id].get("value") if loss_id in self.graph else None
        return (
            f"<explainer.Diagram: {self.shown.number_of_nodes()} nodes, loss {loss}; "
            "displays inline in Jupyter/Colab, .save(dir) writes the files>"
        )


class StepThrough:
    """The interactive page (`explainer.render.html`) in an ``<iframe>``: step with ← →."""

    def __init__(self, page: str, height: int = STEPS_HEIGHT) -> None:
        self.page = page
        self.height = height

    def _repr_html_(self) -> str:
        return (
            f'<iframe srcdoc="{_html.escape(self.page, quote=True)}" sandbox="allow-scripts" '
            f'style="width: 100%; height: {self.height}px; border: 1px solid #d1d5db; border-radius: 6px;"></iframe>'
        )

    def save(self, path: str | Path) -> Path:
        """Write the page as a file (it works offline)."""
        path = Path(path)
        path.write_text(self.page, encoding="utf-8")
        return path

    def __repr__(self) -> str:
        return "<explainer.StepThrough: the step-through page; displays inline in Jupyter/Colab, .save(path) writes it>"


def _display(obj: Any) -> None:
    """Display in the running notebook; outside one, print what would be shown."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # plain Python without IPython
        print(repr(obj))
        return
    if get_ipython() is None:
        print(repr(obj))
        return
    display(obj)


class Show:
    """``with explainer.show():``: trace the block, display its diagram when it ends.

    After the block, ``.trace``, ``.graph`` and ``.diagram`` hold what was drawn.
    """

    def __init__(self, steps: bool = False, step: int = 1, full_trace: bool = False, **options: Any) -> None:
        from .trace.tracer import Tracer  # imports torch

        self.steps = steps
        self.options = options
        # Record op by op what the diagram will open, as the command line does.
        record = RecordOptions(
            everything=full_trace or options.get("max_nodes", DEFAULT_MAX_NODES) <= 0,
            depth=options.get("depth"),
            expand=tuple(options.get("expand", ())),
        )
        self.tracer = Tracer(step=step, record=record)
        self.diagram: Diagram | None = None

    @property
    def result(self) -> Any:
        return self.tracer.result

    @property
    def trace(self) -> Any:
        return self.tracer.result

    @property
    def graph(self) -> nx.DiGraph | None:
        return self.diagram.graph if self.diagram is not None else None

    def __enter__(self) -> Show:
        self.tracer.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.tracer.close(sys._getframe(1), exc_type, exc, tb)
        if exc_type is not None:
            return
        self.diagram = Diagram(self.tracer.result, **self.options)
        _display(self.diagram.steps() if self.steps else self.diagram)


def show(
    obj: Any = None, /, *, steps: bool = False, step: int = 1, full_trace: bool = False, **options: Any
) -> Show | None:
    """Display a traced step inline; with no argument, a context manager that traces its block.

    ``explainer.show(x)`` draws ``x`` (a trace, a Tracer, a graph) now and returns
    None (so the cell shows it once). ``with explainer.show() as s:`` traces the
    block's ``step``-th ``backward()`` (or its final scalar ``loss``), then draws it;
    ``s.graph`` holds the graph. ``steps=True`` shows the step-through page instead
    of the static diagram. ``full_trace=True`` records every op of a large model's
    repeated blocks, as ``--full-trace``. Other keywords are `Diagram`'s (theme, lang,
    digits, depth, expand, ...).
    """
    if obj is None:
        return Show(steps=steps, step=step, full_trace=full_trace, **options)
    diagram = Diagram(obj, **options)
    _display(diagram.steps() if steps else diagram)
    return None


def _trace_svg(trace: Trace) -> str:
    return Diagram(trace).svg


def _register_trace_display() -> None:
    """In IPython, a `Trace` left as a cell's value shows its diagram.

    The trace's data model knows nothing of notebooks: the display is registered
    here, with IPython's formatter for ``image/svg+xml``, when this module is
    imported in a running IPython (``explainer`` imports it there).
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        shell.display_formatter.formatters["image/svg+xml"].for_type(Trace, _trace_svg)


_register_trace_display()

__all__ = ["Diagram", "Show", "StepThrough", "show"]
