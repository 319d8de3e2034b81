"""What stays fixed on screen while the camera moves: the header, the focus panel, the captions.

Everything here is built in frame units (the home frame, centre at the origin) and then
carried to the current camera shot (`Hud.at`); while the camera moves, an updater keeps
it in place on screen (`Hud.follower`). Opaque backdrops under the header and the panel
hide the parts of the graph that reach beyond the viewport.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import manim as m
import numpy as np

from ..choreography import Step
from ..focus import Card
from ..story import Story
from ..text import stage_name
from .framing import FRAME_W, Rect, Regions, Shot
from .measure import MONO_FONT, ink_height
from .mobjects import Typesetter, centre_line, heat_rect, panel_backdrop, place_line
from .panel import NOTE_SIZE, pack
from .panel_svg import role_colour
from .style import heat_colour, highlight_colour, step_mark

#: Largest font size of the panel's numbers (frame units; 0.55 is 33 px at 480p).
MAX_EM = 0.55
HEADER_EM = 0.3
CAPTION_EM = 0.32
PAD = 0.15


class Hud:
    """Builds the header, panel and caption mobjects of each step."""

    def __init__(self, story: Story, regions: Regions, sans: Typesetter, bold: Typesetter) -> None:
        self.story, self.g, self.theme, self.lang = story, story.graph, story.theme, story.options.lang
        self.regions, self.sans, self.bold = regions, sans, bold
        self.mono = Typesetter(MONO_FONT)
        self.mono_digit = ink_height("0", MONO_FONT)

    # ------------------------------------------------------------------ placing
    @staticmethod
    def at(hud: Any, shot: Shot) -> Any:
        """Carry ``hud`` (built in frame units) to ``shot``."""
        hud.scale(shot.w / FRAME_W, about_point=m.ORIGIN).shift(np.array([shot.x, shot.y, 0.0]))
        hud.anchor = shot
        return hud

    @staticmethod
    def follower(frame: Any) -> Callable[[Any], None]:
        """An updater that keeps a hud fixed on screen while ``frame`` (the camera's) moves."""

        def follow(hud: Any) -> None:
            a: Shot = hud.anchor
            c, w = frame.get_center(), frame.width
            hud.shift(-np.array([a.x, a.y, 0.0])).scale(w / a.w, about_point=m.ORIGIN).shift(c)
            hud.anchor = Shot(float(c[0]), float(c[1]), float(w))

        return follow

    # ------------------------------------------------------------------ parts
    def _fit_line(self, text: str, colour: str, em: float, width: float, bold: bool = False) -> Any:
        face = self.bold if bold else self.sans
        w = face.width(text, em)
        if w > width:
            em *= width / w
        return face.line(text, colour, em)

    def header(self, step: Step) -> Any:
        r, th = self.regions.header, self.theme
        stage = stage_name(step.stage, self.lang) if step.stage in ("forward", "backward", "update") else ""
        colour = highlight_colour(step.stage, step.kind, th)
        what = self.describe(step)
        group = m.VGroup(panel_backdrop(r.w + 0.02, r.h + 0.02, th).move_to([r.x, r.y, 0]))
        left, width = r.left + 0.3, r.w - 0.6
        head = self._fit_line(stage, colour, HEADER_EM, width * 0.4, bold=True)
        place_line(head, left, r.y, head.em * 0.73)
        group.add(head)
        if what:
            x = left + head.text_width + 0.35
            line = self._fit_line(what, th.text, HEADER_EM, left + width - x, bold=True)
            group.add(place_line(line, x, r.y, line.em * 0.73))
        return group

    def describe(self, step: Step) -> str:
        """The header's words for a step: which node, and what it computes."""
        d = self.g.nodes[step.node] if step.node in self.g else None
        if d is None:
            return ""
        if step.kind == "forward":
            return step.lines[0] if d["kind"] in ("op", "module") else d["label"]
        if step.kind == "loss":
            return f"{d['label']} = {d.get('op') or ''}"
        if step.kind in ("backward", "accumulate"):
            mark = step_mark(d["backward_step"]) + "  " if d.get("backward_step") is not None else ""
            return mark + step.lines[0]
        if step.kind == "update":
            return f"{d['label']}:  {step.lines[1]}"
        return ""

    def panel(self, cards: tuple[Card, ...]) -> Any:
        r, th = self.regions.panel, self.theme
        band = self.regions.panel_band
        group = m.VGroup(panel_backdrop(band.w + 0.02, band.h + 0.02, th).move_to([band.x, band.y, 0]))
        layout = pack(cards, r.w - 2 * PAD, r.h - 2 * PAD, MAX_EM)
        x0 = r.left + (r.w - layout.width) / 2
        y0 = r.top - (r.h - layout.height) / 2  # panel layouts grow downwards

        def frame_rect(b: Any) -> Rect:
            return Rect(x0 + b.cx, y0 - b.cy, b.w, b.h)

        em = layout.em
        for pc in layout.cards:
            colour = role_colour(pc.card.role, th)
            f = frame_rect(pc.frame)
            frame = m.RoundedRectangle(
                corner_radius=0.25 * em,
                width=f.w,
                height=f.h,
                fill_color=th.panel,
                fill_opacity=1.0,
                stroke_color=colour,
                stroke_width=1.5,
            )
            group.add(frame.move_to((f.x, f.y, 0.0)))
            tb = frame_rect(pc.title)
            group.add(
                place_line(self.bold.line(pc.card.title, colour, pc.title_size), tb.left, tb.y, pc.title_size * 0.73)
            )
            for note, nb in zip(pc.card.notes, pc.notes):
                b = frame_rect(nb)
                size = NOTE_SIZE * em
                group.add(place_line(self.sans.line(note, th.text, size), b.left, b.y, size * 0.73))
            for text_row, num_row, box_row in zip(pc.card.cells, pc.card.numbers, pc.cells):
                for text, value, cb in zip(text_row, num_row, box_row):
                    b = frame_rect(cb)
                    fill = heat_colour(value, pc.card.scale, th)
                    group.add(heat_rect(b.w, b.h, fill, th.panel).move_to([b.x, b.y, 0]))
                    group.add(centre_line(self.mono.line(text, th.text, em), b.x, b.y, em * self.mono_digit))
        return group

    @staticmethod
    def header_of(hud: Any) -> Any:
        """A copy of a hud's header (its first part), for the camera's moves."""
        return hud.submobjects[0].copy()

    # ------------------------------------------------------------------ whole huds
    def focus(self, step: Step) -> Any:
        return m.VGroup(self.header(step), self.panel(step.panel))

    def overview(self, step: Step) -> Any:
        r, th = self.regions.caption, self.theme
        group = m.VGroup(self.header(step))
        lines = list(step.lines[:4])
        if not lines:
            return group
        em = min(CAPTION_EM, r.h / (1.45 * len(lines)))
        top = r.top - em * 0.9
        for i, text in enumerate(lines):
            line = self._fit_line(text, th.text if i else th.text, em, r.w, bold=i == 0)
            group.add(place_line(line, r.left, top - i * em * 1.45, line.em * 0.73))
        return group

    def title_card(self, step: Step) -> Any:
        th = self.theme
        lines = list(step.lines)
        parts = [(lines[0], th.text, 0.6, True)] if lines else []
        if len(lines) > 1:
            parts.append((lines[1], th.loss_border, 0.4, False))
        parts += [(line, th.muted, 0.26, False) for line in lines[2:]]
        group = m.VGroup()
        y = 0.3 + sum(p[2] * 1.6 for p in parts) / 2
        for text, colour, em, bold in parts:
            line = self._fit_line(text, colour, em, FRAME_W * 0.9, bold=bold)
            y -= em * 1.6 / 2
            group.add(centre_line(line, 0.0, y, line.em * 0.73))
            y -= em * 1.6 / 2
        return group


__all__ = ["Hud"]
