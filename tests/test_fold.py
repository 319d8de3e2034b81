"""Folded module views: semantics against autograd, stable ids, repeated blocks, auto-fold, CLI."""

from __future__ import annotations

import html
import json
import re

import networkx as nx
import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import ROOT, run_cli

from explainer.errors import FoldError
from explainer.fold import DEFAULT_MAX_NODES, FoldOptions, fold, fold_for_display, module_paths
from explainer.graph import build_graph, dumps, loads
from explainer.render.graphviz import DiagramOptions, render_static, to_dot
from explainer.trace import Tracer

SCRIPTS = ROOT / "tests" / "scripts"


class MLP(nn.Module):
    """Uses its input twice (fc1 and the residual), so two edges enter it from one tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(3, 3)
        self.fc2 = nn.Linear(3, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(z))) + z


class Net(nn.Module):
    """An MLP inside a Sequential inside a module."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(2, 3)
        self.body = nn.Sequential(MLP(), nn.Tanh())
        self.head = nn.Linear(3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.inp(x)))


def _trace_mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> nx.DiGraph:
    """One traced MSE step of ``model`` (names come from this frame: model, x, y, loss)."""
    with Tracer() as tr:
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
    return build_graph(tr.result, max_elements=1000)


def _nested(seed: int = 0) -> tuple[nx.DiGraph, dict[str, torch.Tensor]]:
    """The traced graph, and every module output with its value and grad from plain autograd."""
    torch.manual_seed(seed)
    model = Net()
    x, y = torch.randn(4, 2), torch.randn(4, 1)
    g = _trace_mse(model, x, y)

    outputs: dict[str, torch.Tensor] = {}
    names = {m: f"model.{n}" if n else "model" for n, m in model.named_modules()}

    def keep(module: nn.Module, args: object, out: torch.Tensor) -> None:
        out.retain_grad()
        outputs[names[module]] = out

    handles = [m.register_forward_hook(keep) for m in model.modules()]
    model.zero_grad()
    nn.functional.mse_loss(model(x), y).backward()
    for h in handles:
        h.remove()
    return g, outputs


def _assert_matches(d: dict, t: torch.Tensor) -> None:
    np.testing.assert_array_equal(np.array(d["value"], dtype=np.float32), t.detach().numpy())
    np.testing.assert_array_equal(np.array(d["grad"], dtype=np.float32), t.grad.numpy())


def test_depths_fold_the_right_modules() -> None:
    g, _ = _nested()
    assert {"model", "model.inp", "model.body", "model.body.0", "model.body.0.fc1", "model.body.1"} <= set(
        module_paths(g)
    )
    kinds = lambda f: {n for n, d in f.nodes(data=True) if d["kind"] == "module"}  # noqa: E731
    f0 = fold(g, 0)
    assert kinds(f0) == {"m:model"}
    assert {d["label"] for _, d in f0.nodes(data=True)} == {"model", "x", "y", "loss"}
    assert f0.nodes["m:model"]["folded"] == sum(
        1 for _, d in g.nodes(data=True) if (d["module"] or "").startswith("model")
    )
    assert kinds(fold(g, 1)) == {"m:model.inp", "m:model.body", "m:model.head"}
    # model.body.1 (Tanh) holds one op: it stays that op, not a box around it
    assert kinds(fold(g, 2)) == {"m:model.body.0"}
    assert kinds(fold(g, 3)) == {"m:model.body.0.fc1", "m:model.body.0.fc2"}
    assert list(fold(g, 4)) == list(g)  # nothing is deeper than 4
    # --expand opens one module (and the ones around it) whatever the depth
    f = fold(g, 1, expand=["model.body.0"])
    assert kinds(f) == {"m:model.inp", "m:model.body.0.fc1", "m:model.body.0.fc2", "m:model.head"}
    for view in (f0, fold(g, 1), f):
        assert view.graph["loss"] in view and view.nodes[view.graph["loss"]]["kind"] == "loss"
        assert view.graph["fold"]["full_nodes"] == g.number_of_nodes()


def test_folded_values_and_grads_are_the_module_outputs() -> None:
    g, out = _nested()
    for depth, paths in ((0, ["model"]), (1, ["model.inp", "model.body", "model.head"]), (2, ["model.body.0"])):
        f = fold(g, depth)
        for p in paths:
            node = f.nodes["m:" + p]
            _assert_matches(node, out[p])
            assert g.nodes[node["output"]]["value"] == node["value"]


def test_edges_keep_the_gradient_that_flowed() -> None:
    g, out = _nested()
    f = fold(g, 1)
    # z = inp(x) enters the body twice (fc1 and the residual): the edge carries the sum
    e = f.edges["m:model.inp", "m:model.body"]
    assert e["folded"] == 2
    np.testing.assert_allclose(
        np.array(e["grad"], dtype=np.float32), out["model.inp"].grad.numpy(), rtol=1e-6, atol=1e-7
    )
    e = f.edges["m:model.body", "m:model.head"]
    assert e["folded"] == 1
    np.testing.assert_array_equal(np.array(e["grad"], dtype=np.float32), out["model.body"].grad.numpy())
    x = next(n for n, d in f.nodes(data=True) if d["label"] == "x")
    assert f.edges[x, "m:model.inp"]["grad"] is None and f.edges[x, "m:model.inp"]["backward_step"] is None
    # backward order: the loss first, every gradient computed before it is passed on
    order = f.graph["backward_order"]
    assert order[0] == f.graph["loss"]
    step = {n: i + 1 for i, n in enumerate(order)}
    for n, d in f.nodes(data=True):
        assert d["backward_step"] == step.get(n)
    for u, v, d in f.edges(data=True):
        if d["backward_step"] is not None:
            assert step[v] < step[u]


def test_ids_are_stable_and_json_round_trips() -> None:
    a, _ = _nested(seed=0)
    b, _ = _nested(seed=1)
    for depth in (0, 1, 2, 3):
        fa, fb = fold(a, depth), fold(b, depth)
        assert list(fa.nodes) == list(fb.nodes)
        assert list(fa.edges) == list(fb.edges)
        assert nx.utils.graphs_equal(loads(dumps(fa)), fa)
        assert to_dot(fa) == to_dot(fold(a, depth))
    # nodes that stay visible keep their full-graph ids
    assert {n for n in fold(a, 1) if not n.startswith("m:")} <= set(a)


class Block(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.fc = nn.Linear(d, d)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + torch.relu(self.fc(self.norm(h)))


class Stack(nn.Module):
    def __init__(self, widths: tuple[int, ...] = (4, 4, 4, 4)) -> None:
        super().__init__()
        self.layers = nn.ModuleList(Block(w) for w in widths)
        self.head = nn.Linear(widths[-1], 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        outs = []
        for layer in self.layers:
            h = layer(h)
            outs.append(h)
        self.outs = outs
        return self.head(h)


def _stack() -> tuple[nx.DiGraph, Stack]:
    torch.manual_seed(0)
    model = Stack()
    x, y = torch.randn(2, 4), torch.randn(2, 1)
    g = _trace_mse(model, x, y)
    model.zero_grad()
    model(x)
    for o in model.outs:
        o.retain_grad()
    nn.functional.mse_loss(model.head(model.outs[-1]), y).backward()
    return g, model


def test_repeated_blocks_show_once_with_a_count() -> None:
    g, model = _stack()
    f = fold(g, 2)
    rep = f.nodes["m:model.layers.0-3"]
    assert rep["kind"] == "module" and rep["repeat"] == 4 and rep["label"] == "layers.0–3"
    assert rep["members"] == [f"model.layers.{i}" for i in range(4)]
    assert rep["module_type"] == "Block" and rep["path"] == "model.layers.0"
    _assert_matches(rep, model.outs[-1])  # the run's output is the last block's
    assert sum(d.get("folded", 1) for _, d in f.nodes(data=True)) == g.number_of_nodes()
    assert "× 4" in to_dot(f)
    # opening one block splits the run around it
    f = fold(g, 2, expand=["model.layers.1"])
    assert "m:model.layers.0" in f and f.nodes["m:model.layers.0"]["repeat"] == 1
    assert f.nodes["m:model.layers.2-3"]["repeat"] == 2
    assert "m:model.layers.1.fc" in f
    # without repeat detection: one box per block
    assert {f"m:model.layers.{i}" for i in range(4)} <= set(fold(g, 2, repeats=False))


def test_blocks_of_another_structure_are_not_merged() -> None:
    torch.manual_seed(0)
    model = Stack(widths=(4, 4, 4))
    model.layers.append(Block(4))
    model.layers[2].fc = nn.Linear(4, 4, bias=False)  # same class, different inside
    with Tracer() as tr:
        loss = model(torch.randn(2, 4)).sum()
        loss.backward()
    f = fold(build_graph(tr.result), 2)
    assert "m:model.layers.0-1" in f and "m:model.layers.2" in f and "m:model.layers.3" in f


def test_auto_fold_threshold_and_message() -> None:
    g, _ = _stack()
    n = g.number_of_nodes()
    assert n > 20
    small = fold_for_display(g, FoldOptions(max_nodes=n))
    assert small.graph is g and not small.folded and small.message is None
    assert fold_for_display(g, FoldOptions(max_nodes=0)).graph is g
    r = fold_for_display(g, FoldOptions(max_nodes=12))
    assert r.auto and r.folded and r.nodes <= 12
    # the deepest view that fits: one level deeper does not
    assert fold(g, r.depth + 1).number_of_nodes() > 12
    assert r.message == (
        f"folded to depth {r.depth} ({n} → {r.nodes} nodes; graph.json has them all): "
        f"use --depth {r.depth + 1} or --expand {r.suggestion} to open"
    )
    assert r.suggestion == "model.layers.0"
    explicit = fold_for_display(g, FoldOptions(depth=1, max_nodes=1000))
    assert explicit.folded and not explicit.auto and explicit.depth == 1
    with pytest.raises(FoldError, match="--expand model.layer.0: no module"):
        fold_for_display(g, FoldOptions(expand=("model.layer.0",)))
    with pytest.raises(FoldError):
        fold(g, -1)


def test_folded_diagram_renders(tmp_path) -> None:
    g, _ = _stack()
    layout, paths = render_static(fold(g, 2), tmp_path, DiagramOptions(), ("svg",), positions=True)
    assert "m:model.layers.0-3" in layout.nodes
    svg = html.unescape(paths["svg"].read_text())
    assert "layers.0–3" in svg and "--expand model.layers.0" in svg


def test_cli_folds_the_diagram_but_not_graph_json(tmp_path) -> None:
    script = str(SCRIPTS / "block_stack.py")
    r = run_cli(script, "--out", str(tmp_path / "auto"), "--format", "svg")
    assert r.returncode == 0, r.stderr
    line = " ".join(r.stdout.split())
    m = re.search(
        r"folded to depth 2 \((\d+) → (\d+) nodes; graph\.json has them all\): use --depth 3 or --expand model\.layers\.0 to open",
        line,
    )
    assert m, r.stdout
    full = json.loads((tmp_path / "auto" / "graph.json").read_text())
    assert len(full["nodes"]) == int(m.group(1)) > DEFAULT_MAX_NODES
    assert not any(n["kind"] == "module" for n in full["nodes"])
    svg = html.unescape((tmp_path / "auto" / "graph.svg").read_text())
    assert "m:model.layers.0-3" in svg and "layers.0–3" in svg

    r = run_cli(
        script,
        "--out",
        str(tmp_path / "open"),
        "--format",
        "svg",
        "--depth",
        "2",
        "--expand",
        "model.layers.0",
        "--expand",
        "model.layers.3",
    )
    assert r.returncode == 0, r.stderr
    svg = html.unescape((tmp_path / "open" / "graph.svg").read_text())
    assert "m:model.layers.1-2" in svg and "m:model.layers.0.fc1" in svg and "m:model.layers.3.fc1" in svg

    r = run_cli(script, "--out", str(tmp_path / "bad"), "--expand", "model.nope")
    assert r.returncode == 2 and "--expand model.nope: no module" in r.stderr
    assert not (tmp_path / "bad").exists()


def test_cli_default_threshold_is_the_library_default() -> None:
    from explainer.cli import command

    opt = next(p for p in command.params if p.name == "max_nodes")
    assert opt.default == DEFAULT_MAX_NODES
