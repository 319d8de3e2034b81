"""The oracle helpers of the number tests: autograd run again without the tool, matched to the graph.

The oracle is built independently of explain-graph: the same computation is run again
without the tool (same seed / a deep copy of the model made before tracing), written
op by op with ``retain_grad()`` on every intermediate. Graph nodes are then matched to
the oracle's autograd nodes by walking both graphs from the loss (the graph's edge
``slots`` index the oracle node's ``next_functions``), and every node's ``value`` and
``grad`` is compared with the oracle tensors, exactly where the computation is identical.

Also: random straight-line programs (`programs`, `leaf_values`, `run_program`) for the
property tests of the backward order. Used by test_numbers.py and test_engine_order.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import networkx as nx
import torch
import torch.nn as nn
from hypothesis import strategies as st

FULL = 10**9  # max_elements that keeps every number in the graph

# --------------------------------------------------------------------------- helpers


def jtensor(v: Any) -> torch.Tensor:
    """A graph JSON value (number or nested lists; "nan"/"inf" strings) as float64."""
    assert not isinstance(v, dict), f"expected all numbers, got a summary: {v}"
    assert v is not None, "expected a value, got null"

    def conv(x: Any) -> Any:
        if isinstance(x, list):
            return [conv(e) for e in x]
        return float(x)  # float("nan"), float("-inf") work for the schema's strings

    return torch.tensor(conv(v), dtype=torch.float64)


def assert_value(
    v: Any, t: torch.Tensor | None, what: str = "", exact: bool = True, rtol: float = 1e-6, atol: float = 1e-9
) -> None:
    """Graph JSON value ``v`` equals tensor ``t`` (exactly, or within tolerance)."""
    assert t is not None, f"{what}: the oracle has no tensor (graph has {v!r})"
    t = t.detach().to(torch.float64).cpu()
    if isinstance(v, dict):
        assert_summary(v, t, what)
        return
    got = jtensor(v)
    assert tuple(got.shape) == tuple(t.shape), f"{what}: shape {tuple(got.shape)} != oracle {tuple(t.shape)}"
    if exact:
        torch.testing.assert_close(got, t, rtol=0, atol=0, equal_nan=True, msg=lambda m: f"{what}: {m}")
    else:
        torch.testing.assert_close(got, t, rtol=rtol, atol=atol, equal_nan=True, msg=lambda m: f"{what}: {m}")


def assert_summary(v: dict, t: torch.Tensor, what: str = "") -> None:
    """A summary dict describes tensor ``t`` (given as float64)."""
    assert v["summary"] is True, what
    assert v["shape"] == list(t.shape), what
    flat = t.reshape(-1)
    finite = flat[torch.isfinite(flat)]
    assert v["nan"] == int(torch.isnan(flat).sum()), what
    assert v["inf"] == int(torch.isinf(flat).sum()), what
    assert float(v["min"]) == float(finite.min()), f"{what}: min"
    assert float(v["max"]) == float(finite.max()), f"{what}: max"
    assert math.isclose(float(v["mean"]), float(flat.mean()), rel_tol=1e-5, abs_tol=1e-6), (
        f"{what}: mean {v['mean']} vs {float(flat.mean())}"
    )
    assert math.isclose(float(v["norm"]), float(flat.norm()), rel_tol=1e-5), (
        f"{what}: norm {v['norm']} vs {float(flat.norm())}"
    )
    head = [float(x) for x in v["head"]]
    assert head == flat[: len(head)].tolist() and len(head) == min(6, flat.numel()), f"{what}: head {head}"


class Keep:
    """The oracle's bookkeeping: ``keep(t)`` retains t's grad and remembers it."""

    def __init__(self) -> None:
        self.tensors: list[torch.Tensor] = []

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        if t.requires_grad and t.grad_fn is not None:
            t.retain_grad()
        self.tensors.append(t)
        return t


def no_keep(t: torch.Tensor) -> torch.Tensor:
    return t


def map_graph(g: nx.DiGraph, loss: torch.Tensor) -> dict[str, Any]:
    """Graph node id -> the oracle's autograd node, walking both graphs from the loss.

    Checks on the way that the graph's autograd class matches the oracle's, that every
    gradient input of every oracle node is an edge of the graph (and nothing more), and
    that the graph has exactly the oracle's autograd nodes.
    """
    assert loss.grad_fn is not None
    root = g.graph["loss"]
    m: dict[str, Any] = {root: loss.grad_fn}
    queue = [root]
    while queue:
        nid = queue.pop()
        fn = m[nid]
        d = g.nodes[nid]
        assert d["autograd"] == fn.name().split("::")[-1], (
            f"{nid} ({d['label']}): graph says {d['autograd']}, autograd has {fn.name()}"
        )
        covered: set[int] = set()
        for src, _, e in g.in_edges(nid, data=True):
            if g.nodes[src]["kind"] in ("input", "buffer"):
                continue
            for slot in e["slots"]:
                child, nr = fn.next_functions[slot]
                assert child is not None, f"edge {src}->{nid} slot {slot}: autograd has no input there"
                assert e["output_nr"] == nr, f"edge {src}->{nid}: output_nr {e['output_nr']} != {nr}"
                covered.add(slot)
                if src in m:
                    assert m[src] is child, f"{src} maps to two different autograd nodes"
                else:
                    m[src] = child
                    queue.append(src)
        wanted = {i for i, (c, _) in enumerate(fn.next_functions) if c is not None}
        assert covered == wanted, (
            f"{nid} ({d['label']}): graph edges cover slots {sorted(covered)}, autograd has {sorted(wanted)}"
        )
    # one graph node per oracle autograd node, and every non-input graph node mapped
    reach: dict[int, Any] = {}
    stack = [loss.grad_fn]
    while stack:
        fn = stack.pop()
        if id(fn) in reach:
            continue
        reach[id(fn)] = fn
        stack.extend(c for c, _ in fn.next_functions if c is not None)
    assert sorted(id(f) for f in m.values()) == sorted(reach), "graph and autograd have different node sets"
    unmapped = [n for n, d in g.nodes(data=True) if d["kind"] not in ("input", "buffer") and n not in m]
    assert not unmapped, f"graph nodes with no autograd counterpart: {unmapped}"
    return m


def check_against_oracle(
    g: nx.DiGraph,
    loss: torch.Tensor,
    tensors: Iterable[torch.Tensor],
    inputs: Iterable[torch.Tensor] = (),
    leaf_before: dict[int, torch.Tensor] | None = None,
    exact: bool = True,
) -> dict[str, Any]:
    """Every node's value and grad equals the oracle's; every input node is one of ``inputs``.

    ``tensors``: the oracle's intermediates (with ``retain_grad``), including the loss.
    ``leaf_before``: id(leaf) -> the leaf's value when backward ran (default: its value now).
    Call after the oracle's backward and before anything changes its leaves.
    """
    m = map_graph(g, loss)
    by_fn = {}
    for t in tensors:
        if t.grad_fn is not None:
            by_fn.setdefault((t.grad_fn, t.output_nr), t)
    for nid, fn in m.items():
        d = g.nodes[nid]
        what = f"{nid} ({d['kind']} {d['label']})"
        if d["kind"] in ("param", "leaf"):
            var = fn.variable
            before = (leaf_before or {}).get(id(var), var)
            assert_value(d["value"], before, what + " value", exact)
            assert_value(d["grad"], var.grad, what + " grad", exact)
        else:
            t = by_fn.get((fn, 0))
            assert t is not None, f"{what}: the oracle kept no tensor for {fn.name()}"
            assert d["shape"] == list(t.shape), what
            assert_value(d["value"], t, what + " value", exact)
            assert_value(d["grad"], t.grad, what + " grad", exact)
    # input nodes: each is one of the expected constants, and each constant is shown
    inputs = list(inputs)
    found = [False] * len(inputs)
    for nid, d in g.nodes(data=True):
        if d["kind"] != "input":
            continue
        assert d["grad"] is None, nid
        hits = [
            i
            for i, t in enumerate(inputs)
            if list(t.shape) == d["shape"] and torch.equal(jtensor(d["value"]), t.double())
        ]
        assert hits, f"input node {nid} ({d['label']}) value {d['value']} is none of the expected inputs"
        for i in hits:
            found[i] = True
    assert all(found), (
        f"expected inputs missing from the graph: {[tuple(t.shape) for t, f in zip(inputs, found) if not f]}"
    )
    return m


def check_edge_grads(g: nx.DiGraph) -> None:
    """The gradients a node sends to its consumers' edges sum to the node's grad.

    An edge from an input carries no grad. With one consumer using the tensor once the
    edge's grad is the node's grad exactly (autograd passes it through). A node with
    several outputs (split) shows output 0: only the edges from output 0 add up to it.
    """
    for u, d in g.nodes(data=True):
        outs = list(g.out_edges(u, data=True))
        if d["kind"] in ("input", "buffer"):
            assert all(e["grad"] is None for *_, e in outs), u
            continue
        if not outs:
            assert u == g.graph["loss"], f"{u} has no consumer but is not the loss"
            continue
        assert all(e["grad"] is not None for *_, e in outs), f"{u}: an outgoing edge has no grad"
        outs = [o for o in outs if o[2]["output_nr"] == 0]
        if not outs:
            continue
        total = sum(jtensor(e["grad"]) for *_, e in outs)
        node_grad = jtensor(d["grad"])
        assert total.shape == node_grad.shape, u
        if len(outs) == 1 and len(outs[0][2]["slots"]) == 1:
            torch.testing.assert_close(total, node_grad, rtol=0, atol=0)
        else:
            torch.testing.assert_close(total, node_grad, rtol=1e-6, atol=1e-7)


def check_backward_steps(g: nx.DiGraph) -> None:
    """backward_step is a reverse topological order of the nodes with gradients; loss is 1."""
    steps = {n: d["backward_step"] for n, d in g.nodes(data=True) if d["backward_step"] is not None}
    with_grad = {n for n, d in g.nodes(data=True) if d["grad"] is not None}
    assert set(steps) == with_grad, f"nodes with a step {sorted(steps)} != nodes with a grad {sorted(with_grad)}"
    assert steps[g.graph["loss"]] == 1
    assert sorted(steps.values()) == list(range(1, len(steps) + 1)), f"steps are not 1..N: {sorted(steps.values())}"
    for n, s in steps.items():
        for c in g.successors(n):
            assert c in steps, f"{n} has a step but its consumer {c} has none"
            assert s > steps[c], f"{n} (step {s}) is not after its consumer {c} (step {steps[c]})"
    assert g.graph["backward_order"] == sorted(steps, key=steps.get)
    for u, v, e in g.edges(data=True):
        if e["grad"] is not None:
            assert e["backward_step"] == steps[v], (u, v)
    assert nx.is_directed_acyclic_graph(g)


def check_all(
    g: nx.DiGraph, loss: torch.Tensor, keep: Keep, inputs: Iterable[torch.Tensor] = (), **kw: Any
) -> dict[str, Any]:
    m = check_against_oracle(g, loss, keep.tensors, inputs, **kw)
    check_edge_grads(g)
    check_backward_steps(g)
    return m


def nodes_by_op(g: nx.DiGraph, op: str) -> list[str]:
    return [n for n, d in g.nodes(data=True) if d["op"] == op and d["kind"] in ("op", "loss")]


def leaf_node(g: nx.DiGraph, label: str) -> dict:
    hits = [d for _, d in g.nodes(data=True) if d["kind"] in ("param", "leaf") and d["label"] == label]
    assert len(hits) == 1, f"{label}: {len(hits)} leaf nodes"
    return hits[0]


# ------------------------------------------------------------- models and oracles


def make_mlp(seed: int = 0, n_in: int = 3, hidden: int = 4, n_out: int = 2) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))


def oracle_linear(lin: nn.Linear, x: torch.Tensor, keep: Callable) -> torch.Tensor:
    """F.linear on a 2-d input, op by op: addmm(bias, x, weight.t())."""
    wt = keep(lin.weight.t())
    return keep(torch.addmm(lin.bias, x, wt))


def oracle_mlp(model: nn.Sequential, x: torch.Tensor, keep: Callable) -> torch.Tensor:
    h = oracle_linear(model[0], x, keep)
    r = keep(torch.relu(h))
    return oracle_linear(model[2], r, keep)


# ------------------------------------------------------ random programs

UNARY = ["sin", "tanh", "sigmoid", "exp_half", "square", "pow2", "neg", "sum", "mean"]
BINARY = ["add", "sub", "mul", "safe_div"]


def run_program(program: list[tuple], leaves: list[torch.Tensor], keep: Callable) -> torch.Tensor:
    pool = list(leaves)
    for op, i, j in program:
        x = pool[i % len(pool)]
        y = pool[j % len(pool)]
        if op == "sin":
            out = keep(x.sin())
        elif op == "tanh":
            out = keep(x.tanh())
        elif op == "sigmoid":
            out = keep(torch.sigmoid(x))
        elif op == "exp_half":
            out = keep(keep(x * 0.5).exp())
        elif op == "square":
            out = keep(x * x)
        elif op == "pow2":
            out = keep(x.pow(2))
        elif op == "neg":
            out = keep(-x)
        elif op == "sum":
            out = keep(x.sum())
        elif op == "mean":
            out = keep(x.mean())
        elif op == "add":
            out = keep(x + y)
        elif op == "sub":
            out = keep(x - y)
        elif op == "mul":
            out = keep(x * y)
        elif op == "safe_div":
            out = keep(x / keep(keep(y * y) + 1.0))
        else:  # pragma: no cover
            raise AssertionError(op)
        pool.append(out)
    return keep(pool[-1].sum())


programs = st.lists(
    st.tuples(st.sampled_from(UNARY + BINARY), st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=7
)
leaf_values = st.lists(
    st.lists(st.floats(-1.5, 1.5, allow_nan=False, allow_infinity=False), min_size=2, max_size=2),
    min_size=1,
    max_size=3,
)
