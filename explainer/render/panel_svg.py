"""SVG drawing helpers for pages, and the focus panel drawn in SVG (the slide deck's backward pages).

The panel is placed by `explainer.render.panel.pack`, as in the video: the same cards,
the same order, numbers in the monospaced font centred in cells coloured by sign and size.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from ..focus import Card
from ..themes import FONT, Theme
from .frames import SVG_NS
from .measure import MONO_FONT, ink_height
from .panel import NOTE_SIZE, pack
from .style import heat_colour

XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
#: Largest number size on a page (px of the 1280-px-wide page).
MAX_EM = 24.0


def svg_el(parent: ET.Element, tag: str, **attrs: Any) -> ET.Element:
    """A child element; ``font_size`` becomes ``font-size`` (a trailing ``_`` is dropped: ``class_``)."""
    names = {k.rstrip("_").replace("_", "-"): str(v) for k, v in attrs.items()}
    return ET.SubElement(parent, f"{{{SVG_NS}}}{tag}", names)


def svg_text(
    parent: ET.Element,
    x: float,
    y: float,
    s: str,
    size: float,
    fill: str,
    bold: bool = False,
    anchor: str = "start",
    font: str = FONT,
) -> ET.Element:
    """A line of text with its baseline at ``y``; spaces kept."""
    e = svg_el(
        parent, "text", x=f"{x:g}", y=f"{y:g}", font_family=font, font_size=f"{size:.2f}", fill=fill, text_anchor=anchor
    )
    if bold:
        e.set("font-weight", "bold")
    e.set(XML_SPACE, "preserve")
    e.text = s
    return e


def role_colour(role: str, theme: Theme) -> str:
    """A card's colour: text for values, vermillion for gradients, blue for optimizer state, green for updates."""
    return {"grad": theme.grad, "state": theme.param_border, "update": theme.update}.get(role, theme.text)


def draw_panel(
    root: ET.Element, cards: tuple[Card, ...], area: tuple[float, float, float, float], theme: Theme
) -> None:
    """The focus panel's cards, as large as ``area`` (x, y, width, height) allows, centred in it."""
    x, y, w, h = area
    layout = pack(cards, w, h, MAX_EM)
    x0, y0 = x + (w - layout.width) / 2, y + (h - layout.height) / 2
    digit = ink_height("0", MONO_FONT)
    sans_digit = ink_height("0")
    group = svg_el(root, "g", class_="eg-panel")
    for pc in layout.cards:
        colour = role_colour(pc.card.role, theme)
        f = pc.frame
        svg_el(
            group,
            "rect",
            x=f"{x0 + f.x:.2f}",
            y=f"{y0 + f.y:.2f}",
            width=f"{f.w:.2f}",
            height=f"{f.h:.2f}",
            rx=f"{0.25 * layout.em:.2f}",
            fill=theme.panel,
            stroke=colour,
            stroke_width="1.5",
        )
        tb = pc.title
        svg_text(
            group,
            x0 + tb.x,
            y0 + tb.cy + pc.title_size * sans_digit / 2,
            pc.card.title,
            pc.title_size,
            colour,
            bold=True,
        )
        for note, nb in zip(pc.card.notes, pc.notes):
            size = NOTE_SIZE * layout.em
            svg_text(group, x0 + nb.x, y0 + nb.cy + size * sans_digit / 2, note, size, theme.text)
        for texts, values, boxes in zip(pc.card.cells, pc.card.numbers, pc.cells):
            for text, value, b in zip(texts, values, boxes):
                svg_el(
                    group,
                    "rect",
                    x=f"{x0 + b.x:.2f}",
                    y=f"{y0 + b.y:.2f}",
                    width=f"{b.w:.2f}",
                    height=f"{b.h:.2f}",
                    fill=heat_colour(value, pc.card.scale, theme),
                    stroke=theme.panel,
                    stroke_width="1",
                )
                svg_text(
                    group,
                    x0 + b.cx,
                    y0 + b.cy + layout.em * digit / 2,
                    text,
                    layout.em,
                    theme.text,
                    anchor="middle",
                    font=MONO_FONT,
                )


__all__ = ["MAX_EM", "XML_SPACE", "draw_panel", "role_colour", "svg_el", "svg_text"]
