"""A captured backward waiting for the update that follows it (`Pending`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .build import build_trace
from .capture import Capture
from .model import Note, Trace
from .naming import Names

__all__ = ["MAX_EXTRA_BACKWARD", "Pending"]


#: Most backward calls after the captured one, with no update in between, that still
#: count as adding to its gradients (gradient accumulation, a GAN's second loss).
MAX_EXTRA_BACKWARD = 32


@dataclass
class Pending:
    """A captured backward, built into the `Trace` once the update after it is seen.

    Until then it waits: further backward calls that only add to the gradients (a
    GAN's ``errD_fake.backward()``, gradient accumulation) are counted, and so are a
    closure optimizer's further evaluations inside the same step (LBFGS).
    """

    capture: Capture
    names: Names
    notes: list[Note]
    extra_backward: int = 0
    closure_evals: int = 0

    def build(self, step: int) -> Trace:
        notes = list(self.notes)
        if self.extra_backward:
            notes.append(Note("note_more_backward", {"n": self.extra_backward}))
            self.capture.step.changed.clear()  # they changed because of those calls: said above
        if self.closure_evals:
            notes.append(Note("note_closure", {"n": self.closure_evals + 1}))
        return build_trace(self.capture, self.names, notes, step)

    def adds_backward(self, stepping: list[Any]) -> bool:
        """Another backward call while this one waits for its update: is it part of the same
        step? So it is while the closure optimizer that ran this backward evaluates its closure
        again (``stepping``: the closure steps running now), or, before any update, when it
        only adds to the gradients (the captured leaves have not changed)."""
        step = self.capture.step
        if step.inside is not None and step.inside in stepping:
            self.closure_evals += 1
            return True
        if step.optimizers or self.extra_backward >= MAX_EXTRA_BACKWARD or step.leaves_changed():
            return False
        self.extra_backward += 1
        return True
