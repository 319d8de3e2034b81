"""Building the `Trace` from a finished capture, once the step (and the optimizer after it) is over.

The capture noted everything by autograd node, as cheaply as it could while the
step ran. The build turns that into plain data, in this order (each step needs
the ones before it):

1. `explainer.trace.index.index_capture`: number the graph's nodes (a BFS from the loss) and key what the
   hooks noted by number: gradients (copying the held ones now), leaves, updates,
   the recorded ops' values, and each node's module stack (ops of light blocks by
   their sequence numbers, `explainer.trace.blocks.attribute_light_ops`);
2. `explainer.trace.updates.manual_updates`: leaves the script changed itself,
   when no optimizer stepped;
3. `explainer.trace.naming.Names.name_modules_and_tensors`: modules, parameters and
   buffers get their names;
4. `explainer.trace.nodes.GraphBuilder`: nodes and edges in forward order;
5. `_backward_order`: each node's backward step (the engine's rule for the nodes of
   light blocks, checked against the hooked nodes' order);
6. `_add_notes`: what the reader should know (accumulated or changed gradients, light blocks);
   the modules enclosing the recorded ones are added, and the `Trace` is made.
"""

from __future__ import annotations

from .blocks import light_note
from .capture import Capture
from .engine_order import engine_order
from .index import Indexed, index_capture
from .internals import ran_on_cpu, sequence_nr
from .model import Note, Trace
from .naming import Names, natural_key, prefixes
from .nodes import GraphBuilder
from .updates import manual_updates, same_value

__all__ = ["build_trace"]


def build_trace(capture: Capture, names: Names, notes: list[Note], step: int) -> Trace:
    """The `Trace` of a finished capture, in the order of this module's docstring."""
    ix = index_capture(capture)
    if capture.step.optimizer is None:
        # The gradients the hand-written update used (clipped, maybe), else backward's.
        kept = capture.step.grads_at_update
        used = {k: kept.get(id(t), ix.leaf_grad.get(k)) for k, t in ix.leaf_tensor.items()}
        info = manual_updates(ix.leaf_value, ix.leaf_tensor, used, ix.updates, capture.keep)
        if info is not None:
            ix.opt_info = info
            ix.grads_changed = [k for k in ix.updates if not same_value(used.get(k), ix.leaf_grad.get(k))]
    names.name_modules_and_tensors(ix.fn_modules)
    graph = GraphBuilder(ix, names)
    graph.add_all()
    notes = list(notes)
    order: list[int] = []
    step_of: dict[int, int] = {}
    for k in _backward_order(ix, notes):
        key = graph.key_of(k)
        if key is not None and key not in step_of:
            step_of[key] = len(order) + 1
            order.append(key)
    for n in graph.nodes:
        n.backward_step = step_of.get(n.key)
    light = _add_notes(ix, graph, names, notes)
    names.add_ancestors(graph.modules)
    return Trace(
        nodes=graph.nodes,
        edges=sorted(graph.edges.values(), key=lambda e: (e.dst, e.slots[0] if e.slots else -1, e.src)),
        loss=graph.loss_key,
        backward_order=order,
        step=step,
        optimizer=ix.opt_info,
        notes=notes,
        modules=dict(sorted(graph.modules.items())),
        light=light,
    )


def _backward_order(ix: Indexed, notes: list[Note]) -> list[int]:
    """Step 5: every node in the order backward ran it.

    Hooked nodes report it themselves. When light blocks had no hooks, the whole
    order is the engine's (`engine_order`), used only if it agrees with the order
    the hooked nodes reported; otherwise the unhooked nodes get no step (and a note).
    """
    if ix.kept is None:
        return ix.order
    hooked = set(ix.order)
    # The rule is the CPU engine's; other devices run their own threads and queues.
    if all(ran_on_cpu(fn) for fn in ix.fn_nodes):
        seq = [sequence_nr(fn) for fn in ix.fn_nodes]
        full = engine_order(ix.children, seq)
        if [k for k in full if k in hooked] == ix.order:
            return full
    notes.append(Note("note_order_unknown", {}))
    return ix.order


def _add_notes(ix: Indexed, graph: GraphBuilder, names: Names, notes: list[Note]) -> list[str]:
    """Step 6: notes on accumulated and changed gradients and on the light blocks;
    returns the light blocks the graph uses, as module paths."""
    if graph.accumulated:
        notes.append(Note("note_accumulated", {"names": ", ".join(f"{a}.grad" for a in graph.accumulated)}))
    if ix.grads_changed:
        changed = [graph.key_of(k) for k in ix.grads_changed]
        listed = ", ".join(f"{graph.nodes[key].name or 'a parameter'}.grad" for key in changed if key is not None)
        manual = ix.opt_info is not None and ix.opt_info.name == "manual update"
        notes.append(Note("note_grads_changed_manual" if manual else "note_grads_changed", {"names": listed}))
    used = {p for m in {n.module for n in graph.nodes if n.module} for p in prefixes(m)}
    stacks = ix.capture.calls.stacks.values()
    light = sorted({p for mods in stacks if (p := names.module_path(mods)[0]) in used}, key=natural_key)
    if light:
        notes.append(light_note(light))
    return light
