"""The focus panel as data: each step's cards hold the graph's own numbers, the optimizer's arithmetic adds up."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import lecture_graph

from explainer.choreography import choreograph
from explainer.focus import MAX_GRID, adam_first_step, card, update_math
from explainer.graph import build_graph
from explainer.text import fmt_number
from explainer.trace import Tracer, trace_call


def _cells(v: object) -> list[str]:
    return [fmt_number(x) for x in np.ravel(np.asarray(v, dtype=float))]


def _mlp_graph(optimizer: str = "sgd", steps: int = 1, **hyper: float):  # noqa: ANN202
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    opt = (
        torch.optim.Adam(model.parameters(), lr=0.01, **hyper)
        if optimizer == "adam"
        else torch.optim.SGD(model.parameters(), lr=0.1, **hyper)
    )
    x, y = torch.randn(5, 3), torch.randn(5, 1)
    with Tracer(step=steps) as tr:
        for _ in range(steps):
            loss = nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return build_graph(tr.result)


def test_backward_step_shows_value_arriving_and_every_gradient_sent() -> None:
    g = lecture_graph()
    ids = {d["label"]: n for n, d in g.nodes(data=True)}
    pred = next(s for s in choreograph(g) if s.kind == "backward" and s.node == ids["pred"])
    roles = [c.role for c in pred.panel]
    assert roles == ["value", "grad", "grad", "grad"]
    value, arriving, *sent = pred.panel
    assert [c for row in value.cells for c in row] == _cells(g.nodes[ids["pred"]]["value"])
    assert [c for row in arriving.cells for c in row] == _cells(g.nodes[ids["pred"]]["grad"])
    assert "arriving" in arriving.title
    for c, u in zip(sent, ("t", "model.bias")):
        assert [x for row in c.cells for x in row] == _cells(g.edges[ids[u], ids["pred"]]["grad"])
        assert f"∂L/∂{u}" in c.title
    assert "Σ_rows g" in sent[1].title  # the exact local derivative
    # a column vector stays a column; every number's cell knows its value (for its colour)
    assert [len(r) for r in arriving.cells] == [1, 1, 1]
    assert arriving.scale == pytest.approx(max(abs(v[0]) for v in g.nodes[ids["pred"]]["grad"]))


def test_every_step_has_a_panel_and_the_forward_pass_shows_no_gradient() -> None:
    g = lecture_graph()
    for s in choreograph(g):
        if s.kind in ("title", "zero_grad"):
            assert s.panel == ()
            continue
        assert s.panel, s
        if s.kind == "forward":
            assert [c.role for c in s.panel] == ["value"]


def test_large_tensors_show_their_summary_and_first_entries() -> None:
    torch.manual_seed(0)
    w = torch.randn(8, 4, requires_grad=True)
    g = build_graph(trace_call(lambda: (w * 2).sum()))
    n = next(n for n, d in g.nodes(data=True) if d["label"] == "w")
    step = next(s for s in choreograph(g) if s.kind == "backward" and s.node == n)
    c = step.panel[1]
    v = g.nodes[n]["grad"]
    assert v["summary"] and c.notes
    notes = " ".join(c.notes)
    for key in ("min", "max", "mean", "norm"):
        assert fmt_number(v[key]) in notes
    assert "8×4" in notes
    assert list(c.cells[0][:-1]) == [fmt_number(x) for x in v["head"]] and c.cells[0][-1] == "…"


def test_grids_larger_than_8x8_show_their_corner() -> None:
    c = card("grad", "big", [[float(i * 10 + j) for j in range(10)] for i in range(10)])
    assert len(c.cells) == MAX_GRID and all(len(r) == MAX_GRID for r in c.cells)
    assert c.cells[0][-1] == "…" and c.cells[-1] == ("…",) * MAX_GRID
    assert c.cells[1][:3] == ("10", "11", "12")


def test_sgd_update_is_written_out_and_adds_up() -> None:
    g = lecture_graph()
    upd = next(s for s in choreograph(g) if s.kind == "update" and g.nodes[s.node]["label"] == "model.bias")
    before, grad, step, after = upd.panel
    assert (before.role, grad.role, step.role, after.role) == ("value", "grad", "state", "update")
    d = g.nodes[upd.node]
    assert [x for r in step.cells for x in r] == _cells(-0.05 * np.asarray(d["grad"]))
    np.testing.assert_allclose(
        np.asarray(d["update"]["before"]) - 0.05 * np.asarray(d["grad"]), d["update"]["after"], rtol=1e-6
    )
    assert "η = 0.05" in upd.lines[1] or "0.05 ×" in " ".join(upd.lines)


def test_adams_first_step_shows_m_v_and_bias_correction_that_reproduce_the_update() -> None:
    g = _mlp_graph("adam")
    ups = [s for s in choreograph(g) if s.kind == "update"]
    assert ups
    for s in ups:
        titles = [c.title for c in s.panel]
        assert any(t.startswith("m = ") for t in titles) and any(t.startswith("v̂") for t in titles), titles
        assert "Adam (t = 1)" in s.lines[1]
        d = g.nodes[s.node]
        g_ = np.asarray(d["grad"], dtype=float)
        m_hat = s.numbers["parts"][next(t for t in s.numbers["parts"] if t.startswith("m̂"))]
        np.testing.assert_allclose(m_hat, g_, rtol=1e-9, atol=1e-12)  # m̂ = g on the first step


def test_adam_after_earlier_steps_does_not_pretend() -> None:
    """Later steps carry moments the trace never saw: the panel shows the step taken, not invented m and v."""
    g = _mlp_graph("adam", steps=3)
    for s in (s for s in choreograph(g) if s.kind == "update"):
        titles = [c.title for c in s.panel]
        assert not any(t.startswith("m = ") for t in titles)
        assert any(t.startswith("Δ") for t in titles)
        d = g.nodes[s.node]
        delta = s.numbers["parts"][next(t for t in s.numbers["parts"] if t.startswith("Δ"))]
        np.testing.assert_allclose(
            delta, np.asarray(d["update"]["after"]) - np.asarray(d["update"]["before"]), rtol=1e-9
        )


def test_adam_with_weight_decay_and_adamw_reproduce_after() -> None:
    before, grad = np.array([0.5, -1.0]), np.array([0.2, 0.3])
    for name, decoupled in (("Adam", False), ("AdamW", True)):
        p = torch.tensor(before, dtype=torch.float32, requires_grad=True)
        opt = (torch.optim.AdamW if decoupled else torch.optim.Adam)([p], lr=0.1, weight_decay=0.1)
        p.grad = torch.tensor(grad, dtype=torch.float32)
        opt.step()
        hyper = {k: (list(v) if isinstance(v, tuple) else v) for k, v in opt.param_groups[0].items() if k != "params"}
        math = adam_first_step(before.tolist(), grad.tolist(), p.detach().tolist(), hyper, name, "w")
        assert math is not None, name


def test_momentum_sgd_after_its_first_step_shows_the_step_taken() -> None:
    g = _mlp_graph("sgd", steps=2, momentum=0.9)
    for s in (s for s in choreograph(g) if s.kind == "update"):
        assert "f(" in s.lines[1]  # the optimizer's rule, not arithmetic that would not add up
        assert any(c.title.startswith("Δ") for c in s.panel)


def test_no_negative_zero() -> None:
    m = update_math([1.0, 2.0], [0.0, 1.0], [1.0, 1.9], 0.1, {"name": "SGD", "hyper": {"lr": 0.1}}, "w")
    assert [fmt_number(x) for x in np.ravel(m.parts[1][1])] == ["0", "−0.1"]
