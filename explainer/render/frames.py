"""What the diagram shows at each step: shared by the slide deck and the interactive page.

`frames(g, steps)` turns the choreography (`explainer.choreography.choreograph`) into
one `Frame` per step: which nodes the forward pass has reached, which gradients and
updates are filled in so far, which node and edges are lit. It is pure data, so the
deck, the page and the tests read the same states.

The diagram is the story's frame SVG (`explainer.story`: the same DOT as
``graph.svg`` without its legend and title bar, laid out once per run, like the
video's); `tag_svg` marks the parts a frame switches on and off. The slide deck applies a frame in Python
(`apply_frame`); the page applies the same frame in the browser with the same
classes (`CSS`).

Notes
-----
The layout is computed once, with every gradient and update drawn, and never
changes: hidden texts are hidden after the layout, so the boxes do not move from
page to page. Gradient texts are recognised by the colour the diagram gives them
(the theme's ``grad`` colour, as the legend says: value in the text colour,
gradient in orange, update in green), so no extra markup is needed in the DOT.
"""

from __future__ import annotations

import copy
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx

from ..choreography import Step
from ..themes import Theme
from .style import highlight_colour

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)

#: Opacity of a node the forward pass has not reached yet.
DIM_OPACITY = 0.22
#: Outline width (diagram points) of the lit node and of lit edges.
HIGHLIGHT_WIDTH = 4.5
EDGE_WIDTH = 3.0

#: Class names put on the diagram's SVG elements by `tag_svg` (read by the page's script).
GRAD, UPDATE, SHAPE = "eg-grad", "eg-update", "eg-shape"

#: The same states as CSS classes on node/edge groups, for the page.
CSS = f"""
svg g.node .{GRAD}, svg g.edge .{GRAD}, svg g.node .{UPDATE} {{ display: none; }}
svg g.eg-g .{GRAD}, svg g.eg-u .{UPDATE} {{ display: inline; }}
svg g.eg-dim {{ opacity: {DIM_OPACITY}; }}
svg g.eg-hl .{SHAPE} {{ stroke: var(--eg-hl); stroke-width: {HIGHLIGHT_WIDTH}px; }}
svg g.eg-lit path.{SHAPE} {{ stroke: var(--eg-hl); stroke-width: {EDGE_WIDTH}px; }}
svg g.eg-lit polygon.{SHAPE} {{ stroke: var(--eg-hl); fill: var(--eg-hl); }}
"""


@dataclass(frozen=True)
class Frame:
    """The diagram's state while one step is on screen.

    Attributes
    ----------
    step
        Index of the step in the choreography.
    stage, kind
        The step's stage and kind (`explainer.choreography.Step`).
    highlight
        Nodes outlined in the stage's colour (the step's node; every updated
        parameter on the slide deck's update page).
    edges
        Edges lit: data flowing forward, or the gradient flowing back.
    seen
        Nodes the forward pass has computed; the others are drawn faint.
    grads
        Nodes whose gradient (and backward-step badge) is filled in.
    edge_grads
        Edges whose gradient label is filled in.
    updates
        Parameters whose optimizer update is shown.
    lines
        The step's caption.
    """

    step: int
    stage: str
    kind: str
    highlight: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]
    seen: tuple[str, ...]
    grads: tuple[str, ...]
    edge_grads: tuple[tuple[str, str], ...]
    updates: tuple[str, ...]
    lines: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (edges as ``[u, v]`` pairs)."""
        return {
            "step": self.step,
            "stage": self.stage,
            "kind": self.kind,
            "highlight": list(self.highlight),
            "edges": [list(e) for e in self.edges],
            "seen": list(self.seen),
            "grads": list(self.grads),
            "edge_grads": [list(e) for e in self.edge_grads],
            "updates": list(self.updates),
            "lines": list(self.lines),
        }


def frames(g: nx.DiGraph, steps: Sequence[Step]) -> list[Frame]:
    """One `Frame` per step, each the state after that step. Pure and deterministic.

    The title step shows the whole graph without gradients; the forward pass then
    brings in each node as it is computed; the loss step completes the forward pass
    and writes ∂L/∂L; each backward (or accumulate) step fills in its node's
    gradient and the gradients it sends along its edges; update steps show the
    parameter's update; ``zero_grad`` clears the gradients again.
    """
    order = {n: i for i, n in enumerate(g.nodes)}
    all_nodes = set(g.nodes)
    seen: set[str] = set(all_nodes)
    grads: set[str] = set()
    egrads: set[tuple[str, str]] = set()
    updates: set[str] = set()
    out: list[Frame] = []
    started = False
    for i, s in enumerate(steps):
        edges = tuple(e for e in s.edges if g.has_edge(*e))
        if s.kind == "forward":
            if not started:
                seen, started = set(), True
            seen.update(u for u, _ in edges)
            if s.node is not None:
                seen.add(s.node)
        elif s.kind == "loss":
            seen = set(all_nodes)
            if s.node is not None and g.nodes[s.node].get("grad") is not None:
                grads.add(s.node)
        elif s.kind in ("backward", "accumulate") and s.node is not None:
            seen = set(all_nodes)
            if g.nodes[s.node].get("grad") is not None:
                grads.add(s.node)
            egrads.update(e for e in edges if g.edges[e].get("grad") is not None)
        elif s.kind == "update" and s.node is not None:
            updates.add(s.node)
        elif s.kind == "zero_grad":
            grads, egrads = set(), set()
        highlight = (s.node,) if s.node is not None and s.kind != "title" else ()
        out.append(
            Frame(
                step=i,
                stage=s.stage,
                kind=s.kind,
                highlight=highlight,
                edges=edges,
                seen=tuple(sorted(seen, key=order.__getitem__)),
                grads=tuple(sorted(grads, key=order.__getitem__)),
                edge_grads=tuple(sorted(egrads, key=lambda e: (order[e[1]], order[e[0]]))),
                updates=tuple(sorted(updates, key=order.__getitem__)),
                lines=s.lines,
            )
        )
    return out


def _q(tag: str) -> str:
    return f"{{{SVG_NS}}}{tag}"


def _add_class(el: ET.Element, name: str) -> None:
    classes = el.get("class", "").split()
    if name not in classes:
        el.set("class", " ".join([*classes, name]))


def tag_svg(svg: str, theme: Theme, tooltips: bool = True) -> ET.Element:
    """Parse ``dot``'s SVG and mark what frames switch.

    Node groups get ``data-id`` (the graph's node id), edge groups ``data-edge``
    (``"u v"``). Gradient texts and badges get class `GRAD`, update texts `UPDATE`,
    outlines and arrow heads `SHAPE`. ``tooltips=False`` drops Graphviz's hover
    tooltips and ``<title>`` elements (the page shows its own details panel instead).
    """
    root = ET.fromstring(svg)
    grad, update = theme.grad.lower(), theme.update.lower()
    for g in list(root.iter(_q("g"))):
        cls = g.get("class", "")
        title = g.find(_q("title"))
        name = (title.text or "") if title is not None else ""
        if title is not None and not tooltips:
            g.remove(title)  # a browser shows an SVG <title> as a tooltip ("n4")
        if cls not in ("node", "edge"):
            continue
        if cls == "node":
            g.set("data-id", name)
        else:
            u, _, v = name.partition("->")
            g.set("data-edge", f"{u} {v}")
        for el in g.iter():
            tag = el.tag.rpartition("}")[2]
            fill = (el.get("fill") or "").lower()
            if tag == "text":
                if fill == grad:
                    _add_class(el, GRAD)
                elif fill == update and cls == "node":
                    _add_class(el, UPDATE)
            elif tag in ("path", "polygon", "ellipse", "polyline"):
                _add_class(el, SHAPE)
            elif tag == "a" and not tooltips:
                el.attrib.pop(f"{{{XLINK_NS}}}title", None)
    return root


def apply_frame(root: ET.Element, frame: Frame, theme: Theme) -> ET.Element:
    """A copy of the tagged diagram showing ``frame`` (for static pages).

    The same rules as `CSS`, written as SVG attributes, so any SVG renderer draws them.
    """
    root = copy.deepcopy(root)
    colour = highlight_colour(frame.stage, frame.kind, theme)
    seen, grads, updates = set(frame.seen), set(frame.grads), set(frame.updates)
    highlight, lit, egrads = set(frame.highlight), set(frame.edges), set(frame.edge_grads)
    for g in root.iter(_q("g")):
        nid = g.get("data-id")
        edge = g.get("data-edge")
        if nid is None and edge is None:
            continue
        if nid is not None:
            faint = nid not in seen
            show_grad, lit_here, hl = nid in grads, False, nid in highlight
        else:
            u, v = (edge or " ").split(" ")
            faint = u not in seen or v not in seen
            show_grad, lit_here, hl = (u, v) in egrads, (u, v) in lit, False
        if faint:
            g.set("opacity", f"{DIM_OPACITY:g}")
        for el in g.iter():
            classes = el.get("class", "").split()
            if GRAD in classes and not show_grad:
                el.set("display", "none")
            elif UPDATE in classes and nid not in updates:
                el.set("display", "none")
            elif SHAPE in classes and (hl or lit_here):
                el.set("stroke", colour)
                el.set("stroke-width", f"{HIGHLIGHT_WIDTH if hl else EDGE_WIDTH:g}")
                if lit_here and el.tag == _q("polygon"):
                    el.set("fill", colour)
        if lit_here and frame.stage == "backward":
            point_back(g)
    return root


def point_back(edge: ET.Element) -> None:
    """Turn a drawn edge's arrowhead around, in place: the gradient flows from head to tail.

    ``dot`` ends the path one arrowhead short of the head node and draws the head there;
    the path is extended to the head node and the same arrowhead drawn at its start,
    pointing at the tail node, so a gradient never flows against an arrowhead.
    """
    path, head = edge.find(_q("path")), edge.find(_q("polygon"))
    if path is None or head is None:
        return
    nums = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", path.get("d", ""))]
    corners = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", head.get("points", ""))]
    if len(nums) < 4 or len(corners) < 6:
        return
    pts, tri = list(zip(nums[::2], nums[1::2])), list(zip(corners[::2], corners[1::2]))[:3]
    end = pts[-1]
    tip = max(tri, key=lambda q: math.dist(q, end))
    base = [q for q in tri if q != tip] or tri[:2]
    length, half = math.dist(tip, end), math.dist(base[0], base[-1]) / 2
    (x0, y0), (x1, y1) = pts[0], next((q for q in pts[1:] if q != pts[0]), pts[-1])
    d = math.dist((x0, y0), (x1, y1)) or 1.0
    ux, uy = (x0 - x1) / d, (y0 - y1) / d  # along the path, out of it, toward the tail node
    bx, by = x0 - ux * length, y0 - uy * length
    new = [(x0, y0), (bx - uy * half, by + ux * half), (bx + uy * half, by - ux * half), (x0, y0)]
    head.set("points", " ".join(f"{x:.2f},{y:.2f}" for x, y in new))
    path.set("d", f"{path.get('d', '')} L{tip[0]:.2f},{tip[1]:.2f}")


def svg_text(root: ET.Element) -> str:
    """Serialise an SVG element tree (no XML declaration)."""
    return ET.tostring(root, encoding="unicode")


def node_of(root: ET.Element, node_id: str) -> ET.Element | None:
    """The ``<g class="node">`` of ``node_id`` in a tagged diagram."""
    for g in root.iter(_q("g")):
        if g.get("data-id") == node_id:
            return g
    return None


def visible_texts(el: ET.Element) -> list[str]:
    """The texts of ``el`` a viewer sees (those not hidden by a frame), in document order."""
    out: list[str] = []

    def walk(e: ET.Element, hidden: bool) -> None:
        hidden = hidden or e.get("display") == "none"
        if e.tag == _q("text") and not hidden and (e.text or "").strip():
            out.append((e.text or "").replace("\xa0", " ").strip())
        for c in e:
            walk(c, hidden)

    walk(el, False)
    return out


__all__ = [
    "CSS",
    "Frame",
    "apply_frame",
    "frames",
    "node_of",
    "svg_text",
    "tag_svg",
    "visible_texts",
]
