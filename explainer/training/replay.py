"""The script's own loss as a function of its parameters: record the first step, replay it.

`ProgramRecorder` is a `TorchDispatchMode` (the trace's `DispatchMode`) that runs
from the script's start to its first ``backward()``. It keeps every aten op that reads a trainable parameter or
a result of such an op (the ops that make the loss out of the parameters), and a
copy of every other tensor those ops read at the moment they read it (the data).
At the first ``backward()`` the ops the loss depends on are cut out of the record
as a `LossProgram`. `LossProgram.evaluate` runs the same aten ops again, in the
same order, on other parameter values: with the kernels the script used, so the
loss at the script's own parameters is the number the script computed, bit for bit.

Notes
-----
What it does not cover: the program is the first step's, so when the data changes
between steps (mini-batches) the surface is the first batch's loss (the surface
says so when the replayed loss differs from a recorded one). Random ops in the
forward (dropout) draw the same numbers at every point (the generator is reseeded),
not the script's. A computation that leaves torch (``.item()``, numpy) and comes
back is a constant to the program. Writes into a view of a parameter are not
followed. Operations that initialise parameters in place (``nn.init``) are not
part of the program: the parameter values are its input.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..trace.internals import DispatchMode, op_schema

SOURCE, VAR, CONST = "source", "var", "const"


def leaves(obj: Any) -> list[Any]:
    """The values inside an op's arguments or outputs: lists, tuples and dicts opened, in order."""
    if type(obj) in (list, tuple):
        return [x for item in obj for x in leaves(item)]
    if type(obj) is dict:
        return [x for item in obj.values() for x in leaves(item)]
    return [obj]


def rebuild(obj: Any, values: Iterator[Any]) -> Any:
    """``obj``'s shape with its leaves taken from ``values`` in `leaves` order."""
    if type(obj) in (list, tuple):
        return type(obj)(rebuild(item, values) for item in obj)
    if type(obj) is dict:
        return {k: rebuild(v, values) for k, v in obj.items()}
    return next(values)


@dataclass(frozen=True)
class Ref:
    """A tensor argument of a recorded op: a parameter (source), an earlier op's result (var) or data (const)."""

    kind: str
    key: int = 0
    value: Any = None


def written_positions(func: Any, args: tuple, kwargs: dict) -> set[int]:
    """Positions (in ``leaves((args, kwargs))``) of the arguments the op writes into."""
    schema = op_schema(func)
    if schema is None:
        return set()
    offsets, at = {}, 0
    for i, a in enumerate(args):
        n = len(leaves(a))
        offsets[schema.arguments[i].name if i < len(schema.arguments) else str(i)] = (at, n)
        at += n
    for name, v in kwargs.items():
        n = len(leaves(v))
        offsets[name] = (at, n)
        at += n
    out: set[int] = set()
    for a in schema.arguments:
        if a.alias_info is not None and a.alias_info.is_write and a.name in offsets:
            start, n = offsets[a.name]
            out.update(range(start, start + n))
    return out


def _is_source(t: torch.Tensor) -> bool:
    return bool(t.requires_grad and t.is_leaf)


@dataclass
class Op:
    func: Any
    template: list[Any]  # flat args: a `Ref` for each tensor, plain values as they are
    skeleton: Any  # (args, kwargs) with every leaf None: `rebuild` puts the values back
    outputs: list[int | None]  # keys of the tensor outputs, flat
    written: set[int]  # flat positions written in place


class ProgramRecorder(DispatchMode):
    """Records the ops that depend on parameters, from the script's start to its first backward."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[Op] = []
        self.keys: dict[int, int] = {}  # id(tensor) -> key, for tensors the program produces or reads as sources
        self.alive: list[torch.Tensor] = []  # keeps ids unique while recording
        self.sources: dict[int, torch.Tensor] = {}  # key -> the source tensor (a parameter)
        self.counter = 0

    def _key(self, t: torch.Tensor) -> int:
        self.counter += 1
        self.keys[id(t)] = self.counter
        self.alive.append(t)
        return self.counter

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        flat = leaves((args, kwargs))
        tensors = [(i, a) for i, a in enumerate(flat) if isinstance(a, torch.Tensor)]
        if not tensors:
            return out
        written = written_positions(func, args, kwargs)
        if any(_is_source(flat[i]) for i in written if isinstance(flat[i], torch.Tensor)):
            return out  # a parameter initialised or updated in place: its value is the program's input
        if not any(id(a) in self.keys or _is_source(a) for _, a in tensors):
            return out
        template: list[Any] = []
        for a in flat:
            if not isinstance(a, torch.Tensor):
                template.append(a)
            elif id(a) in self.keys:
                key = self.keys[id(a)]
                template.append(Ref(SOURCE if key in self.sources else VAR, key))
            elif _is_source(a):
                key = self._key(a)
                self.sources[key] = a
                template.append(Ref(SOURCE, key))
            else:
                template.append(Ref(CONST, value=a.detach().clone()))
        keys = [self._key(o) if isinstance(o, torch.Tensor) else None for o in leaves(out)]
        skeleton = rebuild((args, kwargs), iter([None] * len(flat)))
        self.ops.append(Op(func, template, skeleton, keys, written))
        return out

    def program(self, root: torch.Tensor, params: Sequence[torch.Tensor]) -> LossProgram | None:
        """The ops ``root`` depends on, with ``params`` as inputs; None when it depends on none of them."""
        root_key = self.keys.get(id(root))
        if root_key is None or root.numel() != 1:
            return None
        needed = {root_key}
        kept: list[Op] = []
        for op in reversed(self.ops):
            if not any(k in needed for k in op.outputs if k is not None):
                continue
            kept.append(op)
            for item in op.template:
                if isinstance(item, Ref) and item.kind != CONST:
                    needed.add(item.key)
        kept.reverse()
        index = {id(p): i for i, p in enumerate(params)}
        inputs: dict[int, int | torch.Tensor] = {}
        for key, t in self.sources.items():
            if key in needed:
                # a tensor that requires grad but is not trained is a constant at its current value
                inputs[key] = index[id(t)] if id(t) in index else t.detach().clone()
        if not any(isinstance(v, int) for v in inputs.values()):
            return None
        shapes = [(tuple(p.shape), p.dtype, p.device) for p in params]
        return LossProgram(kept, inputs, root_key, shapes)

    def clear(self) -> None:
        self.ops, self.keys, self.alive, self.sources = [], {}, [], {}


@dataclass
class LossProgram:
    """The first step's loss as a function of the parameters (see the module docstring)."""

    ops: list[Op]
    inputs: dict[int, int | torch.Tensor]  # source key -> parameter index, or a constant tensor
    root: int
    shapes: list[tuple[tuple[int, ...], torch.dtype, torch.device]]
    seed: int = 0

    @property
    def numel(self) -> int:
        return sum(math.prod(s) for s, _, _ in self.shapes)

    def split(self, flat: Sequence[float] | Any, float64: bool = False) -> list[torch.Tensor]:
        """A flat vector of every parameter's entries (optimizer order) as tensors shaped like them."""
        vec = torch.as_tensor(flat, dtype=torch.float64)
        out, at = [], 0
        for shape, dtype, device in self.shapes:
            n = math.prod(shape)
            part = vec[at : at + n].reshape(shape)
            out.append(part.to(device=device) if float64 else part.to(dtype=dtype, device=device))
            at += n
        return out

    def evaluate(self, values: Sequence[torch.Tensor], float64: bool = False) -> float:
        """The loss with the parameters set to ``values``; ``float64`` computes in double precision."""
        env: dict[int, Any] = {}
        for key, src in self.inputs.items():
            v = values[src] if isinstance(src, int) else src
            env[key] = v.double() if float64 and v.is_floating_point() else v
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            for op in self.ops:
                flat = []
                for i, item in enumerate(op.template):
                    if isinstance(item, Ref) and item.kind != CONST:
                        flat.append(env[item.key])
                    elif isinstance(item, Ref):
                        c = item.value
                        if float64 and c.is_floating_point():
                            c = c.double()
                        flat.append(c.clone() if i in op.written else c)
                    else:
                        flat.append(item)
                args, kwargs = rebuild(op.skeleton, iter(flat))
                out = op.func(*args, **kwargs)
                for out_key, o in zip(op.outputs, leaves(out)):
                    if out_key is not None:
                        env[out_key] = o
        return float(env[self.root].reshape(-1)[0])


__all__ = ["LossProgram", "ProgramRecorder"]
