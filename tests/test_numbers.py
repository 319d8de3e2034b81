"""Numeric correctness: every value and gradient in the graph equals what autograd computes.

The oracle is built independently of explain-graph: the same computation is run again
without the tool (same seed / a deep copy of the model made before tracing), written
op by op with ``retain_grad()`` on every intermediate. Graph nodes are then matched to
the oracle's autograd nodes by walking both graphs from the loss (the graph's edge
``slots`` index the oracle node's ``next_functions``), and every node's ``value`` and
``grad`` is compared with the oracle tensors, exactly where the computation is identical
(the helpers are in ``oracle.py``).
"""

from __future__ import annotations

import copy
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import networkx as nx
import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, given, settings
from oracle import (
    FULL,
    Keep,
    assert_value,
    check_against_oracle,
    check_all,
    check_backward_steps,
    check_edge_grads,
    jtensor,
    leaf_node,
    leaf_values,
    make_mlp,
    map_graph,
    no_keep,
    nodes_by_op,
    oracle_linear,
    oracle_mlp,
    programs,
    run_program,
)

from explainer.graph import build_graph, dumps, loads
from explainer.run import RunOptions, run_script
from explainer.trace import Tracer, trace_call

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "explainer" / "examples"

# --------------------------------------------------------------------------- tests


def test_mlp_every_node_matches_autograd():
    model = make_mlp()
    ref = copy.deepcopy(model)
    torch.manual_seed(1)
    x = torch.randn(5, 3)
    y = torch.randn(5, 2)
    criterion = nn.MSELoss()

    with Tracer() as tr:
        pred = model(x)
        loss = criterion(pred, y)
        loss.backward()
    g = build_graph(tr.result, max_elements=FULL)

    keep = Keep()
    out = oracle_mlp(ref, x, keep)
    assert torch.equal(out, ref(x))  # the op-by-op oracle is the model's own computation
    oloss = keep(torch.nn.functional.mse_loss(out, y))
    oloss.backward()
    m = check_all(g, oloss, keep, inputs=[x, y])

    assert g.nodes[g.graph["loss"]]["value"] == oloss.item()
    assert g.nodes[g.graph["loss"]]["grad"] == 1.0
    assert len([n for n, d in g.nodes(data=True) if d["kind"] == "param"]) == 4
    # parameters are matched to the right names: each param node is that parameter
    names = {id(p): name for name, p in ref.named_parameters()}
    for nid, fn in m.items():
        d = g.nodes[nid]
        if d["kind"] == "param":
            assert d["label"].endswith(names[id(fn.variable)]), (d["label"], names[id(fn.variable)])
    # and the user's grads are the oracle's, bit for bit
    for p, q in zip(model.parameters(), ref.parameters()):
        assert torch.equal(p.grad, q.grad)
    assert torch.equal(loss, oloss)


def test_graph_numbers_survive_json_round_trip():
    model = make_mlp()
    x = torch.randn(2, 3)
    with Tracer() as tr:
        loss = model(x).pow(2).mean()
        loss.backward()
    g = build_graph(tr.result, max_elements=FULL)
    g2 = loads(dumps(g))
    for n, d in g.nodes(data=True):
        for key in ("value", "grad", "update"):
            assert g2.nodes[n][key] == d[key], (n, key)
    for u, v, e in g.edges(data=True):
        assert g2.edges[u, v]["grad"] == e["grad"]
    # and the float32 values are exactly the model's
    w = leaf_node(g2, "model.0.weight")
    assert torch.equal(jtensor(w["value"]), model[0].weight.detach().double())
    assert torch.equal(jtensor(w["grad"]), model[0].weight.grad.double())


def test_summaries_describe_large_tensors():
    """Above max_elements (graph) or keep_elements (trace) the summary matches the tensor."""
    torch.manual_seed(0)
    lin = nn.Linear(40, 30)
    ref = copy.deepcopy(lin)
    x = torch.randn(8, 40)
    for keep_elements in (4096, 100):
        lin.zero_grad()
        with Tracer(keep_elements=keep_elements) as tr:
            out = lin(x)
            loss = (out * out).mean()
            loss.backward()
        g = build_graph(tr.result)  # default max_elements=16
        keep = Keep()
        ref.zero_grad()
        o = oracle_linear(ref, x, keep)
        sq = keep(o * o)
        ol = keep(sq.mean())
        ol.backward()
        mapping = map_graph(g, ol)
        by_fn = {t.grad_fn: t for t in keep.tensors}
        n_summaries = 0
        for nid, fn in mapping.items():
            d = g.nodes[nid]
            t = fn.variable if d["kind"] == "param" else by_fn[fn]
            for key, ot in (("value", t), ("grad", t.grad)):
                v = d[key]
                if t.numel() > 16:
                    assert isinstance(v, dict) and v["summary"], (nid, key)
                    n_summaries += 1
                    assert v["dtype"] == "float32"
                assert_value(v, ot, f"{nid} {key} keep={keep_elements}")
        assert n_summaries >= 6
        check_backward_steps(g)


def test_tensor_used_twice_edge_grads():
    """h feeds h*h (one edge, two slots) and h.sin(): each edge carries its own share."""
    torch.manual_seed(3)
    w = torch.randn(3, 2, requires_grad=True)
    x = torch.randn(4, 3)

    def f(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h = x @ w
        loss = (h * h + h.sin()).sum()
        loss.backward()
        return loss

    g = build_graph(trace_call(f, w, x), max_elements=FULL)

    # oracle with retain_grad
    w0 = w.detach().clone().requires_grad_(True)
    keep = Keep()
    h = keep(x @ w0)
    hh = keep(h * h)
    hs = keep(h.sin())
    s = keep(hh + hs)
    ol = keep(s.sum())
    ol.backward()
    check_all(g, ol, keep, inputs=[x])
    assert torch.equal(jtensor(leaf_node(g, "w")["grad"]), w.grad.double())

    # oracle per use: three copies of h, each used once
    h1, h2, h3 = (h.detach().clone().requires_grad_(True) for _ in range(3))
    (h1 * h2 + h3.sin()).sum().backward()
    [hid] = [n for n in g.nodes if g.nodes[n]["op"] == "mm"]
    [mul] = nodes_by_op(g, "mul")
    [sin] = nodes_by_op(g, "sin")
    assert g.edges[hid, mul]["slots"] == [0, 1]
    assert_value(g.edges[hid, mul]["grad"], h1.grad + h2.grad, "edge h->mul")
    assert_value(g.edges[hid, sin]["grad"], h3.grad, "edge h->sin")
    assert_value(g.nodes[hid]["grad"], h1.grad + h2.grad + h3.grad, "h grad", exact=False)


# ---------------------------------------------------------- finite differences

EXPRESSIONS = {
    "sin(a*b + exp(a))": lambda a, b: (a * b + a.exp()).sin(),
    "(tanh(a)*b - a/b)^2": lambda a, b: (a.tanh() * b - a / b).pow(2),
    "sigmoid(a*b)*log1p(a*a) + cos(b)": lambda a, b: torch.sigmoid(a * b) * torch.log1p(a * a) + b.cos(),
}
POINTS = [(0.3, -1.2), (1.1, 0.7), (-0.8, 2.5)]


def _traced_scalar(fn: Callable, av: float, bv: float) -> tuple[nx.DiGraph, torch.Tensor, torch.Tensor]:
    a = torch.tensor(av, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(bv, dtype=torch.float64, requires_grad=True)

    def step(a: torch.Tensor, b: torch.Tensor) -> None:
        loss = fn(a, b)
        loss.backward()

    g = build_graph(trace_call(step, a, b), max_elements=FULL)
    return g, a, b


@pytest.mark.parametrize("name", list(EXPRESSIONS))
@pytest.mark.parametrize("point", POINTS)
def test_scalar_leaf_grads_match_central_differences(name, point):
    fn = EXPRESSIONS[name]
    g, a, b = _traced_scalar(fn, *point)
    av, bv = point
    f = lambda x, y: float(fn(torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)))  # noqa: E731
    h = 1e-6
    fd_a = (f(av + h, bv) - f(av - h, bv)) / (2 * h)
    fd_b = (f(av, bv + h) - f(av, bv - h)) / (2 * h)
    ga, gb = leaf_node(g, "a")["grad"], leaf_node(g, "b")["grad"]
    assert isinstance(ga, float) and isinstance(gb, float)
    assert math.isclose(ga, fd_a, rel_tol=1e-6, abs_tol=1e-7), (ga, fd_a)
    assert math.isclose(gb, fd_b, rel_tol=1e-6, abs_tol=1e-7), (gb, fd_b)
    assert g.nodes[g.graph["loss"]]["value"] == f(av, bv)
    assert leaf_node(g, "a")["value"] == av and leaf_node(g, "b")["value"] == bv
    # the whole graph against a plain autograd run
    keep = Keep()
    a0 = torch.tensor(av, dtype=torch.float64, requires_grad=True)
    b0 = torch.tensor(bv, dtype=torch.float64, requires_grad=True)
    loss = _keep_all(fn, a0, b0, keep)
    loss.backward()
    check_all(g, loss, keep)


def _keep_all(fn: Callable, a: torch.Tensor, b: torch.Tensor, keep: Keep) -> torch.Tensor:
    """Run ``fn`` keeping every intermediate: a TorchFunctionMode that only retains grads."""

    class Retain(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            out = func(*args, **(kwargs or {}))
            if isinstance(out, torch.Tensor) and out.grad_fn is not None:
                keep(out)
            return out

    with Retain():
        return fn(a, b)


def test_leaf_used_twice_edges_match_per_use_oracle():
    """sin(a*b + exp(a)): a's two edges carry b*cos(u) and exp(a)*cos(u), summing to a.grad."""
    av, bv = 0.3, -1.2
    g, a, b = _traced_scalar(EXPRESSIONS["sin(a*b + exp(a))"], av, bv)
    a1 = torch.tensor(av, dtype=torch.float64, requires_grad=True)
    a2 = torch.tensor(av, dtype=torch.float64, requires_grad=True)
    b1 = torch.tensor(bv, dtype=torch.float64, requires_grad=True)
    (a1 * b1 + a2.exp()).sin().backward()
    an = [n for n, d in g.nodes(data=True) if d["label"] == "a"][0]
    [mul] = nodes_by_op(g, "mul")
    [exp] = nodes_by_op(g, "exp")
    assert g.edges[an, mul]["grad"] == float(a1.grad)
    assert g.edges[an, exp]["grad"] == float(a2.grad)
    assert g.nodes[an]["grad"] == float(a1.grad + a2.grad) == float(a.grad)
    u = av * bv + math.exp(av)
    assert math.isclose(g.edges[an, mul]["grad"], bv * math.cos(u), rel_tol=1e-12)
    assert math.isclose(g.edges[an, exp]["grad"], math.exp(av) * math.cos(u), rel_tol=1e-12)


def test_gradcheck_sanity_of_the_oracle():
    fn = EXPRESSIONS["sin(a*b + exp(a))"]
    a = torch.tensor([0.3, 1.1, -0.8], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([-1.2, 0.7, 2.5], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: fn(a, b), (a, b), eps=1e-6, atol=1e-6)
    # and the oracle's analytic gradient is the closed form
    fn(a, b).sum().backward()
    u = a * b + a.exp()
    torch.testing.assert_close(a.grad, (b + a.exp()) * u.cos())
    torch.testing.assert_close(b.grad, a * u.cos())


# ------------------------------------------------------ backward order property


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs, values=leaf_values)
def test_backward_steps_are_reverse_topological(program, values):
    leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]

    def step(*leaves: torch.Tensor) -> None:
        loss = run_program(program, list(leaves), no_keep)
        loss.backward()

    g = build_graph(trace_call(step, *leaves), max_elements=FULL)
    check_backward_steps(g)
    check_edge_grads(g)

    keep = Keep()
    oracle_leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
    loss = run_program(program, oracle_leaves, keep)
    loss.backward()
    check_against_oracle(g, loss, keep.tensors)
    for t, o in zip(leaves, oracle_leaves):
        assert (t.grad is None) == (o.grad is None)
        if t.grad is not None:
            assert torch.equal(t.grad, o.grad)


def test_backward_steps_are_the_engine_order():
    """The steps are the order in which autograd really ran the nodes (seen by our own hooks)."""
    model = make_mlp(n_out=3)
    ref = copy.deepcopy(model)
    x = torch.randn(4, 3)
    y = torch.tensor([0, 2, 1, 2])
    with Tracer() as tr:
        loss = nn.CrossEntropyLoss()(model(x), y)
        loss.backward()
    g = build_graph(tr.result)
    check_backward_steps(g)

    oloss = nn.CrossEntropyLoss()(ref(x), y)
    fns, stack = [], [oloss.grad_fn]
    while stack:
        fn = stack.pop()
        if fn not in fns:
            fns.append(fn)
            stack.extend(c for c, _ in fn.next_functions if c is not None)
    order: list = []
    handles = [fn.register_prehook(lambda grads, fn=fn: order.append(fn)) for fn in fns]
    oloss.backward()
    for h in handles:
        h.remove()
    assert len(order) == len(fns)
    m = map_graph(g, oloss)
    for nid, fn in m.items():
        assert g.nodes[nid]["backward_step"] == order.index(fn) + 1, (nid, g.nodes[nid]["label"])
    labels = [g.nodes[n]["label"] for n in g.graph["backward_order"]]
    assert labels[:2] == ["loss", "log_softmax"]


# ------------------------------------------------------------ training unchanged

PLAIN_RUN = (
    "import sys, runpy, torch\n"
    "torch.set_num_threads(1)\n"
    "torch.manual_seed(0)\n"
    "runpy.run_path(sys.argv[1], run_name='__main__')\n"
)


def test_linear_regression_unchanged_by_tracing(capsys):
    """The lecture's 200-epoch script ends with bit-identical w, b with and without the tool."""
    script = EXAMPLES / "linear_regression.py"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONIOENCODING="utf-8")
    plain = subprocess.run(
        [sys.executable, "-c", PLAIN_RUN, str(script)], capture_output=True, text=True, timeout=240, env=env, cwd=ROOT
    )
    assert plain.returncode == 0, plain.stderr

    capsys.readouterr()
    result = run_script(script, options=RunOptions(run_to_end=True, seed=0))
    traced = capsys.readouterr().out

    final = [line for line in plain.stdout.splitlines() if line.startswith("학습된 w, b:")]
    assert len(final) == 1
    assert final[0] in traced.splitlines()
    assert traced == plain.stdout  # every epoch's printed loss too
    assert not result.stopped_early

    # The same loop replicated here: the trace's losses are the real ones, all 200 of them.
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    x = torch.tensor([[1.0], [2.0], [3.0]])
    y = torch.tensor([[3.0], [6.0], [9.0]])
    losses, first = [], None
    for epoch in range(200):
        loss = nn.MSELoss()(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        if epoch == 0:
            first = {k: (p.detach().clone(), p.grad.clone()) for k, p in model.named_parameters()}
        optimizer.step()
        if epoch == 0:
            after = {k: p.detach().clone() for k, p in model.named_parameters()}
        losses.append(loss.item())
    assert result.losses == losses
    assert final[0] == f"학습된 w, b: {model.weight.item()} {model.bias.item()}"

    g = build_graph(result.trace)
    assert g.graph["losses"] == losses
    assert g.graph["optimizer"]["name"] == "SGD" and g.graph["optimizer"]["hyper"]["lr"] == 0.05
    for name in ("weight", "bias"):
        d = leaf_node(g, f"model.{name}")
        before, grad = first[name]
        assert_value(d["value"], before, name)
        assert_value(d["grad"], grad, name + " grad")
        assert d["update"]["lr"] == 0.05
        assert_value(d["update"]["before"], before, name + " before")
        assert_value(d["update"]["after"], after[name], name + " after")
    assert g.nodes[g.graph["loss"]]["value"] == losses[0]


def test_trace_call_leaves_results_unchanged():
    """Tracing a step in-process gives the same grads, update and later training as without."""
    model = make_mlp()
    ref = copy.deepcopy(model)
    x, y = torch.randn(6, 3), torch.randn(6, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    ropt = torch.optim.Adam(ref.parameters(), lr=0.01)

    def train(m: nn.Module, o: torch.optim.Optimizer, n: int) -> list[float]:
        out = []
        for _ in range(n):
            o.zero_grad()
            loss = nn.functional.mse_loss(m(x), y)
            loss.backward()
            o.step()
            out.append(loss.item())
        return out

    with Tracer(step=2):
        l1 = train(model, opt, 3)
    l1 += train(model, opt, 2)
    l2 = train(ref, ropt, 5)
    assert l1 == l2
    for p, q in zip(model.parameters(), ref.parameters()):
        assert torch.equal(p, q)
        assert torch.equal(opt.state[p]["exp_avg_sq"], ropt.state[q]["exp_avg_sq"])


# ---------------------------------------------- in-place ops, buffers, randomness


def test_inplace_relu_keeps_each_nodes_own_value():
    """nn.ReLU(inplace=True) overwrites addmm's output: addmm still shows its own output
    (the pre-ReLU numbers) and relu shows the ReLU output, as a non-in-place run computes."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(inplace=True), nn.Linear(4, 2))
    ref = copy.deepcopy(model)
    x, y = torch.randn(5, 3), torch.randn(5, 2)
    with Tracer() as tr:
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
    g = build_graph(tr.result, max_elements=FULL)

    keep = Keep()
    out = oracle_mlp(ref, x, keep)  # the same numbers, out of place
    oloss = keep(nn.functional.mse_loss(out, y))
    oloss.backward()
    relu_nodes = [n for n, d in g.nodes(data=True) if d["autograd"] == "ReluBackward0"]
    assert len(relu_nodes) == 1 and g.nodes[relu_nodes[0]]["op"] in ("relu", "relu_"), [
        (n, g.nodes[n]["op"]) for n in relu_nodes
    ]
    check_all(g, oloss, keep, inputs=[x, y])


def test_inplace_op_on_an_intermediate():
    """h = x @ w; h.mul_(3): the mm node shows h before the multiply, mul shows after."""
    w = torch.tensor([[0.5, -1.0], [2.0, 0.25]], requires_grad=True)
    x = torch.tensor([[1.0, 2.0], [-1.0, 0.5], [3.0, -2.0]])

    def f(w: torch.Tensor) -> None:
        h = x @ w
        h.mul_(3)
        loss = h.tanh().sum()
        loss.backward()

    g = build_graph(trace_call(f, w), max_elements=FULL)
    keep = Keep()
    w0 = w.detach().clone().requires_grad_(True)
    h = keep(x @ w0)
    h3 = keep(h * 3)
    loss = keep(keep(h3.tanh()).sum())
    loss.backward()
    check_all(g, loss, keep, inputs=[x])


def test_buffer_shows_the_value_the_op_read():
    """BatchNorm in training mode reads running_mean/var and then updates them in place:
    the buffer nodes show what went into the op (zeros and ones), not the updated stats."""
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(3)
    ref = copy.deepcopy(bn)
    x = torch.randn(4, 3)
    with Tracer() as tr:
        loss = bn(x).pow(2).sum()
        loss.backward()
    g = build_graph(tr.result, max_elements=FULL)
    assert not torch.equal(bn.running_mean, torch.zeros(3))  # the forward did update them

    keep = Keep()
    rm, rv = ref.running_mean.clone(), ref.running_var.clone()
    out = keep(nn.functional.batch_norm(x, ref.running_mean, ref.running_var, ref.weight, ref.bias, training=True))
    oloss = keep(keep(out.pow(2)).sum())
    oloss.backward()
    check_all(g, oloss, keep, inputs=[x])
    buffers = {d["label"]: d["value"] for _, d in g.nodes(data=True) if d["kind"] == "buffer"}
    assert set(buffers) == {"bn.running_mean", "bn.running_var"}
    assert_value(buffers["bn.running_mean"], rm, "running_mean as read")
    assert_value(buffers["bn.running_var"], rv, "running_var as read")


def test_dropout_mask_and_grads():
    """Dropout draws the same mask with and without the tool (same seed), grads follow it."""
    model = nn.Sequential(nn.Linear(3, 6), nn.Dropout(0.5), nn.Linear(6, 1))
    ref = copy.deepcopy(model)
    x = torch.randn(4, 3)
    torch.manual_seed(11)
    with Tracer() as tr:
        loss = model(x).pow(2).mean()
        loss.backward()
    g = build_graph(tr.result, max_elements=FULL)

    keep = Keep()
    torch.manual_seed(11)
    h = oracle_linear(ref[0], x, keep)
    d = keep(nn.functional.dropout(h, 0.5, training=True))
    out = oracle_linear(ref[2], d, keep)
    oloss = keep(keep(out.pow(2)).mean())
    oloss.backward()
    mask = (d != 0).float() * 2.0
    check_all(g, oloss, keep, inputs=[x, mask])
    for p, q in zip(model.parameters(), ref.parameters()):
        assert torch.equal(p.grad, q.grad)


def test_multi_output_op_edges():
    """chunk: the node shows output 0; each edge carries the grad of the output it reads."""
    w = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)

    def f(w: torch.Tensor) -> None:
        a, b = (w * 1.5).chunk(2)
        loss = (b * 3).sum() + (a * a).sum()
        loss.backward()

    g = build_graph(trace_call(f, w), max_elements=FULL)
    check_backward_steps(g)
    check_edge_grads(g)
    [split] = [n for n, d in g.nodes(data=True) if d["autograd"] == "SplitBackward0"]
    d = g.nodes[split]
    assert d["n_outputs"] == 2
    assert d["value"] == [1.5, 3.0] and d["grad"] == [3.0, 6.0]  # output 0: a, and 2*a
    by_nr = {e["output_nr"]: e["grad"] for _, _, e in g.out_edges(split, data=True)}
    assert by_nr == {0: [3.0, 6.0], 1: [3.0, 3.0]}
    assert leaf_node(g, "w")["grad"] == [4.5, 9.0, 4.5, 4.5] == (w.grad).tolist()


def test_backward_with_explicit_gradient():
    """y.backward(v) on a non-scalar y: y's grad is v, the leaf's is the vector-Jacobian product."""
    w = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
    v = torch.tensor([3.0, 5.0, -1.0])

    def f(w: torch.Tensor) -> None:
        y = w.exp() * w
        y.backward(v)

    g = build_graph(trace_call(f, w), max_elements=FULL)
    root = g.nodes[g.graph["loss"]]
    assert root["grad"] == v.tolist()
    wd = w.detach()
    assert_value(root["value"], wd.exp() * wd, "y")
    assert_value(leaf_node(g, "w")["grad"], v * (wd.exp() * (1 + wd)), "w.grad", exact=False)
    check_backward_steps(g)
    check_edge_grads(g)
