"""``torch.autograd.backward`` handed to the torch-function modes on every torch release.

The trace sees a script's backward calls through its ``TorchFunctionMode``. ``Tensor.backward``
and ``torch.autograd.grad`` check for modes on every supported release; ``torch.autograd.backward``
does only from torch 2.11 (before, a mode never heard of ``torch.autograd.backward(loss)``, and
the trace found no backward at all). Where it does not, `backward_through_modes` puts a thin
wrapper in its place for the block that does the same check, so every mode (the trace's, the
thread watchers', a training run's) sees the call as on newer torch: the original function,
its tensors as a tuple. Whether the check is needed is found by trying it once, not from a
version number, so a release that backports it needs no wrapper.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.overrides import TorchFunctionMode, handle_torch_function, has_torch_function, is_tensor_like

__all__ = ["backward_through_modes"]

#: The real function: what the modes compare ``func`` with, and what the wrapper runs.
AUTOGRAD_BACKWARD = torch.autograd.backward


def routed_backward(tensors: Any, *args: Any, **kwargs: Any) -> Any:
    """``torch.autograd.backward``, first offered to the torch-function modes (torch >= 2.11 does so itself)."""
    if not is_tensor_like(tensors) and not isinstance(tensors, tuple):  # a GradientEdge is a tuple
        tensors = tuple(tensors)  # a list, or a generator that can be read only once
    candidates = (tensors,) if is_tensor_like(tensors) else tensors
    overridable = tuple(t for t in candidates if is_tensor_like(t))
    if has_torch_function(overridable):
        return handle_torch_function(AUTOGRAD_BACKWARD, overridable, tensors, *args, **kwargs)
    return AUTOGRAD_BACKWARD(tensors, *args, **kwargs)


class _Probe(TorchFunctionMode):
    """Notes whether ``torch.autograd.backward`` reached it; runs everything else."""

    def __init__(self) -> None:
        super().__init__()
        self.reached = False

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        if func is AUTOGRAD_BACKWARD:
            self.reached = True
            return None
        return func(*args, **(kwargs or {}))


@functools.cache
def backward_reaches_modes() -> bool:
    """Does this torch hand ``torch.autograd.backward`` to the modes itself? (Once per process;
    where it does not, the probe runs a real, empty backward of one leaf.)"""
    probe = _Probe()
    leaf = torch.zeros((), requires_grad=True)
    with probe:
        AUTOGRAD_BACKWARD(leaf)
    return probe.reached


@contextmanager
def backward_through_modes() -> Iterator[None]:
    """``torch.autograd.backward`` reaches the torch-function modes inside the block; the
    function is put back on exit, also on an error (nested blocks: the outermost does it)."""
    if torch.autograd.backward is not AUTOGRAD_BACKWARD or backward_reaches_modes():
        yield
        return
    torch.autograd.backward = routed_backward
    try:
        yield
    finally:
        torch.autograd.backward = AUTOGRAD_BACKWARD
