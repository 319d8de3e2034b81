"""No backward call: explain the final scalar loss by replaying the ops that computed it.

A script (or ``with`` block) that never calls ``backward()`` is explained from its
loss: the variable named ``loss``, else the last scalar it computed, in either case
one the script (or block) computed itself. When it has no graph (computed under
``torch.no_grad()`` or ``torch.inference_mode()``, the usual evaluation script), the
recorded ops that computed it are run again (`replay`), with the same random draws,
so the trace has a graph to back-propagate.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import NoLossError, NonScalarLossError
from .internals import tree_flatten, tree_unflatten, version_of, view_base
from .modes import Switches
from .naming import ModuleNames, Names, collect_names, friendly_op
from .records import OpRecord, Records, mutated_inputs, strengthen, tensors_in
from .tracker import ModuleTracker

__all__ = ["Replayed", "choose_loss", "replay"]

#: Ops that bring a literal into the graph: a replay starts from their outputs.
_LITERALS = frozenset({"lift_fresh", "lift", "lift_fresh_copy"})


def choose_loss(namespace: dict[str, Any], records: Records) -> tuple[torch.Tensor, Names]:
    """The loss to explain (``namespace['loss']`` if the traced code computed it, else the
    last scalar recorded) and the names in ``namespace``."""
    tensors: dict[int, str] = {}
    modules: ModuleNames = {}
    collect_names(namespace, tensors, modules)
    target = namespace.get("loss")
    if isinstance(target, torch.Tensor) and id(target) not in records.produced:
        target = None  # not computed here (a `loss` left from an earlier notebook cell)
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
            "the script (or with-block) never calls backward() and computes no scalar loss itself: "
            "add loss.backward(), or compute the loss inside it and name it `loss`"
        )
    return target, Names(tensors, modules)


def _last_scalar(ops: list[OpRecord]) -> torch.Tensor | None:
    for rec in reversed(ops):
        for t in rec.outs:
            if t.dim() == 0 and t.is_floating_point():
                return t
    return None


@dataclass
class Replayed:
    """What a replay made: the new root, what it made require grad, the names carried over
    to the new tensors, and what it could not reproduce (sentences' parts for a note)."""

    root: torch.Tensor
    made: list[str]
    names: dict[int, str]
    differs: list[str] = field(default_factory=list)


def replay(
    target: torch.Tensor,
    names: dict[int, str],
    records: Records,
    switches: Switches,
    tracker: ModuleTracker,
    active: Callable[[], AbstractContextManager[Any]],
) -> Replayed:
    """Re-run the recorded ops that computed ``target``, so that it has a graph.

    The walk goes back to the model's parameters (through named intermediates such as
    ``output``) and stops at data: tensors no recorded op made, literals, and named
    tensors that do not depend on a parameter (``data``, ``x``). The parameters are used
    as they are (they require grad already); only when there are none are the float
    data leaves made to require grad (copies; the note names them).

    The replay computes what the script computed: random ops (a dropout mask,
    ``randn_like``) draw again from the generator state they drew from; an op that
    changed a tensor in place (batch norm's running statistics) changes a copy; data the
    script changed in place since is used as the op saw it, from the copy kept then.
    What it cannot reproduce is returned in ``differs``.

    The ops run inside ``active()`` (the session's modes and hooks, whose
    ``switches``, module ``tracker`` and ``records`` these are), so they are recorded
    as the forward pass.
    """
    needed, resolved, leaves = _needed_ops(target, names, records)
    has_params = any(t.requires_grad for t, _ in leaves.values())
    mapping: dict[int, torch.Tensor] = {}
    made: list[str] = []
    new_names: dict[int, str] = {}
    differs: list[str] = []
    for key, (t, seen) in leaves.items():
        new = _as_seen(t, seen, records)
        if new is None:
            differs.append(names.get(key, f"a {tuple(t.shape)} tensor"))
            new = t
        if not has_params and new.is_floating_point() and not new.requires_grad:
            new = new.detach().clone().requires_grad_(True)
            made.append(names.get(key, f"a {tuple(t.shape)} tensor"))
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
            writes = {id(w) for w in mutated_inputs(rec.func, rec.args, rec.kwargs)}
            # A tensor the op changes in place that is not one the replay made (batch norm's
            # running statistics): a copy, so the user's stays as the script left it.
            flat = [
                (a.clone() if id(a) in writes and id(a) not in mapping else mapping.get(id(a), a))
                if isinstance(a, torch.Tensor)
                else a
                for a in flat
            ]
            args, kwargs = tree_unflatten(flat, spec)  # TreeSpec.unflatten: torch >= 2.3 only
            prev_call = switches.call
            switches.call = rec.call
            tracker.replace(rec.modules, rec.numbers)
            try:
                with _same_draws(rec):
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
    return Replayed(mapping[id(target)], sorted(made), new_names, differs)


@contextmanager
def _same_draws(rec: OpRecord) -> Iterator[None]:
    """Run a random op with the generator state it first drew from (then put the state back)."""
    if rec.rng is None:
        yield
        return
    generator, state = rec.rng
    gen = generator if generator is not None else torch.default_generator
    now = gen.get_state()
    gen.set_state(state)
    try:
        yield
    finally:
        gen.set_state(now)


def _as_seen(t: torch.Tensor, seen: int | None, records: Records) -> torch.Tensor | None:
    """``t`` as the recorded op saw it: itself, unless changed in place since; then a tensor
    from the copy kept just before the change, or None when no full copy was kept."""
    if seen is None or version_of(t) == seen:
        return t
    kept = records.const_at.get((id(t), seen))
    if kept is None or kept.data is None:
        return None
    return torch.from_numpy(kept.data.copy()).to(t.dtype)


def _needed_ops(
    target: torch.Tensor, names: dict[int, str], records: Records
) -> tuple[dict[int, OpRecord], dict[int, tuple[Any, Any]], dict[int, tuple[torch.Tensor, int | None]]]:
    """The records on the way to ``target`` (by index), their arguments held strongly, and
    the tensors the replay starts from (by id, with the version the op that used them saw)."""
    # A tensor at a version: ``x`` after ``x.add_(1)`` is another value than before.
    found: dict[tuple[int, int], tuple[OpRecord, tuple[Any, Any]] | None] = {}  # its record, or None: a leaf
    tensors: dict[int, torch.Tensor] = {}
    # (tensor, its version, the index of the record that used it: the target's is past all)
    todo: list[tuple[torch.Tensor, int, int]] = [(target, version_of(target), sys.maxsize)]
    while todo:  # 1. the whole way back (to tensors no recorded op made)
        t, version, user = todo.pop()
        if (id(t), version) in found:
            continue
        tensors[id(t)] = t
        rec = records.made_by(t, user)
        if (
            rec is None  # data, or changed in place by an op that does not return it (running stats)
            or (t.requires_grad and view_base(t) is None)  # a parameter (views of one need replaying)
            or friendly_op(rec.func) in _LITERALS
        ):
            found[(id(t), version)] = None
            continue
        (args, kwargs), alive = strengthen((rec.args, rec.kwargs))
        if not alive:  # a large input was let go (`Records.sweep`): start from here
            found[(id(t), version)] = None
            continue
        found[(id(t), version)] = (rec, (args, kwargs))
        todo.extend((a, v, rec.index) for a, v in zip(tensors_in((args, kwargs)), rec.versions))
    params: dict[tuple[int, int], bool] = {}

    def on_params(key: tuple[int, int]) -> bool:  # does this tensor depend on a parameter?
        if key not in params:
            params[key] = tensors[key[0]].requires_grad  # (no cycles: ops only use earlier values)
            entry = found[key]
            if entry is not None:
                params[key] = any(on_params((id(a), v)) for a, v in zip(tensors_in(entry[1]), entry[0].versions))
        return params[key]

    # 2. Back again, stopping at named data: what needs no parameter is where the replay starts.
    needed: dict[int, OpRecord] = {}
    resolved: dict[int, tuple[Any, Any]] = {}
    leaves: dict[int, tuple[torch.Tensor, int | None]] = {}
    todo2: list[tuple[torch.Tensor, int]] = [(target, version_of(target))]
    seen: set[tuple[int, int]] = set()
    while todo2:
        t, version = todo2.pop()
        if (id(t), version) in seen:
            continue
        seen.add((id(t), version))
        entry = found[(id(t), version)]
        if entry is None or (t is not target and id(t) in names and not on_params((id(t), version))):
            leaves[id(t)] = (t, version)
            continue
        rec, both = entry
        needed[rec.index] = rec
        resolved[rec.index] = both
        todo2.extend(zip(tensors_in(both), rec.versions))
    return needed, resolved, leaves
