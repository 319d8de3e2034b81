"""The lecture's losses and optimizers give correct graphs.

Each loss of the lecture's table (MSE, L1, BCE after sigmoid, BCEWithLogits,
CrossEntropy, a hand-written focal loss, KLDiv on log_softmax) is traced on a small
model and every node is compared with an op-by-op autograd oracle run on a deep copy.
Each optimizer the lecture names (SGD, SGD with momentum, Adam, RMSprop, Adagrad) is
traced and the parameter nodes' ``update`` is compared with the same optimizer run
without the tool, and with the update rule written out by hand.
"""

from __future__ import annotations

import copy
import importlib.util
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from explainer.graph import build_graph
from explainer.trace import Tracer

_spec = importlib.util.spec_from_file_location("_numbers_helpers", Path(__file__).with_name("test_numbers.py"))
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)

FULL = H.FULL
N, D_IN = 6, 3

# --------------------------------------------------------------------------- losses


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, keep: Callable = H.no_keep
) -> torch.Tensor:
    """The lecture's focal loss -(1 - p)^gamma log p, written by hand (``keep`` is the oracle's)."""
    logp_all = keep(F.log_softmax(logits, dim=1))
    logp = keep(keep(logp_all.gather(1, target[:, None])).squeeze(1))
    p = keep(logp.exp())
    weight = keep(keep(1 - p) ** gamma)
    return keep(keep(keep(-weight) * logp).mean())


class Case:
    """One loss: its targets, the user's criterion, the op-by-op oracle, the ops it shows,
    and the constant tensors (from the target) that appear as input nodes."""

    def __init__(
        self,
        name: str,
        n_out: int,
        target: Callable[[], torch.Tensor],
        user: Callable,
        oracle: Callable,
        ops: list[str],
        extra_inputs: Callable = lambda y: [y],
    ):
        self.name, self.n_out, self.target, self.user, self.oracle, self.ops = name, n_out, target, user, oracle, ops
        self.extra_inputs = extra_inputs


def _kl_oracle(o: torch.Tensor, y: torch.Tensor, keep: Callable) -> torch.Tensor:
    lsm = keep(F.log_softmax(o, dim=1))
    prod = keep(y * lsm)
    diff = keep(torch.xlogy(y, y) - prod)
    total = keep(diff.sum())
    return keep(total / o.shape[0])


CASES = {
    "mse": Case(
        "mse",
        2,
        lambda: torch.randn(N, 2),
        lambda o, y: nn.MSELoss()(o, y),
        lambda o, y, keep: keep(F.mse_loss(o, y)),
        ["mse_loss"],
    ),
    "l1": Case(
        "l1",
        2,
        lambda: torch.randn(N, 2),
        lambda o, y: nn.L1Loss()(o, y),
        lambda o, y, keep: keep(keep(keep(o - y).abs()).mean()),
        ["sub", "abs", "mean"],
    ),
    "bce": Case(
        "bce",
        1,
        lambda: torch.randint(0, 2, (N, 1)).float(),
        lambda o, y: nn.BCELoss()(torch.sigmoid(o), y),
        lambda o, y, keep: keep(F.binary_cross_entropy(keep(torch.sigmoid(o)), y)),
        ["sigmoid", "binary_cross_entropy"],
    ),
    "bce_logits": Case(
        "bce_logits",
        1,
        lambda: torch.randint(0, 2, (N, 1)).float(),
        lambda o, y: nn.BCEWithLogitsLoss()(o, y),
        lambda o, y, keep: keep(F.binary_cross_entropy_with_logits(o, y)),
        ["binary_cross_entropy_with_logits"],
    ),
    "cross_entropy": Case(
        "cross_entropy",
        3,
        lambda: torch.randint(0, 3, (N,)),
        lambda o, y: nn.CrossEntropyLoss()(o, y),
        lambda o, y, keep: keep(F.nll_loss(keep(F.log_softmax(o, dim=1)), y)),
        ["log_softmax", "nll_loss"],
    ),
    "focal": Case(
        "focal",
        3,
        lambda: torch.randint(0, 3, (N,)),
        lambda o, y: focal_loss(o, y),
        lambda o, y, keep: focal_loss(o, y, keep=keep),
        ["log_softmax", "gather", "exp", "pow", "mean"],
        extra_inputs=lambda y: [y[:, None]],
    ),
    "kl_div": Case(
        "kl_div",
        3,
        lambda: torch.softmax(torch.randn(N, 3), dim=1),
        lambda o, y: nn.KLDivLoss(reduction="batchmean")(F.log_softmax(o, dim=1), y),
        _kl_oracle,
        ["log_softmax", "mul", "sub", "sum", "div"],
        extra_inputs=lambda y: [y, torch.xlogy(y, y)],
    ),
}


def _reference_loss(name: str, o: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each loss from its textbook formula (the lecture's table), to check the oracles."""
    if name == "mse":
        return ((y - o) ** 2).mean()
    if name == "l1":
        return (y - o).abs().mean()
    if name in ("bce", "bce_logits"):
        p = 1 / (1 + torch.exp(-o))
        return (-(y * torch.log(p) + (1 - y) * torch.log(1 - p))).mean()
    p = torch.exp(o) / torch.exp(o).sum(1, keepdim=True)
    if name == "cross_entropy":
        return -torch.log(p[torch.arange(len(y)), y]).mean()
    if name == "focal":
        pt = p[torch.arange(len(y)), y]
        return (-((1 - pt) ** 2) * torch.log(pt)).mean()
    if name == "kl_div":
        return (y * torch.log(y / p)).sum() / len(y)
    raise AssertionError(name)


@pytest.mark.parametrize("name", list(CASES))
def test_loss_graph_matches_autograd(name):
    case = CASES[name]
    model = H.make_mlp(seed=0, n_in=D_IN, hidden=4, n_out=case.n_out)
    ref = copy.deepcopy(model)
    torch.manual_seed(1)
    x = torch.randn(N, D_IN)
    y = case.target()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    with Tracer() as tr:
        pred = model(x)
        loss = case.user(pred, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    g = build_graph(tr.result, max_elements=FULL)

    keep = H.Keep()
    out = H.oracle_mlp(ref, x, keep)
    oloss = case.oracle(out, y, keep)
    before = {id(p): p.detach().clone() for p in ref.parameters()}
    oloss.backward()
    H.check_all(g, oloss, keep, inputs=[x, *case.extra_inputs(y)], leaf_before=before)

    # the oracle is the real loss: nn's value, and the textbook formula
    with torch.no_grad():
        assert torch.equal(oloss, case.user(ref(x), y))
        torch.testing.assert_close(
            oloss.double(),
            _reference_loss(name, out.detach().double(), y if not y.is_floating_point() else y.double()),
            rtol=1e-5,
            atol=1e-6,
        )
    loss_node = g.nodes[g.graph["loss"]]
    assert loss_node["value"] == loss.item() == oloss.item()
    assert loss_node["kind"] == "loss" and loss_node["grad"] == 1.0

    # the loss's own ops are in the graph, in order along the backward
    ops_in_order = [g.nodes[n]["op"] for n in g.graph["backward_order"]]
    positions = [len(ops_in_order) - 1 - ops_in_order[::-1].index(op) for op in case.ops]
    assert positions == sorted(positions, reverse=True), (case.ops, ops_in_order)

    # every parameter got an SGD update with the grad shown in the graph
    for p, q in zip(model.parameters(), ref.parameters()):
        assert torch.equal(p.grad, q.grad)
    for _, d in g.nodes(data=True):
        if d["kind"] == "param":
            up = d["update"]
            assert up["lr"] == 0.1
            assert up["before"] == d["value"]
            torch.testing.assert_close(
                H.jtensor(up["after"]), H.jtensor(d["value"]) - 0.1 * H.jtensor(d["grad"]), rtol=0, atol=1e-7
            )


def test_cross_entropy_shows_log_softmax_and_nll_loss():
    """The lecture's CE example: log_softmax and nll_loss are two op nodes, with their numbers."""
    pred = torch.tensor([[2.0, 0.5, -1.0]], requires_grad=True)
    target = torch.tensor([0])
    with Tracer() as tr:
        loss = nn.CrossEntropyLoss()(pred, target)
        loss.backward()
    g = build_graph(tr.result)
    ops = {d["op"]: (n, d) for n, d in g.nodes(data=True) if d["kind"] in ("op", "loss")}
    assert set(ops) == {"log_softmax", "nll_loss"}
    lsm_id, lsm = ops["log_softmax"]
    nll_id, nll = ops["nll_loss"]
    assert nll["kind"] == "loss" and lsm["kind"] == "op"
    assert lsm["call"] == nll["call"] == "cross_entropy"
    assert g.has_edge(lsm_id, nll_id)
    z = [2.0, 0.5, -1.0]
    lse = math.log(sum(math.exp(v) for v in z))
    expect_lsm = [v - lse for v in z]
    for got, exp in zip(lsm["value"][0], expect_lsm):
        assert math.isclose(got, exp, rel_tol=1e-6)
    assert math.isclose(nll["value"], -expect_lsm[0], rel_tol=1e-6)
    assert lsm["grad"] == [[-1.0, 0.0, 0.0]]  # d nll / d log_softmax
    soft = [math.exp(v) for v in expect_lsm]
    for got, exp in zip(H.leaf_node(g, "pred")["grad"][0], [soft[0] - 1, soft[1], soft[2]]):
        assert math.isclose(got, exp, rel_tol=1e-6)


# ----------------------------------------------------------------------- optimizers

OPTIMIZERS: dict[str, tuple[type, dict[str, Any]]] = {
    "sgd": (torch.optim.SGD, {"lr": 0.1}),
    "sgd_momentum": (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    "adam": (torch.optim.Adam, {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8}),
    "rmsprop": (torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.99}),
    "adagrad": (torch.optim.Adagrad, {"lr": 0.1}),
}


def _by_hand(name: str, p: torch.Tensor, g: torch.Tensor, hyper: dict[str, Any]) -> torch.Tensor:
    """The first update of each optimizer, written out (state starts at zero)."""
    lr = hyper["lr"]
    if name in ("sgd", "sgd_momentum"):  # momentum buffer starts as the grad
        return p - lr * g
    if name == "adam":
        b1, b2 = hyper["betas"]
        m_hat = (1 - b1) * g / (1 - b1)
        v_hat = (1 - b2) * g * g / (1 - b2)
        return p - lr * m_hat / (v_hat.sqrt() + hyper["eps"])
    if name == "rmsprop":
        v = (1 - hyper["alpha"]) * g * g
        return p - lr * g / (v.sqrt() + 1e-8)
    if name == "adagrad":
        return p - lr * g / ((g * g).sqrt() + 1e-10)
    raise AssertionError(name)


@pytest.mark.parametrize("step", [1, 2])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_update_matches_real_optimizer(name, step):
    cls, hyper = OPTIMIZERS[name]
    model = H.make_mlp(seed=2, n_in=D_IN, hidden=4, n_out=1)
    ref = copy.deepcopy(model)
    torch.manual_seed(3)
    x, y = torch.randn(N, D_IN), torch.randn(N, 1)
    criterion = nn.MSELoss()
    optimizer = cls(model.parameters(), **hyper)
    ref_opt = cls(ref.parameters(), **hyper)
    n_iters = 3

    with Tracer(step=step) as tr:
        for _ in range(n_iters):
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
    g = build_graph(tr.result, max_elements=FULL)

    losses = []
    for it in range(1, n_iters + 1):
        ref_opt.zero_grad()
        keep = H.Keep() if it == step else H.no_keep
        out = H.oracle_mlp(ref, x, keep)
        oloss = keep(F.mse_loss(out, y))
        oloss.backward()
        losses.append(oloss.item())
        if it == step:
            before = {id(p): p.detach().clone() for p in ref.parameters()}
            H.check_all(g, oloss, keep, inputs=[x, y])
            grads = {id(p): p.grad.clone() for p in ref.parameters()}
        ref_opt.step()
        if it == step:
            after = {id(p): p.detach().clone() for p in ref.parameters()}

    # the graph says which optimizer ran, with its hyper-parameters
    opt = g.graph["optimizer"]
    assert opt["name"] == cls.__name__
    for key, v in hyper.items():
        assert opt["hyper"][key] == (list(v) if isinstance(v, tuple) else v), key
    assert g.graph["step"] == step
    assert g.graph["losses"] == losses  # every backward call's loss, the tool's run = the plain run

    m = H.map_graph(g, oloss)
    n_params = 0
    for nid, fn in m.items():
        d = g.nodes[nid]
        if d["kind"] != "param":
            continue
        n_params += 1
        p = fn.variable
        up = d["update"]
        assert up is not None, nid
        assert up["lr"] == hyper["lr"]
        H.assert_value(up["before"], before[id(p)], f"{nid} before")
        H.assert_value(up["after"], after[id(p)], f"{nid} after")
        assert up["before"] == d["value"]
        if step == 1:
            H.assert_value(
                up["after"],
                _by_hand(name, before[id(p)], grads[id(p)], hyper),
                f"{nid} by hand",
                exact=False,
                rtol=1e-5,
                atol=1e-7,
            )
        assert up["after"] != up["before"]
    assert n_params == 4

    # tracing changed nothing: same parameters and optimizer state after all iterations
    for p, q in zip(model.parameters(), ref.parameters()):
        assert torch.equal(p, q)
        for k, v in ref_opt.state[q].items():
            if isinstance(v, torch.Tensor):
                assert torch.equal(optimizer.state[p][k], v), k


def test_param_groups_each_get_their_lr():
    """Two parameter groups with different learning rates: each update carries its own lr."""
    model = H.make_mlp(seed=4, n_out=1)
    ref = copy.deepcopy(model)
    x, y = torch.randn(N, D_IN), torch.randn(N, 1)
    groups = lambda m: [{"params": m[0].parameters(), "lr": 0.5}, {"params": m[2].parameters()}]  # noqa: E731
    optimizer = torch.optim.SGD(groups(model), lr=0.05, momentum=0.5)
    ref_opt = torch.optim.SGD(groups(ref), lr=0.05, momentum=0.5)
    with Tracer() as tr:
        optimizer.zero_grad()
        F.mse_loss(model(x), y).backward()
        optimizer.step()
    g = build_graph(tr.result, max_elements=FULL)
    before = [p.detach().clone() for p in ref.parameters()]
    F.mse_loss(ref(x), y).backward()
    ref_opt.step()
    names = ["model.0.weight", "model.0.bias", "model.2.weight", "model.2.bias"]
    for name, b, p, lr in zip(names, before, ref.parameters(), [0.5, 0.5, 0.05, 0.05]):
        up = H.leaf_node(g, name)["update"]
        assert up["lr"] == lr, name
        H.assert_value(up["before"], b, name)
        H.assert_value(up["after"], p, name)


def test_manual_update_is_recorded():
    """A hand-written `w -= lr * w.grad` (the lecture's θ ← θ − η·∂L/∂θ) is an update too."""
    w = torch.tensor([0.5, -1.5], requires_grad=True)
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    y = torch.tensor([1.0, 0.0])
    with Tracer() as tr:
        loss = ((x @ w - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w -= 0.1 * w.grad
    g = build_graph(tr.result)
    d = H.leaf_node(g, "w")
    w0 = torch.tensor([0.5, -1.5])
    grad = 2 * x.t() @ (x @ w0 - y) / 2
    H.assert_value(d["grad"], grad, "w.grad", exact=False)
    H.assert_value(d["update"]["before"], w0, "before")
    H.assert_value(d["update"]["after"], w.detach(), "after")
    assert g.graph["optimizer"]["name"] == "manual update"
