"""The failure classes found on real programs, each on a small case written for it.

The corpus (``tests/test_corpus.py``) checks whole programs against a plain-PyTorch
oracle; these pin down one behaviour each: intended ``-inf`` masks, values as the op
saw them, the Python API leaving the user's state alone, backward in another thread,
a bare ``except:`` around the step, views that folding cannot shrink, and the names
of data.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import networkx as nx
import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT
from torch import nn

from explainer.errors import BackwardElsewhereError, NoLossError
from explainer.fold import FoldOptions, fold_for_display
from explainer.graph import build_graph, dumps
from explainer.run import RunOptions, run_script
from explainer.trace import Tracer

SCRIPTS = ROOT / "tests" / "scripts"


def by_label(g: nx.DiGraph, label: str) -> list[dict]:
    return [d for _, d in g.nodes(data=True) if d["label"] == label]


# --------------------------------------------------------------------------- -inf and NaN


def test_an_intended_inf_mask_is_no_alarm_and_the_json_stays_strict() -> None:
    torch.manual_seed(0)
    proj = nn.Linear(4, 4)
    x = torch.randn(1, 70, 4)  # 4,900 scores: more than the trace keeps entry by entry (a summary)
    mask = torch.tril(torch.ones(70, 70)) == 0
    with Tracer() as tr:
        scores = proj(x) @ x.transpose(1, 2)
        att = scores.masked_fill(mask, float("-inf"))
        loss = F.softmax(att, dim=-1).pow(2).sum()
        loss.backward()
    g = build_graph(tr.result)  # the summary's first entries hold -inf
    text = dumps(g)  # strict JSON (no -Infinity literals): json.loads with a strict parser
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    [att_node] = by_label(g, "att")
    assert att_node["intended_inf"] and not att_node["nonfinite"]
    assert att_node["value"]["inf"] == 70 * 69 // 2 and "-inf" in att_node["value"]["head"]
    assert att_node["value"]["min"] > -1e9  # statistics of the finite entries
    assert g.graph["first_nonfinite"] is None
    assert not any(d["nonfinite"] for _, d in g.nodes(data=True))


def test_an_op_that_makes_inf_from_finite_inputs_is_an_alarm() -> None:
    w = torch.tensor([1.0, 0.0, 2.0], requires_grad=True)
    with Tracer() as tr:
        loss = torch.log(w * 1.0).sum()  # log(0) = -inf, and its gradient 1/0 = inf
        loss.backward()
    g = build_graph(tr.result)
    [log] = by_label(g, "log")
    assert log["nonfinite"] and not log["intended_inf"]
    assert g.graph["first_nonfinite"] is not None
    json.loads(dumps(g))


# --------------------------------------------------------------------------- values at the time of the op


def test_a_constant_shows_the_value_its_op_saw_not_its_value_later() -> None:
    """The GAN's label: filled with 1 for the real loss, with 0 after it."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 1), nn.Sigmoid())
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    real, fake = torch.randn(4, 3), torch.randn(4, 3)
    with Tracer() as tr:
        label = torch.full((4,), 1.0)
        err_real = F.binary_cross_entropy(net(real).view(-1), label)
        err_real.backward()
        label.fill_(0.0)
        err_fake = F.binary_cross_entropy(net(fake).view(-1), label)
        err_fake.backward()
        opt.step()
    g = build_graph(tr.result)
    [lab] = by_label(g, "label")
    assert lab["value"] == [1.0, 1.0, 1.0, 1.0]
    assert g.graph["optimizer"]["name"] == "SGD"  # the step after both backward calls
    assert any(n["key"] == "note_more_backward" for n in g.graph["note_data"])


def test_one_constant_changed_between_two_uses_is_two_nodes() -> None:
    w = torch.tensor([0.5, -1.0], requires_grad=True)
    with Tracer() as tr:
        target = torch.ones(2)
        a = ((w - target) ** 2).sum()
        target.zero_()
        loss = a + ((w - target) ** 2).sum()
        loss.backward()
    g = build_graph(tr.result)
    values = sorted(d["value"] for d in by_label(g, "target"))
    assert values == [[0.0, 0.0], [1.0, 1.0]]


# --------------------------------------------------------------------------- the Python API and the user's state


def test_a_block_without_backward_leaves_grads_and_graph_alone() -> None:
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    x, y = torch.randn(5, 3), torch.randn(5, 1)
    model.bias.grad = torch.full((1,), 7.0)  # left over from the user's earlier work
    with Tracer() as tr:
        loss = F.mse_loss(model(x), y)
    assert model.weight.grad is None and model.bias.grad.item() == 7.0
    g = build_graph(tr.result)
    assert by_label(g, "model.weight")[0]["grad"] is not None
    loss.backward()  # the user's own backward still works: the graph was kept
    ref = nn.Linear(3, 1)
    ref.load_state_dict(model.state_dict())
    F.mse_loss(ref(x), y).backward()
    assert torch.allclose(model.weight.grad, ref.weight.grad)
    assert torch.allclose(model.bias.grad, ref.bias.grad + 7.0)


def test_a_block_with_no_loss_does_not_explain_an_earlier_cells_loss() -> None:
    model = nn.Linear(3, 2)
    x = torch.randn(4, 3)
    loss = model(x).sum()  # an earlier cell  # noqa: F841
    with pytest.raises(NoLossError, match="computes no scalar loss itself"), Tracer():
        features = model(x) * 2  # noqa: F841


def test_explainer_show_without_backward_keeps_the_users_state(tmp_path: Path) -> None:
    import explainer

    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    x = torch.randn(3, 2)
    with explainer.show() as s:
        loss = model(x).pow(2).mean()
    assert model.weight.grad is None
    assert s.graph is not None
    loss.backward()
    assert model.weight.grad is not None


# --------------------------------------------------------------------------- threads and a bare except


def test_backward_in_another_thread_is_reported(tmp_path: Path) -> None:
    script = tmp_path / "thread_train.py"
    script.write_text(
        "import threading, torch\n"
        "model = torch.nn.Linear(2, 1)\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "def train():\n"
        "    loss = model(torch.randn(4, 2)).pow(2).mean()\n"
        "    opt.zero_grad(); loss.backward(); opt.step()\n"
        "t = threading.Thread(target=train, name='trainer'); t.start(); t.join()\n"
    )
    with pytest.raises(BackwardElsewhereError, match=r"another thread: trainer \(1 call\)"):
        run_script(script, [], RunOptions())


def test_modules_called_in_another_thread_do_not_join_the_trace() -> None:
    torch.manual_seed(0)
    model, other = nn.Linear(2, 1), nn.Linear(2, 2)
    x = torch.randn(3, 2)

    def busy() -> None:
        for _ in range(50):
            other(x)

    with Tracer() as tr:
        worker = threading.Thread(target=busy)
        worker.start()
        loss = model(x).pow(2).mean()
        worker.join()
        loss.backward()
    g = build_graph(tr.result)
    assert set(g.graph["modules"]) == {"model"}


def test_a_bare_except_that_swallows_the_stop_is_noted(tmp_path: Path) -> None:
    script = tmp_path / "bare.py"
    script.write_text(
        "import torch\n"
        "model = torch.nn.Linear(2, 1)\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for i in range(3):\n"
        "    try:\n"
        "        loss = model(torch.randn(4, 2)).pow(2).mean()\n"
        "        opt.zero_grad(); loss.backward(); opt.step()\n"
        "    except:\n"
        "        pass\n"
    )
    result = run_script(script, [], RunOptions())
    notes = [n for n in result.trace.notes if n.key == "note_stop_caught"]
    assert notes and notes[0].params["where"] == "bare.py:7"
    g = build_graph(result.trace)
    assert g.graph["optimizer"]["name"] == "SGD"


# --------------------------------------------------------------------------- a view folding cannot shrink


def test_a_graph_without_modules_is_capped_not_handed_to_dot_whole() -> None:
    result = run_script(SCRIPTS / "unrolled_no_modules.py", [], RunOptions())
    g = build_graph(result.trace)
    assert g.number_of_nodes() > 700
    view = fold_for_display(g, FoldOptions())
    assert view.capped > 600 and view.folded and view.nodes <= 40
    assert nx.is_directed_acyclic_graph(view.graph)
    assert "--max-nodes 0" in (view.message or "")
    # the nodes nearest the loss keep their numbers; the parameters stay visible
    assert {"W_xh", "W_hh"} <= {d["label"] for _, d in view.graph.nodes(data=True)}
    longest = nx.dag_longest_path_length(view.graph)
    assert longest <= 14


# --------------------------------------------------------------------------- names of data


def test_parts_of_named_data_and_data_computed_from_it_are_named() -> None:
    torch.manual_seed(0)
    cell = nn.GRUCell(3, 2)
    x = torch.randn(1, 4, 3)
    coef = nn.Parameter(torch.tensor(0.5))
    with Tracer() as tr:
        h = torch.zeros(1, 2)
        for t in range(2):
            h = cell(x[:, t], h)
        loss = h.sum() + (coef * x**2).sum()
        loss.backward()
    g = build_graph(tr.result)
    labels = {d["label"] for _, d in g.nodes(data=True) if d["kind"] == "input"}
    assert {"x[:, 0]", "x[:, 1]", "x"} <= labels
    [pow_node] = [d for _, d in g.nodes(data=True) if d["kind"] == "input" and d["op"] == "pow"]
    assert pow_node["scalars"] == [2]
    pid = next(n for n, d in g.nodes(data=True) if d is pow_node)
    assert [g.nodes[u]["label"] for u in g.predecessors(pid)] == ["x"]
    assert "getitem" not in labels


def test_a_custom_functions_internals_are_not_drawn_as_inputs() -> None:
    class Cube(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            sq = a * a
            ctx.save_for_backward(a)
            return sq * a

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return 3 * a * a * g

    w = torch.tensor([1.0, 2.0], requires_grad=True)
    with Tracer() as tr:
        loss = Cube.apply(w * 1.0).sum()
        loss.backward()
    g = build_graph(tr.result)
    [cube] = [n for n, d in g.nodes(data=True) if d["op"] == "Cube"]
    assert all(g.nodes[u]["kind"] != "input" for u in g.predecessors(cube))
    assert not [d for _, d in g.nodes(data=True) if d["kind"] == "input"]


def test_a_sparse_tensor_says_how_many_entries_it_stores() -> None:
    from explainer.text import value_inline

    adj = torch.sparse_coo_tensor(
        torch.tensor([[0, 1, 2], [1, 2, 0]]), torch.tensor([0.5, 2.0, 1.5]), (3, 3), check_invariants=True
    )
    w = torch.randn(3, 2, requires_grad=True)
    with Tracer() as tr:
        loss = torch.sparse.mm(adj, w).sum()
        loss.backward()
    g = build_graph(tr.result)
    [a] = by_label(g, "adj")
    assert a["value"]["sparse"] and a["value"]["nnz"] == 3
    assert a["value"]["mean"] == pytest.approx(4.0 / 3) and a["value"]["max"] == 2.0
    assert value_inline(a["value"]).startswith("sparse, 3 nonzeros")
