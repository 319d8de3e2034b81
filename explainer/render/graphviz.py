"""Static diagrams: the graph as DOT, laid out by ``dot``, written as SVG, PNG and PDF.

Colour legend (also drawn in every diagram; Okabe-Ito hues, `explainer.themes`): blue
boxes are parameters, grey boxes inputs and data, yellow boxes operations, the purple
box the loss. Each node shows its forward value and, in vermillion, its gradient
∂loss/∂(node); the circled number is the step at which autograd's backward processed
it; the update after the optimizer step is green. Nodes holding NaN or Inf get a
vermillion fill and a heavy dark frame.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import networkx as nx

from ..defaults import DEFAULT_DIGITS, FORMATS
from ..layout import Layout, layouts_of, run_dot
from ..text import optimizer_text, t, value_full, value_inline, value_lines
from ..themes import FONT, Theme, get_theme
from .arrange import beside, clusters, edge_text
from .style import node_colours, step_mark, subtitle

#: Longest forward path for which the diagram flows left to right (fits a 16:9 slide);
#: deeper graphs flow top to bottom.
LR_MAX_DEPTH = 8
#: The diagram's page: 16:9. Up to `CHOOSE_RANKDIR_MAX_NODES` nodes, the diagram file tries
#: both directions (one quick ``dot`` process) and keeps the one drawn larger on such a page;
#: beyond, the depth rule above decides.
PAGE_ASPECT = 16 / 9
CHOOSE_RANKDIR_MAX_NODES = 100
#: A diagram longer than this many times its width is a strip (`page_rankdir`).
MAX_STRIP = 3.0
#: Above this many nodes, edge gradients are drawn as ``xlabel`` (placed after the
#: layout) rather than ``label`` (which ``dot`` lays out as extra nodes): on a
#: 1,355-node Transformer that is ~2.7x faster, at the price of looser placement.
EDGE_LABEL_MAX_NODES = 100


@dataclass(frozen=True)
class DiagramOptions:
    """How a diagram looks. ``rankdir`` None picks LR for shallow graphs, TB otherwise."""

    theme: str = "light"
    lang: str = "en"
    digits: int = DEFAULT_DIGITS
    rankdir: str | None = None
    legend: bool = True
    title: str | None = None
    title_bar: bool = True


def _q(s: str) -> str:
    """A quoted DOT string."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _e(s: Any) -> str:
    """Escape text for a Graphviz HTML-like label."""
    return html.escape(str(s), quote=True)


def _font(text: str, color: str | None = None, size: float | None = None, bold: bool = False) -> str:
    attrs = ""
    if color:
        attrs += f' COLOR="{color}"'
    if size:
        attrs += f' POINT-SIZE="{size:g}"'
    inner = f"<B>{text}</B>" if bold else text
    return f"<FONT{attrs}>{inner}</FONT>" if attrs else inner


def node_label(nid: str, d: dict[str, Any], g: nx.DiGraph, opts: DiagramOptions, theme: Theme) -> str:
    """The HTML-like label of one node: name, op, shape, value, grad, step, update."""
    lang, digits = opts.lang, opts.digits
    fill, border = node_colours(d["kind"], theme)
    rows: list[str] = []
    title = _font(_e(d["label"]), theme.text, theme.font_size + 1, bold=True)
    step = d.get("backward_step")
    if step is not None:
        title += "  " + _font(_e(step_mark(step)), theme.grad, theme.font_size + 3, bold=True)
    rows.append(f'<TR><TD ALIGN="LEFT">{title}</TD></TR>')
    rows.append(f'<TR><TD ALIGN="LEFT">{_font(_e(subtitle(d, lang)), theme.muted, theme.small_size)}</TD></TR>')

    def block(prefix: str, value: Any, color: str, intended: bool = False) -> None:
        lines = value_lines(value, digits, lang, intended)
        for i, line in enumerate(lines):
            text = f"{prefix} = {line}" if i == 0 else " " * (len(prefix) + 3) + line
            rows.append(f'<TR><TD ALIGN="LEFT">{_font(_e(text), color, theme.font_size)}</TD></TR>')

    block(t("value", lang), d.get("value"), theme.text, bool(d.get("intended_inf")))
    if d.get("intended_inf") and not isinstance(d.get("value"), dict):
        note = t("intended_inf", lang).format(what="NaN/Inf")
        rows.append(f'<TR><TD ALIGN="LEFT">{_font(_e(note), theme.muted, theme.small_size)}</TD></TR>')
    if d.get("grad") is not None:
        block(t("grad", lang), d.get("grad"), theme.grad)
    upd = d.get("update")
    if upd:
        # The value row above is the "before"; the update shows the "after" in the same
        # layout (one row per matrix row), so a matrix parameter stays as narrow as its value.
        prefix = f"{t('update', lang)} →"
        for i, line in enumerate(value_lines(upd["after"], digits, lang)):
            text = f"{prefix} {line}" if i == 0 else " " * (len(prefix) + 1) + line
            rows.append(f'<TR><TD ALIGN="LEFT">{_font(_e(text), theme.update, theme.font_size, bold=True)}</TD></TR>')
    if nid == g.graph.get("first_nonfinite"):
        rows.append(
            f'<TR><TD ALIGN="LEFT">{_font(_e("⚠ " + t("first_bad", lang)), theme.bad_border, theme.font_size, bold=True)}</TD></TR>'
        )
    return '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">' + "".join(rows) + "</TABLE>>"


def node_tooltip(d: dict[str, Any]) -> str:
    parts = [f"{d['label']} ({d['kind']})"]
    if d.get("autograd"):
        parts.append(f"autograd: {d['autograd']}")
    if d.get("module"):
        parts.append(f"module: {d['module']} ({d.get('module_type') or ''})")
    parts.append(f"shape {d.get('shape')} {d.get('dtype', '')}")
    parts.append(f"value: {value_full(d.get('value'))}")
    if d.get("grad") is not None:
        parts.append(f"grad: {value_full(d.get('grad'))}")
    if d.get("backward_step") is not None:
        parts.append(f"backward step {d['backward_step']}")
    if d.get("update"):
        parts.append(f"after update: {value_full(d['update']['after'])}")
    if d["kind"] == "module":
        parts.append(
            f"folded: {d.get('folded')} nodes ({d.get('ops')} ops, {d.get('params')} parameters); "
            f"shows the output of {d.get('output')}"
        )
        parts.append("--max-nodes 0 draws every node" if d.get("capped") else f"open it: --expand {d.get('path')}")
    return "\n".join(parts)


def _depth(g: nx.DiGraph) -> int:
    if not g.number_of_nodes():
        return 0
    if not nx.is_directed_acyclic_graph(g):  # a folded module entered twice
        g = nx.condensation(g)
    return int(nx.dag_longest_path_length(g))


def _title(g: nx.DiGraph, opts: DiagramOptions, theme: Theme) -> str:
    lang = opts.lang
    loss_id = g.graph.get("loss")
    loss = g.nodes[loss_id]["value"] if loss_id in g else None
    parts = []
    if opts.title:
        parts.append(_font(_e(opts.title), theme.text, theme.title_size, bold=True))
    parts.append(
        _font(_e(f"{t('loss', lang)} = {value_inline(loss, opts.digits, lang)}"), theme.loss_border, theme.title_size)
    )
    parts.append(_font(_e(f"{t('step', lang)} {g.graph.get('step', 1)}"), theme.muted, theme.title_size))
    opt = optimizer_text(g.graph.get("optimizer"), lang, opts.digits)
    if opt:
        parts.append(_font(_e(opt), theme.update, theme.title_size))
    return "<" + "   ·   ".join(parts) + ">"


def _legend(opts: DiagramOptions, theme: Theme, has_bad: bool, has_module: bool = False) -> str:
    lang = opts.lang
    sw = []
    for key, kind in (
        ("legend_param", "param"),
        ("legend_input", "input"),
        ("legend_op", "op"),
        ("legend_loss", "loss"),
    ):
        fill, border = node_colours(kind, theme)
        sw.append(
            f'<TR><TD BGCOLOR="{fill}" BORDER="1" COLOR="{border}" WIDTH="18"> </TD>'
            f'<TD ALIGN="LEFT">{_font(_e(t(key, lang)), theme.text, theme.small_size)}</TD></TR>'
        )
    if has_module:
        fill, border = node_colours("module", theme)
        sw.append(
            f'<TR><TD BGCOLOR="{fill}" BORDER="3" COLOR="{border}" WIDTH="18"> </TD>'
            f'<TD ALIGN="LEFT">{_font(_e(t("legend_module", lang)), theme.text, theme.small_size)}</TD></TR>'
        )
    if has_bad:
        sw.append(
            f'<TR><TD BGCOLOR="{theme.bad_fill}" BORDER="1" COLOR="{theme.bad_border}"> </TD>'
            f'<TD ALIGN="LEFT">{_font(_e(t("legend_bad", lang)), theme.text, theme.small_size)}</TD></TR>'
        )
    sw.append(
        f"<TR><TD>{_font(step_mark(1), theme.grad, theme.font_size + 2, bold=True)}</TD>"
        f'<TD ALIGN="LEFT">{_font(_e(t("legend_badge", lang)), theme.text, theme.small_size)}</TD></TR>'
    )
    for key, color in (("legend_value", theme.text), ("legend_grad", theme.grad), ("legend_update", theme.update)):
        sw.append(f'<TR><TD></TD><TD ALIGN="LEFT">{_font(_e(t(key, lang)), color, theme.small_size)}</TD></TR>')
    head = f'<TR><TD COLSPAN="2" ALIGN="LEFT">{_font(_e(t("legend", lang)), theme.text, theme.small_size, bold=True)}</TD></TR>'
    return '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="2">' + head + "".join(sw) + "</TABLE>>"


def to_dot(g: nx.DiGraph, opts: DiagramOptions | None = None, dpi: int | None = None) -> str:
    """The DOT source of the diagram. Deterministic: same graph, same bytes.

    ``dpi`` is for raster output; dot scales SVG by it too (`unscale_svg` undoes that)
    and draws the PDF page larger.
    """
    opts = opts or DiagramOptions()
    theme = get_theme(opts.theme)
    rankdir = opts.rankdir or ("LR" if _depth(g) <= LR_MAX_DEPTH else "TB")
    lines = [
        "digraph explain_graph {",
        *([f"  dpi={dpi};"] if dpi else []),
        f"  graph [rankdir={rankdir}, bgcolor={_q(theme.background)}, fontname={_q(FONT)}, "
        + (f"labelloc=t, label={_title(g, opts, theme)}, " if opts.title_bar else "")
        + "nodesep=0.35, ranksep=0.55, pad=0.3, "
        f"fontcolor={_q(theme.text)}];",
        f'  node [shape=box, style="rounded,filled", fontname={_q(FONT)}, fontsize={theme.font_size:g}, '
        f'margin="0.12,0.06", penwidth=1.4];',
        f"  edge [color={_q(theme.edge)}, fontname={_q(FONT)}, fontsize={theme.small_size:g}, "
        f"fontcolor={_q(theme.grad)}, arrowsize=0.8, penwidth=1.2];",
    ]

    # Nested module clusters, one per module call (sorted for determinism).
    members, children, roots = clusters(g)
    module_types: dict[str, str] = g.graph.get("modules", {})
    loose = members.pop("", [])
    counter = iter(range(1_000_000))

    def emit_node(nid: str, indent: str) -> None:
        d = g.nodes[nid]
        fill, border = node_colours(d["kind"], theme)
        pen = 1.4
        if d.get("nonfinite"):
            fill, border, pen = theme.bad_fill, theme.bad_border, 3.0
        if nid == g.graph.get("first_nonfinite"):
            pen = 5.0
        if d["kind"] == "loss":
            pen = max(pen, 2.4)
        # A folded module: square corners and a double frame, "more inside".
        folded = ', style="filled", peripheries=2' if d["kind"] == "module" else ""
        lines.append(
            f"{indent}{_q(nid)} [label={node_label(nid, d, g, opts, theme)}, fillcolor={_q(fill)}, "
            f"color={_q(border)}, penwidth={pen:g}{folded}, tooltip={_q(node_tooltip(d))}];"
        )

    def emit_cluster(key: str, indent: str) -> None:
        path, _, call = key.partition("#")
        mtype = module_types.get(path, "")
        label = path + (f" #{call}" if call else "") + (f" ({mtype})" if mtype else "")
        lines.append(f"{indent}subgraph cluster_{next(counter)} {{")
        lines.append(
            f'{indent}  label={_q(label)}; style="rounded,dashed"; color={_q(theme.cluster)}; '
            f"fontcolor={_q(theme.muted)}; fontsize={theme.small_size:g}; labeljust=l;"
        )
        inside = members.get(key, [])
        for nid in inside:
            emit_node(nid, indent + "  ")
        for pair in beside(g, inside):
            lines.append(f"{indent}  {{rank=same; {_q(pair[0])}; {_q(pair[1])};}}")
        for child in children.get(key, []):
            emit_cluster(child, indent + "  ")
        lines.append(f"{indent}}}")

    for nid in loose:
        emit_node(nid, "  ")
    for p in roots:
        emit_cluster(p, "  ")

    # Edges; a gradient label only where a node fans out, so the split of its gradient shows.
    order = {n: i for i, n in enumerate(g.nodes)}  # forward order (ids of folded modules are "m:<path>")
    edge_label = "label" if g.number_of_nodes() <= EDGE_LABEL_MAX_NODES else "xlabel"
    for u, v, d in sorted(g.edges(data=True), key=lambda e: (order[e[1]], order[e[0]])):
        attrs = []
        grad_out = [w for w in g.successors(u) if g.edges[u, w].get("grad") is not None]
        if d.get("grad") is None and d.get("backward_step") is None:
            attrs.append("style=dashed")
        elif len(grad_out) > 1:
            attrs.append(
                f"{edge_label}={_q(t('edge_grad', opts.lang) + ' ' + edge_text(d['grad'], opts.digits, opts.lang))}"
            )
        lines.append(f"  {_q(u)} -> {_q(v)}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")

    if opts.legend:
        has_bad = any(d.get("nonfinite") for _, d in g.nodes(data=True))
        has_module = any(d["kind"] == "module" for _, d in g.nodes(data=True))
        lines.append(f'  legend [shape=plain, style="", label={_legend(opts, theme, has_bad, has_module)}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def frame_dot(g: nx.DiGraph, opts: DiagramOptions, rankdir: str) -> str:
    """The DOT of the frame that the video, slides and page draw: the diagram without legend and title bar."""
    return to_dot(g, replace(opts, rankdir=rankdir, legend=False, title_bar=False))


def diagram_candidates(g: nx.DiGraph, opts: DiagramOptions) -> dict[str, str]:
    """The diagram's DOT in each direction to choose from (`page_rankdir`), or none when
    ``opts.rankdir`` is set or the graph is larger than `CHOOSE_RANKDIR_MAX_NODES`."""
    if opts.rankdir is not None or g.number_of_nodes() > CHOOSE_RANKDIR_MAX_NODES:
        return {}
    return {r: to_dot(g, replace(opts, rankdir=r)) for r in ("LR", "TB")}


def page_rankdir(layouts: dict[str, Layout]) -> str:
    """The direction (``LR``/``TB``) whose layout (legend and title included) fits a 16:9 page best.

    A strip (longer than `MAX_STRIP` times its width) loses to a shape that is none;
    otherwise the one drawn larger on the page wins, and when the two are within 10% (a
    long chain: as wide one way as tall the other), the one with the shorter long side,
    which needs less panning when shown at full size.
    """
    sizes = {}
    for rankdir, lay in layouts.items():
        w, h = max(lay.width, 1.0), max(lay.height, 1.0)
        sizes[rankdir] = (max(w / h, h / w) > MAX_STRIP, min(PAGE_ASPECT / w, 1.0 / h), max(w, h))
    (lr_strip, lr_scale, lr_side), (tb_strip, tb_scale, tb_side) = sizes["LR"], sizes["TB"]
    if lr_strip != tb_strip:
        return "TB" if lr_strip else "LR"
    if abs(lr_scale - tb_scale) <= 0.1 * max(lr_scale, tb_scale):
        return "LR" if lr_side <= tb_side else "TB"
    return "LR" if lr_scale > tb_scale else "TB"


_SVG_SIZE = re.compile(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"\s+viewBox="[^"]*"')
_SVG_SCALE = re.compile(r'transform="scale\(([\d.]+) ([\d.]+)\)')


def unscale_svg(text: str) -> str:
    """The SVG at its natural size, whatever ``dpi`` the DOT set.

    ``dpi`` is for the PNG, but Graphviz applies it to SVG too, and versions up to at
    least 2.43 (Debian 12, Ubuntu 22.04, Colab) scale the drawing without scaling its
    ``viewBox``: a browser then shows only the top-left part. Dividing the size by the
    scale and dropping the scale gives the picture dot would write without ``dpi``, on
    every version.
    """
    size, scale = _SVG_SIZE.search(text), _SVG_SCALE.search(text)
    if size is None or scale is None:
        return text
    sx, sy = float(scale.group(1)), float(scale.group(2))
    if sx == 1 and sy == 1:
        return text
    w, h = float(size.group(1)) / sx, float(size.group(2)) / sy
    text = (
        text[: size.start()]
        + f'<svg width="{w:.2f}pt" height="{h:.2f}pt"\n viewBox="0.00 0.00 {w:.2f} {h:.2f}"'
        + text[size.end() :]
    )
    return _SVG_SCALE.sub('transform="scale(1 1)', text, count=1)


def render_static(
    g: nx.DiGraph,
    out_dir: Path,
    opts: DiagramOptions | None = None,
    formats: tuple[str, ...] = FORMATS,
    stem: str = "graph",
    positions: bool = False,
) -> tuple[Layout | None, dict[str, Path]]:
    """Write ``graph.svg/png/pdf`` (as asked) into ``out_dir`` from one layout, in one ``dot`` process.

    Unless ``opts.rankdir`` fixes it, a graph of up to `CHOOSE_RANKDIR_MAX_NODES` nodes is
    first laid out both ways (one more, quick ``dot`` process, positions only) to take the
    direction that fits a 16:9 page best (`page_rankdir`); a run that builds the story passes
    the direction the story's ``dot`` process chose instead (`explainer.story`). With ``positions``, also return the layout's `Layout` (else None).
    """
    opts = opts or DiagramOptions()
    dpi = get_theme(opts.theme).dpi
    paths = {fmt: out_dir / f"{stem}.{fmt}" for fmt in formats}
    candidates = diagram_candidates(g, opts)
    if candidates:
        opts = replace(opts, rankdir=page_rankdir(dict(zip(candidates, layouts_of(list(candidates.values()))))))
    layout = run_dot(to_dot(g, opts, dpi=dpi), paths, positions=positions)
    if "svg" in paths:
        svg = paths["svg"].read_text(encoding="utf-8")
        paths["svg"].write_text(unscale_svg(svg), encoding="utf-8")
    return layout, paths
