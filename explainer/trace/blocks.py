"""Light blocks: a large model's repeated blocks, traced by their outputs only.

In a model of more than `LARGE_MODEL_MODULES` modules, each block of a run of
`REPEAT_MIN` or more identical sibling blocks (``encoder.layers.0`` ... ``23``) is a
light block, unless `explainer.trace.model.RecordOptions` opens it. A light block
runs with both modes off their stacks, without the global module hooks and, during
backward, without autograd hooks, so it runs about as fast as without a trace:

* its own forward hook keeps its output's value (and the capture its gradient);
* autograd's sequence numbers place the nodes it made inside it (each call notes
  the span of numbers it ran in);
* the CPU engine's own rule (`explainer.trace.engine_order`) gives their backward order.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.hooks import RemovableHandle

from ..values import TensorValue
from .internals import AccumulateGrad, children_of, sequence_nr
from .model import Note, RecordOptions
from .records import OpRecord, tensors_in
from .snapshots import snapshot
from .tracker import ModuleStack

__all__ = [
    "LARGE_MODEL_MODULES",
    "REPEAT_MIN",
    "BlockCalls",
    "LightBlocks",
    "attribute_light_ops",
    "find_light_blocks",
    "light_note",
    "nodes_outside",
]

#: A model with more modules than this is "large": its repeated blocks run light.
#: A 6-layer Transformer encoder has about 65.
LARGE_MODEL_MODULES = 50

#: Identical sibling blocks (``layers.0``, ``layers.1``, ...) in a row that count as repeated.
REPEAT_MIN = 3


def _structure(module: torch.nn.Module) -> tuple[tuple[str, str], ...]:
    return tuple((name, type(m).__name__) for name, m in module.named_modules())


def find_light_blocks(root: torch.nn.Module, options: RecordOptions) -> list[torch.nn.Module]:
    """The blocks of ``root`` that run light (see `RecordOptions`).

    Empty unless ``root`` has more than `LARGE_MODEL_MODULES` modules. Paths in
    ``options`` name the root by the script's variable, unknown here: they are
    matched without their first component.
    """
    named = list(root.named_modules())
    if len(named) <= LARGE_MODEL_MODULES:
        return []
    opened = [p.partition(".")[2] for p in options.expand]
    out: list[torch.nn.Module] = []
    for parent_name, parent in named:
        for run in _runs_of_identical_children(parent):
            if len(run) < REPEAT_MIN:
                continue
            for name, child in run:
                sub = f"{parent_name}.{name}" if parent_name else name
                depth = sub.count(".") + 2  # the root is depth 1
                if options.depth is not None and depth <= options.depth:
                    continue
                if any(p == sub or p.startswith(sub + ".") for p in opened):
                    continue
                out.append(child)
    return out


def _runs_of_identical_children(parent: torch.nn.Module) -> list[list[tuple[str, torch.nn.Module]]]:
    """The parent's numbered children (``0``, ``1``, ...) in runs of consecutive, identically
    built ones: (name, module) pairs."""
    run: list[tuple[str, tuple[tuple[str, str], ...], torch.nn.Module]] = []  # (index, structure, module)
    runs: list[list[tuple[str, torch.nn.Module]]] = []
    for name, child in children_of(parent).items():
        if child is None or not name.isdigit():
            continue
        shape = _structure(child)
        if run and not (int(name) == int(run[-1][0]) + 1 and shape == run[-1][1]):
            runs.append([(n, m) for n, _, m in run])
            run = []
        run.append((name, shape, child))
    runs.append([(n, m) for n, _, m in run])
    return runs


@dataclass
class BlockCalls:
    """What the light blocks' calls left, for the capture to use after backward."""

    #: (module stack, first sequence nr, end) of each call
    spans: list[tuple[ModuleStack, int, int]] = field(default_factory=list)
    #: each span's call numbers (`explainer.trace.tracker.ModuleTracker`), by id(stack)
    numbers: dict[int, tuple[int, ...]] = field(default_factory=dict)
    #: each light block's module stack, by id(block)
    stacks: dict[int, ModuleStack] = field(default_factory=dict)
    #: their outputs' values, by (grad_fn, output_nr)
    values: dict[tuple[Any, int], TensorValue] = field(default_factory=dict)
    #: the nodes of the tensors entering them (an ordered set)
    inputs: dict[Any, None] = field(default_factory=dict)


class LightBlocks:
    """Which blocks run light, the one running now, and what their calls left (`calls`)."""

    def __init__(self, options: RecordOptions, keep_elements: int) -> None:
        self.options = options
        self.keep = keep_elements
        self.running_at: int | None = None  # module-stack depth of the light block running now
        self.calls = BlockCalls()
        self._roots: dict[int, tuple[torch.nn.Module, frozenset[int]]] = {}  # id(root) -> (root, block ids)
        self._handles: list[RemovableHandle] = []  # each light block's own forward hook

    def find(self, root: torch.nn.Module, on_end: Callable[[torch.nn.Module, Any, Any], None]) -> None:
        """Find (once per root module) the blocks that run light; ``on_end`` is each one's
        own forward hook: inside it the global module hooks step aside, so its submodules
        run as fast as without a trace."""
        hit = self._roots.get(id(root))
        if hit is None or hit[0] is not root:
            blocks = [] if self.options.everything else find_light_blocks(root, self.options)
            self._roots[id(root)] = (root, frozenset(id(b) for b in blocks))
            for b in blocks:
                self._handles.append(b.register_forward_hook(on_end, always_call=True))

    def is_block(self, module: torch.nn.Module, root: torch.nn.Module) -> bool:
        return id(module) in self._roots[id(root)][1]

    def note_inputs(self, args: Any, produced: dict[int, Any]) -> list[torch.Tensor]:
        """Before a light block runs: note its inputs' nodes (the capture hooks those outside
        the blocks from there); return the recorded ones, whose values and nodes must be
        kept as they are now (the block may overwrite them in place: ``ReLU(inplace=True)``)."""
        out = []
        for t in tensors_in(args):
            if t.grad_fn is not None:
                self.calls.inputs[t.grad_fn] = None
            if id(t) in produced:
                out.append(t)
        return out

    def end_call(
        self, stack: ModuleStack, numbers: tuple[int, ...], start: int, end: int, module: torch.nn.Module
    ) -> None:
        self.calls.spans.append((stack, start, end))
        self.calls.numbers[id(stack)] = numbers
        self.calls.stacks.setdefault(id(module), stack)

    def keep_output(self, output: Any) -> None:
        """Snapshot what a light block returns: the value its output node shows."""
        for t in tensors_in(output):
            fn = t.grad_fn
            if fn is not None:
                self.calls.values.setdefault((fn, t.output_nr), snapshot(t, self.keep))

    def new_calls(self) -> None:
        """Start afresh (a capture that took the old ones keeps them)."""
        self.calls = BlockCalls()

    def close(self) -> None:
        """Remove the blocks' hooks and forget the roots (the session ends)."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self.running_at = None
        self._roots = {}


# --------------------------------------------------------------------------- after backward


def _inside(spans: list[tuple[int, int]], starts: list[int]) -> Callable[[Any], bool]:
    def inside(fn: Any) -> bool:
        if type(fn) is AccumulateGrad:
            return False
        seq = sequence_nr(fn)
        i = bisect.bisect_right(starts, seq) - 1
        return i >= 0 and seq < spans[i][1]

    return inside


def nodes_outside(root: torch.Tensor, ops: list[OpRecord], calls: BlockCalls) -> list[Any]:
    """The nodes outside the light blocks, the blocks' outputs, the leaves used outside.

    A walk from the root, the recorded ops' nodes and the nodes of the tensors that
    entered the blocks, which does not go into a block (its nodes were made within
    a block's span of sequence numbers): so nodes no recorded op made (``CopySlices``
    of ``h[0] = token``) are found too, without walking the blocks' thousands. Some
    may belong to another forward pass: their hooks never run, and indexing leaves
    them out.
    """
    spans = sorted((start, end) for _, start, end in calls.spans)
    inside = _inside(spans, [start for start, _ in spans])
    seeds: dict[Any, None] = {root.grad_fn: None}
    for rec in ops:
        for j in range(len(rec.outs)):
            fn = rec.node(j)[0]
            if fn is not None:
                seeds[fn] = None
    seeds.update(calls.inputs)
    found: dict[Any, None] = {}
    queue = [fn for fn in seeds if not inside(fn)]
    for fn in queue:  # grows as it goes
        if fn in found:
            continue
        found[fn] = None
        for child, _ in fn.next_functions:
            if child is not None and child not in found and not inside(child):
                queue.append(child)
    for fn, _ in calls.values:
        found[fn] = None
    return list(found)


def attribute_light_ops(
    fn_nodes: list[Any],
    recorded: dict[int, OpRecord],
    calls: BlockCalls,
    fn_modules: dict[int, ModuleStack],
    fn_numbers: dict[int, tuple[int, ...]],
) -> None:
    """Give the ops of light blocks (node keys not in ``recorded``) their block in ``fn_modules``
    (and its call numbers in ``fn_numbers``).

    Autograd numbers nodes in creation order, and each block call noted the
    numbers it spanned, so a node belongs to the call whose span holds its number.
    """
    spans = calls.spans
    if not spans:
        return
    by_seq = sorted(
        (sequence_nr(fn), k) for k, fn in enumerate(fn_nodes) if k not in recorded and type(fn) is not AccumulateGrad
    )
    seqs = [seq for seq, _ in by_seq]
    for mods, start, end in spans:
        numbers = calls.numbers.get(id(mods), ())
        for i in range(bisect.bisect_left(seqs, start), bisect.bisect_left(seqs, end)):
            fn_modules[by_seq[i][1]] = mods
            fn_numbers[by_seq[i][1]] = numbers


def light_note(paths: list[str]) -> Note:
    """The note on the light blocks (recorded by their outputs only)."""
    first, last = paths[0], paths[-1]
    span = first if len(paths) == 1 else f"{first} … {last.rpartition('.')[2]}"
    return Note("note_light", {"count": len(paths), "span": span, "first": first})
