"""Colour and font themes shared by every renderer.

The hues are Okabe and Ito's colour-blind-safe set: parameters blue, operations
yellow, the loss reddish purple, gradients vermillion, updates bluish green, inputs
grey. Text colours are darker (light theme) or lighter (dark theme) shades of those
hues, chosen so that every text colour reads at a contrast of at least 4.5:1 (WCAG AA)
on every surface it can appear on: the background, the caption panel and every node
fill (`TEXT_ROLES` and `SURFACE_ROLES`), and the focus panel's numbers on their heat
colours (`HEAT_ROLES`; tests check the ratios with `contrast_ratio`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ExplainerError

#: One font for Latin and Korean text, so labels never show missing-glyph boxes.
#: The set-up script installs it (Debian's fonts-noto-cjk); the fallbacks are for SVG viewers.
FONT = "Noto Sans CJK KR"
SVG_FONT_FALLBACK = "Noto Sans CJK KR,Noto Sans KR,Apple SD Gothic Neo,Malgun Gothic,sans-serif"

#: Okabe & Ito (2008), "Color Universal Design": eight colours told apart with every common colour-vision deficiency.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}


@dataclass(frozen=True)
class Theme:
    name: str
    background: str
    panel: str  # caption and focus-panel background
    text: str
    muted: str
    grad: str
    update: str
    edge: str
    cluster: str
    param_fill: str
    param_border: str
    leaf_fill: str
    input_fill: str
    input_border: str
    op_fill: str
    op_border: str
    loss_fill: str
    loss_border: str
    bad_fill: str
    bad_border: str
    heat_negative: str  # focus-panel cells: the most negative entry ...
    heat_positive: str  # ... and the most positive one (zero is the panel colour)
    font_size: float
    small_size: float
    title_size: float
    dpi: int


#: Theme fields used as text colours, and the fields of the surfaces text is drawn on.
TEXT_ROLES = ("text", "muted", "grad", "update", "edge", "param_border", "loss_border", "bad_border")
SURFACE_ROLES = ("background", "panel", "param_fill", "leaf_fill", "input_fill", "op_fill", "loss_fill", "bad_fill")
#: The focus panel's numbers are written in ``text`` on cells coloured from ``panel`` to these.
HEAT_ROLES = ("heat_negative", "heat_positive")

LIGHT = Theme(
    name="light",
    background="white",
    panel="#F1F3F5",
    text="#111827",
    muted="#4B5563",
    grad="#A94400",  # vermillion, darkened for text
    update="#00694D",  # bluish green, darkened
    edge="#4B5563",
    cluster="#9CA3AF",
    param_fill="#DDEBF6",  # blue tint
    param_border="#0A4F9E",
    leaf_fill="#E6F3FB",  # sky-blue tint
    input_fill="#EEEFF1",
    input_border="#6B7280",
    op_fill="#FAF5C8",  # yellow tint
    op_border="#A08C00",
    loss_fill="#F7E4EF",  # reddish-purple tint
    loss_border="#9C3D74",
    bad_fill="#FBDCCB",
    bad_border="#8A1C00",
    heat_negative="#9CC9EA",
    heat_positive="#F4B48C",
    font_size=12,
    small_size=10,
    title_size=16,
    dpi=144,
)

#: Dark background, large type: for projecting on slides.
DARK = Theme(
    name="dark",
    background="#0F172A",
    panel="#1E293B",
    text="#F1F5F9",
    muted="#AAB4C3",
    grad="#FF9A5C",
    update="#4FD6A8",
    edge="#CBD5E1",
    cluster="#64748B",
    param_fill="#12355A",
    param_border="#7CC4EE",
    leaf_fill="#183A52",
    input_fill="#2C3644",
    input_border="#AAB4C3",
    op_fill="#383410",
    op_border="#F0E442",
    loss_fill="#46203C",
    loss_border="#EDA6CF",
    bad_fill="#5A1A08",
    bad_border="#FFD166",
    heat_negative="#1B4F7A",
    heat_positive="#7A3410",
    font_size=18,
    small_size=14,
    title_size=24,
    dpi=120,
)

THEMES = {"light": LIGHT, "dark": DARK}


def get_theme(name: str) -> Theme:
    try:
        return THEMES[name]
    except KeyError:
        raise ExplainerError(f"unknown theme {name!r}: use one of {', '.join(THEMES)}") from None


def _channels(colour: str) -> tuple[float, float, float]:
    h = {"white": "ffffff", "black": "000000"}.get(colour.lower(), colour).lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    return int(h[0:2], 16) / 255, int(h[2:4], 16) / 255, int(h[4:6], 16) / 255


def relative_luminance(colour: str) -> float:
    """WCAG 2 relative luminance of a ``#rrggbb`` colour."""

    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in _channels(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two colours, 1 to 21 (4.5 is AA for body text)."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def mix(a: str, b: str, t: float) -> str:
    """The colour ``t`` of the way from ``a`` to ``b`` (0..1), as ``#rrggbb``."""
    t = min(max(t, 0.0), 1.0)
    ca, cb = _channels(a), _channels(b)
    return "#" + "".join(f"{round((x + (y - x) * t) * 255):02X}" for x, y in zip(ca, cb))
