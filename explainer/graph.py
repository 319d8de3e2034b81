"""Graph stage: the central type every renderer reads, a `networkx.DiGraph`.

Schema (``explain-graph/1``), all attributes JSON values:

Graph attributes
    ``schema`` ("explain-graph/1"), ``loss`` (id of the loss node), ``step`` (which
    backward call), ``backward_order`` (node ids in the order backward ran them),
    ``first_nonfinite`` (id of the first node whose gradient held NaN/Inf, or null),
    ``optimizer`` ({name, hyper} or null), ``losses`` (loss of every backward call seen; NaN/Inf as strings),
    ``modules`` ({path: class name}), ``notes`` (list of sentences, in English), ``note_data``
    (the same notes as ``{"key", "params"}``, which `explainer.text.notes_of` words in any
    language), ``source`` (script
    path or null), ``max_elements``, ``light`` (module paths of repeated blocks of a large
    model whose ops were not recorded one by one: their nodes have structure, shape and
    backward step, but a value and gradient only where a block's output leaves it; their
    inputs that need no gradient, e.g. batch-norm running statistics, are left out).

Node ids
    ``"n0"``, ``"n1"``, ... in forward order (inputs just before their first use, ops in
    the order they ran): the same script gives the same ids, run after run.

Node attributes
    ``kind``: "param" | "leaf" (tensor requiring grad, not a parameter) | "input" |
    "buffer" | "op" | "loss"; ``label``: the name alone ("pred", "fc1.weight",
    "mse_loss"); ``name``: the user's name or null; ``op``: friendly op name or null;
    ``autograd``: autograd node class; ``call``: the torch function the op ran inside;
    ``scalars``: non-tensor numeric arguments; ``shape``; ``dtype``; ``value``,
    ``grad``: a number for a 0-d tensor, nested lists up to ``max_elements`` entries,
    else a summary ``{"summary": true, shape, dtype, min, max, mean, norm, nan, inf,
    head}`` (NaN/Inf entries are the strings "nan", "inf", "-inf"); ``grad`` is
    ∂loss/∂(this node's output); for a leaf, the gradient this backward sent it (its
    ``.grad``, unless that also holds earlier backward calls' gradients: ``notes`` says
    so); ``backward_step``: 1 for the first node backward processed, null where none;
    ``module`` / ``module_type``; ``calls``: ``{path: n}`` for the modules on the node's
    path that ran more than once (an encoder run over 8 tokens, one Dropout used twice):
    the node ran in their n-th call;
    ``requires_grad``; ``update``: {"before", "after", "lr"} for a parameter the
    optimizer changed, else null; ``nonfinite``: an alarm: the gradient holds NaN/Inf, or the
    value does and this op made them from finite inputs (``log(0)``), or took them from an
    op that did; ``intended_inf``: the value holds NaN/Inf the script put there on purpose
    (a causal mask's ``masked_fill(..., -inf)``, data holding ``-inf``, or what ops made
    from those), which is no alarm. An input
    nobody named, computed by a call, has that call as ``op`` ("ones", "dropout mask").

Edge attributes (edges point forward: input -> op -> output)
    ``grad``: the gradient that flowed back along this edge (null for inputs that do not
    require grad, and inside ``light`` blocks); ``slots``: argument positions at the destination; ``output_nr``;
    ``backward_step``: the step that sent the gradient.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import networkx as nx

from .defaults import DEFAULT_MAX_ELEMENTS
from .errors import SchemaError
from .text import note_text
from .trace.model import Trace
from .values import TensorValue, json_number

SCHEMA = "explain-graph/1"


def node_id(key: int) -> str:
    return f"n{key}"


def _json(v: TensorValue | None, max_elements: int) -> Any:
    return None if v is None else v.to_json(max_elements)


def build_graph(trace: Trace, max_elements: int = DEFAULT_MAX_ELEMENTS) -> nx.DiGraph:
    """Convert a `explainer.trace.Trace` into the schema above."""
    g = nx.DiGraph()
    first_bad = None
    for key in trace.backward_order:
        n = trace.nodes[key]
        if n.grad is not None and n.grad.n_nonfinite:
            first_bad = node_id(key)
            break
    g.graph.update(
        schema=SCHEMA,
        loss=node_id(trace.loss),
        step=trace.step,
        backward_order=[node_id(k) for k in trace.backward_order],
        first_nonfinite=first_bad,
        optimizer=({"name": trace.optimizer.name, "hyper": dict(trace.optimizer.hyper)} if trace.optimizer else None),
        losses=[json_number(x) for x in trace.losses],
        modules=dict(trace.modules),
        notes=[note_text({"key": n.key, "params": n.params}) for n in trace.notes],
        note_data=[{"key": n.key, "params": dict(n.params)} for n in trace.notes],
        light=list(trace.light),
        source=trace.source,
        max_elements=max_elements,
    )
    intended = _intended_nonfinite(trace)
    for n in trace.nodes:
        update = None
        if n.update is not None:
            update = {
                "before": _json(n.update.before, max_elements),
                "after": _json(n.update.after, max_elements),
                "lr": n.update.lr,
            }
        bad_value = n.value is not None and n.value.n_nonfinite > 0 and n.key not in intended
        nonfinite = bool(bad_value or (n.grad is not None and n.grad.n_nonfinite))
        g.add_node(
            node_id(n.key),
            kind=n.kind,
            label=n.name or n.op or ("input" if n.kind == "input" else n.kind),
            name=n.name,
            op=n.op,
            autograd=n.autograd,
            call=n.call,
            scalars=list(n.scalars),
            shape=list(n.shape),
            dtype=n.dtype,
            value=_json(n.value, max_elements),
            grad=_json(n.grad, max_elements),
            backward_step=n.backward_step,
            module=n.module,
            module_type=n.module_type,
            requires_grad=n.requires_grad,
            update=update,
            nonfinite=nonfinite,
            intended_inf=n.key in intended,
            n_outputs=n.n_outputs,
            calls=dict(n.calls),
        )
    for e in trace.edges:
        dst = trace.nodes[e.dst]
        g.add_edge(
            node_id(e.src),
            node_id(e.dst),
            grad=_json(e.grad, max_elements),
            slots=list(e.slots),
            output_nr=e.output_nr,
            backward_step=dst.backward_step if (e.grad is not None or e.flowed) else None,
        )
    return g


def _nonfinite_counts(v: TensorValue | None) -> tuple[int, int]:
    if v is None or not v.n_nonfinite:
        return 0, 0
    s = v.summary()
    return int(s.get("nan", 0)), int(s.get("inf", 0))


def _intended_nonfinite(trace: Trace) -> set[int]:
    """Nodes whose value holds NaN/Inf on purpose: data the script made so, an op given an
    infinite number (``masked_fill(mask, -inf)``), or ops that only passed such values on.

    An op that turns finite inputs into NaN or Inf (``log(0)``, ``0 / 0``), or makes NaN
    from infinities (a softmax over a row masked entirely), is not intended; nor is
    anything computed from its output.
    """
    inputs: dict[int, list[int]] = {}
    for e in trace.edges:
        inputs.setdefault(e.dst, []).append(e.src)
    intended: set[int] = set()
    for n in trace.nodes:  # forward order: inputs come first
        nan, inf = _nonfinite_counts(n.value)
        if not (nan or inf):
            continue
        if n.kind in ("input", "buffer", "param", "leaf"):
            intended.add(n.key)
            continue
        srcs = [trace.nodes[k] for k in inputs.get(n.key, [])]
        counts = [_nonfinite_counts(s.value) for s in srcs]
        if any(c != (0, 0) and s.key not in intended for s, c in zip(srcs, counts)):
            continue  # carries an alarm on
        given_inf = any(v in ("inf", "-inf") for v in n.scalars) or any(c[1] for c in counts)
        given_nan = any(v == "nan" for v in n.scalars) or any(c[0] for c in counts)
        if (not inf or given_inf) and (not nan or given_nan):
            intended.add(n.key)
    return intended


def to_json_data(g: nx.DiGraph) -> dict[str, Any]:
    """networkx node-link data (``edges`` key) for ``g``."""
    return nx.node_link_data(g, edges="edges")


def dumps(g: nx.DiGraph) -> str:
    """Deterministic, strict JSON text of ``g`` (no NaN literals)."""
    return json.dumps(to_json_data(g), indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def save_graph(g: nx.DiGraph, path: str | Path) -> None:
    Path(path).write_text(dumps(g), encoding="utf-8")


def loads(text: str) -> nx.DiGraph:
    """Parse graph.json text back into an equal `networkx.DiGraph`."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(
            f"not a graph.json file ({exc.msg} at line {exc.lineno}): pass a graph.json written by explain-graph"
        ) from None
    if not isinstance(data, dict) or data.get("graph", {}).get("schema") != SCHEMA:
        raise SchemaError(f"not an {SCHEMA} graph: pass a graph.json written by this version of explain-graph")
    return nx.node_link_graph(data, directed=True, multigraph=False, edges="edges")


def load_graph(path: str | Path) -> nx.DiGraph:
    p = Path(path)
    if not p.is_file():
        raise SchemaError(f"{p} does not exist: pass the graph.json that explain-graph wrote")
    return loads(p.read_text(encoding="utf-8"))
