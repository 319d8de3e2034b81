"""Parameter updates: each parameter before and after the optimizer step, or a hand-written one.

`StepWatch` is told of every ``optimizer.step()`` after the captured backward (by the
session's global optimizer hooks) and keeps the parameters of the first one that
updates the captured leaves. Without an optimizer, `manual_updates` finds leaves the
script changed itself (``w -= lr * w.grad``) and the learning rate it used.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..values import TensorValue
from .model import OptimizerInfo, ParamUpdate
from .snapshots import snapshot
from .tracker import ModuleStack

__all__ = ["StepWatch", "manual_updates"]


class StepWatch:
    """The optimizer step after the captured backward, by autograd node of each leaf.

    Parameters
    ----------
    leaf_values, leaf_grads
        The captured leaves' values before backward and their ``.grad`` after it,
        by ``AccumulateGrad`` node (filled by `explainer.trace.capture.Capture`).
    block_stacks
        The module stacks of light blocks: their parameters have no numbers here,
        but an optimizer that updates them is still the captured step's.
    """

    def __init__(
        self,
        leaf_values: dict[Any, TensorValue],
        leaf_grads: dict[Any, TensorValue | None],
        block_stacks: list[ModuleStack],
        keep_elements: int,
    ) -> None:
        self.leaf_values = leaf_values
        self.leaf_grads = leaf_grads
        self.block_stacks = block_stacks
        self.keep = keep_elements
        self.optimizer: torch.optim.Optimizer | None = None
        self.info: OptimizerInfo | None = None
        self.before_fn: dict[Any, TensorValue] = {}
        self.updates_fn: dict[Any, ParamUpdate] = {}
        self.changed_fns: list[Any] = []  # leaves whose .grad changed before the step (clipping)

    def before_step(self, optimizer: torch.optim.Optimizer) -> None:
        """The first optimizer step over the captured leaves: their values and gradients now."""
        if self.optimizer is not None:
            return
        ours = {id(fn.variable): fn for fn in self.leaf_values}
        in_blocks = {id(p) for mods in self.block_stacks for p in mods[-1].parameters()}
        hit = False
        changed: list[Any] = []
        for group in optimizer.param_groups:
            for p in group["params"]:
                fn = ours.get(id(p))
                if fn is None:
                    hit = hit or id(p) in in_blocks
                    continue
                hit = True
                self.before_fn[fn] = snapshot(p, self.keep)
                seen = self.leaf_grads.get(fn)
                if p.grad is not None and seen is not None and seen.data is not None:
                    now = snapshot(p.grad, self.keep)
                    if now.data is not None and not _same(seen.data, now.data):
                        changed.append(fn)
        if changed:
            self.changed_fns = changed
        if hit:
            self.optimizer = optimizer
            self.info = OptimizerInfo(type(optimizer).__name__, _hyper(optimizer.param_groups[0]))

    def after_step(self, optimizer: torch.optim.Optimizer) -> None:
        ours = {id(fn.variable): fn for fn in self.before_fn}
        for group in optimizer.param_groups:
            lr = group.get("lr")
            lr = float(lr) if isinstance(lr, (int, float, torch.Tensor)) else None
            for p in group["params"]:
                fn = ours.get(id(p))
                if fn is not None:
                    self.updates_fn[fn] = ParamUpdate(self.before_fn[fn], snapshot(p, self.keep), lr)


def _hyper(group: dict[str, Any]) -> dict[str, Any]:
    """A parameter group's hyperparameters, as JSON values (tensors of one number as floats)."""
    hyper: dict[str, Any] = {}
    for key, v in group.items():
        if key == "params":
            continue
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            v = float(v)
        if isinstance(v, (bool, int, float, str)) or v is None:
            hyper[key] = v
        elif isinstance(v, tuple) and all(isinstance(e, (int, float)) for e in v):
            hyper[key] = list(v)
    return hyper


def manual_updates(
    leaf_values: dict[int, TensorValue],
    leaf_tensors: dict[int, torch.Tensor],
    leaf_grads: dict[int, TensorValue | None],
    updates: dict[int, ParamUpdate],
    keep_elements: int,
) -> OptimizerInfo | None:
    """Leaves changed after backward without an optimizer: a hand-written update.

    Adds them to ``updates`` (by node key); returns the "manual update" optimizer,
    with the learning rate when one rate explains every change, or None if nothing
    changed.
    """
    changed = False
    for k, before in leaf_values.items():
        now = snapshot(leaf_tensors[k], keep_elements)
        if before.data is not None and now.data is not None and not _same(before.data, now.data):
            updates[k] = ParamUpdate(before, now, None)
            changed = True
    if not changed:
        return None
    lr = _manual_lr(updates, leaf_grads)
    if lr is not None:
        for upd in updates.values():
            upd.lr = lr
    return OptimizerInfo("manual update", {"lr": lr} if lr is not None else {})


def _manual_lr(updates: dict[int, ParamUpdate], leaf_grads: dict[int, TensorValue | None]) -> float | None:
    """The one learning rate for which every change is ``before - lr * grad``, if any."""
    rates = []
    for k, upd in updates.items():
        g = leaf_grads.get(k)
        if g is None or g.data is None or upd.before.data is None or upd.after.data is None:
            return None
        grad = g.data.astype(np.float64)
        step = upd.before.data.astype(np.float64) - upd.after.data.astype(np.float64)
        denom = float(np.sum(grad * grad))
        if denom == 0.0 or not math.isfinite(denom):
            return None
        lr = float(np.sum(step * grad)) / denom
        scale = float(np.max(np.abs(upd.before.data))) + float(np.max(np.abs(step)))
        if not np.allclose(step, lr * grad, rtol=1e-3, atol=1e-6 * scale):
            return None
        rates.append(lr)
    if not rates or rates[0] <= 0 or any(not math.isclose(r, rates[0], rel_tol=1e-3) for r in rates):
        return None
    # float32 arithmetic blurs the rate: report the shortest number that matches it.
    for digits in range(1, 7):
        short = float(f"{rates[0]:.{digits}g}")
        if math.isclose(short, rates[0], rel_tol=1e-4):
            return short
    return float(f"{rates[0]:.6g}")


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
