"""Every private torch API the trace uses, behind one small module.

The trace stands on PyTorch's documented mechanisms (function and dispatch modes,
global module and optimizer hooks, ``torch.autograd.graph.Node``). What those do
not offer is reached here, and only here, so a torch release that moves one of
these names breaks this module and nothing else:

* the mode stacks: taking one of the trace's modes off the top and putting it back,
  as ``torch.utils._python_dispatch`` does in ``_pop_mode_temporarily``; the guards
  that switch all modes off around the trace's own copies;
* ``TorchDispatchMode`` (a private module) and pytree's flatten and unflatten;
* autograd's sequence numbers, the leaves' node class, a node's output metadata;
  an aten op's schema;
* a tensor's version counter and view base; a module's own parameter, buffer and
  child dicts.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_unflatten

__all__ = [
    "AccumulateGrad",
    "DispatchMode",
    "buffers_of",
    "children_of",
    "dispatch_mode_off",
    "dispatch_modes_off",
    "function_modes_off",
    "is_aten_op",
    "is_custom_function",
    "is_random",
    "next_sequence_nr",
    "op_schema",
    "output_meta",
    "parameters_of",
    "pop_dispatch_mode",
    "pop_function_mode",
    "push_dispatch_mode",
    "push_function_mode",
    "ran_on_cpu",
    "sequence_nr",
    "tree_flatten",
    "tree_unflatten",
    "version_of",
    "view_base",
]

#: The autograd node class of leaves (``fn.variable`` is the leaf tensor). Typed Any:
#: torch's stubs do not declare it, and its instances' attributes are read as such.
AccumulateGrad: Any = torch._C._functions.AccumulateGrad  # type: ignore[attr-defined]


class DispatchMode(TorchDispatchMode):
    """A ``TorchDispatchMode`` that torch does not wrap in ``torch._dynamo.disable``.

    The wrapper imports ``torch._dynamo`` (1.5 s, half of a run) on the first op of
    every script; the trace never compiles.
    """

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False


# --------------------------------------------------------------------------- mode stacks


def pop_dispatch_mode(mode: TorchDispatchMode) -> bool:
    """Take ``mode`` off the dispatch mode stack if it is on top (no user mode above it)."""
    n = torch._C._len_torch_dispatch_stack()
    if n == 0 or torch._C._get_dispatch_stack_at(n - 1) is not mode:
        return False
    try:
        torch._C._pop_torch_dispatch_stack(None)  # no mode key: the top of the user-visible stack
    except TypeError:  # torch 2.1 takes no mode key
        torch._C._pop_torch_dispatch_stack()
    return True


def push_dispatch_mode(mode: TorchDispatchMode) -> None:
    """Put back a mode `pop_dispatch_mode` took off."""
    torch._C._push_on_torch_dispatch_stack(mode)


def pop_function_mode(mode: TorchFunctionMode) -> bool:
    """Take ``mode`` off the torch-function mode stack if it is on top."""
    n = torch._C._len_torch_function_stack()
    if n == 0 or torch._C._get_function_stack_at(n - 1) is not mode:
        return False
    torch._C._pop_torch_function_stack()
    return True


def push_function_mode(mode: TorchFunctionMode) -> None:
    """Put back a mode `pop_function_mode` took off."""
    torch._C._push_on_torch_function_stack(mode)


@contextmanager
def dispatch_mode_off(mode: TorchDispatchMode) -> Iterator[None]:
    """Run the block with ``mode`` off the dispatch stack (if it is on top), then put it back."""
    popped = pop_dispatch_mode(mode)
    try:
        yield
    finally:
        if popped:
            push_dispatch_mode(mode)


#: ``with function_modes_off(), dispatch_modes_off():`` switches every torch-function and
#: dispatch mode off (C++ guards, restored on exit). The guards themselves, not a wrapper:
#: every snapshot enters them.
function_modes_off = torch._C.DisableTorchFunction
dispatch_modes_off = torch._C._DisableTorchDispatch


# --------------------------------------------------------------------------- autograd


def next_sequence_nr() -> int:
    """The sequence number the next autograd node created on this thread will get."""
    return torch._C._autograd._get_sequence_nr()


def sequence_nr(fn: Any) -> int:
    """An autograd node's sequence number (creation order; ``AccumulateGrad`` has the largest)."""
    return fn._sequence_nr()


def ran_on_cpu(fn: Any) -> bool:
    """Did this autograd node run on the CPU (leaves: is their tensor there)?"""
    if type(fn) is AccumulateGrad:
        return fn.variable.device.type == "cpu"
    try:
        return all(m.device.type == "cpu" for m in fn._input_metadata)
    except (AttributeError, RuntimeError):
        return False


def output_meta(fn: Any) -> tuple[tuple[int, ...], torch.dtype] | None:
    """Shape and dtype of an autograd node's first output, from autograd's own metadata."""
    try:
        meta = fn._input_metadata[0]
        return tuple(meta.shape), meta.dtype
    except (AttributeError, IndexError, RuntimeError):
        return None


def is_custom_function(fn: Any) -> bool:
    """Is this node the backward of a custom ``torch.autograd.Function``?"""
    return isinstance(fn, torch.autograd.function.BackwardCFunction)


def is_aten_op(func: Any) -> bool:
    """Is ``func`` an aten op overload (what a dispatch mode sees), not a Python function?"""
    return isinstance(func, torch._ops.OpOverload)


@functools.lru_cache(maxsize=4096)
def is_random(func: Any) -> bool:
    """Does this aten op draw random numbers (``bernoulli_``, ``randn_like``, dropout)?"""
    return torch.Tag.nondeterministic_seeded in getattr(func, "tags", ())


def op_schema(func: Any) -> Any:
    """An aten op's schema (``torch._C.FunctionSchema``: its arguments and which it writes); None if none."""
    return getattr(func, "_schema", None)


# --------------------------------------------------------------------------- tensors and modules


def version_of(t: torch.Tensor) -> int:
    """The tensor's version counter: it grows with every in-place change (0 for the tensors
    made under ``torch.inference_mode()``, which keep none)."""
    try:
        return t._version
    except RuntimeError:
        return 0


def view_base(t: torch.Tensor) -> torch.Tensor | None:
    """The tensor a view looks into; None for a tensor that is no view."""
    return t._base if t._is_view() else None


def parameters_of(module: torch.nn.Module) -> dict[str, torch.nn.Parameter | None]:
    """The module's own parameters, not its children's (the dict behind
    ``named_parameters(recurse=False)``, which walks the whole tree each call)."""
    return module._parameters


def buffers_of(module: torch.nn.Module) -> dict[str, torch.Tensor | None]:
    """The module's own buffers (as `parameters_of`)."""
    return module._buffers


def children_of(module: torch.nn.Module) -> dict[str, torch.nn.Module | None]:
    """The module's direct children by attribute name, ``None`` entries included."""
    return module._modules
