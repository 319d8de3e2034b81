"""The trace's data model: what one traced step leaves behind, as plain data.

No torch here (a test imports this module alone and checks): the graph stage and
the tools after it read a `Trace` without importing torch. Numbers are
`explainer.values.TensorValue` snapshots; notes are keys and parameters, worded
by `explainer.text`. Nothing here imports a later stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..values import TensorValue

__all__ = [
    "DEFAULT_KEEP_ELEMENTS",
    "Note",
    "OptimizerInfo",
    "ParamUpdate",
    "RecordOptions",
    "Trace",
    "TraceEdge",
    "TraceNode",
]

#: Tensors with at most this many entries keep all their numbers in the trace.
DEFAULT_KEEP_ELEMENTS = 4096


@dataclass(frozen=True)
class RecordOptions:
    """How much of a large model the trace records op by op.

    Recording every op's value goes through a ``TorchDispatchMode``: a Python call per
    aten op, which alone more than doubles a large model's step. So inside a model of
    more than `explainer.trace.blocks.LARGE_MODEL_MODULES` modules, each block of a run
    of `explainer.trace.blocks.REPEAT_MIN` or more identical sibling blocks
    (``encoder.layers.0`` ... ``23``) runs light: without it, recording its output
    (value and gradient) and its autograd structure, not each op inside. The diagram
    folds such blocks anyway; these options open them.

    Parameters
    ----------
    everything
        Record every op of every module (``--full-trace``): no light blocks.
    depth
        Record in full the blocks at most this deep (``--depth``: those the diagram opens).
    expand
        Module paths (``model.encoder.layers.3``) to record in full (``--expand``).
    """

    everything: bool = False
    depth: int | None = None
    expand: tuple[str, ...] = ()


@dataclass
class ParamUpdate:
    """A parameter's value before and after the optimizer step (or a manual update)."""

    before: TensorValue
    after: TensorValue
    lr: float | None = None


@dataclass
class OptimizerInfo:
    """The optimizer whose ``step()`` followed the captured backward."""

    name: str
    hyper: dict[str, Any]


@dataclass
class TraceNode:
    """One node of the traced graph: an autograd op, a parameter, or an input tensor."""

    key: int
    kind: str  # "op" | "loss" | "param" | "leaf" | "input" | "buffer"
    name: str | None  # the user's name: variable or parameter path
    op: str | None  # friendly op name ("addmm", "log_softmax")
    autograd: str | None  # autograd Node class ("AddmmBackward0", "AccumulateGrad")
    call: str | None  # the torch function it ran inside ("linear", "cross_entropy")
    scalars: tuple[Any, ...]  # non-tensor numeric arguments (the 2 of x * 2)
    shape: tuple[int, ...]
    dtype: str
    requires_grad: bool
    value: TensorValue | None = None
    grad: TensorValue | None = None
    backward_step: int | None = None
    module: str | None = None
    module_type: str | None = None
    update: ParamUpdate | None = None
    n_outputs: int = 1
    #: module path -> which call of that module the node ran in (1, 2, ...), for the
    #: modules on its path that ran more than once in the traced forward
    calls: dict[str, int] = field(default_factory=dict)


@dataclass
class TraceEdge:
    """Data flowing ``src -> dst`` in the forward pass; ``grad`` flowed back along it."""

    src: int
    dst: int
    slots: tuple[int, ...]  # positions in dst's inputs (next_functions for grad edges)
    grad: TensorValue | None = None
    output_nr: int = 0
    flowed: bool = False  # a gradient flowed back along it (recorded in ``grad`` or not)


@dataclass(frozen=True)
class Note:
    """Something the reader should know about the trace, as a sentence's key and its
    parts (`explainer.text` words it in each language)."""

    key: str
    params: dict[str, Any]


@dataclass
class Trace:
    """Everything one trace recorded, as plain data.

    The graph stage turns it into the graph model (`explainer.build_graph`); in a
    notebook, a trace left as a cell's value shows its diagram (`explainer.notebook`).
    """

    nodes: list[TraceNode]
    edges: list[TraceEdge]
    loss: int
    backward_order: list[int]
    step: int = 1
    optimizer: OptimizerInfo | None = None
    notes: list[Note] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    modules: dict[str, str] = field(default_factory=dict)  # path -> module class
    source: str | None = None
    #: The light blocks (recorded by their outputs only, see `RecordOptions`), as module paths.
    light: list[str] = field(default_factory=list)

    def node(self, key: int) -> TraceNode:
        return self.nodes[key]

    def by_name(self, name: str) -> TraceNode:
        """The node whose user name is ``name`` (convenience for tests and notebooks)."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def __repr__(self) -> str:
        # Short: a trace can hold thousands of nodes, and a notebook echoes the repr.
        loss = self.nodes[self.loss] if 0 <= self.loss < len(self.nodes) else None
        name = (loss.name or loss.op) if loss is not None else "?"
        return (
            f"<explainer.Trace: {len(self.nodes)} nodes, {len(self.edges)} edges, loss {name!r}, "
            f"step {self.step}; explainer.show(trace) draws it, explainer.build_graph(trace) gives the graph>"
        )
