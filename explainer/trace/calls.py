"""The script's backward calls and optimizer steps, read from their arguments.

A backward call is ``loss.backward()``, ``torch.autograd.backward(loss)`` or
``torch.autograd.grad(loss, params)``: each names a root (the loss), maybe a
gradient to start from, and whether it keeps its graph; ``torch.autograd.grad``
also names the tensors it differentiates for, and returns their gradients instead
of adding them to ``.grad``. An optimizer step may take a closure (LBFGS) that runs
a forward and a backward of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["BackwardCall", "closure_of", "read_backward_call"]


@dataclass(frozen=True)
class BackwardCall:
    """What one backward call asks for (``kind``: "method", "function" or "grad")."""

    kind: str
    root: torch.Tensor | None  # None: several tensors at once
    gradient: Any
    retains_graph: bool
    inputs: tuple[torch.Tensor, ...] = ()  # torch.autograd.grad's inputs


def read_backward_call(args: tuple[Any, ...], kwargs: dict[str, Any], kind: str) -> BackwardCall:
    """The root, gradient and graph-keeping of a backward call, by its ``kind``."""
    if kind == "grad":
        # torch.autograd.grad(outputs, inputs, grad_outputs, retain_graph, create_graph, ...)
        outputs = args[0] if args else kwargs.get("outputs")
        inputs = args[1] if len(args) > 1 else kwargs.get("inputs")
        grads = args[2] if len(args) > 2 else kwargs.get("grad_outputs")
        retain = args[3] if len(args) > 3 else kwargs.get("retain_graph")
        create = args[4] if len(args) > 4 else kwargs.get("create_graph", False)
        root, gradient = _single(outputs, grads)
        ins = (
            (inputs,)
            if isinstance(inputs, torch.Tensor)
            else tuple(inputs.values() if isinstance(inputs, dict) else inputs or ())
        )
        return BackwardCall(kind, root, gradient, bool(create if retain is None else retain), ins)
    # Tensor.backward(self, gradient, retain_graph, create_graph) and
    # torch.autograd.backward(tensors, grad_tensors, retain_graph, create_graph): the same positions.
    retain = args[2] if len(args) > 2 else kwargs.get("retain_graph")
    create = args[3] if len(args) > 3 else kwargs.get("create_graph", False)
    retains = bool(create if retain is None else retain)
    if kind == "method":
        gradient = args[1] if len(args) > 1 else kwargs.get("gradient")
        return BackwardCall(kind, args[0], gradient, retains)
    tensors = args[0] if args else kwargs.get("tensors")
    grads = args[1] if len(args) > 1 else kwargs.get("grad_tensors")
    root, gradient = _single(tensors, grads)
    return BackwardCall(kind, root, gradient, retains)


def _single(tensors: Any, grads: Any) -> tuple[torch.Tensor | None, Any]:
    """The one tensor of ``tensors`` and its gradient; (None, None) for several."""
    if isinstance(tensors, torch.Tensor):
        return tensors, grads if isinstance(grads, torch.Tensor) or grads is None else (grads[0] if grads else None)
    if isinstance(tensors, (list, tuple)) and len(tensors) == 1:
        return tensors[0], (grads[0] if grads else None)
    return None, None


def closure_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Callable[[], Any] | None:
    """The closure an ``optimizer.step(closure)`` call was given, if any (the step hooks
    see the step's arguments with the optimizer itself first)."""
    closure = args[1] if len(args) > 1 else kwargs.get("closure")
    return closure if callable(closure) else None
