"""Manim scene for Manim's own CLI, on a saved graph.json (no re-tracing).

    EXPLAIN_GRAPH_JSON=explained/linear_regression/graph.json manim -ql scenes/backprop.py Backprop

Optional: EXPLAIN_GRAPH_THEME (light|dark), EXPLAIN_GRAPH_LANG (en|ko), EXPLAIN_GRAPH_DIGITS.
The default graph is the one `./dev.sh demo` writes.
"""

from __future__ import annotations

import os
from typing import Any

from explainer.fold import fold_for_display
from explainer.graph import load_graph
from explainer.render.video import build_scene_class, plan_video

_Scene = build_scene_class()


class Backprop(_Scene):  # type: ignore[misc, valid-type]
    """The backward pass of the graph in $EXPLAIN_GRAPH_JSON, step by step."""

    def __init__(self, **kwargs: Any) -> None:
        path = os.environ.get("EXPLAIN_GRAPH_JSON", "explained/linear_regression/graph.json")
        # The same view as the CLI's diagram and video: folded when the graph is large.
        plan = plan_video(
            fold_for_display(load_graph(path)).graph,
            theme=os.environ.get("EXPLAIN_GRAPH_THEME", "light"),
            lang=os.environ.get("EXPLAIN_GRAPH_LANG", "en"),
            digits=int(os.environ.get("EXPLAIN_GRAPH_DIGITS", "4")),
        )
        super().__init__(plan, **kwargs)
