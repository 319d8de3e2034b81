"""The training outputs inside the other renderers: a view of ``index.html`` and pages of the deck.

`html_view` is the page's training view (the figure inline, the table, each run's
first step, the notes); `slide_pages` are 16:9 SVG pages appended to the deck by
`explainer.render.slides.append_pages`: the surface with the loss curves, the
first steps with their numbers, the final values.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from typing import Any

from ..render.frames import SVG_NS
from ..render.measure import text_width
from ..render.slides import HEADER_H, MARGIN, PAGE_H, PAGE_W
from ..text import t
from ..themes import FONT, get_theme
from .plots import colour, panels_svg
from .record import TrainingRecord
from .report import minimum_text, notes, run_label, surface_caption, table, title
from .update_rules import first_step_rules

VIEW_ID = "training"

CSS = """
#training h2 { margin: 0 0 8px; font-size: 22px; }
#training .figure svg { width: 100%; height: auto; max-width: 1500px; display: block; }
#training table { border-collapse: collapse; margin: 12px 0; font-size: 15px; }
#training th, #training td { border: 1px solid var(--line); padding: 4px 10px; text-align: left; white-space: pre-line; }
#training .rules div { font-size: 15px; line-height: 1.5; white-space: pre-wrap; }
#training .rules .run { font-weight: bold; margin-top: 6px; }
#training .notes { color: var(--muted); font-size: 14px; }
"""


def _inline_svg(svg_text: str) -> str:
    """A standalone SVG file's text as an element for HTML (no XML declaration or doctype)."""
    return re.sub(r"^\s*<\?xml[^>]*>\s*(<!DOCTYPE[^>]*>\s*)?", "", svg_text, flags=re.DOTALL)


def html_view(record: TrainingRecord, svg_text: str, lang: str = "en", digits: int = 4) -> str:
    """The body of the page's training view."""
    e = html.escape
    header, rows = table(record, lang, digits)
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td style="color:{colour(i)}">{e(c)}</td>' if k == 0 else f"<td>{e(c)}</td>" for k, c in enumerate(row)
        )
        + "</tr>"
        for i, row in enumerate(rows)
    )
    rules = []
    for i, run in enumerate(record.runs):
        for rule in first_step_rules(run, digits):
            rules.append(
                f'<div class="run" style="color:{colour(i)}">{e(run_label(run, digits))} · {e(rule.name)}</div>'
            )
            rules += [f"<div>{e(line)}</div>" for line in rule.lines]
    caption = surface_caption(record, lang)
    minimum = minimum_text(record, lang, digits)
    note_items = "".join(f"<li>{e(n)}</li>" for n in notes(record, lang))
    return (
        f"<style>{CSS}</style><h2>{e(title(record, lang))}</h2>"
        f'<div class="figure">{_inline_svg(svg_text)}</div>'
        + (f'<p class="notes">{e(caption)}{": " + e(minimum) if minimum else ""}</p>' if caption else "")
        + f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f'<h2>{e(t("tr_first_steps", lang))}</h2><div class="rules">{"".join(rules)}</div>'
        + (f'<ul class="notes">{note_items}</ul>' if note_items else "")
    )


# --------------------------------------------------------------------------- slide pages


def _el(parent: ET.Element, tag: str, **attrs: Any) -> ET.Element:
    return ET.SubElement(parent, f"{{{SVG_NS}}}{tag}", {k.replace("_", "-"): str(v) for k, v in attrs.items()})


def _text(
    parent: ET.Element, x: float, y: float, s: str, size: float, fill: str, bold: bool = False, anchor: str = "start"
) -> None:
    e = _el(
        parent, "text", x=f"{x:g}", y=f"{y:g}", font_family=FONT, font_size=f"{size:.1f}", fill=fill, text_anchor=anchor
    )
    if bold:
        e.set("font-weight", "bold")
    e.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")
    e.text = s


def _page(theme: Any, header: str, script: str, number: int, total: int, lang: str) -> ET.Element:
    root = ET.Element(
        f"{{{SVG_NS}}}svg", {"width": str(PAGE_W), "height": str(PAGE_H), "viewBox": f"0 0 {PAGE_W} {PAGE_H}"}
    )
    _el(root, "rect", x=0, y=0, width=PAGE_W, height=PAGE_H, fill=theme.background)
    size = min(30.0, (PAGE_W - 2 * MARGIN - 320) / max(text_width(header, 1.0, True), 1e-9))
    _text(root, MARGIN, 48, header, size, theme.text, bold=True)
    _text(
        root, PAGE_W - MARGIN, 46, f"{script}   {t('tr_page', lang)} {number} / {total}", 18, theme.muted, anchor="end"
    )
    _el(root, "rect", x=MARGIN, y=HEADER_H - 8, width=PAGE_W - 2 * MARGIN, height=2, fill=theme.cluster)
    return root


def _lines(root: ET.Element, lines: list[tuple[str, str, bool]], top: float, bottom: float, largest: float) -> None:
    """Lines of text between ``top`` and ``bottom``, as large as the page allows."""
    width = PAGE_W - 2 * MARGIN
    widest = max((text_width(s, 1.0, b) for s, _, b in lines), default=1.0)
    size = min(largest, width / max(widest, 1e-9), (bottom - top) / max(len(lines), 1) / 1.4)
    for k, (s, fill, bold) in enumerate(lines):
        _text(root, MARGIN, top + size + k * size * 1.4, s, size, fill, bold)


def slide_pages(
    record: TrainingRecord, theme_name: str = "light", lang: str = "en", digits: int = 4
) -> list[ET.Element]:
    """The deck's training pages: surface and losses, first steps, final values."""
    theme = get_theme(theme_name)
    script = record.script
    total = 3
    pages = []
    # 1: the picture
    page = _page(theme, title(record, lang), script, 1, total, lang)
    figure = ET.fromstring(panels_svg(record, theme_name, lang, digits))
    for key in ("width", "height"):
        figure.attrib.pop(key, None)
    cap = surface_caption(record, lang)
    minimum = minimum_text(record, lang, digits)
    caption = f"{cap}: {minimum}" if cap and minimum else cap
    figure.attrib.update(
        {
            "x": str(MARGIN / 2),
            "y": str(HEADER_H),
            "width": str(PAGE_W - MARGIN),
            "height": str(PAGE_H - HEADER_H - (50 if caption else 10)),
            "preserveAspectRatio": "xMidYMid meet",
        }
    )
    page.append(figure)
    if caption:
        _text(
            page,
            MARGIN,
            PAGE_H - 22,
            caption,
            min(20.0, (PAGE_W - 2 * MARGIN) / max(text_width(caption, 1.0), 1e-9)),
            theme.muted,
        )
    pages.append(page)
    # 2: the first step of each run, with its numbers
    page = _page(theme, t("tr_first_steps", lang), script, 2, total, lang)
    lines: list[tuple[str, str, bool]] = []
    for i, run in enumerate(record.runs):
        rules = first_step_rules(run, digits)
        if rules:
            lines.append((f"{run_label(run, digits)} · {rules[0].name}", colour(i), True))
            lines += [(f"    {line}", theme.text, False) for line in rules[0].lines]
    _lines(page, lines, HEADER_H + 10, PAGE_H - MARGIN, 28)
    pages.append(page)
    # 3: the final values
    steps = max((r.steps for r in record.runs), default=0)
    page = _page(theme, f"{t('tr_all', lang)} · {t('tr_final', lang).format(n=steps)}", script, 3, total, lang)
    header, rows = table(record, lang, digits)
    _table(page, theme, header, rows, record)
    note_lines = [(n, theme.muted, False) for n in notes(record, lang)]
    if note_lines:
        _lines(page, note_lines, PAGE_H - 60 - 30 * len(note_lines), PAGE_H - MARGIN / 2, 18)
    pages.append(page)
    return pages


def page_notes(page: ET.Element) -> str:
    """The words a slide page shows itself (not those of a figure drawn in it), a line per row: its speaker notes."""
    rows: dict[str, list[str]] = {}
    for text in page.findall(f"{{{SVG_NS}}}text"):
        if text.text and text.text.strip():
            rows.setdefault(text.get("y", ""), []).append(text.text.strip())
    return "\n".join("   ".join(cells) for cells in rows.values())


def _table(page: ET.Element, theme: Any, header: list[str], rows: list[list[str]], record: TrainingRecord) -> None:
    header = [h.replace("\n", " ") for h in header]
    size = 24.0
    widths = [
        max(text_width(c, size, r == 0) for r, c in enumerate([h] + [row[k] for row in rows])) + 36
        for k, h in enumerate(header)
    ]
    scale = min(1.0, (PAGE_W - 2 * MARGIN) / sum(widths))
    size *= scale
    widths = [w * scale for w in widths]
    y = HEADER_H + 30.0
    for r, cells in enumerate([header] + rows):
        x = float(MARGIN)
        for k, (cell, w) in enumerate(zip(cells, widths)):
            fill = colour(r - 1) if r and k == 0 else theme.text
            if r and record.runs[r - 1].diverged_at is not None and k == len(cells) - 2:
                fill = "#c0392b"
            _text(page, x, y + size, cell, size, fill, bold=r == 0)
            x += w
        y += size * 1.9
        _el(page, "rect", x=MARGIN, y=f"{y - size * 0.55:g}", width=PAGE_W - 2 * MARGIN, height=1, fill=theme.cluster)


__all__ = ["VIEW_ID", "html_view", "page_notes", "slide_pages"]
