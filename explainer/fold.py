"""Module-level views of a large graph: fold modules into single nodes.

A pure function over the graph model (`explainer.graph`): a graph goes in, a new,
smaller graph with the same schema comes out, so every renderer can draw either.

* `fold` shows every module deeper than ``depth`` (``model`` has depth 1,
  ``model.layers.0`` depth 3) as one node of ``kind="module"``, except the modules
  on the way to an ``expand`` path, which stay open. Runs of identical sibling
  blocks (``layers.0`` ... ``layers.23``: same class, same inner structure, each
  feeding the next) become one node with a ``repeat`` count. A module that ran more
  than once (see the nodes' ``calls``) folds per call (``drop#1``, ``drop#2``), and a
  run of identical calls (an encoder over 8 tokens) into one node, ``encoder#1–8``,
  with its count; its parameters join that node, or stay visible when the calls
  stay apart.
* `fold_for_display` picks the depth automatically when the graph has more than
  ``max_nodes`` nodes (or uses the one asked for) and says how to open it again. When
  even depth 0 leaves more than twice ``max_nodes`` (a graph with no modules to fold),
  it caps the view (`explainer.cap`): the nodes nearest the loss, and one box for the rest.

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
    The module paths (``model.layers.3``) or calls (``model.encoder#3``) it stands for.
``output``
    The id, in the full graph, of the node whose value and gradient it shows.
``ops``, ``params``
    How many operations and parameters it holds.

Four or more inputs of one shape that feed only one folded box (a sequence split into
29 steps) are drawn as one input node, id ``"in:" + the first one's id``, labelled
``input[:, 0:1] … input[:, 28:]``, with ``repeat`` and ``members`` (their ids).

Ids are ``"m:" + path`` (``"m:model.layers.0"``; ``"m:model.layers.0-23"`` for a
repeated run; ``"m:model.drop#2"`` for a call, ``"m:encoder#1-8"`` for a run of calls), so the same model folds to the same ids, run after run; nodes that
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
The loss node is never folded: the diagram always ends at it. Folding per call keeps
the view acyclic, and a run whose box would lie on a cycle (calls fed back their own
later output through other boxes) is left as separate calls; only parameters of no
known module joined to the one module using them could still close one, so renderers
do not assume the folded graph is acyclic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import networkx as nx

from .cap import cap
from .defaults import DEFAULT_MAX_NODES
from .errors import FoldError
from .repeats import (
    INDEXED,
    acyclic_runs,
    box_node,
    call_path,
    merged_edge,
    repeated_runs,
    stacked_inputs,
    stacked_node,
)

# DEFAULT_MAX_NODES: about what one slide holds readably (a 77-node ResNet view is five
# slides tall), and ``dot`` needs well under a second.


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
    capped: int = 0  # nodes drawn as one box because folding could not make the view small (`explainer.cap`)

    @property
    def nodes(self) -> int:
        return self.graph.number_of_nodes()

    @property
    def folded(self) -> bool:
        return (self.depth is not None or self.capped > 0) and self.nodes < self.full_nodes

    @property
    def message(self) -> str | None:
        """One line for the terminal: what was folded and how to open it."""
        if not self.folded:
            return None
        if self.capped:
            return (
                f"too large to draw readably ({self.full_nodes:,} nodes, no modules to fold them into): the diagram "
                f"shows the {self.nodes - 1:,} nodes nearest the loss and {self.capped:,} earlier ones as one box "
                "(graph.json has them all; --max-nodes 0 draws everything)"
            )
        assert self.depth is not None
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
    # Modules that ran more than once fold per call ("drop#1", "drop#2"): one box for
    # all calls would draw a cycle and hide which call's value it shows.
    multi = {p for n in nodes for p in (g.nodes[n].get("calls") or {})}

    # 1. Each node -> the outermost closed module call it lies in (or itself).
    rep: dict[str, str] = {}
    groups: dict[str, list[str]] = {}  # group key ("model.fc1", "model.drop#2") -> members
    shared: dict[str, list[str]] = {}  # path of a module run several times -> its parameters and buffers
    for n in nodes:
        d = g.nodes[n]
        rep[n] = n
        module = d.get("module")
        if not module or d.get("kind") == "loss":
            continue
        calls = d.get("calls") or {}
        for p in _prefixes(module):
            if (path_depth(p) > depth or p in light) and p not in opened:
                if p in multi and p not in calls:
                    shared.setdefault(p, []).append(n)  # belongs to every call: placed below
                    break
                key = f"{p}#{calls[p]}" if p in calls else p
                rep[n] = "m:" + key
                groups.setdefault(key, []).append(n)
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

    # 2. Runs of identical sibling blocks each feeding the next, and of identical calls of
    # one module; none that would draw a cycle.
    runs: dict[str, list[str]] = {}  # group key -> member keys
    if repeats:
        pairs = {(rep[u], rep[v]) for u, v in g.edges if rep[u] != rep[v]}
        runs = acyclic_runs(g, rep, groups, repeated_runs(g, groups, pairs))
    group_of: dict[str, str] = {}
    for key, members_ in runs.items():
        for p in members_:
            group_of["m:" + p] = key
    for n in nodes:
        rep[n] = group_of.get(rep[n], rep[n])
    # The parameters of a module run several times join its calls when they fold into one run.
    for p, members in shared.items():
        keys = {rep[n] for n in nodes if rep[n] != n and call_path(rep[n][2:]) == p}
        if len(keys) == 1:
            for n in members:
                rep[n] = next(iter(keys))

    # Many pieces of data feeding one folded box (a sequence split into 29 steps): one node.
    rep.update(stacked_inputs(g, rep))

    # 3. Nodes, in order of first appearance.
    out = nx.DiGraph()
    out.graph.update(g.graph)
    members_of: dict[str, list[str]] = {}
    for n in nodes:
        members_of.setdefault(rep[n], []).append(n)
    for key, members in members_of.items():
        if key in g and members == [key]:
            out.add_node(key, **dict(g.nodes[key]))
        elif key.startswith("in:"):
            out.add_node(key, **stacked_node(g, members))
        else:
            out.add_node(key, **_module_node(g, key, runs.get(key) or [key[2:]], members))

    # 4. Edges: one per pair of sides, with the gradient where it is well defined.
    crossing: dict[tuple[str, str], list[tuple[str, str, dict[str, Any]]]] = {}
    for u, v, d in g.edges(data=True):
        ru, rv = rep[u], rep[v]
        if ru != rv:
            crossing.setdefault((ru, rv), []).append((u, v, d))
    for (ru, rv), es in sorted(
        crossing.items(), key=lambda kv: (pos[members_of[kv[0][1]][0]], pos[members_of[kv[0][0]][0]])
    ):
        out.add_edge(ru, rv, **merged_edge(g, es))

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
    for _, v, d in out.edges(data=True):
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
    path = call_path(first)
    path_type = modules.get(path)
    label = _label(path) + first[len(path) :]  # "drop#2" for a call of a module run several times
    if len(paths) > 1:  # "layers.0–23", "encoder#1–8": keys of a run all match INDEXED
        label += "–" + INDEXED.match(last).group("index")  # type: ignore[union-attr]
    parent = path.rpartition(".")[0] or None
    return box_node(g, members, out_id) | {
        "label": label,
        "name": first if len(paths) == 1 else key[2:],
        "intended_inf": bool(o.get("intended_inf")),
        "module": parent,
        "module_type": path_type,
        "requires_grad": any(g.nodes[n].get("requires_grad") for n in members),
        # The calls of the modules around it (a module inside the 3rd call of an encoder).
        "calls": {
            p: c for p, c in (o.get("calls") or {}).items() if parent and (p == parent or parent.startswith(p + "."))
        },
        "path": path,
        "members": list(paths),
        "repeat": len(paths),
    }


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
        return _capped(FoldResult(g, None, n, expand=options.expand), options)
    return _capped(FoldResult(view, depth, n, auto=auto, suggestion=_suggestion(view), expand=options.expand), options)


#: A view still more than this many times ``max_nodes`` after folding is capped (`explainer.cap`).
CAP_FACTOR = 2


def _capped(result: FoldResult, options: FoldOptions) -> FoldResult:
    """``result``, or its view capped when folding left it too large to draw (automatic views only)."""
    if options.depth is not None or options.expand or result.nodes <= CAP_FACTOR * options.max_nodes:
        return result
    view = cap(result.graph, options.max_nodes)
    return replace(result, graph=view, capped=view.graph.get("fold", {}).get("capped", 0))


def _suggestion(view: nx.DiGraph) -> str | None:
    """The folded module standing for the most nodes (first on ties)."""
    best: tuple[int, str] | None = None
    for _, d in view.nodes(data=True):
        if d.get("kind") == "module" and (best is None or d["folded"] > best[0]):
            best = (d["folded"], d["path"])
    return best[1] if best else None
