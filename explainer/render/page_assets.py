"""The step-through page's own styles and script (`explainer.render.html` puts them inline).

The script is plain JavaScript with no dependencies, so the page works offline and from the
file system. It rebuilds each step's sets from the changes the page stores, applies a
frame's state to the diagram with the classes of `explainer.render.frames.CSS`, shows the
caption (an ``aria-live`` region), the details of the node hovered, focused or pinned (a
gradient only once backward has computed it, an update only after the optimizer step),
and answers the keyboard: ← → Home End to step, + − 0 to zoom, / to search, Tab and Enter
on the nodes.
"""

from __future__ import annotations

from ..themes import SVG_FONT_FALLBACK, Theme


def page_css(theme: Theme) -> str:
    """The page's styles in ``theme``'s colours."""
    panel = theme.panel
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
#eg-diagram g.node:focus {{ outline: none; }}
#eg-diagram g.node:focus-visible .eg-shape {{ stroke: var(--fwd); stroke-width: 6px; }}
.eg-sr {{ position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }}
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
  var cur = 0, pinned = null, found = null, known = { grads: new Set(), ups: new Set(), stage: "title" };
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // An edge the gradient flows along points from head to tail (geometry from the page's build).
  function point(g, back) {
    g.querySelectorAll("[data-back]").forEach(function (el) {
      var attr = el.tagName === "path" ? "d" : "points";
      el.setAttribute(attr, el.getAttribute(back ? "data-back" : "data-fwd"));
    });
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
      point(g, lit.has(k) && f.stage === "backward");
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
    known = { grads: grads, ups: ups, stage: f.stage };
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
    // No answers ahead of time: a gradient once backward has computed it, an update once the step ran.
    if (known.grads.has(id) || known.stage === "update") block(box, words.grad, d.grad, "grad");
    if (known.ups.has(id)) {
      block(box, words.before, d.before, "update");
      block(box, words.after, d.after, "update");
    }
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
    g.addEventListener("focus", function () { details(id); });
    g.addEventListener("keydown", function (ev) {
      if (ev.key !== "Enter" && ev.key !== " ") return;
      ev.preventDefault();
      ev.stopPropagation();
      pin(pinned === id ? null : id);
    });
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


__all__ = ["JS", "page_css"]
