"""Threads the script starts: their backward calls are counted, not traced.

PyTorch's mode stacks are per thread, so the trace's modes see only the thread that
runs the script (and its module hooks, which run in every thread, ignore the others).
A training step run in another thread would otherwise look like a script that never
calls backward. `OtherThreads` pushes a small watching mode in every thread started
while the trace runs (``threading.setprofile`` runs a function first thing in each
new thread), so the report can say where the backward calls went.
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from .internals import push_function_mode

__all__ = ["OtherThreads"]

_BACKWARD_CALLS = (torch.Tensor.backward, torch.autograd.backward, torch.autograd.grad)


class _Watch(TorchFunctionMode):
    """Counts the backward calls of one thread; passes everything through."""

    def __init__(self, owner: OtherThreads) -> None:
        super().__init__()
        self.owner = owner

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        if func in _BACKWARD_CALLS and self.owner.watching:
            name = threading.current_thread().name
            self.owner.backward_calls[name] = self.owner.backward_calls.get(name, 0) + 1
        return func(*args, **(kwargs or {}))


class OtherThreads:
    """Backward calls made in threads other than the traced one, by thread name."""

    def __init__(self) -> None:
        self.backward_calls: dict[str, int] = {}
        self.watching = False
        self.ident = threading.get_ident()  # the traced thread

    def is_traced(self) -> bool:
        """Is the current thread the one the trace records?"""
        return threading.get_ident() == self.ident

    @contextmanager
    def watched(self) -> Iterator[None]:
        """Watch every thread started inside the block."""
        previous = threading.getprofile()
        self.ident = threading.get_ident()
        self.watching = True
        threading.setprofile(self._thread_starts)
        try:
            yield
        finally:
            threading.setprofile(previous)
            self.watching = False

    def _thread_starts(self, frame: types.FrameType, event: str, arg: Any) -> None:
        sys.setprofile(None)  # once, first thing in the new thread
        if self.watching:
            push_function_mode(_Watch(self))

    def describe(self) -> str:
        """``Thread-1 (2 calls)``: where the backward calls went."""
        return ", ".join(f"{name} ({n} call{'s' if n > 1 else ''})" for name, n in self.backward_calls.items())
