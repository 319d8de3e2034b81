"""A script (or ``with`` block) without backward: its final loss explained all the same.

The loss is chosen and, when it has no graph, computed again (`explainer.trace.replay`);
then it is back-propagated under the session's capture, keeping its graph and putting
every ``.grad`` back as it was: the user's own ``loss.backward()`` afterwards works as
without the tool.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

import torch

from .capture import Capture
from .model import Note, Trace
from .modes import Switches
from .naming import Names
from .pending import Pending
from .records import Records
from .replay import Replayed, choose_loss, replay
from .tracker import ModuleTracker

__all__ = ["Capturing", "back_propagate", "choose_root"]


class Capturing(Protocol):
    """What `back_propagate` needs of the session (`explainer.trace.session.Session`)."""

    switches: Switches
    step: int

    def active(self) -> AbstractContextManager[Any]: ...

    def prepare(
        self, root: torch.Tensor, gradient: torch.Tensor | None, names: Names, notes: list[Note] | None = None
    ) -> Pending: ...

    def run_captured(self, pending: Pending, backward: Any, inputs: tuple[torch.Tensor, ...] = ()) -> Any: ...


def choose_root(
    namespace: dict[str, Any],
    records: Records,
    switches: Switches,
    tracker: ModuleTracker,
    active: Callable[[], AbstractContextManager[Any]],
    backward_calls: int,
) -> tuple[torch.Tensor, Names, list[Note]]:
    """The tensor to back-propagate for a script (or block) that called no backward, its names and notes.

    The script's final loss (`choose_loss`); computed again from the parameters when it has no
    graph (`replay`), with a note saying so and whether the replay reproduced it.
    """
    target, names = choose_loss(namespace, records)
    root, notes = target, []
    if target.grad_fn is None and not target.requires_grad:
        done = replay(target, names.tensors, records, switches, tracker, active)
        root, names.tensors = done.root, done.names
        notes.append(_replay_note(done, names.tensors.get(id(root), "")))
        with switches.busy_now():
            was, now = float(target.detach().reshape(-1)[0]), float(done.root.detach().reshape(-1)[0])
        if done.differs or not math.isclose(was, now, rel_tol=1e-5, abs_tol=1e-7):
            notes.append(
                Note("note_replay_differs", {"script": was, "replay": now, "names": ", ".join(done.differs) or "–"})
            )
    elif backward_calls == 0:
        notes.append(Note("note_no_backward", {"root": names.tensors.get(id(root), "")}))
    return root, names, notes


def back_propagate(session: Capturing, root: torch.Tensor, names: Names, notes: list[Note]) -> Trace:
    """Back-propagate ``root`` under the session's capture, keeping its graph and putting every
    ``.grad`` back as it was; the `Trace` of that backward."""
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
            return pending.build(session.step)


def _replay_note(done: Replayed, root: str) -> Note:
    if done.made:
        return Note("note_replayed", {"made": ", ".join(done.made), "root": root})
    return Note("note_replayed_params", {"root": root})


def _grads_now(capture: Capture) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """Each leaf of the capture with a copy of its ``.grad`` now (backward adds to it in place)."""
    leaves = [fn.variable for fn in capture.leaf_value_fn] + list(capture.block_params.values())
    return [(t, None if t.grad is None else t.grad.detach().clone()) for t in leaves]
