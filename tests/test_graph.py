"""The graph model: schema, stable ids, JSON round trip, value encoding."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import lecture_graph

from explainer.errors import SchemaError
from explainer.graph import SCHEMA, dumps, loads
from explainer.values import TensorValue


def test_schema_attributes_and_kinds() -> None:
    g = lecture_graph()
    assert g.graph["schema"] == SCHEMA
    labels = {d["label"]: d for _, d in g.nodes(data=True)}
    assert set(labels) == {"model.weight", "model.bias", "x", "y", "pred", "loss", "t"}
    assert labels["model.weight"]["kind"] == "param"
    assert labels["x"]["kind"] == "input" and labels["y"]["kind"] == "input"
    assert labels["loss"]["kind"] == "loss" and labels["loss"]["op"] == "mse_loss"
    assert labels["pred"]["op"] == "addmm" and labels["pred"]["call"] == "linear"
    assert labels["pred"]["autograd"] == "AddmmBackward0"
    assert labels["pred"]["module"] == "model" and labels["loss"]["module"] == "criterion"
    assert g.graph["modules"] == {"criterion": "MSELoss", "model": "Linear"}
    required = {"kind", "label", "op", "shape", "dtype", "value", "grad", "backward_step", "module"}
    for _, d in g.nodes(data=True):
        assert required <= set(d)
    # edges point forward, into the loss
    assert g.out_degree(g.graph["loss"]) == 0
    assert nx.is_directed_acyclic_graph(g)


def test_values_grads_and_update_match_autograd() -> None:
    g = lecture_graph()
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    w0, b0 = model.weight.detach().clone(), model.bias.detach().clone()
    x = torch.tensor([[1.0], [2.0], [3.0]])
    y = torch.tensor([[3.0], [6.0], [9.0]])
    pred = model(x)
    pred.retain_grad()
    loss = nn.MSELoss()(pred, y)
    loss.backward()
    by = {d["label"]: d for _, d in g.nodes(data=True)}
    assert by["loss"]["value"] == pytest.approx(loss.item(), rel=0, abs=0)
    assert by["loss"]["grad"] == 1.0
    np.testing.assert_array_equal(np.array(by["pred"]["value"]), pred.detach().numpy())
    np.testing.assert_array_equal(np.array(by["pred"]["grad"]), pred.grad.numpy())
    np.testing.assert_array_equal(np.array(by["model.weight"]["grad"]), model.weight.grad.numpy())
    np.testing.assert_array_equal(np.array(by["model.bias"]["grad"]), model.bias.grad.numpy())
    upd = by["model.weight"]["update"]
    np.testing.assert_array_equal(np.array(upd["before"]), w0.numpy())
    np.testing.assert_allclose(np.array(upd["after"]), (w0 - 0.05 * model.weight.grad).numpy(), rtol=0, atol=0)
    assert upd["lr"] == 0.05
    assert g.graph["optimizer"]["name"] == "SGD" and g.graph["optimizer"]["hyper"]["lr"] == 0.05
    np.testing.assert_array_equal(np.array(by["model.bias"]["update"]["before"]), b0.numpy())


def test_backward_order_starts_at_loss_and_respects_edges() -> None:
    g = lecture_graph()
    order = g.graph["backward_order"]
    assert order[0] == g.graph["loss"]
    step = {n: i + 1 for i, n in enumerate(order)}
    for n in order:
        assert g.nodes[n]["backward_step"] == step[n]
    for u, v, d in g.edges(data=True):
        if d["grad"] is not None:
            assert step[v] < step[u], "a node's gradient is computed before it is passed on"
    for _, d in g.nodes(data=True):
        if d["kind"] == "input":
            assert d["backward_step"] is None and d["grad"] is None


def test_ids_are_stable_across_runs() -> None:
    a, b = lecture_graph(seed=0), lecture_graph(seed=1)
    assert list(a.nodes) == list(b.nodes)
    assert [a.nodes[n]["label"] for n in a] == [b.nodes[n]["label"] for n in b]
    assert list(a.edges) == list(b.edges)
    assert all(n.startswith("n") and n[1:].isdigit() for n in a)


def test_json_round_trip_is_equal_and_strict() -> None:
    g = lecture_graph()
    text = dumps(g)
    json.loads(text)  # strict JSON
    assert "NaN" not in text and "Infinity" not in text
    back = loads(text)
    assert nx.utils.graphs_equal(g, back)
    assert dumps(back) == text


def test_summary_above_max_elements() -> None:
    g = lecture_graph(max_elements=2)
    x = next(d for _, d in g.nodes(data=True) if d["label"] == "x")
    assert x["value"]["summary"] is True
    assert x["value"]["shape"] == [3, 1]
    assert x["value"]["min"] == 1.0 and x["value"]["max"] == 3.0 and x["value"]["mean"] == 2.0
    assert x["value"]["norm"] == pytest.approx(np.sqrt(14.0))
    assert x["value"]["head"] == [1.0, 2.0, 3.0]


def test_tensor_value_encoding_of_nonfinite() -> None:
    v = TensorValue((3,), "float32", data=np.array([1.0, np.nan, -np.inf], dtype=np.float32))
    assert v.to_json() == [1.0, "nan", "-inf"]
    assert v.n_nonfinite == 2
    s = v.to_json(max_elements=1)
    assert s["nan"] == 1 and s["inf"] == 1
    assert TensorValue((), "float32", data=np.array(2.5, dtype=np.float32)).to_json() == 2.5


def test_loads_rejects_other_json(tmp_path) -> None:
    with pytest.raises(SchemaError):
        loads('{"nodes": []}')
    with pytest.raises(SchemaError):
        loads("not json")
