"""`engine_order`: the CPU autograd engine's order, simulated, against autograd itself.

The trace gives the nodes of a large model's light blocks (which run without hooks)
their backward steps from this simulation; here it is checked against the order
autograd really runs, on the benchmark models and on random programs.
"""

from __future__ import annotations

import sys

import pytest
import torch
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from oracle import leaf_values, no_keep, programs, run_program

from explainer.trace.engine_order import engine_order

sys.path.insert(0, str(ROOT / "bench"))
import models  # noqa: E402


def test_a_diamond_runs_the_newer_branch_first() -> None:
    # 0 -> (1, 2) -> 3: once 0 has run, 1 and 2 are ready and 2 (sequence nr 7) is the newer.
    children = [[(1, 0), (2, 0)], [(3, 0)], [(3, 0), (-1, 0)], []]
    assert engine_order(children, [10, 5, 7, 1]) == [0, 2, 1, 3]
    assert engine_order(children, [10, 7, 5, 1]) == [0, 1, 2, 3]


def _true_order(loss: torch.Tensor) -> tuple[list[int], list[list[tuple[int, int]]], list[int]]:
    """Run backward with a pre-hook on every node: the order autograd really used.

    Returns that order (as BFS keys), each node's children and sequence numbers.
    """
    nodes, index, children = [loss.grad_fn], {loss.grad_fn: 0}, []
    for fn in nodes:
        kids = []
        for child, nr in fn.next_functions:
            if child is None:
                kids.append((-1, nr))
                continue
            if child not in index:
                index[child] = len(nodes)
                nodes.append(child)
            kids.append((index[child], nr))
        children.append(kids)
    ran: list[int] = []
    handles = [fn.register_prehook(lambda grads, k=k: ran.append(k)) for k, fn in enumerate(nodes)]
    loss.backward()
    for h in handles:
        h.remove()
    return ran, children, [fn._sequence_nr() for fn in nodes]


@pytest.mark.parametrize(
    "make",
    [models.mlp, models.small_cnn, models.resnet18, lambda: models.transformer(2)],
    ids=["mlp", "cnn", "resnet18", "transformer2"],
)
def test_engine_order_is_the_order_autograd_runs(make) -> None:
    case = make()
    loss = case.loss()
    ran, children, seq = _true_order(loss)
    assert len(ran) == len(children)
    assert engine_order(children, seq) == ran


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs, values=leaf_values)
def test_engine_order_on_random_programs(program, values) -> None:
    # Several leaves, used several times: AccumulateGrad nodes tie in the ready queue.
    leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
    loss = run_program(program, leaves, no_keep)
    ran, children, seq = _true_order(loss)
    assert engine_order(children, seq) == ran
