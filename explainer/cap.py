"""Capping a view that module folding cannot make small: the last steps of backward, drawn.

A script with no modules to fold (an RNN unrolled by hand over 300 steps, a loss written
op by op) gives a graph that ``dot`` would need minutes to draw and nobody could read.
`cap` keeps the ``limit`` nodes backward reached first (the loss and what is nearest to
it; no chain of more than `MAX_RANKS` of them) with the data and parameters they use, and draws everything before them as one box. Pure: a graph
in (the schema of `explainer.graph`), a graph out.

Why one box is enough, and draws no cycle: backward reaches a node only after every node
that used its output, so the nodes it reached first are closed under "used by": no edge
leads from them back into the box. Data (inputs, no backward step) is kept beside the
node it feeds.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from .repeats import box_node, merged_edge

__all__ = ["CAP_ID", "cap"]

#: The id of the box standing for the nodes a capped view leaves out.
CAP_ID = "cap:earlier"
#: The longest chain of kept nodes: what a 16:9 page shows across (or down) readably.
MAX_RANKS = 12


def cap(g: nx.DiGraph, limit: int) -> nx.DiGraph:
    """``g`` with all but the first ``limit`` nodes of its backward order (and the data they
    use) folded into one node, id `CAP_ID`; ``g`` itself when it is no larger."""
    order = list(g.graph.get("backward_order") or [])
    if g.number_of_nodes() <= limit or len(order) <= limit:
        return g
    keep: set[str] = set()
    depth: dict[str, int] = {}  # the longest path from a node to the loss, among those kept
    for n in order[:limit]:
        # In backward order every node comes after the nodes using its output.
        depth[n] = 1 + max((depth[w] for w in g.successors(n) if w in depth), default=0)
        if depth[n] > MAX_RANKS:
            break  # a chain (an unrolled loop): a few of its steps, not a strip of them
        keep.add(n)
    for n in list(keep):
        # the data and the parameters they use (nothing leads into those: no cycle)
        keep.update(
            u
            for u in g.predecessors(n)
            if g.in_degree(u) == 0
            and (g.nodes[u].get("backward_step") is None or g.nodes[u]["kind"] in ("param", "leaf"))
        )
    keep.add(g.graph["loss"])
    rep = {n: (n if n in keep else CAP_ID) for n in g.nodes}
    members = [n for n in g.nodes if rep[n] == CAP_ID]
    out = nx.DiGraph()
    out.graph.update(g.graph)
    for n in g.nodes:
        if rep[n] == n:
            out.add_node(n, **dict(g.nodes[n]))
        elif n == members[0]:
            out.add_node(CAP_ID, **_box(g, members))
    crossing: dict[tuple[str, str], list[tuple[str, str, dict[str, Any]]]] = {}
    for u, v, d in g.edges(data=True):
        if rep[u] != rep[v]:
            crossing.setdefault((rep[u], rep[v]), []).append((u, v, d))
    for (ru, rv), es in crossing.items():
        attrs = merged_edge(g, es)
        flowed = attrs.pop("_flowed")
        attrs["backward_step"] = g.nodes[rv].get("backward_step") if flowed and rv in g else None
        out.add_edge(ru, rv, **attrs)
    out.graph["backward_order"] = [n for n in order if n in keep]
    out.graph["first_nonfinite"] = rep.get(g.graph.get("first_nonfinite") or "", None)
    before = g.graph.get("fold") or {"depth": None, "expand": [], "repeats": True, "full_nodes": g.number_of_nodes()}
    out.graph["fold"] = dict(before, capped=len(members))
    return out


def _box(g: nx.DiGraph, members: list[str]) -> dict[str, Any]:
    """The box for the nodes left out: what it holds, and the value and gradient of the
    last of them that feeds a node kept (what crosses into the picture)."""
    inside = set(members)
    leaving = [n for n in members if any(w not in inside for w in g.successors(n))]
    out_id = leaving[-1] if leaving else members[-1]
    return box_node(g, members, out_id) | {
        "label": f"… {len(members):,} earlier nodes",
        "name": None,
        "module": None,
        "module_type": None,
        "requires_grad": True,
        "intended_inf": False,
        "calls": {},
        "path": None,
        "members": [],
        "repeat": 1,
        "capped": True,
    }
