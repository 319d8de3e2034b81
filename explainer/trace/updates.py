"""Parameter updates: each parameter before and after the optimizer step, or a hand-written one.

`StepWatch` is told of every ``optimizer.step()`` after the captured backward (by the
session's global optimizer hooks) and keeps the parameters of each one that updates
the captured leaves (an encoder's and a decoder's optimizer both). Without an
optimizer, `manual_updates` finds leaves the script changed itself
(``w -= lr * w.grad``, also on tensors too large to keep every entry) and the
learning rate it used.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..values import TensorValue
from .model import OptimizerInfo, ParamUpdate
from .snapshots import snapshot

__all__ = ["StepWatch", "manual_updates", "same_value"]


class StepWatch:
    """The optimizer steps after the captured backward, by ``id`` of each parameter.

    Several optimizers may share the update (an encoder's and a decoder's): each step
    over captured leaves adds its parameters, until every parameter the loss reached
    has its update (`remaining`). A step that evaluates a closure (LBFGS) may contain
    the captured backward itself: then "before" is the value the closure's forward used.

    Parameters
    ----------
    leaf_values, leaf_grads
        The captured leaves' values before backward and their ``.grad`` after it,
        by ``AccumulateGrad`` node (filled by `explainer.trace.capture.Capture`).
    block_params
        The parameters of light blocks, by ``id`` (their nodes have no hooks).
    """

    def __init__(
        self,
        leaf_values: dict[Any, TensorValue],
        leaf_grads: dict[Any, TensorValue | None],
        block_params: dict[int, torch.Tensor],
        keep_elements: int,
    ) -> None:
        self.leaf_values = leaf_values
        self.leaf_grads = leaf_grads
        self.block_params = block_params
        self.keep = keep_elements
        self.optimizers: list[torch.optim.Optimizer] = []
        self.infos: list[OptimizerInfo] = []
        self.before: dict[int, TensorValue] = {}
        self.updates: dict[int, ParamUpdate] = {}  # id(parameter) -> its update
        self.changed: list[int] = []  # parameters whose .grad changed before the step (clipping)
        self.inside: torch.optim.Optimizer | None = None  # the step whose closure ran the captured backward
        #: id(leaf) -> its .grad when a hand-written update first wrote a captured leaf (`written`)
        self.grads_at_update: dict[int, TensorValue] = {}

    @property
    def optimizer(self) -> torch.optim.Optimizer | None:
        """The first optimizer that stepped over the captured leaves."""
        return self.optimizers[0] if self.optimizers else None

    @property
    def info(self) -> OptimizerInfo | None:
        """The optimizer (``Adam``; ``SGD + Adam`` when two shared the update)."""
        if not self.infos:
            return None
        names = list(dict.fromkeys(i.name for i in self.infos))
        return OptimizerInfo(" + ".join(names), self.infos[0].hyper)

    def _ours(self) -> dict[int, tuple[torch.Tensor, Any]]:
        """id(tensor) -> (tensor, its AccumulateGrad node or None) of every captured leaf."""
        out: dict[int, tuple[torch.Tensor, Any]] = {id(p): (p, None) for p in self.block_params.values()}
        out.update({id(fn.variable): (fn.variable, fn) for fn in self.leaf_values})
        return out

    def remaining(self) -> int:
        """How many parameters the loss reached (they have a gradient) have no update yet."""
        count = 0
        for key, (t, fn) in self._ours().items():
            if not isinstance(t, torch.nn.Parameter) or key in self.updates:
                continue
            reached = t.grad is not None if fn is None else self.leaf_grads.get(fn) is not None
            count += reached
        return count

    def before_step(self, optimizer: torch.optim.Optimizer) -> None:
        """A step is about to run: if it covers captured leaves, their values and gradients now."""
        if optimizer in self.optimizers:
            return
        ours = self._ours()
        hit = False
        changed: list[int] = []
        for group in optimizer.param_groups:
            for p in group["params"]:
                entry = ours.get(id(p))
                if entry is None or id(p) in self.updates:
                    continue
                hit = True
                fn = entry[1]
                if optimizer is self.inside and fn is not None:
                    self.before[id(p)] = self.leaf_values[fn]  # what the closure's forward used
                else:
                    self.before[id(p)] = snapshot(p, self.keep)
                seen = self.leaf_grads.get(fn) if fn is not None else None
                if optimizer is not self.inside and p.grad is not None and seen is not None and seen.data is not None:
                    now = snapshot(p.grad, self.keep)
                    if now.data is not None and not _same(seen.data, now.data):
                        changed.append(id(p))
        self.changed.extend(changed)
        if hit:
            self.optimizers.append(optimizer)
            self.infos.append(OptimizerInfo(type(optimizer).__name__, _hyper(optimizer.param_groups[0])))

    def after_step(self, optimizer: torch.optim.Optimizer) -> bool:
        """The step ran: each of its parameters' value after it. False if it was none of ours."""
        if optimizer not in self.optimizers:
            return False
        for group in optimizer.param_groups:
            lr = group.get("lr")
            lr = float(lr) if isinstance(lr, (int, float, torch.Tensor)) else None
            for p in group["params"]:
                if id(p) in self.before and id(p) not in self.updates:
                    self.updates[id(p)] = ParamUpdate(self.before[id(p)], snapshot(p, self.keep), lr)
        return True

    def written(self, tensors: list[torch.Tensor]) -> bool:
        """An in-place op ran outside any optimizer: if it writes a captured leaf's memory (a
        hand-written update), keep every captured leaf's ``.grad`` now, the gradient that update
        uses (clipped, maybe); True once kept."""
        mine = {fn.variable.untyped_storage().data_ptr(): fn for fn in self.leaf_values}
        if not any(_storage(t) in mine for t in tensors):
            return False
        for fn in self.leaf_values:
            g = fn.variable.grad
            if g is not None:
                self.grads_at_update[id(fn.variable)] = snapshot(g, self.keep)
        return True

    def leaves_changed(self) -> bool:
        """Has any captured leaf changed since the capture (a hand-written update)?"""
        return any(_changed(before, snapshot(fn.variable, self.keep)) for fn, before in self.leaf_values.items())


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
        if _changed(before, now):
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
        grad, before, after = _numbers(g), _numbers(upd.before), _numbers(upd.after)
        if grad is None or before is None or after is None:
            return None  # all entries compared, or a large tensor's first ones
        step = before - after
        denom = float(np.sum(grad * grad))
        if denom == 0.0 or not math.isfinite(denom):
            return None
        lr = float(np.sum(step * grad)) / denom
        scale = float(np.max(np.abs(before))) + float(np.max(np.abs(step)))
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


def same_value(a: TensorValue | None, b: TensorValue | None) -> bool:
    """Do two snapshots hold the same numbers (both missing counts as the same)?"""
    if a is None or b is None:
        return a is b
    return not _changed(a, b)


def _storage(t: torch.Tensor) -> int | None:
    try:
        return t.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):  # no storage (a tensor subclass)
        return None


def _numbers(v: TensorValue | None) -> np.ndarray | None:
    """All of a value's entries, or a summarised tensor's first ones, in float64."""
    if v is None:
        return None
    if v.data is not None:
        return v.data.astype(np.float64).reshape(-1)
    if v.head:
        return np.asarray(v.head, dtype=np.float64)
    return None


def _changed(before: TensorValue, now: TensorValue) -> bool:
    """Did a tensor change? All entries compared, or a large tensor's statistics and first entries."""
    if before.data is not None and now.data is not None:
        return not _same(before.data, now.data)
    return (before.stats, before.head) != (now.stats, now.head)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
