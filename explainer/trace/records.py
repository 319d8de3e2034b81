"""Op records: every aten op the dispatch mode saw, with its inputs and outputs.

Records are kept from the script's start: a graph kept with ``retain_graph=True``
can be back-propagated again at a later step, and its values must be known then.
So that preparing data with torch before training costs no memory, records of ops
outside any graph let go of their tensors once nobody else holds them
(`Records.sweep`).
"""

from __future__ import annotations

import bisect
import math
import sys
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from ..values import TensorValue
from .internals import is_random, op_schema, version_of, view_base
from .snapshots import snapshot
from .tracker import ModuleStack

__all__ = ["OpRecord", "Records", "mutated_inputs", "rng_state", "scalar_args", "strengthen", "tensors_in"]

#: Records are swept (`Records.sweep`) after at least this many new ones, or once new
#: outputs hold this many bytes; the newest `SWEEP_WINDOW` are never swept.
SWEEP_MIN = 128
SWEEP_BYTES = 64 * 2**20
SWEEP_WINDOW = 32

#: Arguments with more storage than this are held weakly by old records (`_weaken`).
STRIP_BYTES = 64 * 2**10


@dataclass
class OpRecord:
    """One aten op seen in the captured forward."""

    index: int
    func: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    outs: list[torch.Tensor]
    modules: ModuleStack
    call: str | None
    #: the call number of each module in ``modules`` (`explainer.trace.tracker.ModuleTracker`)
    numbers: tuple[int, ...] = ()
    emptied: bool = False  # a sweep let go of everything it held (`Records.sweep`)
    #: version counters of the tensors in (args, kwargs), in `tensors_in` order, as the op saw them
    versions: tuple[int, ...] = ()
    #: a random op's generator (None: the default) and its state before the op drew (`rng_state`)
    rng: tuple[torch.Generator | None, torch.Tensor] | None = None
    pre_mutation: dict[int, TensorValue] = field(default_factory=dict)  # out index -> value
    #: out index -> (grad_fn, output_nr) the output had just before an in-place op rebased it
    pre_mutation_fn: dict[int, tuple[Any, int]] = field(default_factory=dict)

    def node(self, j: int) -> tuple[Any, int]:
        """The autograd node (and output number) that output ``j`` came from: the one it
        had just before an in-place op gave the tensor a new ``grad_fn``, if any."""
        t = self.outs[j]
        return self.pre_mutation_fn.get(j, (t.grad_fn, t.output_nr))


class Records:
    """The op records of the forward passes not yet back-propagated.

    `reset` starts new containers rather than clearing these: a capture that took
    them (`explainer.trace.capture.Capture`) keeps its own.
    """

    def __init__(self, keep_elements: int) -> None:
        self.keep = keep_elements
        self.whole = False  # ops are being replayed (`explainer.trace.replay`): records must stay whole
        self._count = 0
        self.reset()

    def reset(self) -> None:
        self.ops: list[OpRecord] = []
        self.produced: dict[int, tuple[OpRecord, int]] = {}  # id(tensor) -> (record, out index)
        #: (id(tensor), version) -> a constant's value at that version, kept just before an
        #: in-place op changed it: what the ops that used it at that version saw
        self.const_at: dict[tuple[int, int], TensorValue] = {}
        #: id(tensor) -> the indices of the records that changed it in place, in order
        self.changes: dict[int, list[int]] = {}
        self._watch: list[OpRecord] = []  # records a sweep looks at
        self._emptied = 0
        self._since_sweep = 0  # records, and bytes of their outputs, since the last sweep
        self._bytes_since_sweep = 0
        self._sweep_at = SWEEP_MIN

    def add(
        self,
        func: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        out: Any,
        modules: ModuleStack,
        call: str | None,
        numbers: tuple[int, ...] = (),
        rng: tuple[torch.Generator | None, torch.Tensor] | None = None,
        versions: tuple[int, ...] | None = None,
    ) -> None:
        """Record an op that just ran inside ``modules`` (outermost first, each module's call
        ``numbers``) and ``call``."""
        outs = list(tensors_in(out))
        self._count += 1
        if versions is None:
            versions = tuple(version_of(a) for a in tensors_in((args, kwargs)))
        rec = OpRecord(
            index=self._count,
            func=func,
            args=args,
            kwargs=kwargs,
            outs=outs,
            modules=modules,
            call=call,
            numbers=numbers,
            versions=versions,
            rng=rng,
        )
        self.ops.append(rec)
        self._watch.append(rec)
        for i, t in enumerate(outs):
            self.produced[id(t)] = (rec, i)
        # Whether an output requires grad is known only after this returns (autograd
        # wraps the op above the dispatch mode): the sweep looks at it later.
        self._since_sweep += 1
        self._bytes_since_sweep += sum(t.numel() * t.element_size() for t in outs)
        if (self._since_sweep > self._sweep_at or self._bytes_since_sweep > SWEEP_BYTES) and not self.whole:
            self.sweep()

    def sweep(self) -> None:
        """Let go of what records of ops outside any graph hold, once it is not needed.

        Records hold their outputs and arguments, so a script that prepares data with
        torch ops before training would otherwise keep every intermediate tensor alive
        until its first backward (gigabytes for a preprocessing loop). A record whose
        outputs have no autograd node is needed later only while an output is alive: as
        the argument of a recorded op (named "dropout mask", say) or on the way to a loss
        computed without backward, which is replayed from its records. So, older than the
        newest `SWEEP_WINDOW` records:

        * a record whose outputs nobody else holds is emptied;
        * a record whose outputs live on holds its large arguments (over
          `STRIP_BYTES` of storage) weakly: a replay still uses them while they live,
          and starts from the record's outputs, as data, once they are gone. A scalar
          output keeps its arguments: it may be the loss a replay starts from.

        Each sweep looks at the records made since the last one and at the ones still
        holding live data, so it costs about what was recorded since; it runs when
        those double in number or after `SWEEP_BYTES` of new outputs (bounded memory).
        """
        newest = self._count - SWEEP_WINDOW
        still: list[OpRecord] = []
        # Newest first: letting go of a record's arguments can free older records' outputs.
        for rec in reversed(self._watch):
            if rec.index > newest:
                still.append(rec)
                continue
            if rec.pre_mutation or any(t.grad_fn is not None for t in rec.outs):
                continue  # part of a graph: kept until backward
            if _only_ours(rec.outs):
                self._empty(rec)
                continue
            if not any(t.dim() == 0 for t in rec.outs):
                rec.args, rec.kwargs = _weaken((rec.args, rec.kwargs))
            still.append(rec)
        still.reverse()
        self._watch = still
        if self._emptied > len(self.ops) // 2:
            self.ops = [r for r in self.ops if not r.emptied]
            self._emptied = 0
        self._since_sweep = 0
        self._bytes_since_sweep = 0
        self._sweep_at = max(len(still), SWEEP_MIN)

    def _empty(self, rec: OpRecord) -> None:
        for t in rec.outs:
            if self.produced.get(id(t), (None,))[0] is rec:
                del self.produced[id(t)]
        rec.outs, rec.args, rec.kwargs, rec.emptied = [], (), {}, True
        self._emptied += 1

    def made_by(self, t: torch.Tensor, before: int) -> OpRecord | None:
        """The record that made the value ``t`` had for the op recorded as ``before`` (its index):
        the op that created it or last changed it in place before; None if no recorded op did
        (data from outside, or changed in place by an op that does not return it)."""
        hit = self.produced.get(id(t))
        changes = self.changes.get(id(t), ())
        i = bisect.bisect_left(changes, before) - 1
        last = changes[i] if i >= 0 else None
        if hit is None or hit[0].index >= before or (last is not None and last != hit[0].index):
            return None
        return hit[0]

    def note_mutation(self, tensors: list[torch.Tensor], func: Any = None) -> None:
        """Keep what an in-place op is about to overwrite.

        For a recorded output: its value and its ``grad_fn`` (an in-place op such as
        ``relu_`` gives the tensor a new ``grad_fn``; the old node keeps the old value).
        For a constant (a BatchNorm running mean, a GAN's ``label`` before ``label.fill_``):
        its value at its current version, which is what the ops that used it so far saw.
        """
        seen: set[int] = set()
        for t in tensors:
            for u in (t, view_base(t)):
                if u is None or id(u) in seen:
                    continue
                seen.add(id(u))
                self.changes.setdefault(id(u), []).append(self._count + 1)  # the index this op's record gets
                hit = self.produced.get(id(u))
                if hit is not None:
                    rec, i = hit
                    if i not in rec.pre_mutation and rec.outs[i] is u:
                        rec.pre_mutation[i] = snapshot(u, self.keep)
                        # No node yet (a constant the op pulls into the graph, c.add_(w)):
                        # then this op's output has no node, and must not take the new one.
                        rec.pre_mutation_fn[i] = (u.grad_fn, u.output_nr) if u.grad_fn is not None else (None, 0)
                if not u.requires_grad:
                    key = (id(u), version_of(u))
                    if key not in self.const_at:
                        self.const_at[key] = snapshot(u, self.keep)


#: Batch-norm ops that update running_mean / running_var (arguments 3 and 4) in
#: training mode although their schema does not mark them as written.
_UNMARKED_BN = frozenset({"native_batch_norm", "cudnn_batch_norm", "miopen_batch_norm"})


def mutated_inputs(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[torch.Tensor]:
    """The tensors an aten op changes in place (its schema says so; batch norm's running
    statistics too, which its schema does not mark)."""
    schema = op_schema(func)
    if schema is None:
        return []
    out: list[torch.Tensor] = []
    packet = getattr(func, "overloadpacket", None)
    if packet is not None and packet.__name__ in _UNMARKED_BN and len(args) > 5 and args[5]:
        out.extend(a for a in args[3:5] if isinstance(a, torch.Tensor))
    for i, arg in enumerate(schema.arguments):
        if arg.alias_info is not None and arg.alias_info.is_write:
            val = args[i] if i < len(args) else kwargs.get(arg.name)
            if isinstance(val, torch.Tensor):
                out.append(val)
    return out


def rng_state(func: Any, kwargs: dict[str, Any]) -> tuple[torch.Generator | None, torch.Tensor] | None:
    """For a random op (a dropout mask, ``randn_like``): the generator it is about to draw
    from (None: the default CPU one) and its state, so a replay draws the same numbers."""
    if not is_random(func):
        return None
    gen = kwargs.get("generator")
    if isinstance(gen, torch.Generator):
        return gen, gen.get_state()
    return None, torch.default_generator.get_state()


def tensors_in(obj: Any) -> Iterator[torch.Tensor]:
    """The tensors in nested tuples, lists and dicts, in order.

    Written out rather than torch's pytree: aten op arguments are shallow, and this
    runs for every recorded op (pytree's generality cost ~15% of a large trace).
    """
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from tensors_in(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from tensors_in(item)


def scalar_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The numbers among an op's arguments (the 2 of ``x * 2``); infinities as text."""
    out: list[Any] = []
    for a in args:
        if isinstance(a, bool):
            continue
        if isinstance(a, (int, float)):
            out.append(a if math.isfinite(float(a)) else str(a))
    return tuple(out)


class _WeakArg:
    """A large tensor argument an old record holds weakly (see `Records.sweep`)."""

    __slots__ = ("ref",)

    def __init__(self, t: torch.Tensor) -> None:
        self.ref = weakref.ref(t)


def _weaken(obj: Any) -> Any:
    """``obj`` (args, kwargs) with tensors over `STRIP_BYTES` of storage held weakly."""
    if isinstance(obj, torch.Tensor):
        try:
            big = obj.untyped_storage().nbytes() > STRIP_BYTES
        except (RuntimeError, NotImplementedError):  # no storage (a tensor subclass)
            big = False
        return _WeakArg(obj) if big else obj
    if isinstance(obj, tuple):
        return tuple(_weaken(o) for o in obj)
    if isinstance(obj, list):
        return [_weaken(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _weaken(v) for k, v in obj.items()}
    return obj


def strengthen(obj: Any) -> tuple[Any, bool]:
    """``obj`` with weakly held arguments resolved; False if one of them is gone."""
    if isinstance(obj, _WeakArg):
        t = obj.ref()
        return t, t is not None
    if isinstance(obj, (tuple, list)):
        items = [strengthen(o) for o in obj]
        return type(obj)(v for v, _ in items), all(ok for _, ok in items)
    if isinstance(obj, dict):
        items2 = {k: strengthen(v) for k, v in obj.items()}
        return {k: v for k, (v, _) in items2.items()}, all(ok for _, ok in items2.values())
    return obj, True


def _refcounts(objs: list[Any]) -> list[int]:
    return [sys.getrefcount(o) for o in objs]


#: What `_refcounts` says of an object only a list holds (the list, the loop variable and
#: getrefcount's argument, as this Python version counts them).
_ONLY_A_LIST = _refcounts([object()])[0]


def _only_ours(outs: list[torch.Tensor]) -> bool:
    """Are these tensors referenced only by the record's own list?"""
    return all(n <= _ONLY_A_LIST for n in _refcounts(outs))
