"""Manim building blocks of the backprop video: fast text, in-place animations, boxes, arrows, the panel.

Imports Manim at the top: only the video path imports this module (`explainer.render.video`
imports `explainer.render.scene`, which imports this, inside ``render_video``).

Speed notes
-----------
A Manim ``Text`` costs a Pango render and an SVG parse per call (about 0.7 ms per
character): a caption per step was a third of a video's render time. `Typesetter` asks
Pango once for each distinct character, then sets any string from copies of those
glyphs, placed by the advances Pango used. `Appear`, `Fade` and `Restroke` change
opacity and colour in place, without the deep copies ``FadeIn`` and ``Transform`` make.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import manim as m
import numpy as np

from ..themes import FONT, Theme
from .measure import MONO_FONT, ink_height

#: Font size of the reference glyphs (scene units are set by scaling, not by this).
REF_SIZE = 48


class TextLine(m.VMobject):
    """A line of text set by `Typesetter`: one VMobject, and how far its pen advanced."""

    text_width: float = 0.0
    em: float = 0.0  # the size it was set at, scene units per em


class Typesetter:
    """Sets strings from cached glyphs of one font and weight (see the module's notes)."""

    def __init__(self, font: str = FONT, bold: bool = False) -> None:
        self.font, self.weight = font, (m.BOLD if bold else m.NORMAL)
        self.glyphs: dict[str, np.ndarray | None] = {}  # char -> glyph outline, pen at x=0, digits' bottom at y=0
        self.advance: dict[str, float] = {}
        zero = self._text("0").submobjects[0]
        self.em = zero.height / ink_height("0", font)  # scene units per em at REF_SIZE

    def _text(self, s: str) -> Any:
        return m.Text(s, font=self.font, weight=self.weight, font_size=REF_SIZE, disable_ligatures=True)

    def _learn(self, chars: Iterable[str]) -> None:
        new = sorted({c for c in chars if c not in self.advance and c != "\n"})
        if not new:
            return
        # "0" between every new character: the zeros around each one give its advance and offsets.
        subs = self._text("00" + "".join(c + "0" for c in new)).submobjects
        if len(subs) != 2 + 2 * len(new):  # a cluster Pango merged or split: learn one by one
            for c in new:
                self._learn_from(self._text("00" + c + "0").submobjects, [c])
            return
        self._learn_from(subs, new)

    def _learn_from(self, subs: list[Any], chars: list[str]) -> None:
        if len(subs) != 2 + 2 * len(chars):
            for c in chars:  # give up on exact placement: an unknown character is a blank of one em
                self.advance[c], self.glyphs[c] = self.em, None
            return
        adv0 = subs[1].get_left()[0] - subs[0].get_left()[0]
        base = subs[0].get_bottom()[1]
        for k, c in enumerate(chars):
            prev, glyph, nxt = subs[1 + 2 * k], subs[2 + 2 * k], subs[3 + 2 * k]
            pen = prev.get_left()[0] + adv0
            self.advance[c] = nxt.get_left()[0] - pen
            self.glyphs[c] = glyph.points - np.array([pen, base, 0.0]) if glyph.has_points() else None

    def width(self, s: str, em: float) -> float:
        """The width of ``s`` set at ``em`` scene units per em."""
        self._learn(s)
        return sum(self.advance[c] for c in s) * em / self.em

    def line(self, s: str, colour: str, em: float) -> TextLine:
        """``s`` as ONE VMobject (each glyph a few subpaths), ``em`` scene units per em.

        Its pen starts at x=0, the digits' bottom at y=0; ``text_width`` is its advance width.
        """
        self._learn(s)
        pen, parts = 0.0, []
        for c in s:
            g = self.glyphs.get(c)
            if g is not None:
                parts.append(g + np.array([pen, 0.0, 0.0]))
            pen += self.advance[c]
        k = em / self.em
        line = TextLine(fill_color=colour, fill_opacity=1.0, stroke_width=0)
        if parts:
            line.set_points(np.concatenate(parts) * k)
        line.text_width, line.em = pen * k, em
        return line


def place_line(line: Any, left: float, middle: float, digit_height: float) -> Any:
    """Put a typeset line's pen at ``left`` with its digits centred on ``middle``."""
    line.shift(np.array([left, middle - digit_height / 2, 0.0]))
    return line


def centre_line(line: Any, x: float, middle: float, digit_height: float) -> Any:
    return place_line(line, x - line.text_width / 2, middle, digit_height)


class Fade(m.Animation):
    """Take a mobject's opacity from what it is (or ``start``) to ``to`` times its full opacity, in place.

    FadeIn is a Transform: it deep-copies the mobject (every glyph of every text) when it
    begins, which dominated render time on large graphs. ``introduce`` adds the mobject to
    the scene as the animation starts, ``remove`` takes it out at the end (top-level
    mobjects only: removing a part of a group would split the group).
    """

    def __init__(
        self,
        mobject: Any,
        to: float = 1.0,
        start: float | None = None,
        introduce: bool = False,
        remove: bool = False,
        **kwargs: Any,
    ) -> None:
        self._parts = []
        for sm in mobject.family_members_with_points():
            fill = getattr(sm, "target_fill", sm.get_fill_opacity())
            stroke = getattr(sm, "target_stroke", sm.get_stroke_opacity())
            f0 = sm.get_fill_opacity() if start is None else start * fill
            s0 = sm.get_stroke_opacity() if start is None else start * stroke
            self._parts.append((sm, f0, fill * to, s0, stroke * to))
        super().__init__(mobject, introducer=introduce, remover=remove, **kwargs)

    def create_starting_mobject(self) -> Any:
        return self.mobject

    def interpolate_mobject(self, alpha: float) -> None:
        a = self.rate_func(alpha)
        for sm, f0, f1, s0, s1 in self._parts:
            sm.set_fill(opacity=f0 + (f1 - f0) * a, family=False)
            sm.set_stroke(opacity=s0 + (s1 - s0) * a, family=False)


def remember_opacity(mob: Any) -> Any:
    """Note each part's full opacity, so `Fade` can bring a hidden mobject back to it."""
    for sm in mob.family_members_with_points():
        sm.target_fill, sm.target_stroke = sm.get_fill_opacity(), sm.get_stroke_opacity()
    return mob


def Appear(mob: Any, **kwargs: Any) -> Fade:  # noqa: N802  (reads like Manim's animation classes)
    """Fade a top-level mobject in from nothing, adding it to the scene."""
    return Fade(mob, 1.0, start=0.0, introduce=True, **kwargs)


class Restroke(m.Animation):
    """Change an outline's colour and width in place (no copies)."""

    def __init__(self, mobject: Any, color: str, width: float, **kwargs: Any) -> None:
        self.c0, self.w0 = mobject.get_stroke_color(), mobject.get_stroke_width()
        self.c1, self.w1 = m.ManimColor(color), width
        super().__init__(mobject, **kwargs)

    def create_starting_mobject(self) -> Any:
        return self.mobject

    def interpolate_mobject(self, alpha: float) -> None:
        a = self.rate_func(alpha)
        mob: Any = self.mobject
        mob.set_stroke(
            color=m.interpolate_color(self.c0, self.c1, a), width=self.w0 + (self.w1 - self.w0) * a, family=False
        )


class MoveCamera(m.Animation):
    """Move a moving camera's frame to a new centre and width (one smooth move, no copies)."""

    def __init__(self, frame: Any, centre: tuple[float, float], width: float, **kwargs: Any) -> None:
        self.c0, self.w0 = frame.get_center().copy(), float(frame.width)
        self.c1, self.w1 = np.array([centre[0], centre[1], 0.0]), width
        super().__init__(frame, **kwargs)

    def create_starting_mobject(self) -> Any:
        return self.mobject

    def interpolate_mobject(self, alpha: float) -> None:
        a = self.rate_func(alpha)
        # Zoom geometrically, so the apparent speed is even when the width changes a lot.
        w = self.w0 * (self.w1 / self.w0) ** a
        self.mobject.set(width=w)
        self.mobject.move_to(self.c0 + (self.c1 - self.c0) * a)


def triangle_tip(at: np.ndarray, direction: np.ndarray, size: float, colour: str) -> Any:
    """A filled arrowhead whose point is ``at``, pointing along ``direction``."""
    d = direction / max(float(np.linalg.norm(direction)), 1e-9)
    n = np.array([-d[1], d[0], 0.0])
    base = at - d * size
    tip = m.Polygon(
        at, base + n * size * 0.55, base - n * size * 0.55, stroke_width=0, fill_color=colour, fill_opacity=1.0
    )
    return tip


def spline(points: list[np.ndarray], colour: str, width: float, dashed: bool) -> Any:
    """Graphviz's edge spline (p0, then (c1, c2, p) triples) as a Manim path."""
    quads = []
    for i in range(0, len(points) - 3, 3):
        quads += [points[i], points[i + 1], points[i + 2], points[i + 3]]
    path = m.VMobject(stroke_color=colour, stroke_width=width)
    path.set_points(np.array(quads))
    if dashed:
        path = m.DashedVMobject(path, num_dashes=max(6, int(path.get_arc_length() / 0.08)))
        path.set_stroke(colour, width)
    return path


def heat_rect(box_w: float, box_h: float, fill: str, border: str) -> Any:
    return m.Rectangle(
        width=box_w, height=box_h, fill_color=fill, fill_opacity=1.0, stroke_color=border, stroke_width=1
    )


def panel_backdrop(w: float, h: float, theme: Theme) -> Any:
    return m.Rectangle(width=w, height=h, fill_color=theme.background, fill_opacity=1.0, stroke_width=0)


__all__ = [
    "Appear",
    "Fade",
    "MONO_FONT",
    "MoveCamera",
    "Restroke",
    "Typesetter",
    "centre_line",
    "heat_rect",
    "panel_backdrop",
    "place_line",
    "remember_opacity",
    "spline",
    "triangle_tip",
]
