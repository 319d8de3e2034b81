"""An interactive page for students: ``index.html``, one file that works offline.

The page performs the story (`explainer.story`) that the video and the slide deck
perform: the frame's diagram with each step's state (`explainer.render.frames`),
stepped with buttons or the arrow keys, the step's caption above it. Hovering,
clicking or focusing a node shows its full value and gradient (every entry of a
small tensor, shape and statistics of a large one); a search box finds a node by
name. No answers ahead of time: a node's gradient appears in the details panel
only once the backward pass has computed it, its update only after the optimizer step.

Keyboard and screen readers: every node is focusable (Tab, then Enter pins it), the
caption is an ``aria-live`` region, and every button and the search box have labels.

Everything is inline (the SVG, the styles, the script, the steps and node details
as JSON), and the script is plain JavaScript: the page opens from the file
system, with no network at all.
"""

from __future__ import annotations

import copy
import html
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, cast

import networkx as nx

from ..story import Story
from ..text import fmt_number, fmt_shape, optimizer_text, stage_name, t, value_inline
from .frames import CSS, SVG_NS, frames, point_back, svg_text, tag_svg
from .graphviz import DiagramOptions
from .page_assets import JS, page_css
from .style import highlight_colour, step_mark, subtitle

#: Significant digits in the details panel ("full value").
DETAIL_DIGITS = 8


def _depth(v: Any) -> int:
    d = 0
    while isinstance(v, list) and v:
        d, v = d + 1, v[0]
    return d


def _rows(v: list[Any]) -> list[list[Any]]:
    """A nested list as rows of its innermost dimension."""
    if _depth(v) <= 1:
        return [v]
    out: list[list[Any]] = []
    for e in v:
        out.extend(_rows(e))
    return out


def detail_lines(v: Any, lang: str = "en", digits: int = DETAIL_DIGITS) -> list[str]:
    """A value of the graph schema as the details panel shows it.

    Every stored entry (one line per innermost row) with ``digits`` significant
    digits; for a large tensor, its shape, statistics and first entries.
    """
    if v is None:
        return ["–"]
    if isinstance(v, dict):
        head = ", ".join(fmt_number(e, digits) for e in v.get("head", []))
        lines = [
            f"{t('summary', lang)}",
            f"{t('shape', lang)} {fmt_shape(v.get('shape') or [], lang)} {v.get('dtype', '')}",
            f"min {fmt_number(v.get('min'), digits)}   max {fmt_number(v.get('max'), digits)}",
            f"{t('mean', lang)} {fmt_number(v.get('mean'), digits)}   {t('norm', lang)} {fmt_number(v.get('norm'), digits)}",
            f"NaN {v.get('nan', 0)}   Inf {v.get('inf', 0)}",
        ]
        if head:
            lines.append(f"[{head}, …]")
        return lines
    if not isinstance(v, list):
        return [fmt_number(v, digits)]
    return ["[" + ", ".join(fmt_number(e, digits) for e in row) + "]" for row in _rows(v)]


def node_details(g: nx.DiGraph, opts: DiagramOptions) -> dict[str, dict[str, Any]]:
    """What the details panel shows for each node, keyed by node id (forward order)."""
    lang = opts.lang
    out: dict[str, dict[str, Any]] = {}
    for n, d in g.nodes(data=True):
        upd = d.get("update")
        step = d.get("backward_step")
        out[n] = {
            "id": n,
            "label": d.get("label") or n,
            "name": d.get("name"),
            "kind": d.get("kind"),
            "subtitle": subtitle(d, lang),
            "shape": fmt_shape(d.get("shape") or [], lang),
            "dtype": d.get("dtype") or "",
            "module": d.get("module"),
            "autograd": d.get("autograd"),
            "badge": step_mark(step) if step is not None else None,
            "value": detail_lines(d.get("value"), lang),
            "grad": detail_lines(d.get("grad"), lang) if d.get("grad") is not None else None,
            "before": detail_lines(upd["before"], lang) if upd else None,
            "after": detail_lines(upd["after"], lang) if upd else None,
        }
    return out


#: The per-step sets of a frame that the page stores as changes (`_delta`).
_SETS = ("seen", "grads", "edge_grads", "updates")


def _delta(before: list[Any], after: list[Any]) -> dict[str, list[Any]]:
    """``{"add": [...], "del": [...]}`` turning ``before`` into ``after``, in their order."""
    key = lambda e: tuple(e) if isinstance(e, list) else e  # noqa: E731  (edges are [u, v])
    was, now = {key(e) for e in before}, {key(e) for e in after}
    return {"add": [e for e in after if key(e) not in was], "del": [e for e in before if key(e) not in now]}


def page_data(story: Story) -> dict[str, Any]:
    """The page's JSON: steps (each a frame of `explainer.render.frames`), nodes, words."""
    g, opts, theme, steps = story.graph, story.options, story.theme, story.steps
    fr = frames(g, steps)
    stage_words = {s: stage_name(s, opts.lang) for s in ("forward", "backward", "update")}
    stage_words["title"] = t("title", opts.lang)
    out_steps = []
    prev: dict[str, list[Any]] = {key: [] for key in _SETS}
    for s, f in zip(steps, fr):
        item = f.to_json()
        item["node"] = s.node
        item["colour"] = highlight_colour(f.stage, f.kind, theme)
        # Each step's sets as changes from the step before: whole sets would make the page
        # grow as nodes x steps (megabytes for a few hundred nodes); the page rebuilds them.
        for key in _SETS:
            now = cast(list[Any], item.pop(key))
            item[key] = _delta(prev[key], now)
            prev[key] = now
        out_steps.append(item)
    return {
        "steps": out_steps,
        "nodes": node_details(g, opts),
        "words": {
            "stages": stage_words,
            "value": t("value", opts.lang),
            "grad": t("grad", opts.lang),
            "before": t("before", opts.lang),
            "after": t("after", opts.lang),
            "module": t("module", opts.lang),
            "autograd": t("autograd", opts.lang),
            "kind": t("kind", opts.lang),
            "shape": t("shape", opts.lang),
            "hint": t("hint", opts.lang),
            "no_match": t("no_match", opts.lang),
            "node_label": t("node_label", opts.lang),
            "kinds": {
                **{
                    k: t("parameter" if k == "param" else k, opts.lang)
                    for k in ("param", "leaf", "input", "buffer", "loss")
                },
                "op": t("legend_op", opts.lang),
                "module": t("module", opts.lang),
            },
        },
    }


def _focusable(root: ET.Element, g: nx.DiGraph, lang: str) -> None:
    """Every node of the page's SVG reachable by Tab and named for screen readers."""
    for el in root.iter():
        nid = el.get("data-id")
        if nid is None or nid not in g:
            continue
        d = g.nodes[nid]
        el.set("tabindex", "0")
        el.set("role", "button")
        el.set("aria-label", t("node_label", lang).format(label=d.get("label") or nid, what=subtitle(d, lang)))
    root.set("role", "group")
    root.set("aria-label", t("diagram_label", lang))


def _backward_arrows(root: ET.Element) -> None:
    """Give every edge its arrowhead turned around (`point_back`), for the backward steps to show."""
    for edge in root.iter(f"{{{SVG_NS}}}g"):
        if edge.get("data-edge") is None:
            continue
        back = copy.deepcopy(edge)
        point_back(back)
        for tag, attr in (("path", "d"), ("polygon", "points")):
            el, turned = edge.find(f"{{{SVG_NS}}}{tag}"), back.find(f"{{{SVG_NS}}}{tag}")
            if el is not None and turned is not None and turned.get(attr) != el.get(attr):
                el.set("data-fwd", el.get(attr, ""))
                el.set("data-back", turned.get(attr, ""))


def build_html(story: Story) -> str:
    """The whole page as one string (deterministic: same story, same bytes)."""
    g, opts, theme = story.graph, story.options, story.theme
    lang = opts.lang
    root = tag_svg(story.svg, theme, tooltips=False)
    root.attrib.pop("width", None)
    root.attrib.pop("height", None)
    _focusable(root, g, lang)
    _backward_arrows(root)
    svg = svg_text(root)
    data = page_data(story)
    # Inside <script>, "</script" ends the element and "<!--" can swallow it; "<" only ever
    # occurs inside JSON strings, where \u003c means the same character.
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=False).replace("<", "\\u003c")
    title = opts.title or g.graph.get("source") or t("title", lang)
    title = Path(title).name
    loss_id = g.graph.get("loss")
    loss = f"{t('loss', lang)} = {value_inline(g.nodes[loss_id]['value'], opts.digits, lang)}" if loss_id in g else ""
    opt_text = optimizer_text(g.graph.get("optimizer"), lang, opts.digits)
    names = "".join(f'<option value="{html.escape(d["label"])}"></option>' for d in data["nodes"].values())
    e = html.escape
    return f"""<!DOCTYPE html>
<html lang="{e(lang)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} · explain-graph</title>
<style>{page_css(theme)}{CSS}</style>
</head>
<body class="theme-{e(theme.name)}">
<header><h1>{e(title)}</h1><span class="loss">{e(loss)}</span><span class="opt">{e(opt_text)}</span></header>
<nav aria-label="{e(t("steps_nav", lang))}">
<button id="eg-prev" type="button" aria-label="{e(t("prev_step", lang))}">◀ {e(t("prev", lang))}</button>
<span id="eg-count" aria-label="{e(t("step_count", lang))}"></span>
<button id="eg-next" type="button" aria-label="{e(t("next_step", lang))}">{e(t("next", lang))} ▶</button>
<label class="eg-sr" for="eg-search">{e(t("find", lang))}</label>
<input id="eg-search" type="search" list="eg-names" placeholder="{e(t("find", lang))}" aria-label="{e(t("find", lang))}" autocomplete="off">
<datalist id="eg-names">{names}</datalist>
<span id="eg-search-msg" role="status"></span>
<span class="zoom" role="group" aria-label="{e(t("zoom", lang))}"><button id="eg-zoom-out" type="button" title="−" aria-label="{e(t("zoom_out", lang))}">−</button><button id="eg-zoom-fit" type="button" title="0" aria-label="{e(t("zoom_fit", lang))}">{e(t("fit", lang))}</button><button id="eg-zoom-in" type="button" title="+" aria-label="{e(t("zoom_in", lang))}">+</button></span>
<span class="keys">{e(t("keys", lang))}</span>
</nav>
<section id="eg-caption" aria-live="polite" aria-atomic="true"><div id="eg-stage"></div><div id="eg-lines"></div></section>
<main>
<div id="eg-diagram">{svg}</div>
<aside id="eg-details" aria-live="polite" aria-label="{e(t("details", lang))}"><p class="hint">{e(t("hint", lang))}</p></aside>
</main>
<script type="application/json" id="eg-data">{payload}</script>
<script>{JS}</script>
</body>
</html>
"""


def render_html(story: Story, out_dir: Path) -> Path:
    """Write ``index.html`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    path.write_text(build_html(story), encoding="utf-8")
    return path


__all__ = ["build_html", "detail_lines", "node_details", "page_data", "render_html"]
