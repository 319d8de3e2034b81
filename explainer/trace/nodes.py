"""Step 4 of the build (`explainer.trace.build`): the trace's nodes and edges, in forward order.

Op nodes come in creation order (autograd's sequence numbers); each op's inputs
(leaves, then constants such as a dropout mask or a literal) just before it, so
node keys follow the forward pass. Edges carry the gradient each op sent back.
"""

from __future__ import annotations

from typing import Any

import torch

from ..values import TensorValue
from .capture import CONST_DEPTH
from .index import Indexed
from .internals import is_custom_function, is_random, output_meta, sequence_nr
from .model import TraceEdge, TraceNode
from .naming import SAME_VALUE, Names, friendly_op, indexed_name
from .records import OpRecord, scalar_args, strengthen, tensors_in
from .snapshots import dtype_name, snapshot
from .tracker import ModuleStack

__all__ = ["GraphBuilder"]

#: Ops that only copy, alias or fill: an unnamed constant they made is named by its call.
_PLUMBING = frozenset({"detach", "alias", "fill", "zero", "copy", "empty", "clone", "to_copy", "lift_fresh"})
#: Calls and ops that only bring a literal (``torch.tensor([1.0])``) into the graph.
_LITERAL_CALLS = frozenset({"lift_fresh", "lift", "lift_fresh_copy", "tensor", "as_tensor", "asarray", "from_numpy"})


class GraphBuilder:
    """Turns an indexed capture into `TraceNode` s and `TraceEdge` s (`add_all`).

    Afterwards ``nodes`` are the trace's nodes (a node's key is its position),
    ``edges`` its edges by (src, dst), ``modules`` the module paths seen with their
    classes, and ``accumulated`` the leaves whose ``.grad`` already held a gradient.
    """

    def __init__(self, ix: Indexed, names: Names) -> None:
        self.ix = ix
        self.names = names
        self.keep = ix.capture.keep
        self.nodes: list[TraceNode] = []
        self.edges: dict[tuple[int, int], TraceEdge] = {}
        self.modules: dict[str, str] = {}
        self.accumulated: list[str] = []
        #: ("fn", key) or ("t", id(tensor), version) -> node key: a constant changed in place
        #: between two uses (a GAN's ``label``) is two nodes, each with the value its op saw
        self._new_id: dict[tuple[str, int] | tuple[str, int, int], int] = {}
        self._consts: dict[int, torch.Tensor] = {}  # held, so their ids stay theirs while building
        self._stacks: dict[int, tuple[ModuleStack, tuple[int, ...]]] = {}  # node key -> modules, call numbers

    def key_of(self, k: int) -> int | None:
        """The trace node key of autograd node ``k``; None if it has no node."""
        return self._new_id.get(("fn", k))

    @property
    def loss_key(self) -> int:
        return self._new_id[("fn", 0)]

    def add_all(self) -> None:
        """Every op node, each after its inputs, and the edges into it."""
        ix = self.ix
        op_keys = [k for k in range(len(ix.fn_nodes)) if k not in ix.leaf_tensor]
        op_keys.sort(key=lambda k: sequence_nr(ix.fn_nodes[k]))
        for k in op_keys:
            rec = ix.fn_rec.get(k)
            for c, _ in ix.children[k]:
                if c in ix.leaf_tensor:
                    self._add_leaf(c)
            const_args: list[tuple[int, torch.Tensor, int]] = []
            # A custom autograd.Function's record is the last op inside its forward: the
            # tensors that op used are the Function's internals, not inputs of the graph.
            if rec is not None and not is_custom_function(ix.fn_nodes[k]):
                for pos, (a, version) in enumerate(zip(tensors_in((rec.args, rec.kwargs)), rec.versions)):
                    if not a.requires_grad and a.grad_fn is None:
                        const_args.append((pos, *self._copied_from(a, version)))
                for _, a, version in const_args:
                    self._add_const(a, version)
            key = self._add_op(k, rec)
            self._add_edges(k, key, const_args)
        self._number_calls()

    def _number_calls(self) -> None:
        """Each node's call of every module on its path that ran more than once (1, 2, ...
        in the order the calls began), so that each call can be drawn apart."""
        paths: dict[int, list[str]] = {}  # id(stack) -> the path of each of its prefixes
        seen: dict[str, set[int]] = {}
        per_node: dict[int, list[tuple[str, int]]] = {}
        for key, (mods, numbers) in self._stacks.items():
            if len(numbers) != len(mods):
                continue
            levels = paths.get(id(mods))
            if levels is None:
                levels = paths[id(mods)] = [self.names.module_path(mods[: i + 1])[0] or "" for i in range(len(mods))]
            per_node[key] = list(zip(levels, numbers))
            for path, n in per_node[key]:
                seen.setdefault(path, set()).add(n)
        rank = {path: {n: i + 1 for i, n in enumerate(sorted(ns))} for path, ns in seen.items() if len(ns) > 1}
        for key, at in per_node.items():
            self.nodes[key].calls = {path: rank[path][n] for path, n in at if path in rank}

    # -- leaves and constants ---------------------------------------------------

    def _add_leaf(self, k: int) -> int:
        if ("fn", k) in self._new_id:
            return self._new_id[("fn", k)]
        ix = self.ix
        var = ix.leaf_tensor[k]
        name = self.names.tensors.get(id(var))
        pname, module, mtype = self.names.params.get(id(var), (None, None, None))
        is_param = isinstance(var, torch.nn.Parameter) or (
            k in ix.updates and ix.opt_info is not None and ix.opt_info.name != "manual update"
        )
        if pname is not None:
            name = pname
            is_param = True
        if module:
            self.modules.setdefault(module, mtype or "")
        # The gradient this backward sent (∂loss/∂leaf); .grad also holds earlier
        # backward calls' gradients when they were not zeroed.
        flowed = ix.grad_in.get(k)
        grad = flowed[0] if flowed and k not in ix.refired else ix.leaf_grad.get(k)
        if k in ix.leaf_had_grad and flowed:
            self.accumulated.append(name or f"a {tuple(var.shape)} tensor")
        node = TraceNode(
            key=len(self.nodes),
            kind="param" if is_param else "leaf",
            name=name,
            op=None,
            autograd="AccumulateGrad",
            call=None,
            scalars=(),
            shape=tuple(var.shape),
            dtype=str(var.dtype).removeprefix("torch."),
            requires_grad=True,
            value=ix.leaf_value.get(k),
            grad=grad,
            module=module,
            module_type=mtype,
            update=ix.updates.get(k),
        )
        return self._append(("fn", k), node)

    def _add_const(self, t: torch.Tensor, version: int, depth: int = 0) -> int:
        """A tensor that needs no gradient: named by the script (``x``), as a part of one
        (``x[:, 3]``), by where it came from (``dropout mask``), or drawn with the op that
        computed it from named data (``x → pow(·, 2)``), `CONST_DEPTH` ops back at most."""
        ref = ("t", id(t), version)
        if ref in self._new_id:
            return self._new_id[ref]
        self._consts[id(t)] = t
        capture = self.ix.capture
        name = self.names.tensors.get(id(t))
        kind = "input"
        module = mtype = op = call = None
        scalars: tuple[Any, ...] = ()
        stack: tuple[ModuleStack, tuple[int, ...]] | None = None
        sources: list[tuple[int, int]] = []  # (argument position, node key) of an op drawn with it
        value = capture.const_values.get((id(t), version))
        hit = capture.produced.get(id(t))
        if hit is not None and name is None:
            rec = hit[0]
            name = indexed_name(t, self.names.tensors, capture.produced)
            if name is None and not _is_literal(rec):
                # An unnamed constant computed by a call: the op and where it ran, and
                # the named data it came from, if any (else "dropout mask", "zeros ⊂ lstm").
                call = rec.call
                op = friendly_op(rec.func)
                if "dropout" in (rec.call or op):
                    op = "dropout mask"
                elif op in _PLUMBING and rec.call:
                    op = rec.call  # torch.zeros runs a detach: the call says more
                module, mtype = self.names.module_path(rec.modules)
                stack = (rec.modules, rec.numbers)
                if depth < CONST_DEPTH and self._leads_to_data(rec, depth):
                    args, _ = strengthen((rec.args, rec.kwargs))
                    for pos, (a, v) in enumerate(zip(tensors_in(args), rec.versions)):
                        if not a.requires_grad and a.grad_fn is None:
                            sources.append((pos, self._add_const(a, v, depth + 1)))
                    scalars = scalar_args(rec.args)
        if id(t) in self.names.buffers:
            name, module = self.names.buffers[id(t)]
            kind, op, call, mtype, stack = "buffer", None, None, None, None
        if module and mtype:
            self.modules.setdefault(module, mtype)
        node = TraceNode(
            key=len(self.nodes),
            kind=kind,
            name=name,
            op=op,
            autograd=None,
            call=call,
            scalars=scalars,
            shape=tuple(t.shape),
            dtype=str(t.dtype).removeprefix("torch."),
            requires_grad=False,
            value=value if value is not None else snapshot(t, self.keep),
            module=module,
            module_type=mtype,
        )
        if stack is not None and module:
            self._stacks[node.key] = stack
        key = self._append(ref, node)
        for pos, src in sources:
            self._add_edge(src, key, pos, None, 0, False)
        return key

    def _copied_from(self, t: torch.Tensor, version: int) -> tuple[torch.Tensor, int]:
        """The data a copy was made of (``clone``, ``contiguous``, ``detach``), as that copy saw
        it: drawn once, as itself, rather than as a chain of copies."""
        for _ in range(CONST_DEPTH):
            if id(t) in self.names.tensors or id(t) in self.names.buffers:
                break  # the script's own name for it wins
            hit = self.ix.capture.produced.get(id(t))
            if hit is None or hit[0].emptied or friendly_op(hit[0].func) not in SAME_VALUE:
                break
            rec = hit[0]
            src = rec.args[0] if rec.args else None
            if not isinstance(src, torch.Tensor) or src.requires_grad or src.grad_fn is not None or not rec.versions:
                break
            t, version = src, rec.versions[0]
        return t, version

    def _leads_to_data(self, rec: OpRecord, depth: int) -> bool:
        """Did this op compute its output from data the script named (within `CONST_DEPTH` ops)?
        Random draws (a dropout mask) and literals are where data starts, not ops to draw."""
        if rec.emptied or is_random(rec.func) or _is_literal(rec):
            return False
        args, alive = strengthen((rec.args, rec.kwargs))
        if not alive:
            return False
        produced, names = self.ix.capture.produced, self.names.tensors
        for a in tensors_in(args):
            if a.requires_grad or a.grad_fn is not None:
                continue
            if id(a) in names or indexed_name(a, names, produced) is not None:
                return True
            hit = produced.get(id(a))
            if hit is not None and depth + 1 < CONST_DEPTH and self._leads_to_data(hit[0], depth + 1):
                return True
        return False

    def _append(self, ref: tuple[str, int] | tuple[str, int, int], node: TraceNode) -> int:
        self.nodes.append(node)
        self._new_id[ref] = node.key
        return node.key

    # -- ops and edges --------------------------------------------------------------

    def _add_op(self, k: int, rec: OpRecord | None) -> int:
        ix = self.ix
        fn = ix.fn_nodes[k]
        root = ix.capture.root
        value = ix.fn_value.get((k, 0))
        shape, dtype = _output_meta(fn) if value is None and k != 0 else ((), "")
        mods = ix.fn_modules.get(k)
        module, mtype = self.names.module_path(mods) if mods else (None, None)
        if mods:
            self._stacks[len(self.nodes)] = (mods, ix.fn_numbers.get(k, ()))
        if module:
            self.modules.setdefault(module, mtype or "")
        grads = ix.grad_in.get(k) or []
        op = friendly_op(rec.func if rec is not None else None, fn)
        call = rec.call if rec is not None else None
        scalars = scalar_args(rec.args) if rec is not None else ()
        if is_custom_function(fn):
            # A custom autograd.Function: name it by its class, not the ops inside.
            op = fn.name().removesuffix("Backward")
            call, scalars = f"{op}.apply", ()
        node = TraceNode(
            key=len(self.nodes),
            kind="loss" if k == 0 else "op",
            name=self._output_name(k, fn, rec),
            op=op,
            autograd=fn.name(),
            call=call,
            scalars=scalars,
            shape=value.shape if value is not None else (tuple(root.shape) if k == 0 else shape),
            dtype=value.dtype if value is not None else dtype,
            requires_grad=True,
            value=value,
            grad=grads[0] if grads else None,
            module=module,
            module_type=mtype,
            n_outputs=len(grads) if grads else 1,
        )
        if k == 0 and node.value is None:
            node.value = snapshot(root, self.keep)
            node.shape, node.dtype = node.value.shape, node.value.dtype
        return self._append(("fn", k), node)

    def _output_name(self, k: int, fn: Any, rec: OpRecord | None) -> str | None:
        """The variable holding the op's output, if the script named it."""
        name = None
        if rec is not None:
            for t in rec.outs:
                # A name belongs to the node whose value the variable still holds.
                if t.grad_fn is fn and t.output_nr == 0:
                    name = self.names.tensors.get(id(t))
                    break
        if k == 0 and name is None:
            name = self.names.tensors.get(id(self.ix.capture.root))
        return name

    def _add_edges(self, k: int, key: int, const_args: list[tuple[int, torch.Tensor, int]]) -> None:
        """The edges into op ``k`` (trace node ``key``), with the gradients it sent back."""
        ix = self.ix
        sent = ix.grad_out.get(k) or []
        # An unhooked node (inside a light block) sent gradients to all its inputs.
        flowed = ix.flowed.get(k)
        for slot, (c, nr) in enumerate(ix.children[k]):
            if c < 0:
                continue
            g = sent[slot] if slot < len(sent) else None
            went = flowed is None or (slot < len(flowed) and flowed[slot])
            self._add_edge(self._new_id[("fn", c)], key, slot, g, nr, went)
        for pos, a, version in const_args:
            self._add_edge(self._new_id[("t", id(a), version)], key, pos, None, 0, False)

    def _add_edge(self, src: int, dst: int, slot: int, grad: TensorValue | None, nr: int, flowed: bool) -> None:
        e = self.edges.get((src, dst))
        if e is None:
            self.edges[(src, dst)] = TraceEdge(src, dst, (slot,), grad, nr, flowed)
            return
        e.slots = e.slots + (slot,)
        e.flowed = e.flowed or flowed
        if grad is not None and e.grad is None:
            e.grad = grad  # repeated slots arrive pre-summed in the first one (see `Capture._make_post`)


def _is_literal(rec: OpRecord) -> bool:
    return (rec.call or "") in _LITERAL_CALLS or friendly_op(rec.func) in _LITERAL_CALLS


def _output_meta(fn: Any) -> tuple[tuple[int, ...], str]:
    """Shape and dtype of an autograd node's first output, from autograd's own metadata."""
    meta = output_meta(fn)
    return ((), "") if meta is None else (meta[0], dtype_name(meta[1]))
