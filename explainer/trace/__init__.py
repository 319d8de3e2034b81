"""Trace stage: record one forward + loss + backward (+ optimizer step) as plain data.

This is the only module that touches torch internals. It uses PyTorch's supported,
scoped mechanisms, all removed when the trace ends:

* a ``TorchFunctionMode`` intercepts ``Tensor.backward`` / ``torch.autograd.backward``
  and notes the function-level call each op ran in (``linear``, ``cross_entropy``);
* a ``TorchDispatchMode`` records every aten op of the captured step's forward
  (so ops inside composites, e.g. ``log_softmax`` inside ``cross_entropy``, are seen),
  with references to its inputs and outputs;
* global module forward (pre-)hooks give the module each op ran in;
* ``torch.autograd.graph.Node`` hooks give the backward order and the gradient
  flowing into every node and along every edge;
* global optimizer step (pre-/post-)hooks give each parameter before and after the update.

The result, `Trace`, holds no torch objects: values are `TensorValue` snapshots.

The step itself does only what must happen then (hooks, and copying numbers that
could change); walking the graph and naming happen after it (`_Pending.build`).
A large model's repeated blocks run with both modes off their stacks, without the
global module hooks and without autograd hooks (`RecordOptions`): each block's own
hook keeps its output's value and gradient, autograd's sequence numbers place its
nodes in the block, and the CPU engine's own rule (`engine_order`) gives their
backward order.

Notes
-----
A forward value is found by matching each recorded op output to the autograd node
that produced it (``tensor.grad_fn``). An in-place op (``nn.ReLU(inplace=True)``)
gives a tensor a new ``grad_fn``: the ``grad_fn`` and value it had just before are
kept, so each node shows its own output. Autograd nodes that no aten op produced
(rare: ``CopySlices``) have no value; a custom ``autograd.Function`` is named by its
class and shows its output.

Ops are recorded from the script's start; the records are dropped at each backward
call before the captured one, unless it kept its graph (``retain_graph=True``), so a
retained graph back-propagated again at ``--step N`` still has its values. Records
of ops without gradients let go of their tensors once nobody else holds them
(`Session._sweep_constants`), so preparing data before training costs no memory.

A leaf's ``grad`` is what this backward sent it (∂loss/∂leaf). When its ``.grad``
already held an earlier backward's gradient, or changed before ``optimizer.step()``
(gradient clipping), a note says so.
"""

from __future__ import annotations

import bisect
import functools
import math
import os
import sys
import types
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from ..errors import NoLossError, NonScalarLossError, StepNotReachedError
from ..values import HEAD_ENTRIES, TensorValue
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

#: A model with more modules than this is "large": its repeated blocks record only
#: their outputs (see `RecordOptions`). A 6-layer Transformer encoder has about 65.
LARGE_MODEL_MODULES = 50

#: Identical sibling blocks (``layers.0``, ``layers.1``, ...) in a row that count as repeated.
REPEAT_MIN = 3


# --------------------------------------------------------------------------- helpers


def snapshot(t: torch.Tensor, keep_elements: int = DEFAULT_KEEP_ELEMENTS) -> TensorValue:
    """Copy a tensor's numbers out of torch: all of them, or a summary when large.

    For plain tensors the copy runs with torch-function and dispatch modes switched
    off (C++ guards, restored on exit): otherwise the trace's own modes would see,
    and pass on, every op of every copy, the largest share of the trace's time.
    Tensor subclasses keep their own dispatch.
    """
    if type(t) is torch.Tensor or type(t) is torch.nn.Parameter:
        with torch._C.DisableTorchFunction(), torch._C._DisableTorchDispatch():
            return _snapshot(t, keep_elements)
    return _snapshot(t, keep_elements)


#: dtypes numpy holds as they are: small tensors of these take the short path in `_snapshot`.
_NUMPY_DTYPES = frozenset(
    {torch.float32, torch.float64, torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool}
)


def _snapshot(t: torch.Tensor, keep_elements: int) -> TensorValue:
    t = t.detach()
    if (
        t.dtype in _NUMPY_DTYPES
        and t.layout is torch.strided
        and t.device.type == "cpu"
        and not t.is_neg()
        and t.numel() <= keep_elements
    ):
        # The common case, kept short: a trace snapshots a few hundred tensors.
        return TensorValue(tuple(t.shape), _dtype_name(t.dtype), data=t.numpy().copy())
    shape = tuple(int(s) for s in t.shape)
    dtype = str(t.dtype).removeprefix("torch.")
    if t.is_sparse or t.is_quantized or t.device.type == "meta" or t.is_complex():
        return TensorValue(shape, dtype)
    if t.dtype in (torch.bfloat16, torch.float16) or str(t.dtype).startswith("torch.float8"):
        t = t.float()
    if t.numel() <= keep_elements:
        return TensorValue(shape, dtype, data=t.to("cpu", copy=True).numpy())
    f = t.float() if t.dtype != torch.bool else t.to(torch.float32)
    lo, hi = torch.aminmax(f)
    lo_, hi_, mean, norm = torch.stack([lo, hi, f.mean(), torch.linalg.vector_norm(f)]).tolist()
    stats = {"min": lo_, "max": hi_, "mean": mean, "norm": norm, "nan": 0, "inf": 0}
    if not (math.isfinite(lo_) and math.isfinite(hi_)):
        # Only then count: a NaN makes min/max NaN and an Inf makes one of them infinite,
        # so finite tensors (nearly all) skip two more passes over their data.
        stats["nan"] = int(torch.isnan(f).sum())
        stats["inf"] = int(torch.isinf(f).sum())
    head = tuple(float(v) for v in f.reshape(-1)[:HEAD_ENTRIES].tolist())
    return TensorValue(shape, dtype, stats=stats, head=head)


def friendly_op(func: Any | None, node: Any | None = None) -> str:
    """``aten._log_softmax.default`` -> ``log_softmax``; ``MseLossBackward0`` -> ``mse_loss``."""
    if func is not None:
        name = func.overloadpacket.__name__
        name = name.lstrip("_")
        return name.removesuffix("_forward")
    return _op_of_class(node.name() if node is not None else "op")


@functools.lru_cache(maxsize=1024)
def _op_of_class(cls: str) -> str:
    """``MseLossBackward0`` -> ``mse_loss`` (cached: a large graph repeats a few classes)."""
    base = cls.split("::")[-1]
    for suffix in ("Backward0", "Backward1", "Backward"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    out = []
    for i, ch in enumerate(base):
        if ch.isupper() and i > 0 and not base[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out) or cls


def _call_name(func: Any) -> str | None:
    name = getattr(func, "__name__", None)
    if not name:
        return None
    if name.startswith("__") and name.endswith("__"):
        name = name[2:-2]
        if name.startswith("r") and name[1:] in {"add", "sub", "mul", "truediv", "matmul", "pow"}:
            name = name[1:]
        if name.startswith("i") and name[1:] in {"add", "sub", "mul", "truediv"}:
            name = name[1:]
    return {"truediv": "div"}.get(name, name)


_UNNAMED_CALLS = frozenset({"__get__", "__set__", "grad_fn", "requires_grad", "shape", "dtype", "device"})


@functools.lru_cache(maxsize=4096)
def _named_call(func: Any) -> str | None:
    """The call name ops inside ``func`` are noted with; None for attribute access and aten ops."""
    name = None if isinstance(func, torch._ops.OpOverload) else _call_name(func)
    return None if name in _UNNAMED_CALLS else name


#: explain-graph's own folder (this package's parent): frames there are not the user's.
_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__))
_STDLIB_DIRS = tuple(
    {os.path.dirname(os.path.abspath(os.__file__)), os.path.abspath(sys.prefix), os.path.abspath(sys.base_prefix)}
)


def is_user_file(filename: str) -> bool:
    """Is this frame's file the user's code, not torch, explain-graph or the stdlib?"""
    if not filename or filename.startswith("<"):
        return filename.startswith("<ipython-input") or filename.startswith("<stdin")
    path = os.path.abspath(filename)
    if path.startswith(_PKG_DIR + os.sep) or path.startswith(_TORCH_DIR + os.sep):
        return False
    if "site-packages" in path or "dist-packages" in path:
        # A notebook kernel or a test importing the user's module still counts.
        return False
    return not any(path.startswith(d + os.sep) for d in _STDLIB_DIRS)


def names_in_frames(frame: types.FrameType | None) -> tuple[dict[int, str], dict[int, tuple[str, torch.nn.Module]]]:
    """Names of tensors and modules visible in the user's frames, innermost first.

    Returns two maps keyed by ``id(obj)`` (used only while the objects are alive,
    never in output): tensor -> name, module -> name.
    """
    tensors: dict[int, str] = {}
    modules: dict[int, tuple[str, torch.nn.Module]] = {}
    seen_globals: set[int] = set()
    selves: list[Any] = []
    while frame is not None:
        if is_user_file(frame.f_code.co_filename):
            scopes = [frame.f_locals]
            if id(frame.f_globals) not in seen_globals:
                seen_globals.add(id(frame.f_globals))
                scopes.append(frame.f_globals)
            for scope in scopes:
                _collect_names(scope, tensors, modules)
            if "self" in frame.f_code.co_varnames[:1]:
                selves.append(frame.f_locals.get("self"))
        frame = frame.f_back
    # Then what methods reach through ``self`` (a trainer's ``self.model`` is named
    # ``model``), so plain variable names win.
    for obj in selves:
        if isinstance(obj, torch.nn.Module):
            modules.setdefault(id(obj), ("self", obj))
            continue
        attrs = getattr(obj, "__dict__", None)
        if not isinstance(attrs, dict):
            continue
        taken = set(tensors.values()) | {name for name, _ in modules.values()}
        _collect_names(
            {(f"self.{k}" if k in taken else k): v for k, v in attrs.items() if not k.startswith("_")},
            tensors,
            modules,
        )
    return tensors, modules


def _collect_names(
    scope: dict[str, Any], tensors: dict[int, str], modules: dict[int, tuple[str, torch.nn.Module]]
) -> None:
    for name, obj in list(scope.items()):
        if name.startswith("_") or name == "self":
            continue
        if isinstance(obj, torch.Tensor):
            tensors.setdefault(id(obj), name)
        elif isinstance(obj, torch.nn.Module):
            modules.setdefault(id(obj), (name, obj))


def _tensors_in(obj: Any) -> Iterator[torch.Tensor]:
    """The tensors in nested tuples, lists and dicts, in order.

    Written out rather than torch's pytree: aten op arguments are shallow, and this
    runs for every recorded op (pytree's generality cost ~15% of a large trace).
    """
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from _tensors_in(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors_in(item)


def _scalar_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    out = []
    for a in args:
        if isinstance(a, bool):
            continue
        if isinstance(a, (int, float)):
            out.append(a if math.isfinite(float(a)) else str(a))
    return tuple(out)


def _next_sequence_nr() -> int:
    """The sequence number the next autograd node created on this thread will get."""
    return torch._C._autograd._get_sequence_nr()


def _structure(module: torch.nn.Module) -> tuple[tuple[str, str], ...]:
    return tuple((name, type(m).__name__) for name, m in module.named_modules())


def _repeated_blocks(root: torch.nn.Module, options: RecordOptions) -> list[torch.nn.Module]:
    """The blocks of ``root`` that run unrecorded (see `RecordOptions`).

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
        run: list[tuple[str, Any]] = []  # (index, structure, module)
        runs: list[list[tuple[str, Any]]] = []
        for name, child in parent._modules.items():
            if child is None or not name.isdigit():
                continue
            shape = _structure(child)
            if run and not (int(name) == int(run[-1][0]) + 1 and shape == run[-1][1]):
                runs.append(run)
                run = []
            run.append((name, shape, child))
        runs.append(run)
        for r in runs:
            if len(r) < REPEAT_MIN:
                continue
            for name, _, child in r:
                sub = f"{parent_name}.{name}" if parent_name else name
                depth = sub.count(".") + 2  # the root is depth 1
                if options.depth is not None and depth <= options.depth:
                    continue
                if any(p == sub or p.startswith(sub + ".") for p in opened):
                    continue
                out.append(child)
    return out


@dataclass
class _Rec:
    """One aten op seen in the captured forward."""

    index: int
    func: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    outs: list[torch.Tensor]
    modules: tuple[torch.nn.Module, ...]
    call: str | None
    emptied: bool = False  # a sweep let go of everything it held (`Session._sweep_constants`)
    pre_mutation: dict[int, TensorValue] = field(default_factory=dict)  # out index -> value
    #: out index -> (grad_fn, output_nr) the output had just before an in-place op rebased it
    pre_mutation_fn: dict[int, tuple[Any, int]] = field(default_factory=dict)

    def node(self, j: int) -> tuple[Any, int]:
        """The autograd node (and output number) that output ``j`` came from: the one it
        had just before an in-place op gave the tensor a new ``grad_fn``, if any."""
        t = self.outs[j]
        return self.pre_mutation_fn.get(j, (t.grad_fn, t.output_nr))


#: Records are swept (`Session._sweep_constants`) after at least this many new ones, or
#: once new outputs hold this many bytes; the newest `SWEEP_WINDOW` are never swept.
SWEEP_MIN = 128
SWEEP_BYTES = 64 * 2**20
SWEEP_WINDOW = 32


#: Arguments with more storage than this are held weakly by old records (`_weaken`).
STRIP_BYTES = 64 * 2**10


class _WeakArg:
    """A large tensor argument an old record holds weakly (see `Session._sweep_constants`)."""

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


def _strengthen(obj: Any) -> tuple[Any, bool]:
    """``obj`` with `_WeakArg` resolved; False if one of them is gone."""
    if isinstance(obj, _WeakArg):
        t = obj.ref()
        return t, t is not None
    if isinstance(obj, (tuple, list)):
        items = [_strengthen(o) for o in obj]
        return type(obj)(v for v, _ in items), all(ok for _, ok in items)
    if isinstance(obj, dict):
        items2 = {k: _strengthen(v) for k, v in obj.items()}
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


class _StopScript(BaseException):
    """Raised inside the user's script to stop it once the trace is complete.

    A BaseException, so a user's ``except Exception`` does not swallow it.
    """


# --------------------------------------------------------------------------- modes


class _Recorder(TorchDispatchMode):
    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # Otherwise torch wraps __torch_dispatch__ in torch._dynamo.disable, which
        # imports torch._dynamo (1.5 s, half of a run) on the first op of every script.
        return False

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        s = self.session
        if not s.recording or s.busy:
            return func(*args, **kwargs)
        mutated = _mutated_inputs(func, args, kwargs)
        if mutated:
            s.note_mutation(mutated, func)
        out = func(*args, **kwargs)
        s.record(func, args, kwargs, out)
        return out


#: Batch-norm ops that update running_mean / running_var (arguments 3 and 4) in
#: training mode although their schema does not mark them as written.
_UNMARKED_BN = frozenset({"native_batch_norm", "cudnn_batch_norm", "miopen_batch_norm"})


def _mutated_inputs(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[torch.Tensor]:
    schema = getattr(func, "_schema", None)
    if schema is None:
        return []
    out = []
    packet = getattr(func, "overloadpacket", None)
    if packet is not None and packet.__name__ in _UNMARKED_BN and len(args) > 5 and args[5]:
        out.extend(a for a in args[3:5] if isinstance(a, torch.Tensor))
    for i, arg in enumerate(schema.arguments):
        if arg.alias_info is not None and arg.alias_info.is_write:
            val = args[i] if i < len(args) else kwargs.get(arg.name)
            if isinstance(val, torch.Tensor):
                out.append(val)
    return out


_TENSOR_BACKWARD = torch.Tensor.backward
_AUTOGRAD_BACKWARD = torch.autograd.backward


class _Interceptor(TorchFunctionMode):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if func is _TENSOR_BACKWARD:
            return self.session.on_backward(func, args, kwargs, kind="method")
        if func is _AUTOGRAD_BACKWARD:
            return self.session.on_backward(func, args, kwargs, kind="function")
        s = self.session
        if not s.recording or s.busy:
            return func(*args, **kwargs)
        try:
            name = _named_call(func)
        except TypeError:  # an unhashable callable
            name = None
        if name is None:
            return func(*args, **kwargs)
        prev = s.current_call
        s.current_call = name
        try:
            return func(*args, **kwargs)
        finally:
            s.current_call = prev


# --------------------------------------------------------------------------- session


class Session:
    """The state of one trace: which backward call to capture, what was recorded.

    Parameters
    ----------
    step
        Capture the ``step``-th ``backward()`` call (1-based).
    stop_when_done
        Raise `_StopScript` once the capture (and the optimizer step after it) is
        complete: the CLI uses this to stop the user's script early.
    keep_elements
        Tensors up to this many entries keep all numbers; larger ones a summary.
    record
        Which repeated blocks of a large model to record op by op (`RecordOptions`).
    """

    def __init__(
        self,
        step: int = 1,
        stop_when_done: bool = False,
        keep_elements: int = DEFAULT_KEEP_ELEMENTS,
        record: RecordOptions | None = None,
    ) -> None:
        if step < 1:
            raise ValueError("step must be >= 1")
        self.step = step
        self.stop_when_done = stop_when_done
        self.keep = keep_elements
        self.record_options = record or RecordOptions()
        self._recorder: _Recorder | None = None
        self._interceptor: _Interceptor | None = None
        self._light_interceptor = False  # the interceptor was taken off for the current block
        self._blocks: dict[int, tuple[torch.nn.Module, frozenset[int]]] = {}  # id(root) -> (root, block ids)
        self._light_at: int | None = None  # module-stack depth of the block running unrecorded
        self._span_starts: list[int] = []
        # Unrecorded blocks: (module stack, first sequence nr, end) of each call, the
        # blocks' stacks, and their outputs' values keyed by (grad_fn, output_nr).
        self._block_spans: list[tuple[tuple[torch.nn.Module, ...], int, int]] = []
        self._light_blocks: dict[int, tuple[torch.nn.Module, ...]] = {}
        self._block_values: dict[tuple[Any, int], TensorValue] = {}
        self._block_inputs: dict[Any, None] = {}  # nodes of the tensors entering those blocks
        self.backward_calls = 0
        # Ops are recorded from the start: a graph kept with retain_graph=True can be
        # back-propagated again at a later step, and its values must be known then.
        self.recording = True
        self.busy = False
        self.current_call: str | None = None
        self.records: list[_Rec] = []
        self._rec_count = 0
        self._replaying = False  # re-running recorded ops (`_replay`): they must stay whole
        self._in_backward = False
        self._watch: list[_Rec] = []  # records a sweep looks at (`_sweep_constants`)
        self._emptied = 0
        self._since_sweep = 0  # records, and bytes of their outputs, since the last sweep
        self._bytes_since_sweep = 0
        self._sweep_at = SWEEP_MIN
        self._produced: dict[int, tuple[_Rec, int]] = {}  # id(tensor) -> (record, out index)
        self._const_pre: dict[int, TensorValue] = {}  # id(tensor) -> value before an in-place op
        self._in_optimizer = False
        self.module_stack: list[torch.nn.Module] = []
        self.losses: list[float] = []
        self.result: Trace | None = None
        self.state = "forward"  # forward -> captured -> done
        self._pending: _Pending | None = None
        self._handles: list[Any] = []
        self._module_handles: list[Any] = []  # the global module hooks, while installed
        self._block_handles: list[Any] = []  # each unrecorded block's own forward hook
        self._modes: list[Any] = []

    # -- installation ---------------------------------------------------------

    @contextmanager
    def active(self) -> Iterator[Session]:
        """Install the modes and hooks; everything is removed on exit."""
        self._module_hooks_on()
        self._handles = [
            register_optimizer_step_pre_hook(self._opt_pre),
            register_optimizer_step_post_hook(self._opt_post),
        ]
        interceptor, recorder = _Interceptor(self), _Recorder(self)
        self._interceptor, self._recorder = interceptor, recorder
        try:
            with interceptor, recorder:
                try:
                    yield self
                finally:
                    # A KeyboardInterrupt inside a block skips its post-hook: modes back first.
                    self._end_light()
        finally:
            for h in [*self._handles, *self._block_handles]:
                h.remove()
            self._module_hooks_off()
            self._handles, self._block_handles = [], []
            self.module_stack.clear()
            self._span_starts.clear()
            self._light_at = None
            self._blocks = {}
            self._interceptor = self._recorder = None

    # -- forward recording ------------------------------------------------------

    def _module_pre(self, module: torch.nn.Module, args: Any) -> None:
        stack = self.module_stack
        if not stack:
            self._root_blocks(module)
        elif (
            self._light_at is None
            and id(module) in self._blocks[id(stack[0])][1]
            # Not without grad: a reentrant checkpoint runs its block so, then wraps the output.
            and torch.is_grad_enabled()
            and self._pop_recorder()
        ):
            # The interceptor too, if on top: it only names calls, and there are none to name here.
            self._light_interceptor = self._pop_interceptor()
            self._light_at = len(stack)
            if self.recording:
                self._note_block_inputs(args)
            self._module_hooks_off()
        stack.append(module)
        self._span_starts.append(_next_sequence_nr())

    def _module_post(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        stack = self.module_stack
        if not stack or stack[-1] is not module:
            return
        start = self._span_starts.pop()
        if self._light_at is not None and len(stack) - 1 == self._light_at:
            # The block ends (its own hook: its submodules ran without any).
            if self.recording:
                mods = tuple(stack)
                self._block_spans.append((mods, start, _next_sequence_nr()))
                self._light_blocks.setdefault(id(module), mods)
                self._keep_block_output(output)
            self._end_light()
        stack.pop()

    def _block_post(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        """A block's own forward hook: the global ones are off while it runs unrecorded."""
        if self._light_at is not None and self.module_stack and self.module_stack[-1] is module:
            self._module_hooks_on()
            self._module_post(module, args, output)

    def _module_hooks_on(self) -> None:
        if not self._module_handles:
            self._module_handles = [
                register_module_forward_pre_hook(self._module_pre),
                # always_call: the post-hook puts the modes back even when a module raises.
                register_module_forward_hook(self._module_post, always_call=True),
            ]

    def _module_hooks_off(self) -> None:
        for h in self._module_handles:
            h.remove()
        self._module_handles = []

    def _end_light(self) -> None:
        """Put back what a block took off (also after a block was interrupted)."""
        if self._light_at is None:
            return
        self._module_hooks_on()
        torch._C._push_on_torch_dispatch_stack(self._recorder)
        if self._light_interceptor:
            torch._C._push_on_torch_function_stack(self._interceptor)
        self._light_at = None

    def _note_block_inputs(self, args: Any) -> None:
        """Before an unrecorded block runs: its inputs' nodes (the step hooks those outside
        the blocks from there) and, for recorded ones, what the block may overwrite in
        place (``ReLU(inplace=True)`` first): their values and nodes as they are now."""
        produced = []
        for t in _tensors_in(args):
            if t.grad_fn is not None:
                self._block_inputs[t.grad_fn] = None
            if id(t) in self._produced:
                produced.append(t)
        if produced:
            self.note_mutation(produced)

    # -- repeated blocks of large models ------------------------------------------

    def _root_blocks(self, root: torch.nn.Module) -> None:
        """Find (once per root module) the blocks that run without op-by-op recording."""
        hit = self._blocks.get(id(root))
        if hit is None or hit[0] is not root:
            blocks = [] if self.record_options.everything else _repeated_blocks(root, self.record_options)
            self._blocks[id(root)] = (root, frozenset(id(b) for b in blocks))
            # Each block's own post-hook ends it: inside it the global module hooks step
            # aside (`_module_pre`), so its submodules run as fast as without a trace.
            for b in blocks:
                self._block_handles.append(b.register_forward_hook(self._block_post, always_call=True))

    @contextmanager
    def _recorder_off(self) -> Iterator[None]:
        """Run a backward pass without the recorder: it records nothing there, yet its
        Python call on every aten op would double the pass's time."""
        popped = self._pop_recorder()
        try:
            yield
        finally:
            if popped:
                torch._C._push_on_torch_dispatch_stack(self._recorder)

    def _pop_recorder(self) -> bool:
        """Take the recorder off the dispatch stack, if it is on top (no user mode above it)."""
        n = torch._C._len_torch_dispatch_stack()
        if n == 0 or torch._C._get_dispatch_stack_at(n - 1) is not self._recorder:
            return False
        torch._C._pop_torch_dispatch_stack(None)
        return True

    def _pop_interceptor(self) -> bool:
        """Take the interceptor off the torch-function mode stack, if it is on top."""
        n = torch._C._len_torch_function_stack()
        if n == 0 or torch._C._get_function_stack_at(n - 1) is not self._interceptor:
            return False
        torch._C._pop_torch_function_stack()
        return True

    def _keep_block_output(self, output: Any) -> None:
        """Snapshot what an unrecorded block returns: the value its output node shows."""
        self.busy = True
        try:
            for t in _tensors_in(output):
                fn = t.grad_fn
                if fn is not None:
                    self._block_values.setdefault((fn, t.output_nr), snapshot(t, self.keep))
        finally:
            self.busy = False

    def record(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        outs = list(_tensors_in(out))
        self._rec_count += 1
        rec = _Rec(
            index=self._rec_count,
            func=func,
            args=args,
            kwargs=kwargs,
            outs=outs,
            modules=tuple(self.module_stack),
            call=self.current_call,
        )
        self.records.append(rec)
        self._watch.append(rec)
        for i, t in enumerate(outs):
            self._produced[id(t)] = (rec, i)
        # Whether an output requires grad is known only after this returns (autograd
        # wraps the op above the dispatch mode): the sweep looks at it later.
        self._since_sweep += 1
        self._bytes_since_sweep += sum(t.numel() * t.element_size() for t in outs)
        if (self._since_sweep > self._sweep_at or self._bytes_since_sweep > SWEEP_BYTES) and not self._replaying:
            self._sweep_constants()

    def _sweep_constants(self) -> None:
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
        newest = self._rec_count - SWEEP_WINDOW
        still: list[_Rec] = []
        # Newest first: letting go of a record's arguments can free older records' outputs.
        for rec in reversed(self._watch):
            if rec.index > newest:
                still.append(rec)
                continue
            if rec.pre_mutation or any(t.grad_fn is not None for t in rec.outs):
                continue  # part of a graph: kept until backward
            if _only_ours(rec.outs):
                for t in rec.outs:
                    if self._produced.get(id(t), (None,))[0] is rec:
                        del self._produced[id(t)]
                rec.outs, rec.args, rec.kwargs, rec.emptied = [], (), {}, True
                self._emptied += 1
                continue
            if not any(t.dim() == 0 for t in rec.outs):
                rec.args, rec.kwargs = _weaken((rec.args, rec.kwargs))
            still.append(rec)
        still.reverse()
        self._watch = still
        if self._emptied > len(self.records) // 2:
            self.records = [r for r in self.records if not r.emptied]
            self._emptied = 0
        self._since_sweep = 0
        self._bytes_since_sweep = 0
        self._sweep_at = max(len(still), SWEEP_MIN)

    def note_mutation(self, tensors: list[torch.Tensor], func: Any = None) -> None:
        """Keep what an in-place op is about to overwrite.

        For a recorded output: its value and its ``grad_fn`` (an in-place op such as
        ``relu_`` gives the tensor a new ``grad_fn``; the old node keeps the old value).
        For a constant (a BatchNorm running mean): its value before the update, unless
        the op only writes it (``zero_``, ``fill_``).
        """
        self.busy = True
        try:
            seen: set[int] = set()
            for t in tensors:
                for u in (t, t._base if t._is_view() else None):
                    if u is None or id(u) in seen:
                        continue
                    seen.add(id(u))
                    hit = self._produced.get(id(u))
                    if hit is not None:
                        rec, i = hit
                        if i not in rec.pre_mutation and rec.outs[i] is u:
                            rec.pre_mutation[i] = snapshot(u, self.keep)
                            # No node yet (a constant the op pulls into the graph, c.add_(w)):
                            # then this op's output has no node, and must not take the new one.
                            rec.pre_mutation_fn[i] = (u.grad_fn, u.output_nr) if u.grad_fn is not None else (None, 0)
                    elif (
                        not u.requires_grad
                        and id(u) not in self._const_pre
                        and not _writes_only(func)
                    ):
                        self._const_pre[id(u)] = snapshot(u, self.keep)
        finally:
            self.busy = False

    def _reset_records(self) -> None:
        self.records = []
        self._watch = []
        self._emptied = 0
        self._since_sweep = 0
        self._bytes_since_sweep = 0
        self._sweep_at = SWEEP_MIN
        self._produced = {}
        self._const_pre = {}
        self._block_spans = []
        self._light_blocks = {}
        self._block_values = {}
        self._block_inputs = {}

    # -- backward interception --------------------------------------------------

    def on_backward(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], kind: str) -> Any:
        if self._in_backward:
            # A backward inside a backward (a reentrant checkpoint recomputing its block):
            # part of the one being run, not a call of the script's.
            return func(*args, **kwargs)
        self._in_backward = True
        if self._light_at is not None:
            # A forward never runs a backward inside a block: it was interrupted (a
            # KeyboardInterrupt the script caught skips module hooks). Start afresh.
            self._end_light()
            self.module_stack.clear()
            self._span_starts.clear()
        try:
            return self._on_backward(func, args, kwargs, kind)
        finally:
            self._in_backward = False

    def _on_backward(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], kind: str) -> Any:
        root, gradient = _backward_root(args, kwargs, kind)
        if root is not None and root.numel() == 1:
            self.busy = True
            try:
                self.losses.append(float(root.detach().reshape(-1)[0]))
            finally:
                self.busy = False
        self.backward_calls += 1
        n = self.backward_calls
        if self.state == "captured":
            # The script went on to another backward without an optimizer step.
            self._finish_capture()
            if self.stop_when_done:
                raise _StopScript
        if n != self.step or self.state != "forward":
            self.recording = False
            try:
                with self._recorder_off():
                    return func(*args, **kwargs)
            finally:
                if self.state == "forward":
                    # A retained graph may be back-propagated again: keep its values.
                    if not _retains_graph(args, kwargs):
                        self._reset_records()
                    self.recording = True
        self.recording = False
        if root is None:
            raise NonScalarLossError(
                "backward() was called on several tensors at once; explain-graph traces one loss: "
                "call backward on a single tensor (e.g. sum the losses first)"
            )
        tensor_names, module_names = names_in_frames(sys._getframe(1))
        self.busy = True
        try:
            pending = self._prepare(root, gradient, tensor_names, module_names)
        finally:
            self.busy = False
        pending.install_hooks()
        try:
            with self._recorder_off():
                result = func(*args, **kwargs)
        finally:
            pending.remove_hooks()
        self.busy = True
        try:
            pending.after_backward()
        finally:
            self.busy = False
        self._pending = pending
        self.state = "captured"
        self._reset_records()
        return result

    def _prepare(
        self,
        root: torch.Tensor,
        gradient: torch.Tensor | None,
        tensor_names: dict[int, str],
        module_names: dict[int, tuple[str, torch.nn.Module]],
        notes: list[Note] | None = None,
    ) -> _Pending:
        name = tensor_names.get(id(root), "the loss")
        if root.grad_fn is None:
            raise NoLossError(
                f"{name} has no autograd graph (it is a leaf or does not require grad): "
                "compute the loss from tensors that require grad, e.g. a model's output"
            )
        if gradient is None and root.numel() != 1:
            raise NonScalarLossError(
                f"{name} has shape {list(root.shape)}, not a scalar, and backward() got no gradient: "
                f"reduce it first (e.g. {name}.mean()) or pass a gradient of the same shape"
            )
        return _Pending(self, root, tensor_names, module_names, notes or [])

    # -- optimizer ----------------------------------------------------------------

    def _opt_pre(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if self.state == "forward" and self.recording:
            # An update before the captured step is no part of any forward pass.
            self.recording = False
            self._in_optimizer = True
        if self.state == "captured" and self._pending is not None:
            self.busy = True
            try:
                self._pending.before_step(optimizer)
            finally:
                self.busy = False

    def _opt_post(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if self._in_optimizer:
            self._in_optimizer = False
            if self.state == "forward":
                self.recording = True
        if self.state == "captured" and self._pending is not None and self._pending.optimizer is optimizer:
            self.busy = True
            try:
                self._pending.after_step(optimizer)
            finally:
                self.busy = False
            self._finish_capture()
            if self.stop_when_done:
                raise _StopScript

    # -- finishing ----------------------------------------------------------------

    def _finish_capture(self) -> None:
        if self._pending is None:
            return
        self.busy = True
        try:
            self.result = self._pending.build()
        finally:
            self.busy = False
        self.result.losses = self.losses
        self._pending = None
        self.state = "done"

    def finish(self, namespace: dict[str, Any] | None = None) -> Trace:
        """Complete the trace once the script (or ``with`` block) has ended.

        If no backward call was captured, explain the final scalar loss instead:
        ``namespace['loss']`` when it is a tensor, else the last scalar the forward
        computed; float leaves it depends on are made to require grad for the trace.
        """
        if self.state == "captured":
            self._finish_capture()
        if self.result is not None:
            self.result.losses = self.losses
            return self.result
        if self.backward_calls:
            raise StepNotReachedError(
                f"the script called backward() {self.backward_calls} time(s), so there is no step {self.step}: "
                f"use --step {self.backward_calls} or lower"
            )
        return self._explain_without_backward(namespace or {})

    def _explain_without_backward(self, namespace: dict[str, Any]) -> Trace:
        names: dict[int, str] = {}
        module_names: dict[int, tuple[str, torch.nn.Module]] = {}
        _collect_names(namespace, names, module_names)
        target = namespace.get("loss")
        if isinstance(target, torch.Tensor):
            if target.numel() != 1:
                raise NonScalarLossError(
                    f"loss has shape {list(target.shape)}, not a scalar: reduce it (e.g. loss.mean()) "
                    "or call loss.backward(gradient) in the script"
                )
        else:
            target = None
            for rec in reversed(self.records):
                for t in rec.outs:
                    if t.dim() == 0 and t.is_floating_point():
                        target = t
                        break
                if target is not None:
                    break
        if target is None:
            raise NoLossError(
                "the script never calls backward() and computes no scalar loss: "
                "add loss.backward(), or name the final scalar `loss`"
            )
        if target.grad_fn is not None or target.requires_grad:
            root, made = target, []
        else:
            root, made, names = self._replay(target, names)
        notes: list[Note] = []
        if made:
            notes.append(Note("note_replayed", {"made": ", ".join(made), "root": names.get(id(root), "")}))
        elif self.backward_calls == 0:
            notes.append(Note("note_no_backward", {"root": names.get(id(root), "")}))
        with self.active():
            self.recording = False
            self.busy = True
            try:
                pending = self._prepare(root, None, names, module_names, notes)
            finally:
                self.busy = False
            pending.install_hooks()
            try:
                with self._recorder_off():
                    root.backward()
            finally:
                pending.remove_hooks()
            self.busy = True
            try:
                pending.after_backward()
                self.result = pending.build()
            finally:
                self.busy = False
        self.result.losses = self.losses
        self.state = "done"
        return self.result

    def _replay(self, target: torch.Tensor, names: dict[int, str]) -> tuple[torch.Tensor, list[str], dict[int, str]]:
        """Re-run the recorded ops that computed ``target`` with float leaves requiring grad."""
        needed: dict[int, _Rec] = {}
        resolved: dict[int, tuple[Any, Any]] = {}  # record -> its (args, kwargs), held strongly
        leaves: dict[int, torch.Tensor] = {}
        stack = [target]
        seen: set[int] = set()
        while stack:
            t = stack.pop()
            if id(t) in seen:
                continue
            seen.add(id(t))
            hit = self._produced.get(id(t))
            is_named_leaf = t is not target and id(t) in names
            if (
                hit is None
                or is_named_leaf
                or friendly_op(hit[0].func) in {"lift_fresh", "lift", "lift_fresh_copy"}
            ):
                leaves[id(t)] = t
                continue
            rec = hit[0]
            (args, kwargs), alive = _strengthen((rec.args, rec.kwargs))
            if not alive:  # a large input was let go (`_sweep_constants`): start from here
                leaves[id(t)] = t
                continue
            needed[rec.index] = rec
            resolved[rec.index] = (args, kwargs)
            stack.extend(_tensors_in((args, kwargs)))
        mapping: dict[int, torch.Tensor] = {}
        made: list[str] = []
        new_names: dict[int, str] = {}
        for key, t in leaves.items():
            if t.is_floating_point():
                new = t.detach().clone().requires_grad_(True)
                made.append(names.get(key, f"a {tuple(t.shape)} tensor"))
            else:
                new = t
            mapping[key] = new
            if key in names:
                new_names[id(new)] = names[key]
        with self.active():
            self.busy = False
            self.recording = True
            self._replaying = True
            for idx in sorted(needed):
                rec = needed[idx]
                flat, spec = tree_flatten(resolved[idx])
                flat = [mapping.get(id(a), a) if isinstance(a, torch.Tensor) else a for a in flat]
                args, kwargs = spec.unflatten(flat)
                prev_call = self.current_call
                self.current_call = rec.call
                self.module_stack[:] = list(rec.modules)
                try:
                    out = rec.func(*args, **kwargs)
                finally:
                    self.current_call = prev_call
                    self.module_stack.clear()
                new_outs = list(_tensors_in(out))
                for old, new in zip(rec.outs, new_outs):
                    mapping[id(old)] = new
                    if id(old) in names:
                        new_names[id(new)] = names[id(old)]
            self.recording = False
            self._replaying = False
        root = mapping[id(target)]
        return root, sorted(made), new_names


#: In-place ops that only write their argument, so its old value was never an input.
_WRITE_ONLY = frozenset(
    {"zero_", "fill_", "copy_", "uniform_", "normal_", "bernoulli_", "random_", "exponential_",
     "geometric_", "cauchy_", "log_normal_", "resize_", "set_", "detach_", "requires_grad_"}
)


def _writes_only(func: Any) -> bool:
    packet = getattr(func, "overloadpacket", None)
    return packet is not None and packet.__name__ in _WRITE_ONLY


def _retains_graph(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Did this backward call keep its graph (``retain_graph=True`` or ``create_graph=True``)?"""
    # The same positions for Tensor.backward(self, gradient, retain_graph, create_graph)
    # and torch.autograd.backward(tensors, grad_tensors, retain_graph, create_graph).
    retain = args[2] if len(args) > 2 else kwargs.get("retain_graph")
    create = args[3] if len(args) > 3 else kwargs.get("create_graph", False)
    return bool(create if retain is None else retain)


def _backward_root(args: tuple[Any, ...], kwargs: dict[str, Any], kind: str) -> tuple[torch.Tensor | None, Any]:
    if kind == "method":
        root = args[0]
        gradient = args[1] if len(args) > 1 else kwargs.get("gradient")
        return root, gradient
    tensors = args[0] if args else kwargs.get("tensors")
    grads = args[1] if len(args) > 1 else kwargs.get("grad_tensors")
    if isinstance(tensors, torch.Tensor):
        return tensors, grads if isinstance(grads, torch.Tensor) else (grads[0] if grads else None)
    if isinstance(tensors, (list, tuple)) and len(tensors) == 1:
        return tensors[0], (grads[0] if grads else None)
    return None, None


# --------------------------------------------------------------------------- capture


@dataclass
class _Later:
    """A gradient held until after the step, to be copied then (`_Pending._snap_grad`)."""

    tensor: torch.Tensor
    version: int


def _copied(values: list[Any], done: dict[int, TensorValue | None], keep: int) -> list[TensorValue | None]:
    """``values`` with each `_Later` copied (once; None if something changed it in place)."""
    out: list[TensorValue | None] = []
    for v in values:
        if isinstance(v, _Later):
            if id(v) not in done:
                t = v.tensor
                done[id(v)] = snapshot(t, keep) if t._version == v.version else None
            v = done[id(v)]
        out.append(v)
    return out


#: The autograd node class of leaves (``fn.variable`` is the leaf tensor).
_ACCUMULATE_GRAD = torch._C._functions.AccumulateGrad


class _Pending:
    """The autograd graph of the captured backward, between hooks and the final `Trace`."""

    def __init__(
        self,
        session: Session,
        root: torch.Tensor,
        tensor_names: dict[int, str],
        module_names: dict[int, tuple[str, torch.nn.Module]],
        notes: list[Note],
    ) -> None:
        self.s = session
        self.keep = session.keep
        self.root = root
        self.tensor_names = tensor_names
        self.module_names = module_names
        self.notes = notes
        self.records = session.records
        self.produced = session._produced
        self.const_pre = session._const_pre
        self.optimizer: torch.optim.Optimizer | None = None
        self.opt_info: OptimizerInfo | None = None
        self._hook_handles: list[Any] = []
        self._grad_cache: dict[int, tuple[torch.Tensor, int, TensorValue]] = {}

        # What the step itself must do is kept small: hooks, and the numbers that could
        # change later (leaves, before the optimizer). The graph is walked after backward.
        self.block_values = session._block_values
        self.block_inputs = session._block_inputs
        self.block_spans = session._block_spans
        self.light_stacks = list(session._light_blocks.values())
        self.fn_nodes: list[Any] = []
        self.fn_index: dict[Any, int] = {}
        self.children: list[list[tuple[int, int]]] = []
        self.kept: set[int] | None = None  # keys whose numbers are kept (None: all)
        if self.block_spans:
            # A large model's blocks ran unrecorded: hook only the nodes outside them,
            # the blocks' outputs and the leaves those use (`_outside_nodes`).
            hooked = self._outside_nodes(root)
            self._kept_fns: set[Any] | None = set(hooked)
        else:
            self._index_graph(root)
            hooked, self._kept_fns = self.fn_nodes, None
        self._hooked = hooked
        # Hooks report by node; turned into keys once the graph is walked (`after_backward`).
        self._order_fns: list[Any] = []
        self._grad_in_fn: dict[Any, list[TensorValue | None]] = {}
        self._grad_out_fn: dict[Any, list[TensorValue | None]] = {}
        self._flowed_fn: dict[Any, tuple[bool, ...]] = {}
        self._refired: set[Any] = set()
        # Leaves' values before backward and the optimizer can touch them.
        self._leaf_value_fn: dict[Any, TensorValue] = {}
        self._had_grad_fns: set[Any] = set()  # leaves whose .grad was already non-zero
        for fn in hooked:
            if type(fn) is not _ACCUMULATE_GRAD:
                continue
            var = fn.variable
            if isinstance(var, torch.Tensor):
                self._leaf_value_fn[fn] = snapshot(var, self.keep)
                if var.grad is not None and bool(var.grad.detach().ne(0).any()):
                    self._had_grad_fns.add(fn)
        # The optimizer step, by node: values before and after, and leaves whose .grad
        # changed between backward and the step (gradient clipping).
        self._before_step_fn: dict[Any, TensorValue] = {}
        self._updates_fn: dict[Any, ParamUpdate] = {}
        self._changed_fns: list[Any] = []

    def _index_graph(self, root: torch.Tensor) -> None:
        """Number the autograd nodes reachable from the root (a deterministic BFS) and
        note each one's inputs as (key or -1, output_nr): ``next_functions`` builds new
        tuples on every read."""
        self.fn_nodes = [root.grad_fn]
        self.fn_index = {root.grad_fn: 0}
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

    def _outside_nodes(self, root: torch.Tensor) -> list[Any]:
        """The nodes outside the unrecorded blocks, the blocks' outputs, the leaves used outside.

        A walk from the root, the recorded ops' nodes and the nodes of the tensors that
        entered the blocks, which does not go into a block (its nodes were made within
        a block's span of sequence numbers): so nodes no recorded op made (``CopySlices``
        of ``h[0] = token``) are found too, without walking the blocks' thousands. Some
        may belong to another forward pass: their hooks never run, and `_index_records`
        leaves them out.
        """
        spans = sorted((start, end) for _, start, end in self.block_spans)
        starts = [start for start, _ in spans]

        def inside(fn: Any) -> bool:
            if type(fn) is _ACCUMULATE_GRAD:
                return False
            seq = fn._sequence_nr()
            i = bisect.bisect_right(starts, seq) - 1
            return i >= 0 and seq < spans[i][1]

        seeds: dict[Any, None] = {root.grad_fn: None}
        for rec in self.records:
            for j in range(len(rec.outs)):
                fn = rec.node(j)[0]
                if fn is not None:
                    seeds[fn] = None
        seeds.update(self.block_inputs)
        found: dict[Any, None] = {}
        queue = [fn for fn in seeds if not inside(fn)]
        for fn in queue:  # grows as it goes
            if fn in found:
                continue
            found[fn] = None
            for child, _ in fn.next_functions:
                if child is not None and child not in found and not inside(child):
                    queue.append(child)
        for fn, _ in self.block_values:
            found[fn] = None
        return list(found)

    def _index_records(self) -> None:
        """After backward: the graph's keys, and what the step noted, by key."""
        if not self.fn_nodes:
            self._index_graph(self.root)
        index = self.fn_index
        self.order = [index[fn] for fn in self._order_fns if fn in index]
        done: dict[int, TensorValue | None] = {}  # id(_Later) -> its copy
        self.grad_in = {index[fn]: _copied(v, done, self.keep) for fn, v in self._grad_in_fn.items() if fn in index}
        self.grad_out = {index[fn]: _copied(v, done, self.keep) for fn, v in self._grad_out_fn.items() if fn in index}
        self._grad_in_fn, self._grad_out_fn = {}, {}  # let the held gradients go
        self.flowed = {index[fn]: v for fn, v in self._flowed_fn.items() if fn in index}
        if self._kept_fns is not None:
            self.kept = {index[fn] for fn in self._kept_fns if fn in index}
        self.leaf_tensor: dict[int, torch.Tensor] = {}
        for k, fn in enumerate(self.fn_nodes):
            if type(fn) is _ACCUMULATE_GRAD and isinstance(fn.variable, torch.Tensor):
                self.leaf_tensor[k] = fn.variable
        self.leaf_value = {index[fn]: v for fn, v in self._leaf_value_fn.items() if fn in index}
        self.leaf_had_grad = {index[fn] for fn in self._had_grad_fns if fn in index}
        self.leaf_grad = {index[fn]: v for fn, v in self._leaf_grad_fn.items() if fn in index}
        self.refired = {index[fn] for fn in self._refired if fn in index}
        self.updates = {index[fn]: u for fn, u in self._updates_fn.items() if fn in index}
        self.grads_changed = [index[fn] for fn in self._changed_fns if fn in index]

        # Forward values: match recorded op outputs to the nodes that produced them.
        self.fn_value: dict[tuple[int, int], TensorValue] = {}
        self.fn_rec: dict[int, _Rec] = {}
        for rec, fn, nr, val in self._rec_outs:
            k = index.get(fn)
            if k is not None:
                self.fn_value.setdefault((k, nr), val)
                self.fn_rec.setdefault(k, rec)
        for (fn, nr), val in self.block_values.items():
            k = index.get(fn)
            if k is not None:
                self.fn_value.setdefault((k, nr), val)
        # The module each recorded op ran in; ops of unrecorded blocks by their sequence numbers.
        self.fn_modules: dict[int, tuple[torch.nn.Module, ...]] = {k: rec.modules for k, rec in self.fn_rec.items()}
        self.unrecorded = self._attribute_unrecorded()

    def _keeps(self, k: int) -> bool:
        """Does the trace keep node ``k``'s numbers (value, gradient, update)?"""
        return self.kept is None or k in self.kept

    def _attribute_unrecorded(self) -> set[int]:
        """Give the ops of unrecorded blocks their block; return their keys.

        Autograd numbers nodes in creation order, and each block call noted the
        numbers it spanned, so a node belongs to the call whose span holds its number.
        """
        if not self.block_spans:
            return set()
        by_seq = sorted(
            (fn._sequence_nr(), k)
            for k, fn in enumerate(self.fn_nodes)
            if k not in self.fn_rec and type(fn) is not _ACCUMULATE_GRAD
        )
        seqs = [seq for seq, _ in by_seq]
        found: set[int] = set()
        for mods, start, end in self.block_spans:
            for i in range(bisect.bisect_left(seqs, start), bisect.bisect_left(seqs, end)):
                k = by_seq[i][1]
                self.fn_modules[k] = mods
                found.add(k)
        return found

    # hooks
    def install_hooks(self) -> None:
        # One post-hook per node gives all three: it runs right after the node (so the
        # calls come in backward order) with the gradient in and the gradients out.
        # A pre-hook as well would double the Python calls for nothing.
        # Inside unrecorded blocks no hooks at all: their order is worked out afterwards
        # (`_engine_order`) and checked against the hooked nodes'.
        for fn in self._hooked:
            self._hook_handles.append(fn.register_hook(self._make_post(fn)))

    def remove_hooks(self) -> None:
        for h in self._hook_handles:
            h.remove()
        self._hook_handles = []
        self._grad_cache = {}  # let the gradients go

    def _snap_all(self, grads: tuple[Any, ...], now: tuple[bool, ...] | bool) -> list[Any]:
        self.s.busy = True
        try:
            return [
                self._snap_grad(g, now if isinstance(now, bool) else (i < len(now) and now[i]))
                if isinstance(g, torch.Tensor)
                else None
                for i, g in enumerate(grads)
            ]
        finally:
            self.s.busy = False

    def _snap_grad(self, g: torch.Tensor, now: bool) -> TensorValue | _Later:
        """Snapshot a gradient once, though two hooks see it; now, or after the step.

        The gradient a node sends to an input with no other consumer is the very tensor
        that input's hook then receives: the cache (holding the tensor, so its id stays
        its own, and checking its version) turns the second copy into a lookup.

        Copying inside backward costs several times what it costs afterwards, so a
        gradient is held (`_Later`) and copied after the step, unless it goes to a leaf:
        a leaf's ``.grad`` may be that very tensor, which clipping changes in place.
        Held, a gradient is never taken over by autograd to accumulate into; its
        version says whether anything else changed it.
        """
        hit = self._grad_cache.get(id(g))
        if hit is not None and hit[0] is g and hit[1] == g._version:
            if not (now and isinstance(hit[2], _Later)):
                return hit[2]
        value: TensorValue | _Later = snapshot(g, self.keep) if now else _Later(g, g._version)
        self._grad_cache[id(g)] = (g, g._version, value)
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
        # ran unrecorded: then an edge into a block's inside is never drawn).
        kept_slots = None
        if self._kept_fns is not None:
            kept_slots = tuple(child is not None and child in self._kept_fns for child in inputs)
        leaf = type(fn) is _ACCUMULATE_GRAD
        to_leaf = tuple(type(child) is _ACCUMULATE_GRAD for child in inputs)

        def post(grad_inputs: tuple[Any, ...], grad_outputs: tuple[Any, ...]) -> None:
            grads = list(grad_inputs)
            for slots in repeats:
                parts = [grads[i] for i in slots if i < len(grads) and isinstance(grads[i], torch.Tensor)]
                if len(parts) == len(slots) and len({p.shape for p in parts}) == 1:
                    total = parts[0]
                    for p in parts[1:]:
                        total = total + p
                    grads[slots[0]] = total
                    for i in slots[1:]:
                        grads[i] = None  # already in the first slot's sum
            if fn in self._flowed_fn:
                # Run again (a leaf used inside a reentrant checkpoint): its .grad has the total.
                self._refired.add(fn)
            else:
                self._order_fns.append(fn)
            self._flowed_fn[fn] = tuple(isinstance(g, torch.Tensor) for g in grads)
            self._grad_in_fn[fn] = self._snap_all(grad_outputs, leaf)
            if kept_slots is not None:
                grads = [g if i < len(kept_slots) and kept_slots[i] else None for i, g in enumerate(grads)]
            self._grad_out_fn[fn] = self._snap_all(tuple(grads), to_leaf)

        return post

    def after_backward(self) -> None:
        """Right after backward, before an optimizer can change anything: the leaves'
        ``.grad`` and the recorded ops' values, by node (keys come in `_index_records`)."""
        self._leaf_grad_fn: dict[Any, TensorValue | None] = {}
        for fn in self._leaf_value_fn:
            var = fn.variable
            flowed = self._grad_in_fn.get(fn)
            if (
                flowed
                and flowed[0] is not None
                and fn not in self._had_grad_fns
                and fn not in self._refired
                and var.grad is not None
            ):
                # .grad was empty before, so it now holds just what flowed in: no second copy.
                self._leaf_grad_fn[fn] = flowed[0]
            else:
                self._leaf_grad_fn[fn] = snapshot(var.grad, self.keep) if var.grad is not None else None
        # Each output's node is read now: a view's grad_fn is made anew once its base
        # changes in place (an optimizer step on a weight changes weight.t()'s).
        self._rec_outs: list[tuple[_Rec, Any, int, TensorValue]] = []
        for rec in self.records:
            for j, t in enumerate(rec.outs):
                fn, nr = rec.node(j)
                if fn is None or not (fn in self.fn_index or (self._kept_fns is not None and fn in self._kept_fns)):
                    continue
                value = rec.pre_mutation[j] if j in rec.pre_mutation else snapshot(t, self.keep)
                self._rec_outs.append((rec, fn, nr, value))

    # optimizer
    def before_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.optimizer is not None:
            return
        ours = {id(fn.variable): fn for fn in self._leaf_value_fn}
        # Parameters of unrecorded blocks have no numbers here, but make the optimizer ours.
        in_blocks = {id(p) for mods in self.light_stacks for p in mods[-1].parameters()}
        hit = False
        changed: list[Any] = []
        for group in optimizer.param_groups:
            for p in group["params"]:
                fn = ours.get(id(p))
                if fn is None:
                    hit = hit or id(p) in in_blocks
                    continue
                hit = True
                self._before_step_fn[fn] = snapshot(p, self.keep)
                seen = self._leaf_grad_fn.get(fn)
                if p.grad is not None and seen is not None and seen.data is not None:
                    now = snapshot(p.grad, self.keep)
                    if now.data is not None and not _same(seen.data, now.data):
                        changed.append(fn)
        if changed:
            self._changed_fns = changed
        if hit:
            self.optimizer = optimizer
            group = optimizer.param_groups[0]
            hyper = {}
            for key, v in group.items():
                if key == "params":
                    continue
                if isinstance(v, torch.Tensor) and v.numel() == 1:
                    v = float(v)
                if isinstance(v, (bool, int, float, str)) or v is None:
                    hyper[key] = v
                elif isinstance(v, tuple) and all(isinstance(e, (int, float)) for e in v):
                    hyper[key] = list(v)
            self.opt_info = OptimizerInfo(type(optimizer).__name__, hyper)

    def after_step(self, optimizer: torch.optim.Optimizer) -> None:
        ours = {id(fn.variable): fn for fn in self._before_step_fn}
        for group in optimizer.param_groups:
            lr = group.get("lr")
            lr = float(lr) if isinstance(lr, (int, float, torch.Tensor)) else None
            for p in group["params"]:
                fn = ours.get(id(p))
                if fn is not None:
                    self._updates_fn[fn] = ParamUpdate(self._before_step_fn[fn], snapshot(p, self.keep), lr)

    def _manual_updates(self) -> None:
        """Leaves changed after backward without an optimizer: a hand-written update."""
        if self.optimizer is not None:
            return
        changed = False
        for k, before in self.leaf_value.items():
            now = snapshot(self.leaf_tensor[k], self.keep)
            if before.data is not None and now.data is not None and not _same(before.data, now.data):
                self.updates[k] = ParamUpdate(before, now, None)
                changed = True
        if changed:
            lr = self._manual_lr()
            if lr is not None:
                for k in self.updates:
                    self.updates[k].lr = lr
            self.opt_info = OptimizerInfo("manual update", {"lr": lr} if lr is not None else {})

    def _manual_lr(self) -> float | None:
        """The one learning rate for which every change is ``before - lr * grad``, if any."""
        import numpy as np

        rates = []
        for k, upd in self.updates.items():
            g = self.leaf_grad.get(k)
            if g is None or g.data is None or upd.before.data is None or upd.after.data is None:
                return None
            grad = g.data.astype(np.float64)
            step = upd.before.data.astype(np.float64) - upd.after.data.astype(np.float64)
            denom = float(np.sum(grad * grad))
            if denom == 0.0 or not math.isfinite(denom):
                return None
            lr = float(np.sum(step * grad)) / denom
            scale = float(np.max(np.abs(upd.before.data))) + float(np.max(np.abs(step)))
            if not np.allclose(step, lr * grad, rtol=1e-3, atol=1e-6 * scale):
                return None
            rates.append(lr)
        if not rates or rates[0] <= 0 or any(not math.isclose(r, rates[0], rel_tol=1e-3) for r in rates):
            return None
        # float32 arithmetic blurs the rate: report the shortest number that matches it.
        for digits in range(1, 7):
            short = float(f"{rates[0]:.{digits}g}")
            if math.isclose(short, rates[0], rel_tol=1e-4):
                return short
        return float(f"{rates[0]:.6g}")

    # naming
    def _module_path(self, modules: tuple[torch.nn.Module, ...]) -> tuple[str | None, str | None]:
        if not modules:
            return None, None
        # Ops of one module call share their stack tuple: one lookup per call, not per op.
        memo = self.__dict__.setdefault("_path_memo", {})
        hit = memo.get(id(modules))
        if hit is not None and hit[0] is modules:
            return hit[1]
        memo[id(modules)] = (modules, self._module_path_of(modules))
        return memo[id(modules)][1]

    def _module_path_of(self, modules: tuple[torch.nn.Module, ...]) -> tuple[str | None, str | None]:
        root = modules[0]
        root_name = self.module_names.get(id(root), (type(root).__name__.lower(), root))[0]
        inner = modules[-1]
        if inner is root:
            return root_name, type(root).__name__
        # One walk of the root's modules per trace, not per op (O(ops x modules) on big models).
        cache = self.__dict__.setdefault("_subnames", {})
        if id(root) not in cache:
            cache[id(root)] = _submodule_names(root)
        sub = cache[id(root)].get(id(inner))
        path = f"{root_name}.{sub}" if sub else root_name
        return path, type(inner).__name__

    def _named_tensors(self) -> None:
        """Map parameters and buffers of the script's named modules to readable names.

        A parameter (or buffer) of a nested module is named by its path (``fc1.weight``,
        ``bn.running_mean``); one that belongs to the named module itself gets the
        variable's name in front (``model.weight``), which reads like the script.
        """
        self.param_names: dict[int, tuple[str, str, str]] = {}
        self.buffer_names: dict[int, tuple[str, str]] = {}
        # Modules the forward ran in that no variable names: named by their class.
        taken = {name for name, _ in self.module_names.values()}
        for k in sorted(self.fn_modules):
            mods = self.fn_modules[k]
            if mods and id(mods[0]) not in self.module_names:
                root = mods[0]
                base = type(root).__name__.lower()
                name, i = base, 1
                while name in taken:
                    name, i = f"{base}_{i}", i + 1
                taken.add(name)
                self.module_names[id(root)] = (name, root)
        for _, (mod_name, mod) in self.module_names.items():
            for owner_path, owner in mod.named_modules():
                module = f"{mod_name}.{owner_path}" if owner_path else mod_name
                # The dicts behind named_parameters(recurse=False): that walks the module
                # tree again for each module, quadratic in a large model.
                for pname, p in owner._parameters.items():
                    if p is None:
                        continue
                    label = f"{owner_path}.{pname}" if owner_path else f"{mod_name}.{pname}"
                    self.param_names.setdefault(id(p), (label, module, type(owner).__name__))
                for bname, b in owner._buffers.items():
                    if b is not None:
                        label = f"{owner_path}.{bname}" if owner_path else f"{mod_name}.{bname}"
                        self.buffer_names.setdefault(id(b), (label, module))

    # build
    def build(self) -> Trace:
        self._index_records()
        self._manual_updates()
        self._named_tensors()

        # Forward order: op nodes by creation order; inputs just before their first consumer.
        op_keys = [k for k in range(len(self.fn_nodes)) if k not in self.leaf_tensor]
        op_keys.sort(key=lambda k: self.fn_nodes[k]._sequence_nr())

        out_nodes: list[TraceNode] = []
        accumulated: list[str] = []
        new_id: dict[tuple[str, int], int] = {}
        edges: dict[tuple[int, int], TraceEdge] = {}
        modules: dict[str, str] = {}
        const_tensors: dict[int, torch.Tensor] = {}

        def add_leaf(k: int) -> int:
            if ("fn", k) in new_id:
                return new_id[("fn", k)]
            var = self.leaf_tensor[k]
            name = self.tensor_names.get(id(var))
            pname, module, mtype = self.param_names.get(id(var), (None, None, None))
            is_param = isinstance(var, torch.nn.Parameter) or (
                k in self.updates and self.opt_info is not None and self.opt_info.name != "manual update"
            )
            if pname is not None:
                name = pname
                is_param = True
            if module:
                modules.setdefault(module, mtype or "")
            # The gradient this backward sent (∂loss/∂leaf); .grad also holds earlier
            # backward calls' gradients when they were not zeroed.
            flowed = self.grad_in.get(k)
            grad = flowed[0] if flowed and k not in self.refired else self.leaf_grad.get(k)
            if k in self.leaf_had_grad and flowed:
                accumulated.append(name or f"a {tuple(var.shape)} tensor")
            node = TraceNode(
                key=len(out_nodes),
                kind="param" if is_param else "leaf",
                name=name,
                op=None,
                autograd="AccumulateGrad",
                call=None,
                scalars=(),
                shape=tuple(var.shape),
                dtype=str(var.dtype).removeprefix("torch."),
                requires_grad=True,
                value=self.leaf_value.get(k),
                grad=grad,
                module=module,
                module_type=mtype,
                update=self.updates.get(k),
            )
            out_nodes.append(node)
            new_id[("fn", k)] = node.key
            return node.key

        def add_const(t: torch.Tensor) -> int:
            if ("t", id(t)) in new_id:
                return new_id[("t", id(t))]
            const_tensors[id(t)] = t
            name = self.tensor_names.get(id(t))
            kind = "input"
            module = mtype = op = call = None
            value = self.const_pre.get(id(t))
            hit = self.produced.get(id(t))
            if hit is not None:
                rec, i = hit
                value = rec.pre_mutation.get(i, value)
                origin = rec.call or friendly_op(rec.func)
                if name is None and origin not in _LITERAL_CALLS and friendly_op(rec.func) not in _LITERAL_CALLS:
                    # An unnamed constant computed by a call (dropout's mask, torch.ones):
                    # say where it came from rather than just "input".
                    call = rec.call
                    op = "dropout mask" if "dropout" in origin else origin
                    module, mtype = self._module_path(rec.modules)
            if id(t) in self.buffer_names:
                name, module = self.buffer_names[id(t)]
                kind, op, call, mtype = "buffer", None, None, None
            if module and mtype:
                modules.setdefault(module, mtype)
            node = TraceNode(
                key=len(out_nodes),
                kind=kind,
                name=name,
                op=op,
                autograd=None,
                call=call,
                scalars=(),
                shape=tuple(t.shape),
                dtype=str(t.dtype).removeprefix("torch."),
                requires_grad=False,
                value=value if value is not None else snapshot(t, self.keep),
                module=module,
                module_type=mtype,
            )
            out_nodes.append(node)
            new_id[("t", id(t))] = node.key
            return node.key

        for k in op_keys:
            fn = self.fn_nodes[k]
            rec = self.fn_rec.get(k)
            # inputs first
            for c, _ in self.children[k]:
                if c in self.leaf_tensor:
                    add_leaf(c)
            const_args: list[tuple[int, torch.Tensor]] = []
            if rec is not None:
                for pos, a in enumerate(_tensors_in((rec.args, rec.kwargs))):
                    if not a.requires_grad and a.grad_fn is None:
                        const_args.append((pos, a))
                for _, a in const_args:
                    add_const(a)
            value = self.fn_value.get((k, 0))
            shape, dtype = _output_meta(fn, value) if value is None and k != 0 else ((), "")
            out_tensor_name = None
            if rec is not None:
                for t in rec.outs:
                    # A name belongs to the node whose value the variable still holds.
                    if t.grad_fn is fn and t.output_nr == 0:
                        out_tensor_name = self.tensor_names.get(id(t))
                        break
            if k == 0 and out_tensor_name is None:
                out_tensor_name = self.tensor_names.get(id(self.root))
            mods = self.fn_modules.get(k)
            module, mtype = self._module_path(mods) if mods else (None, None)
            if module:
                modules.setdefault(module, mtype or "")
            grads = self.grad_in.get(k) or []
            op = friendly_op(rec.func if rec is not None else None, fn)
            call = rec.call if rec is not None else None
            scalars = _scalar_args(rec.args) if rec is not None else ()
            if isinstance(fn, torch.autograd.function.BackwardCFunction):
                # A custom autograd.Function: name it by its class, not the ops inside.
                op = fn.name().removesuffix("Backward")
                call, scalars = f"{op}.apply", ()
            node = TraceNode(
                key=len(out_nodes),
                kind="loss" if k == 0 else "op",
                name=out_tensor_name,
                op=op,
                autograd=fn.name(),
                call=call,
                scalars=scalars,
                shape=value.shape if value is not None else (tuple(self.root.shape) if k == 0 else shape),
                dtype=value.dtype if value is not None else dtype,
                requires_grad=True,
                value=value,
                grad=grads[0] if grads else None,
                module=module,
                module_type=mtype,
                n_outputs=len(grads) if grads else 1,
            )
            if k == 0 and node.value is None:
                node.value = snapshot(self.root, self.keep)
                node.shape, node.dtype = node.value.shape, node.value.dtype
            out_nodes.append(node)
            new_id[("fn", k)] = node.key
            # edges into this op
            sent = self.grad_out.get(k) or []
            # An unhooked node (inside an unrecorded block) sent gradients to all its inputs.
            flowed = self.flowed.get(k)
            for slot, (c, nr) in enumerate(self.children[k]):
                if c < 0:
                    continue
                g = sent[slot] if slot < len(sent) else None
                went = flowed is None or (slot < len(flowed) and flowed[slot])
                _add_edge(edges, new_id[("fn", c)], node.key, slot, g, nr, went)
            for pos, a in const_args:
                _add_edge(edges, new_id[("t", id(a))], node.key, pos, None, 0, False)

        step_of = {}
        order = []
        for i, k in enumerate(self._backward_order()):
            if ("fn", k) in new_id:
                key = new_id[("fn", k)]
                if key not in step_of:
                    step_of[key] = len(order) + 1
                    order.append(key)
        for n in out_nodes:
            n.backward_step = step_of.get(n.key)
        if accumulated:
            self.notes.append(Note("note_accumulated", {"names": ", ".join(f"{a}.grad" for a in accumulated)}))
        if self.grads_changed:
            names = ", ".join(
                f"{out_nodes[new_id[('fn', k)]].name or 'a parameter'}.grad" for k in self.grads_changed if ("fn", k) in new_id
            )
            self.notes.append(Note("note_grads_changed", {"names": names}))
        used = {p for m in {n.module for n in out_nodes if n.module} for p in _prefixes(m)}
        light = sorted({p for mods in self.light_stacks if (p := self._module_path(mods)[0]) in used}, key=_natural)
        if light:
            self.notes.append(_light_note(light))
        self._module_ancestors(modules)
        return Trace(
            nodes=out_nodes,
            edges=sorted(edges.values(), key=lambda e: (e.dst, e.slots[0] if e.slots else -1, e.src)),
            loss=new_id[("fn", 0)],
            backward_order=order,
            step=self.s.step,
            optimizer=self.opt_info,
            notes=list(self.notes),
            modules=dict(sorted(modules.items())),
            light=light,
        )

    def _backward_order(self) -> list[int]:
        """Every node in the order backward ran it.

        Hooked nodes report it themselves. When unrecorded blocks had no hooks, the
        whole order is the engine's (`engine_order`), used only if it agrees with the
        order the hooked nodes reported; otherwise the unhooked nodes get no step.
        """
        if self.kept is None:
            return self.order
        hooked = set(self.order)
        # The rule is the CPU engine's; other devices run their own threads and queues.
        if all(_on_cpu(fn) for fn in self.fn_nodes):
            seq = [fn._sequence_nr() for fn in self.fn_nodes]
            full = engine_order(self.children, seq)
            if [k for k in full if k in hooked] == self.order:
                return full
        self.notes.append(Note("note_order_unknown", {}))
        return self.order

    def _module_ancestors(self, modules: dict[str, str]) -> None:
        """Add the enclosing modules of every recorded module path (``model`` of ``model.0``)."""
        used = {q for p in modules for q in _prefixes(p)}
        for name, mod in self.module_names.values():
            if name not in used:
                continue
            for sub, child in mod.named_modules():
                path = f"{name}.{sub}" if sub else name
                if path in used and not modules.get(path):
                    modules[path] = type(child).__name__


#: Calls and ops that only bring a literal (``torch.tensor([1.0])``) into the graph.
_LITERAL_CALLS = frozenset({"lift_fresh", "lift", "lift_fresh_copy", "tensor", "as_tensor", "asarray", "from_numpy"})


def _on_cpu(fn: Any) -> bool:
    """Did this autograd node run on the CPU (leaves: is their tensor there)?"""
    if type(fn) is _ACCUMULATE_GRAD:
        return fn.variable.device.type == "cpu"
    try:
        return all(m.device.type == "cpu" for m in fn._input_metadata)
    except (AttributeError, RuntimeError):
        return False


def _output_meta(fn: Any, value: TensorValue | None) -> tuple[tuple[int, ...], str]:
    """Shape and dtype of an autograd node's first output, from autograd's own metadata."""
    try:
        meta = fn._input_metadata[0]
        return tuple(meta.shape), _dtype_name(meta.dtype)
    except (AttributeError, IndexError, RuntimeError):
        return (), ""


@functools.lru_cache(maxsize=64)
def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _prefixes(path: str) -> list[str]:
    """``a.b.c`` -> ``a``, ``a.b``, ``a.b.c``."""
    parts = path.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _natural(path: str) -> tuple[Any, ...]:
    """Sort key: ``layers.2`` before ``layers.10``."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.split("."))


def _light_note(paths: list[str]) -> Note:
    """The note on the blocks recorded by their outputs only."""
    first, last = paths[0], paths[-1]
    span = first if len(paths) == 1 else f"{first} … {last.rpartition('.')[2]}"
    return Note("note_light", {"count": len(paths), "span": span, "first": first})


def _submodule_names(root: torch.nn.Module) -> dict[int, str]:
    return {id(m): name for name, m in root.named_modules() if name}


def _same(a: Any, b: Any) -> bool:
    import numpy as np

    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))


def _add_edge(
    edges: dict[tuple[int, int], TraceEdge],
    src: int,
    dst: int,
    slot: int,
    grad: TensorValue | None,
    nr: int,
    flowed: bool,
) -> None:
    e = edges.get((src, dst))
    if e is None:
        edges[(src, dst)] = TraceEdge(src, dst, (slot,), grad, nr, flowed)
        return
    e.slots = e.slots + (slot,)
    e.flowed = e.flowed or flowed
    if grad is not None and e.grad is None:
        e.grad = grad  # repeated slots arrive pre-summed in the first one (see `_make_post`)


# --------------------------------------------------------------------------- public API


class Tracer:
    """Trace one training step inside a ``with`` block.

    >>> with Tracer() as tr:                      # doctest: +SKIP
    ...     loss = criterion(model(x), y)
    ...     loss.backward()
    ...     optimizer.step()
    >>> graph = tr.result.to_graph()              # doctest: +SKIP

    If the block never calls backward, the final scalar (a variable named ``loss``
    in the block's scope, else the last scalar computed) is explained instead.
    """

    def __init__(
        self, step: int = 1, keep_elements: int = DEFAULT_KEEP_ELEMENTS, record: RecordOptions | None = None
    ) -> None:
        self.session = Session(step=step, stop_when_done=False, keep_elements=keep_elements, record=record)
        self.result: Trace | None = None
        self._cm: Any = None

    def __enter__(self) -> Tracer:
        self._cm = self.session.active()
        self._cm.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._close(sys._getframe(1), exc_type, exc, tb)

    def _close(self, frame: types.FrameType, exc_type: Any, exc: Any, tb: Any) -> None:
        """End the trace; ``frame`` is the ``with`` block's, whose variables name the tensors."""
        self._cm.__exit__(exc_type, exc, tb)
        if exc_type is not None:
            return
        namespace = dict(frame.f_globals)
        namespace.update(frame.f_locals)
        self.result = self.session.finish(namespace)


def trace_call(
    fn: Callable[..., Any],
    *args: Any,
    step: int = 1,
    keep_elements: int = DEFAULT_KEEP_ELEMENTS,
    record: RecordOptions | None = None,
    **kwargs: Any,
) -> Trace:
    """Call ``fn(*args, **kwargs)`` and trace the step it performs.

    If ``fn`` calls backward, that call is captured; otherwise, when it returns a
    scalar tensor, the trace back-propagates from that value. ``record`` says which
    repeated blocks of a large model to record op by op (`RecordOptions`).
    """
    session = Session(step=step, stop_when_done=False, keep_elements=keep_elements, record=record)
    with session.active():
        out = fn(*args, **kwargs)
    # Names for the tensors: the caller's variables and those the callable closes over.
    caller = sys._getframe(1)
    namespace: dict[str, Any] = {**caller.f_globals, **caller.f_locals}
    code, cells = getattr(fn, "__code__", None), getattr(fn, "__closure__", None) or ()
    if code is not None:
        for var, cell in zip(code.co_freevars, cells):
            try:
                namespace[var] = cell.cell_contents
            except ValueError:  # an empty cell
                pass
    namespace.pop("loss", None)
    if isinstance(out, torch.Tensor):
        namespace["loss"] = out
    return session.finish(namespace)
