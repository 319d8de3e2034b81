"""Where things go in a video frame, and what the camera looks at in each step: pure geometry.

A 16:9 frame (Manim units, `FRAME_W` × `FRAME_H`, y up) has a header line at the top.
Two kinds of shot:

* **overview** (the title, between stages, ``zero_grad``): the whole graph fills the body
  above a caption;
* **focus** (every other step): the graph is seen through a viewport, a band above the
  focus panel when the layout flows left to right, a column beside it when it flows top
  to bottom, and the camera frames the step's node with its neighbours there.

The camera keeps one zoom per stage, large enough for the boxes' names to be read
(`READ_LABEL`) but never smaller than the whole graph in the viewport, and pans only
when the next neighbourhood leaves the view, so the picture is calm; a neighbourhood
too large for that zoom gets a wider shot for its step.

All positions are in scene units: the graph is placed once (`Placement`) so that the
overview is the camera's home frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..layout import Layout

FRAME_W, FRAME_H = 16 * 8 / 9, 8.0
HEADER_H = 0.62
CAPTION_H = 1.5  # below the overview's graph
MARGIN = 0.18
#: Share of the body the focus panel takes (the rest is the graph's viewport).
PANEL_SHARE = 0.56
#: The height, in frame units, a box's name should reach in a focus shot (about 10 px at 480p).
READ_LABEL = 0.16
#: A pan leaves this much room (fraction of the view) between the neighbourhood and the view's edge.
PAN_MARGIN = 0.08


@dataclass(frozen=True)
class Rect:
    """Centre and size, y up."""

    x: float
    y: float
    w: float
    h: float

    @property
    def left(self) -> float:
        return self.x - self.w / 2

    @property
    def right(self) -> float:
        return self.x + self.w / 2

    @property
    def top(self) -> float:
        return self.y + self.h / 2

    @property
    def bottom(self) -> float:
        return self.y - self.h / 2

    def contains(self, other: Rect, margin: float = 0.0) -> bool:
        mw, mh = self.w * margin, self.h * margin
        return (
            other.left >= self.left + mw
            and other.right <= self.right - mw
            and other.bottom >= self.bottom + mh
            and other.top <= self.top - mh
        )


def union(rects: Iterable[Rect]) -> Rect:
    rs = list(rects)
    left, right = min(r.left for r in rs), max(r.right for r in rs)
    bottom, top = min(r.bottom for r in rs), max(r.top for r in rs)
    return Rect((left + right) / 2, (bottom + top) / 2, right - left, top - bottom)


@dataclass(frozen=True)
class Regions:
    """The parts of a frame, in frame units (centre at the origin)."""

    header: Rect
    overview: Rect  # the whole graph, above the caption
    caption: Rect
    viewport: Rect  # the graph in a focus shot
    panel: Rect  # the focus panel
    panel_band: Rect  # everything outside the viewport below the header (the panel's backdrop)


def regions(side_by_side: bool) -> Regions:
    """The frame's parts; ``side_by_side`` puts the viewport left of the panel (tall graphs)."""
    top = FRAME_H / 2
    header = Rect(0, top - HEADER_H / 2, FRAME_W, HEADER_H)
    body_top, body_bottom = top - HEADER_H, -FRAME_H / 2
    body_h = body_top - body_bottom
    caption = Rect(0, body_bottom + CAPTION_H / 2, FRAME_W - 2 * MARGIN, CAPTION_H - MARGIN)
    ov_h = body_h - CAPTION_H - MARGIN
    overview = Rect(0, body_bottom + CAPTION_H + ov_h / 2, FRAME_W - 2 * MARGIN, ov_h - MARGIN)
    if side_by_side:
        vw = (FRAME_W - 3 * MARGIN) * (1 - PANEL_SHARE)
        pw = FRAME_W - 3 * MARGIN - vw
        viewport = Rect(-FRAME_W / 2 + MARGIN + vw / 2, (body_top + body_bottom) / 2, vw, body_h - 2 * MARGIN)
        panel = Rect(FRAME_W / 2 - MARGIN - pw / 2, (body_top + body_bottom) / 2, pw, body_h - 2 * MARGIN)
        band_left = viewport.right + MARGIN / 2
        band = Rect((band_left + FRAME_W / 2) / 2, panel.y, FRAME_W / 2 - band_left, body_h)
    else:
        vh = (body_h - 3 * MARGIN) * (1 - PANEL_SHARE)
        ph = body_h - 3 * MARGIN - vh
        viewport = Rect(0, body_top - MARGIN - vh / 2, FRAME_W - 2 * MARGIN, vh)
        panel = Rect(0, body_bottom + MARGIN + ph / 2, FRAME_W - 2 * MARGIN, ph)
        band_top = viewport.bottom - MARGIN / 2
        band = Rect(0, (band_top + body_bottom) / 2, FRAME_W, band_top - body_bottom)
    return Regions(header, overview, caption, viewport, panel, band)


@dataclass(frozen=True)
class Placement:
    """The graph in scene units: ``scene = origin + scale · points`` (dot's points, y up)."""

    scale: float
    origin: tuple[float, float]

    def point(self, x: float, y: float) -> tuple[float, float]:
        return self.origin[0] + x * self.scale, self.origin[1] + y * self.scale

    def rect(self, x: float, y: float, w: float, h: float) -> Rect:
        px, py = self.point(x, y)
        return Rect(px, py, w * self.scale, h * self.scale)


def place(layout: Layout, overview: Rect) -> Placement:
    """Fit the layout into the overview region, centred: the camera's home frame shows it whole."""
    scale = min(overview.w / max(layout.width, 1.0), overview.h / max(layout.height, 1.0))
    ox = overview.x - layout.width * scale / 2
    oy = overview.y - layout.height * scale / 2
    return Placement(scale, (ox, oy))


@dataclass(frozen=True)
class Shot:
    """A camera frame: its centre and width (scene units; the height follows from 16:9)."""

    x: float
    y: float
    w: float

    @property
    def zoom(self) -> float:
        """Frame units per scene unit (1 at home, larger when closer)."""
        return FRAME_W / self.w

    def view(self, region: Rect) -> Rect:
        """The part of the scene that ``region`` of the frame shows."""
        k = self.w / FRAME_W
        return Rect(self.x + region.x * k, self.y + region.y * k, region.w * k, region.h * k)


HOME = Shot(0.0, 0.0, FRAME_W)


def shot_for(target: Rect, region: Rect, width: float) -> Shot:
    """The shot of width ``width`` that shows ``target``'s centre at the centre of ``region``."""
    k = width / FRAME_W
    return Shot(target.x - region.x * k, target.y - region.y * k, width)


def fit_width(target: Rect, region: Rect) -> float:
    """The narrowest shot width that shows ``target`` whole inside ``region`` (with a margin)."""
    return FRAME_W * max(target.w / region.w, target.h / region.h) * (1 + 2 * PAN_MARGIN)


@dataclass
class Camera:
    """Plans the shots of a stage: one zoom for the whole stage, pans only when needed. Pure."""

    graph: Rect  # the whole graph, scene units
    label_height: float  # a box name's height in scene units
    region: Rect  # the viewport the graph is seen through
    current: Shot = HOME
    width: float = 0.0  # the stage's shot width (`plan`)

    @property
    def whole(self) -> float:
        """The shot width that shows the whole graph in the viewport."""
        return fit_width(self.graph, self.region)

    def plan(self, neighbourhoods: Iterable[Rect]) -> float:
        """Start a stage whose steps frame ``neighbourhoods``: one zoom that fits the largest of them.

        Never closer than needed for the boxes' names to be read (`READ_LABEL`), never wider
        than the whole graph; a small graph is simply shown whole, and the camera stays still.
        """
        readable = FRAME_W * self.label_height / READ_LABEL
        largest = max((fit_width(r, self.region) for r in neighbourhoods), default=0.0)
        self.width = min(self.whole, max(largest, readable))
        self.current = HOME
        return self.width

    def follow(self, neighbourhood: Rect) -> Shot:
        """The shot for a step whose nodes fill ``neighbourhood``: the current one if it still shows them."""
        width = self.width or self.whole
        if width >= self.whole * 0.999:  # the whole graph fits: frame it, steadily
            self.current = shot_for(self.graph, self.region, self.whole)
            return self.current
        if self.current is not HOME and abs(self.current.w - width) < 1e-9:
            if self.current.view(self.region).contains(neighbourhood, PAN_MARGIN / 2):
                return self.current
        self.current = shot_for(neighbourhood, self.region, width)
        return self.current


__all__ = [
    "FRAME_H",
    "FRAME_W",
    "HOME",
    "Camera",
    "Placement",
    "Rect",
    "Regions",
    "Shot",
    "fit_width",
    "place",
    "regions",
    "shot_for",
    "union",
]
