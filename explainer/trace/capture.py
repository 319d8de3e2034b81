"""The backward capture: hooks on the captured backward's autograd nodes, and what they report.

One post-hook per node gives the order backward ran the nodes in, the gradient
flowing into each and the gradients it sends along each edge. The step itself does
only what must happen then (hooks, and copying numbers that could change: leaves
before the optimizer touches them); gradients are held and copied afterwards, and
walking the graph and naming happen in `explainer.trace.build`.

Everything here is keyed by autograd node; `explainer.trace.build` turns it into
node keys. The optimizer step after the backward is watched by
`explainer.trace.updates.StepWatch`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.hooks import RemovableHandle

from ..values import TensorValue
from .blocks import BlockCalls, nodes_outside
from .internals import AccumulateGrad, version_of
from .modes import Switches
from .records import OpRecord, Records, strengthen, tensors_in
from .snapshots import snapshot
from .updates import StepWatch

__all__ = ["CONST_DEPTH", "Capture", "HeldGrad", "copy_held"]

#: How many ops back the diagram follows data that needs no gradient (``x`` of ``x ** 2``).
CONST_DEPTH = 2


@dataclass
class HeldGrad:
    """A gradient held until after the step, to be copied then (`Capture._snap_grad`)."""

    tensor: torch.Tensor
    version: int


def copy_held(values: list[Any], done: dict[int, TensorValue | None], keep: int) -> list[TensorValue | None]:
    """``values`` with each `HeldGrad` copied (once; None if something changed it in place)."""
    out: list[TensorValue | None] = []
    for v in values:
        if isinstance(v, HeldGrad):
            if id(v) not in done:
                t = v.tensor
                done[id(v)] = snapshot(t, keep) if version_of(t) == v.version else None
            v = done[id(v)]
        out.append(v)
    return out


class Capture:
    """The autograd graph of the captured backward, and what its hooks report, by node.

    Parameters
    ----------
    root
        The tensor backward starts from (the loss).
    records
        The op records of its forward pass (their containers are kept as they are now).
    calls
        What the light blocks' calls left; none when no block ran light.
    """

    def __init__(
        self, root: torch.Tensor, records: Records, calls: BlockCalls, switches: Switches, keep_elements: int
    ) -> None:
        self.root = root
        self.keep = keep_elements
        self.switches = switches
        self.ops = records.ops
        self.produced = records.produced
        self.const_at = records.const_at
        #: (id(tensor), version) -> the value a constant argument of a graph op had when the op ran
        self.const_values: dict[tuple[int, int], TensorValue] = {}
        self.calls = calls
        self.fn_nodes: list[Any] = []
        self.fn_index: dict[Any, int] = {}
        self.children: list[list[tuple[int, int]]] = []
        self.kept_fns: set[Any] | None = None  # nodes whose numbers are kept (None: all)
        if calls.spans:
            # A large model's blocks ran light: hook only the nodes outside them,
            # the blocks' outputs and the leaves those use (`nodes_outside`).
            self._hooked = nodes_outside(root, self.ops, calls)
            self.kept_fns = set(self._hooked)
        else:
            self.index_graph()
            self._hooked = self.fn_nodes
        self._handles: list[RemovableHandle] = []
        self._grad_cache: dict[int, tuple[torch.Tensor, int, TensorValue | HeldGrad]] = {}
        # Hooks report by node; turned into keys once the graph is walked (`explainer.trace.build`).
        self.order_fns: list[Any] = []
        self.grad_in_fn: dict[Any, list[Any]] = {}  # TensorValue, HeldGrad or None per slot
        self.grad_out_fn: dict[Any, list[Any]] = {}
        self.flowed_fn: dict[Any, tuple[bool, ...]] = {}
        self.refired: set[Any] = set()
        self.returned: set[Any] = set()  # leaves whose gradient torch.autograd.grad returned
        self.rec_outs: list[tuple[OpRecord, Any, int, TensorValue]] = []  # (record, node, output_nr, value)
        # Leaves: their values before backward and the optimizer can touch them, whether
        # their .grad was already non-zero, and (after backward) their .grad.
        self.leaf_value_fn: dict[Any, TensorValue] = {}
        self.had_grad_fns: set[Any] = set()
        self.leaf_grad_fn: dict[Any, TensorValue | None] = {}
        # The light blocks' parameters (their nodes have no hooks): their values now and
        # their .grad after backward, which autograd leaves there at no cost; by id(tensor).
        self.block_params: dict[int, torch.Tensor] = {
            id(p): p for mods in calls.stacks.values() for p in mods[-1].parameters()
        }
        self.block_value: dict[int, TensorValue] = {}
        self.block_grad: dict[int, TensorValue | None] = {}
        self._snap_leaves()
        self.step = StepWatch(self.leaf_value_fn, self.leaf_grad_fn, self.block_params, keep_elements)

    def _snap_leaves(self) -> None:
        for key, p in self.block_params.items():
            self.block_value[key] = snapshot(p, self.keep)
        for fn in self._hooked:
            if type(fn) is not AccumulateGrad:
                continue
            var = fn.variable
            if isinstance(var, torch.Tensor):
                self.leaf_value_fn[fn] = snapshot(var, self.keep)
                if var.grad is not None and bool(var.grad.detach().ne(0).any()):
                    self.had_grad_fns.add(fn)

    def index_graph(self) -> None:
        """Number the autograd nodes reachable from the root (a deterministic BFS) and
        note each one's inputs as (key or -1, output_nr): ``next_functions`` builds new
        tuples on every read."""
        self.fn_nodes = [self.root.grad_fn]
        self.fn_index = {self.root.grad_fn: 0}
        self.children = []
        index, nodes = self.fn_index, self.fn_nodes
        for fn in nodes:  # grows as it goes
            kids = []
            for child, nr in fn.next_functions:
                if child is None:
                    kids.append((-1, nr))
                    continue
                c = index.get(child)
                if c is None:
                    c = index[child] = len(nodes)
                    nodes.append(child)
                kids.append((c, nr))
            self.children.append(kids)

    # -- hooks ---------------------------------------------------------------------

    def install_hooks(self) -> None:
        # One post-hook per node gives all three: it runs right after the node (so the
        # calls come in backward order) with the gradient in and the gradients out.
        # A pre-hook as well would double the Python calls for nothing.
        # Inside light blocks no hooks at all: their order is worked out afterwards
        # (`explainer.trace.engine_order`) and checked against the hooked nodes'.
        for fn in self._hooked:
            self._handles.append(fn.register_hook(self._make_post(fn)))

    def remove_hooks(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self._grad_cache = {}  # let the gradients go

    def _snap_all(self, grads: tuple[Any, ...], now: tuple[bool, ...] | bool) -> list[Any]:
        self.switches.busy = True
        try:
            return [
                self._snap_grad(g, now if isinstance(now, bool) else (i < len(now) and now[i]))
                if isinstance(g, torch.Tensor)
                else None
                for i, g in enumerate(grads)
            ]
        finally:
            self.switches.busy = False

    def _snap_grad(self, g: torch.Tensor, now: bool) -> TensorValue | HeldGrad:
        """Snapshot a gradient once, though two hooks see it; now, or after the step.

        The gradient a node sends to an input with no other consumer is the very tensor
        that input's hook then receives: the cache (holding the tensor, so its id stays
        its own, and checking its version) turns the second copy into a lookup.

        Copying inside backward costs several times what it costs afterwards, so a
        gradient is held (`HeldGrad`) and copied after the step, unless it goes to a
        leaf: a leaf's ``.grad`` may be that very tensor, which clipping changes in
        place. Held, a gradient is never taken over by autograd to accumulate into;
        its version says whether anything else changed it.
        """
        version = version_of(g)
        hit = self._grad_cache.get(id(g))
        if hit is not None and hit[0] is g and hit[1] == version and not (now and isinstance(hit[2], HeldGrad)):
            return hit[2]
        value: TensorValue | HeldGrad = snapshot(g, self.keep) if now else HeldGrad(g, version)
        self._grad_cache[id(g)] = (g, version, value)
        return value

    def _make_post(self, fn: Any) -> Callable[..., None]:
        # Slots that feed the same input node (x * x): one graph edge, whose gradient is
        # their sum. Summed here, as tensors, so it is exact for large (summarised) ones too.
        inputs = [child for child, _ in fn.next_functions]
        by_child: dict[Any, list[int]] = {}
        for slot, child in enumerate(inputs):
            if child is not None:
                by_child.setdefault(child, []).append(slot)
        repeats = [slots for slots in by_child.values() if len(slots) > 1]
        # Edge gradients where both ends keep their numbers (all of them, unless blocks
        # ran light: then an edge into a block's inside is never drawn).
        kept_slots = None
        if self.kept_fns is not None:
            kept_slots = tuple(child is not None and child in self.kept_fns for child in inputs)
        leaf = type(fn) is AccumulateGrad
        to_leaf = tuple(type(child) is AccumulateGrad for child in inputs)

        def post(grad_inputs: tuple[Any, ...], grad_outputs: tuple[Any, ...]) -> None:
            grads = _summed(list(grad_inputs), repeats)
            if fn in self.flowed_fn:
                # Run again (a leaf used inside a reentrant checkpoint): its .grad has the total.
                self.refired.add(fn)
            else:
                self.order_fns.append(fn)
            self.flowed_fn[fn] = tuple(isinstance(g, torch.Tensor) for g in grads)
            self.grad_in_fn[fn] = self._snap_all(grad_outputs, leaf)
            if kept_slots is not None:
                grads = [g if i < len(kept_slots) and kept_slots[i] else None for i, g in enumerate(grads)]
            self.grad_out_fn[fn] = self._snap_all(tuple(grads), to_leaf)

        return post

    # -- after backward ------------------------------------------------------------

    def returned_grads(self, inputs: tuple[torch.Tensor, ...], grads: Any) -> None:
        """``torch.autograd.grad`` returned the gradients of ``inputs`` instead of adding them
        to ``.grad`` (their ``AccumulateGrad`` nodes never ran): they are the leaves' gradients,
        and each leaf takes its backward step right after the last node that sent it one."""
        by_var = {id(fn.variable): fn for fn in self.leaf_value_fn}
        got = grads.values() if isinstance(grads, dict) else grads
        for t, g in zip(inputs, got if isinstance(got, (list, tuple)) else (got,)):
            fn = by_var.get(id(t))
            if fn is None or not isinstance(g, torch.Tensor):
                continue
            self.grad_in_fn[fn] = [snapshot(g, self.keep)]
            self.flowed_fn[fn] = ()
            self.returned.add(fn)
            senders = [i for i, p in enumerate(self.order_fns) if any(c is fn for c, _ in p.next_functions)]
            self.order_fns.insert(senders[-1] + 1 if senders else len(self.order_fns), fn)

    def after_backward(self) -> None:
        """Right after backward, before an optimizer can change anything: the leaves'
        ``.grad`` and the recorded ops' values, by node (keys come in `explainer.trace.build`)."""
        for fn in self.leaf_value_fn:
            var = fn.variable
            flowed = self.grad_in_fn.get(fn)
            if fn in self.returned and flowed:
                self.leaf_grad_fn[fn] = flowed[0]
            elif (
                flowed
                and flowed[0] is not None
                and fn not in self.had_grad_fns
                and fn not in self.refired
                and var.grad is not None
            ):
                # .grad was empty before, so it now holds just what flowed in: no second copy.
                self.leaf_grad_fn[fn] = flowed[0]
            else:
                self.leaf_grad_fn[fn] = snapshot(var.grad, self.keep) if var.grad is not None else None
        for key, p in self.block_params.items():
            self.block_grad[key] = snapshot(p.grad, self.keep) if p.grad is not None else None
        # Each output's node is read now: a view's grad_fn is made anew once its base
        # changes in place (an optimizer step on a weight changes weight.t()'s).
        for rec in self.ops:
            used = False
            for j, t in enumerate(rec.outs):
                fn, nr = rec.node(j)
                if fn is None or not (fn in self.fn_index or (self.kept_fns is not None and fn in self.kept_fns)):
                    continue
                value = rec.pre_mutation[j] if j in rec.pre_mutation else snapshot(t, self.keep)
                self.rec_outs.append((rec, fn, nr, value))
                used = True
            if used:
                self._keep_constants(rec)

    def _keep_constants(self, rec: OpRecord, depth: int = 0) -> None:
        """The constant arguments of a graph op, as the op saw them: now, unless an in-place
        op has changed one since (``label.fill_(0)``): then the value kept just before that.
        Also those of the ops that computed them (``x ** 2`` from ``x``), two levels up."""
        args, alive = strengthen((rec.args, rec.kwargs))
        if not alive:
            return
        for a, version in zip(tensors_in(args), rec.versions):
            if a.requires_grad or a.grad_fn is not None:
                continue
            key = (id(a), version)
            if key in self.const_values:
                continue
            if key in self.const_at:
                self.const_values[key] = self.const_at[key]
            elif version_of(a) == version:
                self.const_values[key] = snapshot(a, self.keep)
            hit = self.produced.get(id(a))
            if hit is not None and depth < CONST_DEPTH and not hit[0].emptied:
                self._keep_constants(hit[0], depth + 1)

    def release_grads(self) -> None:
        """Let the held gradients go (once copied)."""
        self.grad_in_fn, self.grad_out_fn = {}, {}


def _summed(grads: list[Any], repeats: list[list[int]]) -> list[Any]:
    """Gradients of slots feeding one input, summed into the first of them."""
    for slots in repeats:
        parts = [grads[i] for i in slots if i < len(grads) and isinstance(grads[i], torch.Tensor)]
        if len(parts) == len(slots) and len({p.shape for p in parts}) == 1:
            total = parts[0]
            for p in parts[1:]:
                total = total + p
            grads[slots[0]] = total
            for i in slots[1:]:
                grads[i] = None  # already in the first slot's sum
    return grads
