"""Names: what the user calls the tensors and modules a trace saw, and readable op names.

Tensors and modules are named from the user's own frames (``pred``, ``model``),
parameters and buffers by their path in a named module (``fc1.weight``), ops by
their aten overload or autograd class (``log_softmax``, ``mse_loss``).
"""

from __future__ import annotations

import functools
import os
import sys
import types
from typing import Any

import torch

from .internals import buffers_of, is_aten_op, parameters_of
from .tracker import ModuleStack

__all__ = [
    "SAME_VALUE",
    "ModuleNames",
    "Names",
    "collect_names",
    "friendly_op",
    "indexed_name",
    "is_user_file",
    "named_call",
    "names_in_frames",
    "natural_key",
    "prefixes",
    "user_line",
]

ModuleNames = dict[int, tuple[str, torch.nn.Module]]

#: Tuples up to this long in the user's scope name their tensors (``hidden[0]``).
_ELEMENTS_NAMED = 8


# --------------------------------------------------------------------------- ops


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
def named_call(func: Any) -> str | None:
    """The call name ops inside ``func`` are noted with; None for attribute access and aten ops."""
    name = None if is_aten_op(func) else _call_name(func)
    return None if name in _UNNAMED_CALLS else name


# --------------------------------------------------------------------------- the user's frames

#: explain-graph's own folder (this package's parent): frames there are not the user's.
_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_EXAMPLES_DIR = os.path.join(_PKG_DIR, "examples")
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__))
_STDLIB_DIRS = tuple(
    {os.path.dirname(os.path.abspath(os.__file__)), os.path.abspath(sys.prefix), os.path.abspath(sys.base_prefix)}
)


def is_user_file(filename: str) -> bool:
    """Is this frame's file the user's code, not torch, explain-graph or the stdlib?"""
    if not filename or filename.startswith("<"):
        return filename.startswith(("<ipython-input", "<stdin"))
    path = os.path.abspath(filename)
    if path.startswith(_EXAMPLES_DIR + os.sep):  # the lecture's examples are the user's script (--example)
        return True
    if path.startswith((_PKG_DIR + os.sep, _TORCH_DIR + os.sep)):
        return False
    if "site-packages" in path or "dist-packages" in path:
        # A notebook kernel or a test importing the user's module still counts.
        return False
    return not any(path.startswith(d + os.sep) for d in _STDLIB_DIRS)


def user_line(frame: types.FrameType | None) -> str:
    """``train.py:42``: the innermost line of the user's code on the stack (empty if none)."""
    while frame is not None:
        if is_user_file(frame.f_code.co_filename):
            return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return ""


def names_in_frames(frame: types.FrameType | None) -> tuple[dict[int, str], ModuleNames]:
    """Names of tensors and modules visible in the user's frames, innermost first.

    Returns two maps keyed by ``id(obj)`` (used only while the objects are alive,
    never in output): tensor -> name, module -> name.
    """
    tensors: dict[int, str] = {}
    modules: ModuleNames = {}
    seen_globals: set[int] = set()
    selves: list[Any] = []
    while frame is not None:
        if is_user_file(frame.f_code.co_filename):
            scopes = [frame.f_locals]
            if id(frame.f_globals) not in seen_globals:
                seen_globals.add(id(frame.f_globals))
                scopes.append(frame.f_globals)
            for scope in scopes:
                collect_names(scope, tensors, modules)
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
        collect_names(
            {(f"self.{k}" if k in taken else k): v for k, v in attrs.items() if not k.startswith("_")},
            tensors,
            modules,
        )
    return tensors, modules


def collect_names(scope: dict[str, Any], tensors: dict[int, str], modules: ModuleNames) -> None:
    """Add the scope's tensors and modules to ``tensors`` and ``modules`` (first name wins)."""
    for name, obj in list(scope.items()):
        if name.startswith("_") or name == "self":
            continue
        if isinstance(obj, torch.Tensor):
            tensors.setdefault(id(obj), name)
        elif isinstance(obj, torch.nn.Module):
            modules.setdefault(id(obj), (name, obj))
        elif isinstance(obj, tuple) and len(obj) <= _ELEMENTS_NAMED:
            # An LSTM's hidden state (h, c), a batch (x, y): each tensor by its place.
            for i, item in enumerate(obj):
                if isinstance(item, torch.Tensor):
                    tensors.setdefault(id(item), f"{name}[{i}]")


# --------------------------------------------------------------------------- module paths


class Names:
    """The names a trace gives: the user's variables, then module paths, parameters, buffers.

    Parameters
    ----------
    tensors, modules
        Maps from `names_in_frames`, keyed by ``id(obj)`` while the objects are alive.
    """

    def __init__(self, tensors: dict[int, str], modules: ModuleNames) -> None:
        self.tensors = tensors
        self.modules = modules
        self.params: dict[int, tuple[str, str, str]] = {}  # id -> (label, module path, module class)
        self.buffers: dict[int, tuple[str, str]] = {}  # id -> (label, module path)
        self._paths: dict[int, tuple[ModuleStack, tuple[str | None, str | None]]] = {}
        self._subnames: dict[int, dict[int, str]] = {}

    def module_path(self, modules: ModuleStack) -> tuple[str | None, str | None]:
        """The path (``model.fc1``) and class of the innermost module of a module stack."""
        if not modules:
            return None, None
        # Ops of one module call share their stack tuple: one lookup per call, not per op.
        hit = self._paths.get(id(modules))
        if hit is not None and hit[0] is modules:
            return hit[1]
        self._paths[id(modules)] = (modules, self._module_path_of(modules))
        return self._paths[id(modules)][1]

    def _module_path_of(self, modules: ModuleStack) -> tuple[str | None, str | None]:
        root = modules[0]
        root_name = self.modules.get(id(root), (type(root).__name__.lower(), root))[0]
        inner = modules[-1]
        if inner is root:
            return root_name, type(root).__name__
        # One walk of the root's modules per trace, not per op (O(ops x modules) on big models).
        if id(root) not in self._subnames:
            self._subnames[id(root)] = {id(m): name for name, m in root.named_modules() if name}
        sub = self._subnames[id(root)].get(id(inner))
        path = f"{root_name}.{sub}" if sub else root_name
        return path, type(inner).__name__

    def name_modules_and_tensors(self, stacks: dict[int, ModuleStack]) -> None:
        """Name the root modules no variable names, then every parameter and buffer.

        ``stacks`` are the module stacks the graph's ops ran in, by node key. A
        parameter (or buffer) is named by its full path from the module the forward
        ran (``model.fc1.weight``, ``net.0.weight``, ``model.weight``), the path its
        module's frame shows. A module reached by two names (``linear1``, and
        ``bn_model.0`` inside ``nn.Sequential(linear1, ...)``) is named from the module
        the forward ran first, so its parameters sit in the frame of its ops.
        """
        # Modules the forward ran in that no variable names: named by their class.
        taken = {name for name, _ in self.modules.values()}
        for k in sorted(stacks):
            mods = stacks[k]
            if mods and id(mods[0]) not in self.modules:
                root = mods[0]
                base = type(root).__name__.lower()
                name, i = base, 1
                while name in taken:
                    name, i = f"{base}_{i}", i + 1
                taken.add(name)
                self.modules[id(root)] = (name, root)
        ran = {id(stacks[k][0]): None for k in sorted(stacks) if stacks[k]}
        named = sorted(self.modules.items(), key=lambda kv: kv[0] not in ran)  # stable: frames order otherwise
        for _, (mod_name, mod) in named:
            for owner_path, owner in mod.named_modules():
                self._name_own_tensors(mod_name, owner_path, owner)

    def _name_own_tensors(self, mod_name: str, owner_path: str, owner: torch.nn.Module) -> None:
        module = f"{mod_name}.{owner_path}" if owner_path else mod_name
        for pname, p in parameters_of(owner).items():
            if p is None:
                continue
            label = f"{module}.{pname}"
            self.params.setdefault(id(p), (label, module, type(owner).__name__))
        for bname, b in buffers_of(owner).items():
            if b is not None:
                label = f"{module}.{bname}"
                self.buffers.setdefault(id(b), (label, module))

    def add_ancestors(self, modules: dict[str, str]) -> None:
        """Add the enclosing modules of every recorded module path (``model`` of ``model.0``)."""
        used = {q for p in modules for q in prefixes(p)}
        for name, mod in self.modules.values():
            if name not in used:
                continue
            for sub, child in mod.named_modules():
                path = f"{name}.{sub}" if sub else name
                if path in used and not modules.get(path):
                    modules[path] = type(child).__name__


def prefixes(path: str) -> list[str]:
    """``a.b.c`` -> ``a``, ``a.b``, ``a.b.c``."""
    parts = path.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def natural_key(path: str) -> tuple[Any, ...]:
    """Sort key: ``layers.2`` before ``layers.10``."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.split("."))


# --------------------------------------------------------------------------- indexed data

#: Ops whose output has the input's values (a copy, a contiguous copy, an alias): data they
#: make is drawn as the data they copied.
SAME_VALUE = frozenset({"clone", "alias", "detach", "lift_fresh", "contiguous"})
#: Ops that make a tensor from nothing: a part of one is named ``zeros[0]``.
_FACTORIES = frozenset(
    {
        "zeros",
        "ones",
        "full",
        "empty",
        "arange",
        "zeros_like",
        "ones_like",
        "full_like",
        "new_zeros",
        "new_ones",
        "new_full",
        "new_empty",
        "empty_like",
        "eye",
        "linspace",
    }
)
#: Ops that take part of a tensor: their outputs are named ``x[:, 3]`` after the tensor.
_INDEX_OPS = frozenset(
    {"select", "slice", "unbind", "split", "split_with_sizes", "narrow", "unsqueeze", "alias", "index"}
)


def indexed_name(t: torch.Tensor, names: dict[int, str], produced: dict[int, Any]) -> str | None:
    """``x[:, 3]`` for a part of a named tensor ``x`` (through ``x[:, t]``, ``x.split``, ``x.unbind``),
    None when ``t`` is no such part. ``produced`` maps id(tensor) -> (record, output index)."""
    hit = _index_path(t, names, produced, 0)
    if hit is None or hit[0] == names.get(id(t)):
        return None
    name, items = hit[0], list(hit[1])
    while items and items[-1] == ":":
        items.pop()
    return f"{name}[{', '.join(items)}]" if items else None


def _index_path(
    t: torch.Tensor, names: dict[int, str], produced: dict[int, Any], depth: int
) -> tuple[str, list[str], list[int]] | None:
    """(base name, one index per dimension of the base, base dimension of each of ``t``'s)."""
    name = names.get(id(t))
    if name is not None:
        return name, [":"] * t.dim(), list(range(t.dim()))
    hit = produced.get(id(t))
    if hit is None or depth > 6:
        return None
    rec, j = hit
    if rec.emptied or rec.func is None:
        return None
    op = friendly_op(rec.func)
    args = rec.args
    if op in _FACTORIES and depth > 0:  # zeros[0]: a part of an unnamed tensor torch.zeros made
        return op, [":"] * t.dim(), list(range(t.dim()))
    if op not in _INDEX_OPS and op not in SAME_VALUE or not args or not isinstance(args[0], torch.Tensor):
        return None
    if op in SAME_VALUE:
        return None if args[0] is t else _index_path(args[0], names, produced, depth + 1)
    base = _index_path(args[0], names, produced, depth + 1)
    if base is None:
        return None
    name, items, dims = base[0], list(base[1]), list(base[2])

    def arg(i: int, key: str, default: Any) -> Any:
        return args[i] if len(args) > i else rec.kwargs.get(key, default)

    if op == "alias":
        return name, items, dims
    if op == "index":  # x[idx]: one named index tensor; what follows has no simple index
        indices = args[1] if len(args) > 1 else rec.kwargs.get("indices", ())
        used = [(i, ix) for i, ix in enumerate(indices or ()) if ix is not None]
        if len(used) != 1 or not isinstance(used[0][1], torch.Tensor) or used[0][1] is t:
            return None
        index_name = names.get(id(used[0][1]))
        if index_name is None or used[0][0] >= len(dims):
            return None
        items[dims[used[0][0]]] = index_name
        return name, items, []
    size = args[0].dim() + (op == "unsqueeze")
    dim = int(arg(2 if op in ("split", "split_with_sizes") else 1, "dim", 0))
    dim = dim + size if dim < 0 else dim
    if op == "unsqueeze" and 0 <= dim <= len(dims):  # x[:, None]: a new dimension before dims[dim]
        at = dims[dim] if dim < len(dims) else len(items)
        items.insert(at, "None")
        dims = [d + (d >= at) for d in dims]
        dims.insert(dim, at)
        return name, items, dims
    if not 0 <= dim < len(dims):
        return None
    if op in ("select", "unbind"):
        index = j if op == "unbind" else int(arg(2, "index", 0))
        items[dims[dim]] = str(index + args[0].shape[dim] if index < 0 else index)
        dims.pop(dim)
        return name, items, dims
    length = args[0].shape[dim]
    if op == "slice":
        start, end, step = arg(2, "start", None), arg(3, "end", None), arg(4, "step", 1)
    elif op == "narrow":
        start, step = int(arg(2, "start", 0)), 1
        end = start + int(arg(3, "length", 0))
    else:  # split, split_with_sizes: where output j starts and ends
        start = sum(int(o.shape[dim]) for o in rec.outs[:j])
        end, step = start + int(rec.outs[j].shape[dim]), 1
    lo = "" if not start else str(start)
    hi = "" if end is None or end >= length else str(end)
    items[dims[dim]] = f"{lo}:{hi}" + (f":{step}" if step not in (None, 1) else "")
    return name, items, dims
