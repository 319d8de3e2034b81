"""Reading pictures the way a student does: tesseract OCR on frames and slide pages.

Helpers for the readability tests (tests/test_readable.py). A number counts as read
when tesseract's text holds it written exactly as the tool formats it
(`explainer.text.fmt_number`), with the typographic minus read as a hyphen.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, ImageStat

from explainer.text import fmt_number

TESSERACT = shutil.which("tesseract")


def graph_numbers(v: Any) -> list[Any]:
    """The numbers graph.json holds for a value: every entry, or a summary's statistics and first entries."""
    if isinstance(v, dict):
        return [v.get("min"), v.get("max"), v.get("mean"), v.get("norm"), *v.get("head", [])]
    if isinstance(v, list):
        return [x for e in v for x in graph_numbers(e)]
    return [v]


def as_written(x: Any, digits: int = 4) -> str:
    """A number as the tool writes it, in the characters OCR reports (− becomes -)."""
    return fmt_number(x, digits).replace("−", "-")


def read_numbers(img: Image.Image, scale: int = 3, want: list[str] | None = None) -> set[str]:
    """Every number-like token tesseract reads in ``img`` (dark text on light, or inverted first).

    Tries a few readings (two thresholds, block and sparse layout) and stops as soon as every
    number in ``want`` was read.
    """
    grey = img.convert("L")
    if ImageStat.Stat(grey).mean[0] < 128:  # the dark theme: light text on dark
        grey = ImageOps.invert(grey)
    grey = grey.resize((grey.width * scale, grey.height * scale), Image.LANCZOS)
    tokens: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "page.png"
        # Two thresholds: heat-coloured cells turn white behind black digits; a thin minus survives one of them.
        for threshold in (120, 170):
            grey.point(lambda p, th=threshold: 255 if p > th else 0).save(path)
            for psm in ("6", "11"):
                out = subprocess.run(
                    [TESSERACT or "tesseract", str(path), "-", "--psm", psm], capture_output=True, text=True, check=True
                ).stdout
                out = re.sub("[−–—]", "-", out)
                tokens.update(t.rstrip(".,") for t in re.findall(r"-?\d[\d.e-]*", out))
                if want is not None and set(want) <= tokens:
                    return tokens
    return tokens
