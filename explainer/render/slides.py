"""A slide deck a lecturer can present as is: ``slides.pdf`` and ``slides/page-NN.png``.

The deck performs the same `explainer.choreography.choreograph` steps as the video
and the interactive page: a title page, the forward pass, one page per backward
step (the node being processed outlined, the gradients computed so far filled in,
later ones still blank, the chain rule of that step with its numbers), and the
optimizer update.

Every page is a 16:9 SVG (1280 × 720 px) built around the story's one frame layout
(`explainer.story`, `explainer.render.frames`), so the boxes never move between
pages, and the page is used: the diagram is scaled into the space between the header
and the caption. A backward page shows the step's focus panel instead of a caption
(`explainer.focus`: the node's value, the gradient arriving and the gradients passed
on, every entry large, as in the video), the diagram above it (beside it for a
graph that flows top to bottom). ``rsvg-convert`` (librsvg, Debian's librsvg2-bin)
turns the pages into one vector PDF; ``pdftoppm`` (poppler-utils) renders the PNGs
from that PDF. Both use Pango and fontconfig, so Korean and mathematical symbols
fall back to installed fonts rather than missing-glyph boxes.

Notes
-----
The PDF's creation date is ``SOURCE_DATE_EPOCH`` (0 unless set), so the same graph
gives the same bytes.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from ..choreography import Step
from ..errors import ToolError
from ..focus import Card
from ..story import Story
from ..text import notes_of, optimizer_text, t
from ..themes import Theme
from ..tools import check_file, find_tool, run_tool, undate_pdf
from .frames import SVG_NS, Frame, apply_frame, frames, tag_svg
from .framing import PANEL_SHARE
from .measure import text_width
from .panel import pack
from .panel_svg import MAX_EM, draw_panel, svg_el, svg_text
from .pptx import append_pptx, write_pptx
from .style import node_colours, step_mark

#: Page size in CSS pixels (13.33 × 7.5 in at 96 dpi, PowerPoint's 16:9).
PAGE_W, PAGE_H = 1280, 720
#: PNG size of each page.
PNG_W, PNG_H = 1920, 1080
MARGIN = 40
HEADER_H = 72
#: Caption font sizes (px): preferred, and the smallest before a line is wrapped.
CAPTION_SIZE, CAPTION_MIN = 26, 17
#: Most caption lines on one page; more are summarised as "… and N more".
MAX_LINES = 6


@dataclass(frozen=True)
class Page:
    """One page of the deck: its header, caption and the diagram's state (None: title page)."""

    kind: str  # "title" | "forward" | "backward" | "update"
    header: str
    lines: tuple[str, ...]
    frame: Frame | None
    step: int | None = None  # index of the choreography step it shows
    panel: tuple[Card, ...] = ()  # a backward page's focus panel


# --------------------------------------------------------------------------- pages as data


def _lines_cap(lines: list[str], lang: str, most: int = MAX_LINES) -> list[str]:
    """At most ``most`` lines: the first ones, then "… and N more"."""
    if len(lines) <= most:
        return list(lines)
    return lines[: most - 1] + [t("more", lang).format(n=len(lines) - most + 1)]


def plan_pages(g: nx.DiGraph, steps: Sequence[Step], lang: str = "en") -> list[Page]:
    """The deck as data: which frame and caption each page shows.

    One page per step of the backward stage (``backward`` and ``accumulate``); the
    forward steps share one page (the diagram with every value, the ops' results as
    the caption); the update steps and ``zero_grad`` share the last page.
    """
    fr = frames(g, steps)
    pages: list[Page] = [Page("title", steps[0].lines[0] if steps else "", steps[0].lines if steps else (), None, 0)]
    loss_i = next((i for i, s in enumerate(steps) if s.kind == "loss"), None)
    fwd_lines = []
    for s in steps:
        if s.kind == "forward" and s.edges:  # an op: "name = formula = value"
            fwd_lines.append(f"{s.lines[0]} {s.lines[1]}" if len(s.lines) > 1 else s.lines[0])
        elif s.kind == "loss":
            fwd_lines.append(s.lines[0])
    if loss_i is not None:
        f = fr[loss_i]
        forward = Frame(f.step, "forward", "forward", (), (), f.seen, (), (), (), ())
        pages.append(Page("forward", t("forward", lang), tuple(_lines_cap(fwd_lines, lang)), forward, loss_i))
    for i, s in enumerate(steps):
        if s.stage != "backward":
            continue
        d = g.nodes[s.node] if s.node in g else {}
        mark = f"  {step_mark(d['backward_step'])}" if d.get("backward_step") else ""
        what = f"   {s.lines[0]}" if s.lines else ""
        pages.append(Page("backward", f"{t('backward', lang)}{mark}{what}", s.lines, fr[i], i, s.panel))
    ups = [i for i, s in enumerate(steps) if s.kind == "update"]
    if ups:
        last = fr[ups[-1]]
        # each parameter's rule with its numbers, and the last line for zero_grad()
        lines = _lines_cap([" ".join(steps[i].lines[1:]) for i in ups], lang, MAX_LINES - 1)
        zero = next((s for s in steps if s.kind == "zero_grad"), None)
        if zero is not None:
            lines.append(zero.lines[0])
        frame = Frame(
            last.step,
            "update",
            "update",
            tuple(n for n in (steps[i].node for i in ups) if n),
            (),
            last.seen,
            last.grads,
            last.edge_grads,
            last.updates,
            (),
        )
        pages.append(Page("update", steps[ups[0]].lines[0], tuple(lines), frame, ups[-1]))
    return pages


# --------------------------------------------------------------------------- text measuring


def _wrap(line: str, size: float, width: float) -> list[str]:
    """Break a too-long caption line before its last `` = `` (the numbers go below)."""
    if text_width(line, size) <= width:
        return [line]
    cut = line.rfind(" = ")
    if cut <= 0:
        return [line]
    head, tail = line[:cut], "    " + line[cut + 1 :]
    return _wrap(head, size, width) + [tail]


def _clip(line: str, size: float, width: float) -> str:
    """``line`` cut with an ellipsis to fit ``width`` (huge tensors inline)."""
    if text_width(line, size, True) <= width:
        return line
    lo, hi = 0, len(line)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if text_width(line[:mid] + " …", size, True) <= width:
            lo = mid
        else:
            hi = mid - 1
    return line[:lo].rstrip() + " …"


def fit_caption(lines: tuple[str, ...], width: float) -> tuple[list[str], float]:
    """Lines and a font size such that every line fits ``width``.

    The size shrinks from `CAPTION_SIZE` to `CAPTION_MIN`; a line still too long is
    broken before its last `` = `` and, failing that, cut with an ellipsis. At most
    `MAX_LINES` + 1 lines are kept.
    """
    size = float(CAPTION_SIZE)
    widest = max((text_width(line, 1.0, True) for line in lines), default=0.0)
    if widest * size > width:
        size = max(CAPTION_MIN, width / max(widest, 1e-9))
    out: list[str] = []
    for line in lines:
        out.extend(_clip(part, size, width) for part in _wrap(line, size, width))
    if len(out) > MAX_LINES + 1:
        out = out[:MAX_LINES] + ["…"]
    return out, size


# --------------------------------------------------------------------------- page SVGs


def _line_colour(page: Page, i: int, line: str, theme: Theme) -> tuple[str, bool]:
    if i == 0 and page.kind == "backward":
        return theme.text, True
    if page.kind == "backward":
        return theme.grad, False
    if page.kind == "update":
        return (theme.muted, False) if line.startswith("zero_grad") else (theme.update, False)
    return theme.text, False


def _blank_page(theme: Theme) -> ET.Element:
    root = ET.Element(
        f"{{{SVG_NS}}}svg", {"width": str(PAGE_W), "height": str(PAGE_H), "viewBox": f"0 0 {PAGE_W} {PAGE_H}"}
    )
    svg_el(root, "rect", x=0, y=0, width=PAGE_W, height=PAGE_H, fill=theme.background)
    return root


def page_svg(
    page: Page,
    number: int,
    total: int,
    diagram: ET.Element | None,
    area: tuple[float, float, float, float],
    caption: tuple[list[str], float],
    theme: Theme,
    title: str,
    panel: tuple[float, float, float, float] | None = None,
) -> ET.Element:
    """One 16:9 page: header, the diagram (scaled into ``area``), the caption or the focus panel (in ``panel``)."""
    root = _blank_page(theme)
    colour = {"forward": theme.param_border, "backward": theme.grad, "update": theme.update}.get(page.kind, theme.text)
    corner = f"{title}   {number} / {total}"
    room = PAGE_W - 3 * MARGIN - text_width(corner, 18)
    svg_text(
        root,
        MARGIN,
        48,
        page.header,
        min(30.0, room / max(text_width(page.header, 1.0, True), 1e-9)),
        colour,
        bold=True,
    )
    svg_text(root, PAGE_W - MARGIN, 46, corner, 18, theme.muted, anchor="end")
    svg_el(root, "rect", x=MARGIN, y=HEADER_H - 8, width=PAGE_W - 2 * MARGIN, height=2, fill=theme.cluster)
    if diagram is not None:
        x, y, wd, ht = area
        diagram.attrib.pop("width", None)
        diagram.attrib.pop("height", None)
        diagram.set("x", f"{x:g}")
        diagram.set("y", f"{y:g}")
        diagram.set("width", f"{wd:g}")
        diagram.set("height", f"{ht:g}")
        diagram.set("preserveAspectRatio", "xMidYMid meet")
        root.append(diagram)
    if panel is not None and page.panel:
        draw_panel(root, page.panel, panel, theme)
        return root
    lines, size = caption
    if lines:
        step_h = size * 1.38
        top = PAGE_H - MARGIN / 2 - len(lines) * step_h - 14
        svg_el(
            root,
            "rect",
            x=MARGIN / 2,
            y=f"{top:g}",
            width=PAGE_W - MARGIN,
            height=f"{PAGE_H - MARGIN / 2 - top:g}",
            rx=10,
            fill=theme.panel,
        )
        for i, line in enumerate(lines):
            fill, bold = _line_colour(page, i, line, theme)
            svg_text(root, MARGIN, top + 8 + size + i * step_h, line, size, fill, bold)
    return root


def title_svg(
    total: int, g: nx.DiGraph, steps: Sequence[Step], theme: Theme, lang: str, digits: int, n_backward: int
) -> ET.Element:
    """The title page: the script, the loss, the optimizer, what the deck shows, the colour legend."""
    root = _blank_page(theme)
    lines = steps[0].lines if steps else ()
    head = lines[0] if lines else t("title", lang)
    size = min(60.0, (PAGE_W - 2 * MARGIN) / max(text_width(head, 1.0, True), 1e-9))
    y = 150.0
    svg_text(root, MARGIN * 2, y, head, size, theme.text, bold=True)
    y += 58
    svg_text(root, MARGIN * 2, y, f"{t('title', lang)}: {t('subtitle', lang)}", 26, theme.muted)
    y += 80
    info: list[tuple[str, str]] = [(lines[1], theme.loss_border)] if len(lines) > 1 else []
    opt = g.graph.get("optimizer")
    if opt:
        info.append((f"{t('optimizer', lang)}: {optimizer_text(opt, lang, digits)}", theme.update))
    else:
        info.append((t("no_optimizer", lang), theme.muted))
    info += [(line, theme.muted) for line in lines[2:]]
    agenda = t("agenda", lang).format(pages=total, backward=n_backward, update=t("agenda_update", lang) if opt else "")
    info.append((agenda, theme.text))
    for text, fill in info:
        s = min(30.0, (PAGE_W - 4 * MARGIN) / max(text_width(text, 1.0), 1e-9))
        svg_text(root, MARGIN * 2, y, text, s, fill)
        y += 46
    for note in notes_of(g, lang)[:2]:
        s = min(20.0, (PAGE_W - 4 * MARGIN) / max(text_width(note, 1.0), 1e-9))
        svg_text(root, MARGIN * 2, y, note, max(s, 12.0), theme.muted)
        y += 32
    # the colour legend, as in every diagram
    y = PAGE_H - 120.0
    x = MARGIN * 2.0
    for key, kind in (
        ("legend_param", "param"),
        ("legend_input", "input"),
        ("legend_op", "op"),
        ("legend_loss", "loss"),
    ):
        fill, border = node_colours(kind, theme)
        svg_el(
            root,
            "rect",
            x=f"{x:g}",
            y=f"{y - 22:g}",
            width=34,
            height=28,
            rx=5,
            fill=fill,
            stroke=border,
            stroke_width=2,
        )
        label = t(key, lang)
        svg_text(root, x + 44, y, label, 20, theme.text)
        x += 44 + text_width(label, 20) + 40
    x = MARGIN * 2.0
    y += 50
    for key, colour in (("legend_value", theme.text), ("legend_grad", theme.grad), ("legend_update", theme.update)):
        label = t(key, lang)
        svg_text(root, x, y, label, 20, colour)
        x += text_width(label, 20) + 48
    return root


# --------------------------------------------------------------------------- rendering


def caption_height(caption: tuple[list[str], float]) -> float:
    lines, size = caption
    return len(lines) * size * 1.38 + 14 + MARGIN / 2 if lines else 0.0


def page_areas(
    page: Page, caption: tuple[list[str], float], side_by_side: bool, panel_share: float
) -> tuple[tuple[float, float, float, float], tuple[float, float, float, float] | None]:
    """The diagram's area and, on a backward page, the focus panel's: the page between header and bottom, used."""
    top, bottom = HEADER_H + 4, PAGE_H - MARGIN / 2
    if not page.panel:
        return (MARGIN / 2, top, PAGE_W - MARGIN, bottom - top - caption_height(caption) - 8), None
    if side_by_side:
        dw = (PAGE_W - MARGIN) * (1 - panel_share)
        return (MARGIN / 2, top, dw, bottom - top), (
            MARGIN / 2 + dw + 12,
            top + 6,
            PAGE_W - MARGIN - dw - 12,
            bottom - top - 6,
        )
    dh = (bottom - top) * (1 - panel_share)
    return (MARGIN / 2, top, PAGE_W - MARGIN, dh), (MARGIN / 2, top + dh + 8, PAGE_W - MARGIN, bottom - top - dh - 8)


def panel_share(pages: list[Page], side_by_side: bool) -> float:
    """The share of the body every backward page gives its panel: what the largest panel needs
    with its numbers at full size, at most `PANEL_SHARE` (the diagram keeps the rest, the same on each page)."""
    top, bottom = HEADER_H + 4, PAGE_H - MARGIN / 2
    body = (PAGE_W - MARGIN) if side_by_side else (bottom - top)
    across = (bottom - top) if side_by_side else (PAGE_W - MARGIN)
    need = 0.0
    for p in pages:
        if p.panel:
            lay = (
                pack(p.panel, across, body, MAX_EM)
                if side_by_side
                else pack(p.panel, across, body * PANEL_SHARE, MAX_EM)
            )
            need = max(need, (lay.width if side_by_side else lay.height) + 20)
    return min(PANEL_SHARE, max(need / body, 0.25))


def build_pages(story: Story) -> list[ET.Element]:
    """Every page of the deck as an SVG element tree (the deck without files)."""
    g, opts, theme, steps = story.graph, story.options, story.theme, story.steps
    pages = plan_pages(g, steps, opts.lang)
    base = tag_svg(story.svg, theme)
    title = opts.title or g.graph.get("source") or ""
    title = Path(title).name if title else ""
    width = PAGE_W - 2 * MARGIN
    captions = [fit_caption(p.lines, width) if p.frame is not None and not p.panel else ([], 0.0) for p in pages]
    n_backward = sum(1 for p in pages if p.kind == "backward")
    share = panel_share(pages, story.rankdir == "TB")
    out = []
    for i, (page, caption) in enumerate(zip(pages, captions), 1):
        if page.frame is None:
            out.append(title_svg(len(pages), g, steps, theme, opts.lang, opts.digits, n_backward))
            continue
        area, panel = page_areas(page, caption, story.rankdir == "TB", share)
        diagram = apply_frame(base, page.frame, theme)
        out.append(page_svg(page, i, len(pages), diagram, area, caption, theme, title, panel))
    return out


def render_slides(story: Story, out_dir: Path, pptx: bool = False) -> list[Path]:
    """Write ``slides.pdf`` and ``slides/page-NN.png`` (and, with ``pptx``, ``slides.pptx``) into ``out_dir``.

    Returns the paths. Raises `ToolError` when rsvg-convert or pdftoppm is missing or fails.
    """
    rsvg = find_tool("rsvg-convert")
    pdftoppm = find_tool("pdftoppm")
    pages = build_pages(story)
    out_dir = Path(out_dir)
    png_dir = out_dir / "slides"
    png_dir.mkdir(parents=True, exist_ok=True)
    pdf = out_dir / "slides.pdf"
    digits = max(2, len(str(len(pages))))
    with tempfile.TemporaryDirectory(prefix="explain-graph-slides-") as tmp:
        files = []
        for i, page in enumerate(pages, 1):
            path = Path(tmp) / f"page-{i:0{digits}d}.svg"
            path.write_text(ET.tostring(page, encoding="unicode"), encoding="utf-8")
            files.append(str(path))
        run_tool([rsvg, "-f", "pdf", "-o", str(pdf), *files], "rsvg-convert (slides.pdf)", writes=out_dir)
        check_file(pdf, "pdf", "rsvg-convert (slides.pdf)")
        run_tool(
            [pdftoppm, "-png", "-scale-to-x", str(PNG_W), "-scale-to-y", str(PNG_H), str(pdf), str(Path(tmp) / "p")],
            "pdftoppm (slide PNGs)",
            writes=Path(tmp),
        )
        made = sorted(Path(tmp).glob("p-*.png"))
        if len(made) != len(pages):
            raise ToolError(
                f"pdftoppm (slide PNGs) reported success but wrote {len(made)} of {len(pages)} pages: "
                "check poppler-utils and the free disk space, then try again"
            )
        pngs = []
        for f in made:
            check_file(f, "png", "pdftoppm (slide PNGs)")
            n = int(re.search(r"-(\d+)\.png$", f.name).group(1))  # type: ignore[union-attr]
            dest = png_dir / f"page-{n:0{digits}d}.png"
            shutil.move(str(f), dest)
            pngs.append(dest)
    pngs.sort()
    if pptx:
        notes = ["\n".join(p.lines) for p in plan_pages(story.graph, story.steps, story.options.lang)]
        return [pdf, *pngs, write_pptx(pngs, notes, out_dir / "slides.pptx")]
    return [pdf, *pngs]


def append_pages(out_dir: Path, pages: list[ET.Element], notes: Sequence[str]) -> list[Path]:
    """Add ``pages`` (16:9 SVG trees, e.g. the training pages) after a deck `render_slides` wrote.

    ``slides.pdf`` gets them at its end (``pdfunite``), ``slides/`` their PNGs,
    numbered on from the deck's, and ``slides.pptx``, when the deck has one, a slide
    each with ``notes`` as speaker notes; returns the new PNGs.
    """
    if not pages:
        return []
    rsvg, pdftoppm, pdfunite = find_tool("rsvg-convert"), find_tool("pdftoppm"), find_tool("pdfunite")
    out_dir = Path(out_dir)
    pdf, png_dir = out_dir / "slides.pdf", out_dir / "slides"
    old = sorted(png_dir.glob("page-*.png"))
    total = len(old) + len(pages)
    digits = max(2, len(str(total)))
    for f in old:  # keep one width of page numbers over the whole deck
        n = int(re.search(r"-(\d+)\.png$", f.name).group(1))  # type: ignore[union-attr]
        f.rename(png_dir / f"page-{n:0{digits}d}.png")
    with tempfile.TemporaryDirectory(prefix="explain-graph-slides-") as tmp:
        files = []
        for i, page in enumerate(pages, 1):
            path = Path(tmp) / f"extra-{i:03d}.svg"
            path.write_text(ET.tostring(page, encoding="unicode"), encoding="utf-8")
            files.append(str(path))
        extra = Path(tmp) / "extra.pdf"
        run_tool([rsvg, "-f", "pdf", "-o", str(extra), *files], "rsvg-convert (slides.pdf)", writes=Path(tmp))
        check_file(extra, "pdf", "rsvg-convert (slides.pdf)")
        merged = Path(tmp) / "merged.pdf"
        run_tool([pdfunite, str(pdf), str(extra), str(merged)], "pdfunite (slides.pdf)", writes=Path(tmp))
        check_file(merged, "pdf", "pdfunite (slides.pdf)")
        undate_pdf(merged)
        run_tool(
            [pdftoppm, "-png", "-scale-to-x", str(PNG_W), "-scale-to-y", str(PNG_H), str(extra), str(Path(tmp) / "p")],
            "pdftoppm (slide PNGs)",
            writes=Path(tmp),
        )
        shutil.move(str(merged), pdf)
        pngs = []
        for f in sorted(Path(tmp).glob("p-*.png")):
            check_file(f, "png", "pdftoppm (slide PNGs)")
            n = len(old) + int(re.search(r"-(\d+)\.png$", f.name).group(1))  # type: ignore[union-attr]
            dest = png_dir / f"page-{n:0{digits}d}.png"
            shutil.move(str(f), dest)
            pngs.append(dest)
    if (out_dir / "slides.pptx").exists():  # this run's deck, written in PowerPoint too (--pptx)
        append_pptx(out_dir / "slides.pptx", pngs, notes)
    return pngs


__all__ = ["Page", "append_pages", "build_pages", "fit_caption", "plan_pages", "render_slides"]
