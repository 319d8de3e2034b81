"""Step 1 of the build (`explainer.trace.build`): what the capture noted, by node key.

The capture keys everything by autograd node; the build numbers the nodes (a BFS
from the loss, so the numbers are the same run after run) and keys everything by
number, copying the gradients the hooks held.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..values import TensorValue
from .blocks import attribute_light_ops
from .capture import Capture, copy_held
from .internals import AccumulateGrad
from .model import OptimizerInfo, ParamUpdate
from .records import OpRecord
from .tracker import ModuleStack

__all__ = ["Indexed", "index_capture"]


@dataclass
class Indexed:
    """What the capture noted, keyed by node number (0 is the loss's node)."""

    capture: Capture
    fn_nodes: list[Any]
    children: list[list[tuple[int, int]]]
    order: list[int]  # keys in the order the hooked nodes reported
    kept: set[int] | None  # keys whose numbers are kept (None: all)
    grad_in: dict[int, list[TensorValue | None]]
    grad_out: dict[int, list[TensorValue | None]]
    flowed: dict[int, tuple[bool, ...]]
    refired: set[int]
    leaf_tensor: dict[int, torch.Tensor]
    leaf_value: dict[int, TensorValue]
    leaf_had_grad: set[int]
    leaf_grad: dict[int, TensorValue | None]
    updates: dict[int, ParamUpdate]
    grads_changed: list[int]
    opt_info: OptimizerInfo | None
    fn_value: dict[tuple[int, int], TensorValue]  # (key, output_nr) -> forward value
    fn_rec: dict[int, OpRecord]
    fn_modules: dict[int, ModuleStack]
    fn_numbers: dict[int, tuple[int, ...]]  # each module's call number, as in fn_modules


def index_capture(capture: Capture) -> Indexed:
    """Step 1: the graph's keys, and what the step noted, by key."""
    if not capture.fn_nodes:
        capture.index_graph()
    index = capture.fn_index

    def by_key(noted: dict[Any, Any]) -> dict[int, Any]:
        return {index[fn]: v for fn, v in noted.items() if fn in index}

    done: dict[int, TensorValue | None] = {}  # id(HeldGrad) -> its copy
    grad_in = {k: copy_held(v, done, capture.keep) for k, v in by_key(capture.grad_in_fn).items()}
    grad_out = {k: copy_held(v, done, capture.keep) for k, v in by_key(capture.grad_out_fn).items()}
    capture.release_grads()
    step = capture.step
    fn_value, fn_rec = _forward_values(capture)
    leaf_tensor = {
        k: fn.variable
        for k, fn in enumerate(capture.fn_nodes)
        if type(fn) is AccumulateGrad and isinstance(fn.variable, torch.Tensor)
    }
    leaf_value, leaf_grad = by_key(capture.leaf_value_fn), by_key(capture.leaf_grad_fn)
    for k, var in leaf_tensor.items():
        # A light block's parameters: copied before backward and after it, by id.
        if k not in leaf_value and id(var) in capture.block_value:
            leaf_value[k] = capture.block_value[id(var)]
            leaf_grad[k] = capture.block_grad.get(id(var))
    by_id = {id(var): k for k, var in leaf_tensor.items()}
    ix = Indexed(
        capture=capture,
        fn_nodes=capture.fn_nodes,
        children=capture.children,
        order=[index[fn] for fn in capture.order_fns if fn in index],
        kept=None if capture.kept_fns is None else {index[fn] for fn in capture.kept_fns if fn in index},
        grad_in=grad_in,
        grad_out=grad_out,
        flowed=by_key(capture.flowed_fn),
        refired={index[fn] for fn in capture.refired if fn in index},
        leaf_tensor=leaf_tensor,
        leaf_value=leaf_value,
        leaf_had_grad={index[fn] for fn in capture.had_grad_fns if fn in index},
        leaf_grad=leaf_grad,
        updates={by_id[i]: u for i, u in step.updates.items() if i in by_id},
        grads_changed=[by_id[i] for i in step.changed if i in by_id],
        opt_info=step.info,
        fn_value=fn_value,
        fn_rec=fn_rec,
        fn_modules={k: rec.modules for k, rec in fn_rec.items()},
        fn_numbers={k: rec.numbers for k, rec in fn_rec.items()},
    )
    attribute_light_ops(ix.fn_nodes, ix.fn_rec, capture.calls, ix.fn_modules, ix.fn_numbers)
    return ix


def _forward_values(capture: Capture) -> tuple[dict[tuple[int, int], TensorValue], dict[int, OpRecord]]:
    """Forward values: the recorded op outputs matched to the nodes that produced them,
    then the light blocks' outputs."""
    index = capture.fn_index
    fn_value: dict[tuple[int, int], TensorValue] = {}
    fn_rec: dict[int, OpRecord] = {}
    for rec, fn, nr, val in capture.rec_outs:
        k = index.get(fn)
        if k is not None:
            fn_value.setdefault((k, nr), val)
            fn_rec.setdefault(k, rec)
    for (fn, nr), val in capture.calls.values.items():
        k = index.get(fn)
        if k is not None:
            fn_value.setdefault((k, nr), val)
    return fn_value, fn_rec
