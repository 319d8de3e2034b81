"""Text widths measured with the fonts the renderers draw with (Pillow + fontconfig).

The slide deck and the focus panel lay out text before any renderer draws it; they
measure it with the very font files Pango will use, so lines fit and columns line up.
"""

from __future__ import annotations

import subprocess
import unicodedata
from functools import lru_cache
from typing import Any

from ..themes import FONT

#: The focus panel writes numbers in this font, so their digits line up in columns.
MONO_FONT = "Noto Sans Mono CJK KR"


@lru_cache(maxsize=8)
def _font(family: str, bold: bool) -> Any:
    """A Pillow font for measuring text, or None when unavailable."""
    try:
        from PIL import ImageFont

        spec = f"{family}:weight={'bold' if bold else 'regular'}"
        out = subprocess.run(["fc-match", "-f", "%{file}\n%{index}", spec], capture_output=True, text=True, timeout=10)
        path, _, index = out.stdout.partition("\n")
        return ImageFont.truetype(path, 100, index=int(index or 0))
    except Exception:  # no fontconfig or Pillow: fall back to an estimate
        return None


def text_width(text: str, size: float, bold: bool = False, mono: bool = False) -> float:
    """Width of ``text`` at font size ``size`` (same unit), in the diagram's font or the mono one."""
    font = _font(MONO_FONT if mono else FONT, bold)
    if font is not None:
        return float(font.getlength(text)) * size / 100
    wide = sum(1 for c in text if unicodedata.east_asian_width(c) in "WF")
    return ((0.5 if mono else 0.58) * (len(text) - wide) + 1.0 * wide) * size


def ink_height(text: str, family: str = FONT) -> float:
    """Height of ``text``'s ink in em (about 0.73 for a digit), to size text by its digits."""
    font = _font(family, False)
    if font is None:
        return 0.73
    left, top, right, bottom = font.getbbox(text)
    return max(bottom - top, 1) / 100


__all__ = ["MONO_FONT", "ink_height", "text_width"]
