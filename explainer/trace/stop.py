"""Stopping the user's script once the trace is complete, and noticing when it does not stop."""

from __future__ import annotations

import sys

from .model import Note, Trace
from .naming import user_line

__all__ = ["StopScript", "Stopper"]


class StopScript(BaseException):
    """Raised inside the user's script to stop it once the trace is complete.

    A BaseException, so a user's ``except Exception`` does not swallow it.
    """


class Stopper:
    """Raises `StopScript`; raised again later, the script caught the first one (a bare
    ``except:`` around the step) and ran on: the trace gets a note, the script a new stop."""

    def __init__(self) -> None:
        self.stopped_at: str | None = None  # where the script was stopped (file:line)
        self.caught_at: str | None = None  # where it caught that and ran on

    def stop(self, result: Trace | None) -> None:
        where = user_line(sys._getframe(1))
        if self.stopped_at is None:
            self.stopped_at = where
        elif self.caught_at is None:
            self.caught_at = self.stopped_at
            if result is not None:
                result.notes.append(Note("note_stop_caught", {"where": self.caught_at}))
        raise StopScript
