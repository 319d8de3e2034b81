"""Module-level views of a large graph: fold modules into single nodes.

A pure function over the graph model (`explainer.graph`): a graph goes in, a new,
smaller graph with the same schema comes out, so every renderer can draw either.

* `fold` shows every module deeper than ``depth`` (``model`` has depth 1,
  ``model.layers.0`` depth 3) as one node of ``kind="module"``, except the modules
  on the way to an ``expand`` path, which stay open. Runs of identical sibling
  blocks (``layers.0`` ... ``layers.23``: same class, same inner structure, each
  feeding the next) become one node with a ``repeat`` count.
* `fold_for_display` picks the depth automatically when the graph has more than
  ``max_nodes`` nodes (or uses the one asked for) and says how to open it again.

The blocks listed in the graph's ``light`` attribute (a large model's repeated
blocks, traced by their outputs only) stay folded at any depth unless an ``expand``
path opens them.

A module node carries its output's value and gradient: the output is the last op
inside the module whose result leaves it, its gradient that op's gradient. Its
extra attributes (beyond the graph schema):

``path``
    The module's path (``model.layers.0``; the first block of a repeated run): what
    ``--expand`` takes.
``folded``
    How many nodes of the full graph it stands for.
``repeat``
    How many identical blocks it stands for (1 for a single module).
``members``
    The module paths it stands for.
``output``
    The id, in the full graph, of the node whose value and gradient it shows.
``ops``, ``params``
    How many operations and parameters it holds.

Ids are ``"m:" + path`` (``"m:model.layers.0"``; ``"m:model.layers.0-23"`` for a
repeated run), so the same model folds to the same ids, run after run; nodes that
stay visible keep their ids. An edge stands for every edge of the full graph
between the two sides (``folded`` counts them); it keeps the gradient that flowed
along it when that is well defined: a single edge's, or the sum of the gradients
sent from one tensor into the folded module (which is what autograd adds up). Where
several tensors cross, ``grad`` is null but ``backward_step`` still says a gradient
flowed. Backward steps are renumbered in the order backward first reached each
visible node. The graph attribute ``fold`` records ``{depth, expand, repeats,
full_nodes}``.

Notes
-----
The loss node is never folded: the diagram always ends at it. A module entered
several times with other modules in between can fold into a cycle; renderers must
not assume the folded graph is acyclic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from .errors import FoldError
from .values import py_number

#: Above this many nodes the diagram is folded automatically: about what one slide holds
#: readably (a 77-node ResNet view is five slides tall), and ``dot`` needs well under a second.
DEFAULT_MAX_NODES = 30

_INDEXED = re.compile(r"^(?P<base>.+)\.(?P<index>\d+)$")


@dataclass(frozen=True)
class FoldOptions:
    """How the diagram is folded.

    ``depth`` None picks the deepest depth whose diagram has at most ``max_nodes``
    nodes, and only when the full graph has more; ``max_nodes`` 0 never folds
    automatically. ``expand`` lists module paths to keep open.
    """

    depth: int | None = None
    expand: tuple[str, ...] = ()
    max_nodes: int = DEFAULT_MAX_NODES
    repeats: bool = True


@dataclass(frozen=True)
class FoldResult:
    """The graph to draw and how it was obtained from the full one."""

    graph: nx.DiGraph
    depth: int | None  # None: nothing folded
    full_nodes: int
    auto: bool = False
    suggestion: str | None = None  # a module path worth expanding
    expand: tuple[str, ...] = field(default_factory=tuple)

    @property
    def nodes(self) -> int:
        return self.graph.number_of_nodes()

    @property
    def folded(self) -> bool:
        return self.depth is not None and self.nodes < self.full_nodes

    @property
    def message(self) -> str | None:
        """One line for the terminal: what was folded and how to open it."""
        if not self.folded:
            return None
        how = f"use --depth {self.depth + 1}"
        if self.suggestion:
            how += f" or --expand {self.suggestion}"
        return (
            f"folded to depth {self.depth} ({self.full_nodes:,} → {self.nodes:,} nodes; graph.json has them all): "
            f"{how} to open"
        )


# --------------------------------------------------------------------------- helpers


def path_depth(path: str) -> int:
    """``model`` -> 1, ``model.layers.0`` -> 3."""
    return path.count(".") + 1


def _prefixes(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def module_paths(g: nx.DiGraph) -> list[str]:
    """Every module path in ``g`` (those nodes ran in and their enclosing ones), sorted."""
    paths: set[str] = set(g.graph.get("modules", {}) or {})
    for _, d in g.nodes(data=True):
        if d.get("kind") != "module" and d.get("module"):
            paths.update(_prefixes(d["module"]))
    return sorted(paths)


def _label(path: str) -> str:
    """``model.encoder.layers.3`` -> ``layers.3``; ``model.encoder`` -> ``encoder``."""
    parts = path.split(".")
    if len(parts) >= 2 and parts[-1].isdigit():
        return ".".join(parts[-2:])
    return parts[-1]


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
        return py_number(a.reshape(-1)[0])
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


# --------------------------------------------------------------------------- folding


def fold(g: nx.DiGraph, depth: int, expand: Iterable[str] = (), repeats: bool = True) -> nx.DiGraph:
    """Fold every module deeper than ``depth`` (except those on an ``expand`` path).

    Parameters
    ----------
    g
        A full graph (``explain-graph/1``); not modified.
    depth
        Modules with at most this many path components stay open: 0 folds each
        top-level module (``model``, ``criterion``) into one node.
    expand
        Module paths to open whatever their depth (their enclosing modules open too).
    repeats
        Show runs of identical, chained sibling blocks once, with a count.

    Raises
    ------
    FoldError
        ``depth`` is negative or an ``expand`` path is not a module of ``g``.
    """
    if depth < 0:
        raise FoldError(f"--depth {depth}: the depth must be 0 or more (0 folds each top-level module)")
    expand = tuple(expand)
    known = set(module_paths(g))
    for p in expand:
        if p not in known:
            near = sorted(k for k in known if k.startswith(p.rpartition(".")[0]))[:3] or sorted(known)[:3]
            raise FoldError(
                f"--expand {p}: no module {p!r} in this graph: use a module path such as "
                f"{', '.join(near) or 'model.fc1'} (graph.json lists them under 'modules')"
            )
    opened = {q for p in expand for q in _prefixes(p)}
    # Blocks whose ops were not recorded one by one stay folded unless asked for by path.
    light = set(g.graph.get("light") or ())
    nodes = list(g.nodes)
    pos = {n: i for i, n in enumerate(nodes)}

    # 1. Each node -> the outermost closed module it lies in (or itself).
    rep: dict[str, str] = {}
    groups: dict[str, list[str]] = {}
    for n in nodes:
        d = g.nodes[n]
        rep[n] = n
        module = d.get("module")
        if not module or d.get("kind") == "loss":
            continue
        for p in _prefixes(module):
            if (path_depth(p) > depth or p in light) and p not in opened:
                rep[n] = "m:" + p
                groups.setdefault(p, []).append(n)
                break
    # Parameters and buffers of no known module (a model the script holds in an
    # attribute) belong to the one module using them. Data stays visible.
    for n in nodes:
        d = g.nodes[n]
        if rep[n] != n or d.get("module") or d.get("kind") not in ("param", "buffer"):
            continue
        users = {rep[w] for w in g.successors(n)}
        if len(users) == 1 and next(iter(users)).startswith("m:"):
            key = next(iter(users))
            rep[n] = key
            groups[key[2:]].append(n)
    for p, members in list(groups.items()):
        members.sort(key=pos.__getitem__)
        if len(members) == 1:  # a box for one node says less than the node itself
            rep[members[0]] = members[0]
            del groups[p]

    # 2. Runs of identical sibling blocks, each feeding the next.
    pairs = {(rep[u], rep[v]) for u, v in g.edges if rep[u] != rep[v]}
    runs: dict[str, list[str]] = {}  # group key -> member paths
    if repeats:
        runs = _repeated_runs(g, groups, pairs)
    group_of: dict[str, str] = {}
    for key, paths in runs.items():
        for p in paths:
            group_of["m:" + p] = key
    for n in nodes:
        rep[n] = group_of.get(rep[n], rep[n])

    # 3. Nodes, in order of first appearance.
    out = nx.DiGraph()
    out.graph.update(g.graph)
    members_of: dict[str, list[str]] = {}
    for n in nodes:
        members_of.setdefault(rep[n], []).append(n)
    for key, members in members_of.items():
        if key in g and members == [key]:
            out.add_node(key, **dict(g.nodes[key]))
            continue
        paths = runs.get(key) or [key[2:]]
        out.add_node(key, **_module_node(g, key, paths, members))

    # 4. Edges: one per pair of sides, with the gradient where it is well defined.
    crossing: dict[tuple[str, str], list[tuple[str, str, dict[str, Any]]]] = {}
    for u, v, d in g.edges(data=True):
        ru, rv = rep[u], rep[v]
        if ru != rv:
            crossing.setdefault((ru, rv), []).append((u, v, d))
    for (ru, rv), es in sorted(crossing.items(), key=lambda kv: (pos[members_of[kv[0][1]][0]], pos[members_of[kv[0][0]][0]])):
        out.add_edge(ru, rv, **_merged_edge(g, es))

    # 5. Backward order, compressed to the visible nodes.
    order: list[str] = []
    seen: set[str] = set()
    for n in g.graph.get("backward_order", []):
        r = rep.get(n)
        if r is not None and r not in seen:
            seen.add(r)
            order.append(r)
    step = {n: i + 1 for i, n in enumerate(order)}
    for n, d in out.nodes(data=True):
        d["backward_step"] = step.get(n)
    for u, v, d in out.edges(data=True):
        d["backward_step"] = step.get(v) if d.pop("_flowed") else None
    bad = g.graph.get("first_nonfinite")
    out.graph.update(
        backward_order=order,
        first_nonfinite=rep.get(bad) if bad else None,
        loss=rep.get(g.graph.get("loss"), g.graph.get("loss")),
        fold={"depth": depth, "expand": list(expand), "repeats": repeats, "full_nodes": g.number_of_nodes()},
    )
    return out


def _module_node(g: nx.DiGraph, key: str, paths: list[str], members: list[str]) -> dict[str, Any]:
    """Attributes of a folded module (or a run of repeated blocks)."""
    inside = set(members)
    ops = [n for n in members if g.nodes[n]["kind"] in ("op", "loss")]
    leaving = [n for n in members if any(w not in inside for w in g.successors(n))]
    out_id = next(
        (n for n in reversed(leaving) if n in ops),
        ops[-1] if ops else (leaving[-1] if leaving else members[-1]),
    )
    o = g.nodes[out_id]
    modules = g.graph.get("modules", {}) or {}
    first, last = paths[0], paths[-1]
    path_type = modules.get(first)
    label = _label(first)
    if len(paths) > 1:  # "layers.0–23": paths of a run all match _INDEXED
        label += "–" + last.rpartition(".")[2]
    parent = first.rpartition(".")[0] or None
    return {
        "kind": "module",
        "label": label,
        "name": first if len(paths) == 1 else key[2:],
        "op": None,
        "autograd": None,
        "call": None,
        "scalars": [],
        "shape": list(o.get("shape") or []),
        "dtype": o.get("dtype", ""),
        "value": o.get("value"),
        "grad": o.get("grad"),
        "backward_step": None,
        "module": parent,
        "module_type": path_type,
        "requires_grad": any(g.nodes[n].get("requires_grad") for n in members),
        "update": None,
        "nonfinite": any(g.nodes[n].get("nonfinite") for n in members),
        "n_outputs": 1,
        "path": first,
        "members": list(paths),
        "folded": len(members),
        "repeat": len(paths),
        "output": out_id,
        "ops": len(ops),
        "params": sum(1 for n in members if g.nodes[n]["kind"] == "param"),
    }


def _merged_edge(g: nx.DiGraph, es: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    if len(es) == 1:
        u, v, d = es[0]
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


def _signature(g: nx.DiGraph, path: str, members: list[str]) -> tuple[Any, ...]:
    """The inner structure of one module: its nodes' kinds, ops, shapes and wiring."""
    local = {n: i for i, n in enumerate(members)}
    nodes = tuple(
        (
            (d.get("module") or "")[len(path):],
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


def _repeated_runs(g: nx.DiGraph, groups: dict[str, list[str]], pairs: set[tuple[str, str]]) -> dict[str, list[str]]:
    """Runs of >= 2 folded siblings ``base.i``, ``base.i+1``, ... that match and chain."""
    by_base: dict[str, list[tuple[int, str]]] = {}
    for p in groups:
        m = _INDEXED.match(p)
        if m:
            by_base.setdefault(m.group("base"), []).append((int(m.group("index")), p))
    runs: dict[str, list[str]] = {}
    for base, items in sorted(by_base.items()):
        items.sort()
        sigs = {p: _signature(g, p, groups[p]) for _, p in items}
        run: list[tuple[int, str]] = []

        def close() -> None:
            if len(run) >= 2:
                runs[f"m:{base}.{run[0][0]}-{run[-1][0]}"] = [p for _, p in run]

        for i, p in items:
            if run and not (
                i == run[-1][0] + 1 and sigs[p] == sigs[run[-1][1]] and ("m:" + run[-1][1], "m:" + p) in pairs
            ):
                close()
                run = []
            run.append((i, p))
        close()
    return runs


# --------------------------------------------------------------------------- choosing a view


def fold_for_display(g: nx.DiGraph, options: FoldOptions | None = None) -> FoldResult:
    """The graph to draw: ``g`` itself when small, else a folded view.

    With ``options.depth`` set, that depth is used; otherwise, when ``g`` has more
    than ``options.max_nodes`` nodes, the deepest depth whose diagram fits (depth 0
    if none does). Expand paths are checked even when nothing needs folding.
    """
    options = options or FoldOptions()
    n = g.number_of_nodes()
    paths = module_paths(g)
    deepest = max((path_depth(p) for p in paths), default=0)
    if options.depth is None and (options.max_nodes <= 0 or n <= options.max_nodes):
        if options.expand:
            fold(g, deepest, options.expand, options.repeats)  # validates the paths
        return FoldResult(g, None, n, expand=options.expand)
    if options.depth is not None:
        depth, auto = options.depth, False
        view = fold(g, depth, options.expand, options.repeats)
    else:
        auto = True
        depth, view = 0, fold(g, 0, options.expand, options.repeats)
        # Deeper than a light block (see the graph's ``light``) the view would only grow
        # elsewhere while the blocks stay shut: stop there.
        top = min([deepest] + [path_depth(p) for p in g.graph.get("light") or ()])
        for d in range(1, top):
            candidate = fold(g, d, options.expand, options.repeats)
            if candidate.number_of_nodes() <= options.max_nodes:
                depth, view = d, candidate
    if view.number_of_nodes() == n and depth >= deepest:
        return FoldResult(g, None, n, expand=options.expand)
    return FoldResult(view, depth, n, auto=auto, suggestion=_suggestion(view), expand=options.expand)


def _suggestion(view: nx.DiGraph) -> str | None:
    """The folded module standing for the most nodes (first on ties)."""
    best: tuple[int, str] | None = None
    for _, d in view.nodes(data=True):
        if d.get("kind") == "module" and (best is None or d["folded"] > best[0]):
            best = (d["folded"], d["path"])
    return best[1] if best else None

