"""The story stage: what the video, the slides and the page perform, and where it stands.

`build_story(view, options)` is computed once per run (`explainer.pipeline`) and
handed to every step-through renderer, so they tell the same story on the same
picture:

* ``steps``: the choreography (`explainer.choreography.choreograph`), a pure function
  of the graph;
* the frame layout: the diagram's DOT without legend and title bar
  (`explainer.render.graphviz.frame_dot`), laid out by ONE ``dot`` process
  (`explainer.layout.lay_out`) that also writes its SVG. Unless ``--rankdir`` fixes the
  direction, that process lays the frame out both left-to-right and top-to-bottom and
  the story keeps the one that fills a wide frame best (`choose_rankdir`).

A run with ``--video --slides --html`` thus calls ``dot`` twice in all: once for the
diagram files, once here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx

from .choreography import Step, choreograph
from .layout import Layout, lay_out
from .render.graphviz import DiagramOptions, diagram_candidates, frame_dot, page_rankdir
from .themes import Theme, get_theme

#: Width / height of the part of a frame the whole graph is drawn in (16:9 less the header
#: and the caption): the video's overview, the slide deck's diagram area, the page.
FRAME_ASPECT = 2.4
#: TB replaces LR only when it draws the graph this much larger (LR reads as a sentence).
TB_MARGIN = 1.05
RANKDIRS = ("LR", "TB")


@dataclass(frozen=True)
class Story:
    """The story of one graph, with its frame layout. Renderers only read it.

    Attributes
    ----------
    graph
        The graph as drawn (a folded view for large models, `explainer.fold`).
    options
        Theme, language, digits, title (`DiagramOptions`).
    steps
        The choreography.
    rankdir, layout, svg
        The frame's direction, its positions (points) and dot's SVG of that very layout.
    diagram_rankdir
        The direction the diagram file takes when it is left to the tool (`page_rankdir`),
        chosen in the same ``dot`` process; None when the options fix it or the graph is large.
    """

    graph: nx.DiGraph
    options: DiagramOptions
    steps: tuple[Step, ...]
    rankdir: str
    layout: Layout
    svg: str
    diagram_rankdir: str | None = None

    @property
    def theme(self) -> Theme:
        return get_theme(self.options.theme)


def frame_scale(layout: Layout, aspect: float = FRAME_ASPECT) -> float:
    """How large ``layout`` can be drawn in a box of ``aspect`` : 1 (relative units)."""
    return min(aspect / max(layout.width, 1.0), 1.0 / max(layout.height, 1.0))


def choose_rankdir(layouts: dict[str, Layout], aspect: float = FRAME_ASPECT) -> str:
    """The direction whose layout can be drawn largest in the frame; LR unless TB is clearly larger."""
    best, best_scale = "", -1.0
    for rankdir in RANKDIRS:
        if rankdir not in layouts:
            continue
        scale = frame_scale(layouts[rankdir], aspect)
        if not best or scale > best_scale * TB_MARGIN:
            best, best_scale = rankdir, scale
    return best


def build_story(g: nx.DiGraph, options: DiagramOptions | None = None, steps: Sequence[Step] | None = None) -> Story:
    """Choreograph ``g`` and lay its frame out (one ``dot`` process, which also lays out the
    diagram's candidate directions: `Story.diagram_rankdir`). ``g`` is the graph as drawn."""
    options = options or DiagramOptions()
    rankdirs = (options.rankdir,) if options.rankdir else RANKDIRS
    candidates = diagram_candidates(g, options)
    everything = lay_out([frame_dot(g, options, r) for r in rankdirs] + list(candidates.values()))
    laid = dict(zip(rankdirs, everything))
    rankdir = choose_rankdir({r: v.layout for r, v in laid.items()})
    diagram = dict(zip(candidates, (v.layout for v in everything[len(rankdirs) :])))
    if steps is None:
        steps = choreograph(g, lang=options.lang, digits=options.digits)
    return Story(
        g,
        options,
        tuple(steps),
        rankdir,
        laid[rankdir].layout,
        laid[rankdir].svg,
        page_rankdir(diagram) if diagram else None,
    )


__all__ = ["FRAME_ASPECT", "Story", "build_story", "choose_rankdir", "frame_scale"]
