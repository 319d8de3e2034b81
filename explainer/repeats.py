"""Runs of repeated blocks and calls, stacks of inputs and merged edges, for the folded views (`explainer.fold`).

Pure functions over the graph model and the folding's groups: a group key is a module
path (``model.layers.3``) or a call of a module run several times (``model.encoder#3``),
as `explainer.fold` makes them.
"""

from __future__ import annotations

import re
from typing import Any

import networkx as nx
import numpy as np

from .values import json_number

__all__ = [
    "INDEXED",
    "acyclic_runs",
    "box_node",
    "call_path",
    "merged_edge",
    "repeated_runs",
    "stacked_inputs",
    "stacked_node",
]

#: A sibling block (``layers.3``) or a call of a module run several times (``encoder#3``).
INDEXED = re.compile(r"^(?P<base>.+?)(?P<sep>[.#])(?P<index>\d+)$")

#: At least this many pieces of data feeding one folded box are drawn as one node.
STACK_MIN = 4


def call_path(key: str) -> str:
    """``model.drop#2`` -> ``model.drop``: the module path of a group key."""
    return key.partition("#")[0]


def _signature(g: nx.DiGraph, key: str, members: list[str]) -> tuple[Any, ...]:
    """The inner structure of one module call: its nodes' kinds, ops, shapes and wiring."""
    path = call_path(key)
    local = {n: i for i, n in enumerate(members)}
    nodes = tuple(
        (
            (d.get("module") or "")[len(path) :],
            d["kind"],
            d.get("op"),
            tuple(d.get("shape") or ()),
            d.get("dtype"),
        )
        for d in (g.nodes[n] for n in members)
    )
    edges = tuple(
        sorted(
            (local[u], local[v], tuple(g.edges[u, v].get("slots") or ()))
            for u in members
            for v in g.successors(u)
            if v in local
        )
    )
    return (g.graph.get("modules", {}).get(path), nodes, edges)


def _frame(g: nx.DiGraph, key: str, members: list[str]) -> tuple[tuple[str, int], ...]:
    """The calls of the modules around a group (``(("model.rnn", 3),)`` inside the rnn's 3rd call)."""
    path = call_path(key)
    calls = g.nodes[members[0]].get("calls") or {}
    return tuple(sorted((p, c) for p, c in calls.items() if path.startswith(p + ".")))


def repeated_runs(g: nx.DiGraph, groups: dict[str, list[str]], pairs: set[tuple[str, str]]) -> dict[str, list[str]]:
    """Runs of >= 2 folded groups that match: sibling blocks ``base.i``, ``base.i+1``, ...
    each feeding the next, or calls ``path#i``, ``path#i+1``, ... of one module."""
    by_base: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for p in groups:
        m = INDEXED.match(p)
        if m:
            by_base.setdefault((m.group("base"), m.group("sep")), []).append((int(m.group("index")), p))
    runs: dict[str, list[str]] = {}
    for (base, sep), items in sorted(by_base.items()):
        items.sort()
        sigs = {p: _signature(g, p, groups[p]) for _, p in items}
        frames = {p: _frame(g, p, groups[p]) for _, p in items}
        run: list[tuple[int, str]] = []
        pieces: list[list[tuple[int, str]]] = []
        for i, p in items:
            if run:
                prev = run[-1][1]
                # Calls match by being calls of one module (the last may lack an unused
                # output); siblings must match and chain. All lie in the same outer call.
                same = sep == "#" or (sigs[p] == sigs[prev] and ("m:" + prev, "m:" + p) in pairs)
                if not (i == run[-1][0] + 1 and same and frames[p] == frames[prev]):
                    pieces.append(run)
                    run = []
            run.append((i, p))
        pieces.append(run)
        for piece in pieces:
            if len(piece) >= 2:
                runs[f"m:{base}{sep}{piece[0][0]}-{piece[-1][0]}"] = [p for _, p in piece]
    return runs


def acyclic_runs(
    g: nx.DiGraph, rep: dict[str, str], groups: dict[str, list[str]], runs: dict[str, list[str]]
) -> dict[str, list[str]]:
    """``runs`` without those whose box would lie on a cycle (a run of calls whose output
    comes back into a later call through other boxes: a model feeding its prediction back)."""
    runs = dict(runs)
    while runs:
        group_of = {"m:" + p: key for key, members in runs.items() for p in members}
        view = nx.DiGraph()
        for u, v in g.edges:
            ru, rv = group_of.get(rep[u], rep[u]), group_of.get(rep[v], rep[v])
            if ru != rv:
                view.add_edge(ru, rv)
        cyclic = {n for scc in nx.strongly_connected_components(view) if len(scc) > 1 for n in scc}
        bad = [key for key in runs if key in cyclic]
        if not bad:
            break
        for key in bad:
            del runs[key]
    return runs


def stacked_inputs(g: nx.DiGraph, rep: dict[str, str]) -> dict[str, str]:
    """Data nodes to draw as one: `STACK_MIN` or more inputs of one shape that feed only one
    folded box (a sequence split into 29 steps, the 8 tokens an encoder reads). Returns
    each such node's new group key (``in:`` + the first one's id)."""
    by_target: dict[tuple[str, tuple[int, ...]], list[str]] = {}
    for n, d in g.nodes(data=True):
        if rep[n] != n or d.get("kind") != "input":
            continue
        targets = {rep[w] for w in g.successors(n)}
        if len(targets) == 1 and next(iter(targets)).startswith("m:"):
            by_target.setdefault((next(iter(targets)), tuple(d.get("shape") or ())), []).append(n)
    out: dict[str, str] = {}
    for members in by_target.values():
        if len(members) >= STACK_MIN:
            for n in members:
                out[n] = "in:" + members[0]
    return out


def stacked_node(g: nx.DiGraph, members: list[str]) -> dict[str, Any]:
    """One node for a stack of inputs: the first one's attributes, labelled ``a … b``, with its count."""
    first, last = g.nodes[members[0]], g.nodes[members[-1]]
    attrs = dict(first)
    attrs.update(
        label=f"{first['label']} … {last['label']}",
        name=None,
        repeat=len(members),
        members=list(members),
        folded=len(members),
    )
    return attrs


def _decode(v: Any) -> np.ndarray | None:
    """A JSON value (number or nested lists) as an array; None for summaries and nulls."""
    if v is None or isinstance(v, dict):
        return None

    def conv(x: Any) -> Any:
        if isinstance(x, list):
            return [conv(e) for e in x]
        return float(x)

    return np.asarray(conv(v), dtype=np.float64)


def _encode(a: np.ndarray) -> Any:
    if a.ndim == 0:
        return json_number(a.reshape(-1)[0])
    return [_encode(sub) for sub in a]


def _sum_grads(grads: list[Any], dtype: str) -> Any:
    """The sum of JSON gradients, in the tensor's dtype (as autograd adds them); None if unknown."""
    arrays = [_decode(v) for v in grads]
    if any(a is None for a in arrays) or len({a.shape for a in arrays}) != 1:  # type: ignore[union-attr]
        return None
    try:
        np_dtype = np.dtype(dtype) if dtype.startswith("float") else np.dtype(np.float64)
    except TypeError:
        np_dtype = np.dtype(np.float64)
    total = arrays[0].astype(np_dtype)  # type: ignore[union-attr]
    with np.errstate(all="ignore"):
        for a in arrays[1:]:
            total = total + a.astype(np_dtype)  # type: ignore[union-attr]
    return _encode(total)


def merged_edge(g: nx.DiGraph, es: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    """One edge standing for the edges ``es`` between two sides of a folded view: the
    gradient that flowed along them where it is one tensor's (summed over its uses),
    else null; ``_flowed`` says whether any gradient flowed (the caller pops it)."""
    if len(es) == 1:
        u, _, d = es[0]
        attrs = dict(d)
        attrs["_flowed"] = d.get("grad") is not None or d.get("backward_step") is not None
        attrs["folded"] = 1
        return attrs
    flowing = [(u, d) for u, _, d in es if d.get("grad") is not None or d.get("backward_step") is not None]
    grad = None
    sources = {(u, d.get("output_nr", 0)) for u, d in flowing}
    if len(flowing) == 1:
        grad = flowing[0][1].get("grad")
    elif len(sources) == 1 and flowing:
        # One tensor used several times inside the folded side: autograd adds these up.
        u = flowing[0][0]
        grad = _sum_grads([d.get("grad") for _, d in flowing], g.nodes[u].get("dtype", ""))
        if grad is None:
            # Summaries (or gradients not recorded) cannot be added up; but when every use
            # of the tensor a gradient came back from is inside this edge, their sum is
            # exactly the source node's gradient.
            uses = [
                w
                for w in g.successors(u)
                if g.edges[u, w].get("grad") is not None or g.edges[u, w].get("backward_step") is not None
            ]
            if len(uses) == len(flowing):
                grad = g.nodes[u].get("grad")
    return {
        "grad": grad,
        "slots": sorted({s for _, _, d in es for s in d.get("slots", [])}) or [0],
        "output_nr": min(d.get("output_nr", 0) for _, _, d in es),
        "backward_step": None,
        "_flowed": bool(flowing),
        "folded": len(es),
    }


def box_node(g: nx.DiGraph, members: list[str], out_id: str) -> dict[str, Any]:
    """The attributes every box standing for ``members`` has (a folded module, a capped rest):
    it shows ``out_id``'s value and gradient, counts what it holds and is no op of its own.
    Callers add what tells their boxes apart (label, name, module, path ...)."""
    o = g.nodes[out_id]
    return {
        "kind": "module",
        "op": None,
        "autograd": None,
        "call": None,
        "scalars": [],
        "shape": list(o.get("shape") or []),
        "dtype": o.get("dtype", ""),
        "value": o.get("value"),
        "grad": o.get("grad"),
        "backward_step": None,
        "update": None,
        "nonfinite": any(g.nodes[n].get("nonfinite") for n in members),
        "n_outputs": 1,
        "folded": len(members),
        "output": out_id,
        "ops": sum(1 for n in members if g.nodes[n]["kind"] in ("op", "loss")),
        "params": sum(1 for n in members if g.nodes[n]["kind"] == "param"),
    }
