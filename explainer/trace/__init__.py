"""Trace stage: record one forward + loss + backward (+ optimizer step) as plain data.

The only stage that touches torch internals. It uses PyTorch's supported, scoped
mechanisms (function and dispatch modes, global module and optimizer hooks, hooks on
``torch.autograd.graph.Node``), all removed when the trace ends; the result, a
`Trace`, holds no torch objects. One module per concern:

* `model`: the torch-free data model (`Trace`, `TraceNode`, `TraceEdge`, `Note`,
  `RecordOptions`, ...); importing it, or this package, does not import torch;
* `internals`: every private torch API used, behind small named helpers;
* `snapshots`: tensors' numbers copied out as `explainer.values.TensorValue`;
* `modes`: the function mode (backward calls, call names) and the dispatch mode (aten ops);
* `tracker`: the modules running now, from global forward hooks;
* `records`: the recorded ops and the sweep that keeps their memory bounded;
* `blocks`: light blocks, a large model's repeated blocks traced by their outputs only;
* `calls`: backward calls (``backward()``, ``torch.autograd.grad``) and closure steps, read from their arguments;
* `capture`: hooks on the captured backward's nodes, held gradients, the leaves;
* `updates`: the optimizer steps (each parameter before and after) or a hand-written update;
* `pending`: a captured backward waiting for its update (more backward calls may add to it);
* `naming`: names from the user's frames, module paths, readable op names;
* `engine_order`: the CPU autograd engine's order, simulated (pure Python);
* `index`, `nodes`, `build`: the `Trace` built from a capture, in the order `build` states;
* `session`: one trace from start to `Trace` (`Session`); `stop`: stopping the script when done;
* `threads`: backward calls in other threads;
* `routing`: ``torch.autograd.backward`` handed to the modes on torch releases before 2.11;
* `without`, `replay`: a script without backward (its loss computed again when it has no graph);
* `tracer`: the Python API, `Tracer` and `trace_call`.

Notes
-----
A forward value is found by matching each recorded op output to the autograd node
that produced it (``tensor.grad_fn``). An in-place op (``nn.ReLU(inplace=True)``)
gives a tensor a new ``grad_fn``: the ``grad_fn`` and value it had just before are
kept, so each node shows its own output. Autograd nodes that no aten op produced
(rare: ``CopySlices``) have no value; a custom ``autograd.Function`` is named by its
class and shows its output (the tensors inside its forward are its internals, not
drawn). Data that needs no gradient shows the value the op saw: a constant changed in
place later (a GAN's ``label.fill_(0)``) is read by its version counter, from a copy
kept just before the change.

A leaf's ``grad`` is what this backward sent it (∂loss/∂leaf). When its ``.grad``
already held an earlier backward's gradient, or changed before ``optimizer.step()``
(gradient clipping), a note says so.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .engine_order import engine_order
from .model import (
    DEFAULT_KEEP_ELEMENTS,
    Note,
    OptimizerInfo,
    ParamUpdate,
    RecordOptions,
    Trace,
    TraceEdge,
    TraceNode,
)

if TYPE_CHECKING:  # pragma: no cover
    from .blocks import LARGE_MODEL_MODULES, REPEAT_MIN
    from .naming import is_user_file
    from .routing import backward_through_modes
    from .session import Session, StopScript
    from .snapshots import snapshot
    from .tracer import Tracer, trace_call

__all__ = [
    "DEFAULT_KEEP_ELEMENTS",
    "LARGE_MODEL_MODULES",
    "REPEAT_MIN",
    "Note",
    "OptimizerInfo",
    "ParamUpdate",
    "RecordOptions",
    "Session",
    "StopScript",
    "Trace",
    "TraceEdge",
    "TraceNode",
    "Tracer",
    "backward_through_modes",
    "engine_order",
    "is_user_file",
    "snapshot",
    "trace_call",
]

#: The names that need torch, by the module that defines them: imported on first use,
#: so that ``import explainer.trace.model`` (the graph stage does) does not import torch.
_NEED_TORCH = {
    "LARGE_MODEL_MODULES": "blocks",
    "REPEAT_MIN": "blocks",
    "Session": "session",
    "StopScript": "session",
    "Tracer": "tracer",
    "backward_through_modes": "routing",
    "is_user_file": "naming",
    "snapshot": "snapshots",
    "trace_call": "tracer",
}


def __getattr__(name: str) -> Any:
    module = _NEED_TORCH.get(name)
    if module is None:
        raise AttributeError(f"module 'explainer.trace' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
