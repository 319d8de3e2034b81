"""The graph as Manim mobjects: boxes with their names, values and gradients, arrows, and what changes them.

Boxes are drawn like the diagram's (`explainer.render.style`): the name at the top
left with the backward step's circled number right after it (never on top of it), the
value below, the gradient under it once backward has computed it. Each edge has its
forward arrowhead and a hidden backward one at its other end: when a gradient flows
back along an edge, the edge turns to the gradient's colour and its arrowhead flips,
so the pulse never travels against an arrowhead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import manim as m
import numpy as np

from ..story import Story
from ..text import value_inline
from .framing import FRAME_H, FRAME_W, Placement, Rect, Shot, union
from .mobjects import Appear, Fade, Restroke, Typesetter, place_line, remember_opacity, spline, triangle_tip
from .style import node_colours, step_mark

#: Arrowhead length in diagram points (dot's arrowsize 0.8 × 10).
ARROW = 8.0
#: How much larger than the diagram's type a box's name and values may be drawn when the box has room.
LABEL_GROWTH, VALUE_GROWTH = 1.7, 1.25
#: Longest value or gradient text in a box (the focus panel writes the tensor out in full).
BOX_CHARS = 30


def _intersects(a: Rect, b: Rect) -> bool:
    return a.left <= b.right and b.left <= a.right and a.bottom <= b.top and b.bottom <= a.top


class GraphMobjects:
    """Every node's and edge's mobjects, built once, with their state on screen."""

    def __init__(self, story: Story, placement: Placement, sans: Typesetter, bold: Typesetter) -> None:
        self.story, self.g, self.theme = story, story.graph, story.theme
        self.placement, self.sans, self.bold = placement, sans, bold
        self.digits, self.lang = story.options.digits, story.options.lang
        self.rects: dict[str, Rect] = {}
        self.rows: dict[str, float] = {}
        self.boxes: dict[str, Any] = {}
        self.groups: dict[str, Any] = {}
        self.values: dict[str, Any] = {}
        self.grads: dict[str, Any] = {}
        self.badges: dict[str, Any] = {}
        self.outline: dict[str, tuple[str, float]] = {}
        self.edges: dict[tuple[str, str], Any] = {}
        self.paths: dict[tuple[str, str], Any] = {}
        self.tips: dict[tuple[str, str], Any] = {}
        self.back_tips: dict[tuple[str, str], Any] = {}
        self.edge_rects: dict[tuple[str, str], Rect] = {}
        self.present: set[str] = set()  # nodes the story has brought in
        self.drawn: set[tuple[str, str]] = set()
        self.grad_on: set[str] = set()
        self.badge_on: set[str] = set()
        self.back_on: set[tuple[str, str]] = set()
        fs = self.theme.font_size
        self.label_height = (fs + 1) * placement.scale * 0.73 * LABEL_GROWTH
        for n in self.g.nodes:
            if n in story.layout.nodes:
                self._build_node(n)
        for e in story.layout.edges:
            if e in self.g.edges and len(story.layout.edges[e]) >= 4:
                self._build_edge(e)

    # ------------------------------------------------------------------ building
    def _build_node(self, n: str) -> None:
        d, th = self.g.nodes[n], self.theme
        box = self.story.layout.nodes[n]
        r = self.placement.rect(box.x, box.y, box.width, box.height)
        self.rects[n] = r
        fill, border = node_colours(d["kind"], th)
        if d.get("nonfinite"):
            fill, border = th.bad_fill, th.bad_border
        self.outline[n] = (border, 2.0)
        rect = m.RoundedRectangle(
            corner_radius=min(0.3 * r.h, 6 * self.placement.scale),
            width=r.w,
            height=r.h,
            fill_color=fill,
            fill_opacity=1.0,
            stroke_color=border,
            stroke_width=2,
        )
        rect.move_to((r.x, r.y, 0.0))
        s = self.placement.scale
        pad = 6 * s
        inner = r.w - 2 * pad
        # Three rows (name, value, gradient) share the box dot sized for the diagram's longer
        # label: names grow into the room, up to LABEL_GROWTH times the diagram's type.
        row = (r.h - pad) / 3
        em = min((th.font_size + 1) * s * LABEL_GROWTH, row * 0.62)
        mark = step_mark(d["backward_step"]) if d.get("backward_step") is not None else ""
        label_w = self.bold.width(d["label"], em) + (self.bold.width("  " + mark, em) if mark else 0.0)
        if label_w > inner:
            em *= inner / label_w
        digit = em * 0.73
        top = r.top - pad / 2 - row / 2
        label = place_line(self.bold.line(d["label"], th.text, em), r.left + pad, top, digit)
        if mark:
            x = r.left + pad + label.text_width + self.bold.width("  ", em)
            self.badges[n] = remember_opacity(place_line(self.bold.line(mark, th.grad, em), x, top, digit))
        value = value_inline(d.get("value"), self.digits, self.lang)
        self.values[n] = self._text_row(value, th.text, r, top - row, row)
        if d.get("grad") is not None:
            self.grads[n] = remember_opacity(
                self._text_row("∂ " + value_inline(d["grad"], self.digits, self.lang), th.grad, r, top - 2 * row, row)
            )
        self.rows[n] = row
        self.boxes[n] = rect
        self.groups[n] = remember_opacity(m.VGroup(rect, label, self.values[n]))

    def _text_row(self, text: str, colour: str, r: Rect, middle: float, row: float) -> Any:
        if len(text) > BOX_CHARS:  # the panel shows every entry; a box shows how the tensor starts
            text = text[: BOX_CHARS - 1].rstrip(", ") + " …"
        s = self.placement.scale
        em = min(self.theme.font_size * s * VALUE_GROWTH, row * 0.55)
        pad = 6 * s
        width = self.sans.width(text, em)
        if width > r.w - 2 * pad:
            em *= (r.w - 2 * pad) / width
        return place_line(self.sans.line(text, colour, em), r.left + pad, middle, em * 0.73)

    def _build_edge(self, e: tuple[str, str]) -> None:
        th = self.theme
        pts = [np.array([*self.placement.point(x, y), 0.0]) for x, y in self.story.layout.edges[e]]
        dashed = self.g.edges[e].get("grad") is None and self.g.edges[e].get("backward_step") is None
        path = spline(pts, th.edge, 2, dashed)
        end, before = pts[-1], pts[-2]
        size = ARROW * self.placement.scale
        direction = end - before
        unit = direction / max(float(np.linalg.norm(direction)), 1e-9)
        tip = remember_opacity(triangle_tip(end + unit * size, unit, size, th.edge))
        back_dir = pts[0] - pts[1]
        back = remember_opacity(triangle_tip(pts[0], back_dir, size, th.grad))
        self.paths[e], self.tips[e], self.back_tips[e] = path, tip, back
        self.edges[e] = m.VGroup(path, tip)
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        left, right, bottom, top = min(xs), max(xs), min(ys), max(ys)
        self.edge_rects[e] = Rect((left + right) / 2, (bottom + top) / 2, right - left, top - bottom)

    # ------------------------------------------------------------------ where things are
    def area(self, nodes: Iterable[str]) -> Rect:
        rects = [self.rects[n] for n in nodes if n in self.rects]
        return union(rects) if rects else union(self.rects.values())

    def node_mobjects(self, n: str, scene: Any) -> list[Any]:
        """Node ``n``'s box and texts that are in the scene, bottom to top."""
        mobs = [self.groups.get(n), self.grads.get(n), self.badges.get(n)]
        return [mob for mob in mobs if mob is not None and mob in scene.mobjects]

    def cull(self, scene: Any, shots: Sequence[Shot]) -> None:
        """Keep in the scene only what the shots can see (drawing costs per mobject, seen or not)."""
        frame = Rect(0, 0, FRAME_W * 1.1, FRAME_H * 1.1)
        views = [s.view(frame) for s in shots]
        on = set(scene.mobjects)

        def want(mob: Any, seen: bool) -> None:
            if seen and mob not in on:
                scene.add(mob)
            elif not seen and mob in on:
                scene.remove(mob)

        for n in self.present:
            seen = any(_intersects(self.rects[n], v) for v in views)
            want(self.groups[n], seen)
            if n in self.grads:
                want(self.grads[n], seen and n in self.grad_on)
            if n in self.badges:
                want(self.badges[n], seen and n in self.badge_on)
        for e in self.drawn:
            seen = any(_intersects(self.edge_rects[e], v) for v in views)
            want(self.edges[e], seen)
            want(self.back_tips[e], seen and e in self.back_on)

    # ------------------------------------------------------------------ what steps do
    def bring_in(self, n: str) -> list[Any]:
        if n in self.present or n not in self.groups:
            return []
        self.present.add(n)
        return [Appear(self.groups[n])]

    def draw_edge(self, e: tuple[str, str]) -> Any:
        self.drawn.add(e)
        return m.Create(self.edges[e])

    def show_grad(self, n: str) -> list[Any]:
        if n in self.grad_on or n not in self.grads:
            return []
        self.grad_on.add(n)
        return [Appear(self.grads[n])]

    def show_badge(self, n: str) -> list[Any]:
        if n in self.badge_on or n not in self.badges:
            return []
        self.badge_on.add(n)
        return [Appear(self.badges[n])]

    def unlight(self, n: str) -> Any:
        colour, width = self.outline[n]
        return Restroke(self.boxes[n], colour, width)

    def mark(self, n: str, colour: str) -> None:
        """What ``n``'s outline returns to after its step: the colour of the last thing that happened to it."""
        self.outline[n] = (colour, 3.0)

    def pulse(self, e: tuple[str, str]) -> list[Any]:
        """The gradient flowing back along ``e`` (from its head to its tail); the arrowhead flips."""
        path = self.paths[e].copy()
        path.reverse_points()
        radius = max(self.label_height * 0.45, 0.02)
        dot = m.Dot(radius=radius, color=self.theme.grad).move_to(path.get_start())
        self.back_on.add(e)
        return [
            m.MoveAlongPath(dot, path, rate_func=m.smooth, remover=True),
            Restroke(self.paths[e], self.theme.grad, 3),
            Fade(self.tips[e], 0.0),
            Appear(self.back_tips[e]),
        ]

    def updated_value(self, n: str) -> Any:
        d = self.g.nodes[n]
        old = self.values[n]
        r = self.rects[n]
        new = self._text_row(
            value_inline(d["update"]["after"], self.digits, self.lang),
            self.theme.update,
            r,
            old.get_center()[1],
            self.rows[n],
        )
        new.move_to(old, aligned_edge=m.LEFT)
        return m.Transform(old, new)

    def clear_grads(self) -> list[Any]:
        """``zero_grad()``: gradients leave the boxes, arrows point forward again."""
        anims: list[Any] = [Fade(self.grads[n], 0.0, remove=True) for n in sorted(self.grad_on)]
        for e in sorted(self.back_on):
            anims += [
                Fade(self.back_tips[e], 0.0, remove=True),
                Fade(self.tips[e], 1.0),
                Restroke(self.paths[e], self.theme.edge, 2),
            ]
        self.grad_on, self.back_on = set(), set()
        return anims


__all__ = ["GraphMobjects"]
