"""``slides.pptx``: the slide deck for lecturers who present in PowerPoint (``--pptx``).

One slide per page of the deck (`explainer.render.slides`): the page's PNG, full
bleed on a 16:9 slide, and the page's caption (the step's chain rule with its numbers)
in the speaker notes. Needs python-pptx, the ``[pptx]`` extra.

Deterministic: python-pptx stamps the time into the package's zip entries; they are
rewritten with a fixed time, and the document's dates are ``SOURCE_DATE_EPOCH``.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ExplainerError

#: PowerPoint's 16:9 slide: 13.333 × 7.5 inches, in EMU.
SLIDE_W, SLIDE_H = 12_192_000, 6_858_000
INSTALL = "pip install 'explain-graph[pptx]' (python-pptx)"


def import_pptx() -> Any:
    """python-pptx, or a one-line error with the install line (checked before a script is traced)."""
    try:
        import pptx
    except ImportError:
        raise ExplainerError(f"--pptx needs python-pptx, which is not installed: {INSTALL}, then try again") from None
    return pptx


def write_pptx(pages: Sequence[Path], notes: Sequence[str], path: Path) -> Path:
    """A PowerPoint file with one full-slide picture per page PNG and ``notes`` as speaker notes."""
    prs = import_pptx().Presentation()
    prs.slide_width, prs.slide_height = SLIDE_W, SLIDE_H
    _add_slides(prs, pages, notes)
    when = dt.datetime.fromtimestamp(int(os.environ.get("SOURCE_DATE_EPOCH", "0")), tz=dt.timezone.utc)
    props = prs.core_properties
    props.created = props.modified = when.replace(tzinfo=None)
    props.last_printed = when.replace(tzinfo=None)
    props.author = props.last_modified_by = "explain-graph"
    props.revision = 1
    _save(prs, path)
    return path


def append_pptx(path: Path, pages: Sequence[Path], notes: Sequence[str]) -> Path:
    """Add a slide per page PNG (``notes`` as speaker notes) at the end of the deck `write_pptx` wrote."""
    prs = import_pptx().Presentation(str(path))
    _add_slides(prs, pages, notes)
    _save(prs, path)
    return path


def _add_slides(prs: Any, pages: Sequence[Path], notes: Sequence[str]) -> None:
    blank = prs.slide_layouts[6]
    for png, note in zip(pages, notes):
        slide = prs.slides.add_slide(blank)
        slide.shapes.add_picture(str(png), 0, 0, width=SLIDE_W, height=SLIDE_H)
        if note:
            slide.notes_slide.notes_text_frame.text = note


def _save(prs: Any, path: Path) -> None:
    raw = io.BytesIO()
    prs.save(raw)
    _fix_zip_times(raw.getvalue(), path)


def _fix_zip_times(data: bytes, path: Path) -> None:
    """Re-zip ``data`` with every entry dated 1980-01-01, so the same deck gives the same bytes."""
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            dst.writestr(fixed, src.read(info.filename))


__all__ = ["append_pptx", "import_pptx", "write_pptx"]
