"""How the diagram is arranged: frames per module call, parameters beside their op, short edge labels.

Pure functions over the graph model, used by `explainer.render.graphviz`: they decide
what goes where so that a diagram stays one frame per module and fits a page, not how
anything looks.
"""

from __future__ import annotations

import itertools
from typing import Any

import networkx as nx

from ..text import fmt_number, t, value_inline

__all__ = ["beside", "clusters", "edge_text", "path_prefixes"]


def clusters(g: nx.DiGraph) -> tuple[dict[str, list[str]], dict[str, list[str]], list[str]]:
    """The module frames: nodes by frame, each frame's inner frames, the outermost frames.

    A frame is a module call: ``model.drop#2`` for the second call of a module that ran
    more than once (the nodes' ``calls``), else the module path. The parameters of a
    module run several times belong to no single call: they sit in the enclosing frame.
    Nodes in no module are under the key ``""``.
    """
    multi = {p for _, d in g.nodes(data=True) for p in (d.get("calls") or {})}
    members: dict[str, list[str]] = {}
    parent: dict[str, str] = {}
    for nid, d in g.nodes(data=True):
        module, calls = d.get("module"), d.get("calls") or {}
        chain: list[str] = []
        if module:
            for p in path_prefixes(module):
                if p in multi and p not in calls:
                    break
                chain.append(f"{p}#{calls[p]}" if p in calls else p)
        for outer, inner in itertools.pairwise(chain):
            parent[inner] = outer
        members.setdefault(chain[-1] if chain else "", []).append(nid)
    keys = set(parent) | set(parent.values()) | {k for k in members if k}
    children: dict[str, list[str]] = {}
    roots: list[str] = []
    for k in sorted(keys):
        (children.setdefault(parent[k], []) if k in parent else roots).append(k)
    return members, children, roots


def edge_text(v: Any, digits: int, lang: str) -> str:
    """An edge's gradient in a few characters: a number or a short vector as it is; a matrix
    or a large tensor by its norm (its rows on one line would widen the page)."""
    if isinstance(v, dict):
        return f"{t('norm', lang)} {fmt_number(v.get('norm'), digits)}"
    if isinstance(v, list) and any(isinstance(e, list) for e in v):
        flat = [float(x) for x in _flat(v) if isinstance(x, (int, float))]
        return f"{t('norm', lang)} {fmt_number(sum(x * x for x in flat) ** 0.5, digits)}"
    return value_inline(v, digits, lang)


def _flat(v: Any) -> list[Any]:
    return [x for e in v for x in _flat(e)] if isinstance(v, list) else [v]


def beside(g: nx.DiGraph, inside: list[str]) -> list[tuple[str, str]]:
    """(parameter, the op using it) pairs of one module frame, drawn side by side: a
    parameter on the rank before its op would add a rank per layer, and a stack of
    layers would come out as a staircase twice as long as its ops."""
    here = set(inside)
    pairs = []
    for nid in inside:
        if g.nodes[nid]["kind"] not in ("param", "buffer"):
            continue
        users = [w for w in g.successors(nid) if w in here and g.nodes[w]["kind"] == "op"]
        if len(users) == 1 and g.in_degree(nid) == 0:
            pairs.append((nid, users[0]))
    return pairs


def path_prefixes(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]
