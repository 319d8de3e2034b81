"""Colour and font themes shared by every renderer."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ExplainerError

#: One font for Latin and Korean text, so labels never show missing-glyph boxes.
#: The set-up script installs it (Debian's fonts-noto-cjk); the fallbacks are for SVG viewers.
FONT = "Noto Sans CJK KR"
SVG_FONT_FALLBACK = "Noto Sans CJK KR,Noto Sans KR,Apple SD Gothic Neo,Malgun Gothic,sans-serif"


@dataclass(frozen=True)
class Theme:
    name: str
    background: str
    text: str
    muted: str
    grad: str
    update: str
    edge: str
    cluster: str
    badge_text: str
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
    font_size: float
    small_size: float
    title_size: float
    dpi: int


LIGHT = Theme(
    name="light",
    background="white",
    text="#111827",
    muted="#6b7280",
    grad="#c2410c",
    update="#047857",
    edge="#4b5563",
    cluster="#9ca3af",
    badge_text="white",
    param_fill="#dbeafe",
    param_border="#1d4ed8",
    leaf_fill="#e0e7ff",
    input_fill="#f3f4f6",
    input_border="#6b7280",
    op_fill="#fefce8",
    op_border="#a16207",
    loss_fill="#fee2e2",
    loss_border="#b91c1c",
    bad_fill="#ff6b6b",
    bad_border="#7f1d1d",
    font_size=12,
    small_size=10,
    title_size=16,
    dpi=144,
)

#: Dark background, large type: for projecting on slides.
DARK = Theme(
    name="dark",
    background="#0f172a",
    text="#f1f5f9",
    muted="#94a3b8",
    grad="#fb923c",
    update="#34d399",
    edge="#cbd5e1",
    cluster="#64748b",
    badge_text="#0f172a",
    param_fill="#1e3a8a",
    param_border="#93c5fd",
    leaf_fill="#312e81",
    input_fill="#334155",
    input_border="#94a3b8",
    op_fill="#422006",
    op_border="#facc15",
    loss_fill="#7f1d1d",
    loss_border="#fca5a5",
    bad_fill="#dc2626",
    bad_border="#fde047",
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
