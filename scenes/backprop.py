"""Manim's own command line on a saved graph.json (no re-tracing): a thin shim over the package's scene.

    EXPLAIN_GRAPH_JSON=explained/linear_regression/graph.json manim -ql scenes/backprop.py Backprop

Optional: EXPLAIN_GRAPH_THEME (light|dark), EXPLAIN_GRAPH_LANG (en|ko), EXPLAIN_GRAPH_DIGITS.
The default graph is the one `./dev.sh demo` writes. Add ``--save_sections`` for one clip per step.
"""

from __future__ import annotations

import os
from typing import Any

from explainer.defaults import DEFAULT_DIGITS
from explainer.fold import fold_for_display
from explainer.graph import load_graph
from explainer.render.graphviz import DiagramOptions
from explainer.render.scene import BackpropScene
from explainer.story import build_story


class Backprop(BackpropScene):
    """The backward pass of the graph in $EXPLAIN_GRAPH_JSON, step by step."""

    def __init__(self, **kwargs: Any) -> None:
        path = os.environ.get("EXPLAIN_GRAPH_JSON", "explained/linear_regression/graph.json")
        options = DiagramOptions(
            theme=os.environ.get("EXPLAIN_GRAPH_THEME", "light"),
            lang=os.environ.get("EXPLAIN_GRAPH_LANG", "en"),
            digits=int(os.environ.get("EXPLAIN_GRAPH_DIGITS", str(DEFAULT_DIGITS))),
        )
        # The same view as the CLI's diagram and video: folded when the graph is large.
        super().__init__(build_story(fold_for_display(load_graph(path)).graph, options), **kwargs)
