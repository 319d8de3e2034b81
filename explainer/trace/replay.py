"""No backward call: explain the final scalar loss by replaying the ops that computed it.

A script (or ``with`` block) that never calls ``backward()`` is explained from its
loss: the variable named ``loss``, else the last scalar it computed. When nothing
it depends on requires grad, the recorded ops that computed it are run again with
its float leaves made to require grad (a note says which), so the trace has a graph
to back-propagate.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch

from ..errors import NoLossError, NonScalarLossError
from .internals import tree_flatten
from .modes import Switches
from .naming import ModuleNames, Names, collect_names, friendly_op
from .records import OpRecord, Records, strengthen, tensors_in
from .tracker import ModuleTracker

__all__ = ["choose_loss", "replay"]

#: Ops that bring a literal into the graph: a replay starts from their outputs.
_LITERALS = frozenset({"lift_fresh", "lift", "lift_fresh_copy"})


def choose_loss(namespace: dict[str, Any], records: Records) -> tuple[torch.Tensor, Names]:
    """The loss to explain (``namespace['loss']``, else the last scalar recorded) and the
    names in ``namespace``."""
    tensors: dict[int, str] = {}
    modules: ModuleNames = {}
    collect_names(namespace, tensors, modules)
    target = namespace.get("loss")
    if isinstance(target, torch.Tensor):
        if target.numel() != 1:
            raise NonScalarLossError(
                f"loss has shape {list(target.shape)}, not a scalar: reduce it (e.g. loss.mean()) "
                "or call loss.backward(gradient) in the script"
            )
    else:
        target = _last_scalar(records.ops)
    if target is None:
        raise NoLossError(
            "the script never calls backward() and computes no scalar loss: "
            "add loss.backward(), or name the final scalar `loss`"
        )
    return target, Names(tensors, modules)


def _last_scalar(ops: list[OpRecord]) -> torch.Tensor | None:
    for rec in reversed(ops):
        for t in rec.outs:
            if t.dim() == 0 and t.is_floating_point():
                return t
    return None


def replay(
    target: torch.Tensor,
    names: dict[int, str],
    records: Records,
    switches: Switches,
    tracker: ModuleTracker,
    active: Callable[[], AbstractContextManager[Any]],
) -> tuple[torch.Tensor, list[str], dict[int, str]]:
    """Re-run the recorded ops that computed ``target`` with float leaves requiring grad.

    The ops run inside ``active()`` (the session's modes and hooks, whose
    ``switches``, module ``tracker`` and ``records`` these are), so they are recorded
    as the forward pass. Returns the new root, the names of the leaves made to
    require grad, and the tensor names carried over to the new tensors.
    """
    needed, resolved, leaves = _needed_ops(target, names, records)
    mapping: dict[int, torch.Tensor] = {}
    made: list[str] = []
    new_names: dict[int, str] = {}
    for key, t in leaves.items():
        if t.is_floating_point():
            new = t.detach().clone().requires_grad_(True)
            made.append(names.get(key, f"a {tuple(t.shape)} tensor"))
        else:
            new = t
        mapping[key] = new
        if key in names:
            new_names[id(new)] = names[key]
    with active():
        switches.busy = False
        switches.recording = True
        records.whole = True
        for idx in sorted(needed):
            rec = needed[idx]
            flat, spec = tree_flatten(resolved[idx])
            flat = [mapping.get(id(a), a) if isinstance(a, torch.Tensor) else a for a in flat]
            args, kwargs = spec.unflatten(flat)
            prev_call = switches.call
            switches.call = rec.call
            tracker.replace(rec.modules, rec.numbers)
            try:
                out = rec.func(*args, **kwargs)
            finally:
                switches.call = prev_call
                tracker.clear()
            for old, new in zip(rec.outs, tensors_in(out)):
                mapping[id(old)] = new
                if id(old) in names:
                    new_names[id(new)] = names[id(old)]
        switches.recording = False
        records.whole = False
    return mapping[id(target)], sorted(made), new_names


def _needed_ops(
    target: torch.Tensor, names: dict[int, str], records: Records
) -> tuple[dict[int, OpRecord], dict[int, tuple[Any, Any]], dict[int, torch.Tensor]]:
    """The records on the way to ``target`` (by index), their arguments held strongly,
    and the tensors the replay starts from (by id)."""
    needed: dict[int, OpRecord] = {}
    resolved: dict[int, tuple[Any, Any]] = {}  # record -> its (args, kwargs), held strongly
    leaves: dict[int, torch.Tensor] = {}
    todo = [target]
    seen: set[int] = set()
    while todo:
        t = todo.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        hit = records.produced.get(id(t))
        is_named_leaf = t is not target and id(t) in names
        if hit is None or is_named_leaf or friendly_op(hit[0].func) in _LITERALS:
            leaves[id(t)] = t
            continue
        rec = hit[0]
        (args, kwargs), alive = strengthen((rec.args, rec.kwargs))
        if not alive:  # a large input was let go (`Records.sweep`): start from here
            leaves[id(t)] = t
            continue
        needed[rec.index] = rec
        resolved[rec.index] = (args, kwargs)
        todo.extend(tensors_in((args, kwargs)))
    return needed, resolved, leaves
