"""A script (or ``with`` block) without backward: its final loss explained all the same.

The loss is chosen and, when it has no graph, computed again (`explainer.trace.replay`);
then it is back-propagated under the session's capture, keeping its graph and putting
every ``.grad`` back as it was: the user's own ``loss.backward()`` afterwards works as
without the tool.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from .capture import Capture
from .model import Note, Trace
from .replay import Replayed, choose_loss, replay

if TYPE_CHECKING:  # pragma: no cover
    from .session import Session

__all__ = ["explain_without_backward"]


def explain_without_backward(session: Session, namespace: dict[str, Any]) -> Trace:
    """Explain the script's (or block's) final loss although it called no backward (see above)."""
    target, names = choose_loss(namespace, session.records)
    root, notes = target, []
    if target.grad_fn is None and not target.requires_grad:
        done = replay(target, names.tensors, session.records, session.switches, session.tracker, session.active)
        root, names.tensors = done.root, done.names
        notes.append(_replay_note(done, names.tensors.get(id(root), "")))
        with session.switches.busy_now():
            was, now = float(target.detach().reshape(-1)[0]), float(done.root.detach().reshape(-1)[0])
        if done.differs or not math.isclose(was, now, rel_tol=1e-5, abs_tol=1e-7):
            notes.append(Note("note_replay_differs", {"script": was, "replay": now,
                                                      "names": ", ".join(done.differs) or "–"}))
    elif session.backward_calls == 0:
        notes.append(Note("note_no_backward", {"root": names.tensors.get(id(root), "")}))
    with session.active():
        session.switches.recording = False
        with session.switches.busy_now():
            pending = session.prepare(root, None, names, notes)
            kept = _grads_now(pending.capture)
        try:
            session.run_captured(pending, lambda: root.backward(retain_graph=True))
        finally:
            with session.switches.busy_now():
                for t, g in kept:
                    t.grad = g
        with session.switches.busy_now():
            result = pending.build(session.step)
    session.result = result
    result.losses = session.losses
    session.state = "done"
    return result


def _replay_note(done: Replayed, root: str) -> Note:
    if done.made:
        return Note("note_replayed", {"made": ", ".join(done.made), "root": root})
    return Note("note_replayed_params", {"root": root})


def _grads_now(capture: Capture) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """Each leaf of the capture with a copy of its ``.grad`` now (backward adds to it in place)."""
    leaves = [fn.variable for fn in capture.leaf_value_fn] + list(capture.block_params.values())
    return [(t, None if t.grad is None else t.grad.detach().clone()) for t in leaves]
