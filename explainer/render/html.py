"""An interactive page for students: ``index.html``, one file that works offline.

The page performs the same `explainer.choreography.choreograph` steps as the
video and the slide deck: the ``dot`` diagram (`explainer.render.frames`) with
each step's state, stepped with buttons or the arrow keys, the step's caption
above it. Hovering or clicking a node shows its full value and gradient (every
entry of a small tensor, shape and statistics of a large one); a search box finds
a node by name.

Everything is inline (the SVG, the styles, the script, the steps and node details
as JSON), and the script is plain JavaScript: the page opens from the file
system, with no network at all.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import networkx as nx

from ..choreography import choreograph
from ..text import fmt_number, fmt_shape, optimizer_text, stage_name, t, value_inline
from ..themes import SVG_FONT_FALLBACK, Theme, get_theme
from .frames import CSS, PANEL, diagram_svg, frames, highlight_colour, svg_text, tag_svg
from .graphviz import DiagramOptions, _subtitle, step_mark

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
            "subtitle": _subtitle(d, lang),
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


def page_data(g: nx.DiGraph, opts: DiagramOptions) -> dict[str, Any]:
    """The page's JSON: steps (each a frame of `explainer.render.frames`), nodes, words."""
    theme = get_theme(opts.theme)
    steps = choreograph(g, lang=opts.lang, digits=opts.digits)
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
            now = item.pop(key)
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
            "kinds": {
                **{k: t("parameter" if k == "param" else k, opts.lang) for k in ("param", "leaf", "input", "buffer", "loss")},
                "op": t("legend_op", opts.lang),
                "module": t("module", opts.lang),
            },
        },
    }


def _page_css(theme: Theme) -> str:
    panel = PANEL.get(theme.name, theme.background)
    return f"""
:root {{ --eg-hl: {theme.grad}; --bg: {theme.background}; --fg: {theme.text}; --muted: {theme.muted};
  --panel: {panel}; --grad: {theme.grad}; --update: {theme.update}; --line: {theme.cluster};
  --fwd: {theme.param_border}; }}
* {{ box-sizing: border-box; }}
html, body {{ margin: 0; height: 100%; background: var(--bg); color: var(--fg);
  font-family: {SVG_FONT_FALLBACK}; }}
body {{ display: flex; flex-direction: column; }}
header {{ display: flex; align-items: baseline; gap: 1.5em; padding: 10px 20px 4px; flex-wrap: wrap; }}
header h1 {{ font-size: 22px; margin: 0; }}
header .loss {{ color: {theme.loss_border}; font-size: 18px; }}
header .opt {{ color: var(--update); font-size: 18px; }}
nav {{ display: flex; align-items: center; gap: 10px; padding: 6px 20px; flex-wrap: wrap;
  border-bottom: 1px solid var(--line); }}
nav button {{ font: inherit; font-size: 16px; padding: 6px 14px; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--line); background: var(--panel); color: var(--fg); }}
nav button:disabled {{ opacity: .4; cursor: default; }}
nav button:focus-visible, nav input:focus-visible {{ outline: 2px solid var(--fwd); }}
#eg-count {{ min-width: 5em; text-align: center; font-variant-numeric: tabular-nums; color: var(--muted); }}
#eg-search {{ font: inherit; font-size: 15px; padding: 6px 10px; border-radius: 6px; width: 14em;
  border: 1px solid var(--line); background: var(--bg); color: var(--fg); margin-left: 1.5em; }}
#eg-search-msg {{ color: {theme.loss_border}; font-size: 14px; }}
nav .zoom button {{ padding: 6px 10px; border-radius: 0; margin-left: -1px; }}
nav .zoom button:first-child {{ border-radius: 6px 0 0 6px; }}
nav .zoom button:last-child {{ border-radius: 0 6px 6px 0; }}
nav .keys {{ margin-left: auto; color: var(--muted); font-size: 13px; }}
#eg-caption {{ padding: 10px 20px; background: var(--panel); min-height: 6.2em; }}
#eg-stage {{ font-weight: bold; font-size: 15px; text-transform: none; margin-bottom: 4px; }}
#eg-lines div {{ font-size: 19px; line-height: 1.45; white-space: pre-wrap; }}
#eg-lines div.head {{ font-weight: bold; }}
#eg-lines.backward div:not(.head) {{ color: var(--grad); }}
#eg-lines.update div:not(.head) {{ color: var(--update); }}
main {{ flex: 1; display: flex; min-height: 0; }}
#eg-diagram {{ flex: 1; overflow: auto; padding: 10px; min-width: 0; }}
#eg-diagram svg {{ width: 100%; max-width: none; height: auto; display: block; }}
#eg-diagram g.node {{ cursor: pointer; }}
svg g.eg-pin {{ filter: drop-shadow(0 0 5px var(--fwd)); }}
svg g.eg-found .eg-shape {{ stroke: var(--fwd); stroke-width: 6px; }}
aside {{ width: 360px; flex: none; overflow: auto; padding: 14px 18px; border-left: 1px solid var(--line);
  background: var(--panel); }}
aside h2 {{ margin: 0 0 2px; font-size: 20px; }}
aside h2 .badge {{ color: var(--grad); margin-left: .4em; }}
aside .sub {{ color: var(--muted); font-size: 14px; margin-bottom: 10px; }}
aside dl {{ margin: 0; font-size: 14px; display: grid; grid-template-columns: auto 1fr; gap: 2px 10px; }}
aside dt {{ color: var(--muted); }}
aside dd {{ margin: 0; }}
aside h3 {{ font-size: 14px; margin: 14px 0 4px; color: var(--muted); }}
aside pre {{ margin: 0; font-size: 14px; white-space: pre-wrap; word-break: break-all;
  font-family: "Noto Sans Mono CJK KR", "DejaVu Sans Mono", monospace; }}
aside pre.grad {{ color: var(--grad); }}
aside pre.update {{ color: var(--update); }}
aside .hint {{ color: var(--muted); }}
"""


JS = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("eg-data").textContent);
  var steps = data.steps, nodes = data.nodes, words = data.words;
  // Steps store their sets as changes from the step before: rebuild the whole sets.
  (function () {
    var keyOf = function (e) { return Array.isArray(e) ? e.join(" ") : e; };
    var cur = {};
    ["seen", "grads", "edge_grads", "updates"].forEach(function (k) { cur[k] = new Map(); });
    steps.forEach(function (f) {
      Object.keys(cur).forEach(function (k) {
        var m = new Map(cur[k]);
        f[k].del.forEach(function (e) { m.delete(keyOf(e)); });
        f[k].add.forEach(function (e) { m.set(keyOf(e), e); });
        cur[k] = m;
        f[k] = Array.from(m.values());
      });
    });
  })();
  var svg = document.querySelector("#eg-diagram svg");
  var nodeEls = {}, edgeEls = {};
  svg.querySelectorAll("g.node").forEach(function (g) { nodeEls[g.getAttribute("data-id")] = g; });
  svg.querySelectorAll("g.edge").forEach(function (g) { edgeEls[g.getAttribute("data-edge")] = g; });
  var cur = 0, pinned = null, found = null;
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function show(i) {
    cur = Math.max(0, Math.min(steps.length - 1, i));
    var f = steps[cur];
    var seen = new Set(f.seen), grads = new Set(f.grads), ups = new Set(f.updates), hl = new Set(f.highlight);
    var lit = new Set(f.edges.map(function (e) { return e.join(" "); }));
    var eg = new Set(f.edge_grads.map(function (e) { return e.join(" "); }));
    Object.keys(nodeEls).forEach(function (id) {
      var g = nodeEls[id];
      g.classList.toggle("eg-dim", !seen.has(id));
      g.classList.toggle("eg-g", grads.has(id));
      g.classList.toggle("eg-u", ups.has(id));
      g.classList.toggle("eg-hl", hl.has(id));
    });
    Object.keys(edgeEls).forEach(function (k) {
      var g = edgeEls[k], uv = k.split(" ");
      g.classList.toggle("eg-dim", !(seen.has(uv[0]) && seen.has(uv[1])));
      g.classList.toggle("eg-g", eg.has(k));
      g.classList.toggle("eg-lit", lit.has(k));
    });
    document.documentElement.style.setProperty("--eg-hl", f.colour);
    var stage = $("eg-stage");
    var on = f.stage === "backward" && f.node ? nodes[f.node] : null;
    stage.textContent = (words.stages[f.stage] || "") + (on ? "  " + (on.badge || "") + "  " + on.label : "");
    stage.style.color = f.colour;
    var lines = $("eg-lines");
    lines.className = f.stage;
    lines.textContent = "";
    f.lines.forEach(function (line, j) {
      lines.appendChild(el("div", j === 0 && f.stage !== "forward" ? "head" : "", line));
    });
    $("eg-count").textContent = (cur + 1) + " / " + steps.length;
    $("eg-prev").disabled = cur === 0;
    $("eg-next").disabled = cur === steps.length - 1;
    document.body.setAttribute("data-step", String(cur + 1));
    if (!pinned) details(f.node || null);
    try { history.replaceState(null, "", "#" + (cur + 1)); } catch (e) { /* file:// in some browsers */ }
  }

  function block(parent, title, lines, cls) {
    if (!lines) return;
    parent.appendChild(el("h3", "", title));
    parent.appendChild(el("pre", cls, lines.join("\n")));
  }

  function details(id) {
    var box = $("eg-details");
    box.textContent = "";
    var d = nodes[id];
    if (!d) { box.removeAttribute("data-node"); box.appendChild(el("p", "hint", words.hint)); return; }
    box.setAttribute("data-node", id);
    var h = el("h2", "", d.label);
    if (d.badge) h.appendChild(el("span", "badge", d.badge));
    box.appendChild(h);
    box.appendChild(el("div", "sub", d.subtitle));
    var dl = el("dl");
    function row(k, v) { if (v) { dl.appendChild(el("dt", "", k)); dl.appendChild(el("dd", "", v)); } }
    row(words.kind, words.kinds[d.kind] || d.kind);
    row(words.shape, d.shape + (d.dtype ? "  " + d.dtype : ""));
    row(words.module, d.module);
    row(words.autograd, d.autograd);
    box.appendChild(dl);
    block(box, words.value, d.value, "value");
    block(box, words.grad, d.grad, "grad");
    block(box, words.before, d.before, "update");
    block(box, words.after, d.after, "update");
  }

  function pin(id) {
    if (pinned && nodeEls[pinned]) nodeEls[pinned].classList.remove("eg-pin");
    pinned = id;
    if (id && nodeEls[id]) nodeEls[id].classList.add("eg-pin");
    details(id || (steps[cur].node || null));
  }

  Object.keys(nodeEls).forEach(function (id) {
    var g = nodeEls[id];
    g.addEventListener("mouseenter", function () { details(id); });
    g.addEventListener("mouseleave", function () { details(pinned || steps[cur].node); });
    g.addEventListener("click", function (ev) { ev.stopPropagation(); pin(pinned === id ? null : id); });
  });

  function find(q) {
    q = q.trim().toLowerCase();
    var msg = $("eg-search-msg");
    msg.textContent = "";
    if (!q) return false;
    var ids = Object.keys(nodes), hit = null;
    var tests = [
      function (d) { return d.label.toLowerCase() === q || d.id === q; },
      function (d) { return d.label.toLowerCase().indexOf(q) === 0; },
      function (d) { return d.label.toLowerCase().indexOf(q) >= 0 || (d.name || "").toLowerCase().indexOf(q) >= 0; },
    ];
    for (var k = 0; k < tests.length && !hit; k++) {
      for (var j = 0; j < ids.length; j++) { if (tests[k](nodes[ids[j]])) { hit = ids[j]; break; } }
    }
    if (!hit) { msg.textContent = words.no_match.replace("{q}", q); return false; }
    pin(hit);
    if (found && nodeEls[found]) nodeEls[found].classList.remove("eg-found");
    found = hit;
    var g = nodeEls[hit];
    if (g) {
      g.classList.add("eg-found");
      if (g.scrollIntoView) g.scrollIntoView({ block: "center", inline: "center" });
      setTimeout(function () { g.classList.remove("eg-found"); }, 2500);
    }
    return true;
  }

  var zoom = 1;
  function setZoom(z) {
    zoom = Math.max(1, Math.min(6, z));
    svg.style.width = (zoom * 100) + "%";
    $("eg-zoom-out").disabled = zoom === 1;
    $("eg-zoom-fit").disabled = zoom === 1;
    var focus = nodeEls[pinned] || nodeEls[steps[cur].node];
    if (zoom > 1 && focus && focus.scrollIntoView) focus.scrollIntoView({ block: "center", inline: "center" });
  }
  $("eg-zoom-in").addEventListener("click", function () { setZoom(zoom * 1.5); });
  $("eg-zoom-out").addEventListener("click", function () { setZoom(zoom / 1.5); });
  $("eg-zoom-fit").addEventListener("click", function () { setZoom(1); });
  setZoom(1);
  $("eg-prev").addEventListener("click", function () { show(cur - 1); });
  $("eg-next").addEventListener("click", function () { show(cur + 1); });
  var search = $("eg-search");
  search.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter") { ev.preventDefault(); if (find(search.value)) search.blur(); }
    if (ev.key === "Escape") { search.value = ""; search.blur(); }
  });
  search.addEventListener("change", function () { find(search.value); });
  document.addEventListener("keydown", function (ev) {
    if (ev.target === search || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    var k = ev.key;
    if (k === "ArrowRight" || k === "ArrowDown" || k === "PageDown" || k === " ") show(cur + 1);
    else if (k === "ArrowLeft" || k === "ArrowUp" || k === "PageUp") show(cur - 1);
    else if (k === "Home") show(0);
    else if (k === "End") show(steps.length - 1);
    else if (k === "/") { search.focus(); }
    else if (k === "+" || k === "=") setZoom(zoom * 1.5);
    else if (k === "-") setZoom(zoom / 1.5);
    else if (k === "0") setZoom(1);
    else return;
    ev.preventDefault();
  });
  $("eg-diagram").addEventListener("click", function () { if (pinned) pin(null); });

  var start = parseInt((location.hash || "").slice(1), 10);
  show(isNaN(start) ? 0 : start - 1);
})();
"""


def build_html(g: nx.DiGraph, opts: DiagramOptions | None = None) -> str:
    """The whole page as one string (deterministic: same graph, same bytes)."""
    opts = opts or DiagramOptions()
    theme = get_theme(opts.theme)
    lang = opts.lang
    root = tag_svg(diagram_svg(g, opts), theme, tooltips=False)
    root.attrib.pop("width", None)
    root.attrib.pop("height", None)
    svg = svg_text(root)
    data = page_data(g, opts)
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
<style>{_page_css(theme)}{CSS}</style>
</head>
<body class="theme-{e(theme.name)}">
<header><h1>{e(title)}</h1><span class="loss">{e(loss)}</span><span class="opt">{e(opt_text)}</span></header>
<nav>
<button id="eg-prev" type="button">◀ {e(t("prev", lang))}</button>
<span id="eg-count"></span>
<button id="eg-next" type="button">{e(t("next", lang))} ▶</button>
<input id="eg-search" type="search" list="eg-names" placeholder="{e(t("find", lang))}" autocomplete="off">
<datalist id="eg-names">{names}</datalist>
<span id="eg-search-msg"></span>
<span class="zoom"><button id="eg-zoom-out" type="button" title="−">−</button><button id="eg-zoom-fit" type="button" title="0">{e(t("fit", lang))}</button><button id="eg-zoom-in" type="button" title="+">+</button></span>
<span class="keys">{e(t("keys", lang))}</span>
</nav>
<section id="eg-caption"><div id="eg-stage"></div><div id="eg-lines"></div></section>
<main>
<div id="eg-diagram">{svg}</div>
<aside id="eg-details"><p class="hint">{e(t("hint", lang))}</p></aside>
</main>
<script type="application/json" id="eg-data">{payload}</script>
<script>{JS}</script>
</body>
</html>
"""


def render_html(g: nx.DiGraph, out_dir: Path, opts: DiagramOptions | None = None) -> Path:
    """Write ``index.html`` into ``out_dir``. ``g`` is the graph as drawn (folded when large)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    path.write_text(build_html(g, opts), encoding="utf-8")
    return path


__all__ = ["build_html", "detail_lines", "node_details", "page_data", "render_html"]
