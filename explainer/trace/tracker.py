"""Module tracking: which modules are running now, from global forward hooks.

As ``torch.utils.module_tracker.ModuleTracker`` does, but with the stack of module
objects (not names: names come from the user's frames afterwards) and, for each
call, the autograd sequence number it started at, which places the nodes a call
made inside it (`explainer.trace.blocks`).

Each call of a module gets a number (the module's calls counted since `forget_calls`),
so a module run several times (an encoder over 8 tokens, one Dropout used twice) is
drawn once per call rather than folded into one box (`call_numbers`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.nn.modules.module import (
    register_module_forward_hook,
    register_module_forward_pre_hook,
)
from torch.utils.hooks import RemovableHandle

from .internals import next_sequence_nr

__all__ = ["ModuleStack", "ModuleTracker"]

#: The modules an op or a call ran in, outermost first (as recorded from `ModuleTracker.stack`).
ModuleStack = tuple[torch.nn.Module, ...]


class ModuleTracker:
    """The running modules, outermost first, while its hooks are on.

    Parameters
    ----------
    enter
        Called with ``(module, args)`` before a module joins the stack.
    leave
        Called with ``(module, output, start)`` before it leaves: ``start`` is the
        sequence number the call began at.
    traced
        Is the current thread the traced one? Module hooks run in every thread; calls
        in the others are not the traced forward's.
    """

    def __init__(
        self,
        enter: Callable[[torch.nn.Module, Any], None],
        leave: Callable[[torch.nn.Module, Any, int], None],
        traced: Callable[[], bool] = lambda: True,
    ) -> None:
        self._traced = traced
        self.stack: list[torch.nn.Module] = []
        #: ``stack`` as a tuple, and each of its modules' call number, made when it changes:
        #: every op of one call shares them
        self.frozen: ModuleStack = ()
        self.numbers: tuple[int, ...] = ()
        self._numbers: list[int] = []
        self._counts: dict[int, int] = {}  # id(module) -> calls so far
        self._starts: list[int] = []
        self._enter = enter
        self._leave = leave
        self._handles: list[RemovableHandle] = []

    def hooks_on(self) -> None:
        if not self._handles:
            self._handles = [
                register_module_forward_pre_hook(self._pre),
                # always_call: the post-hook runs (and puts the modes back) even when a module raises.
                register_module_forward_hook(self.post, always_call=True),
            ]

    def hooks_off(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def _pre(self, module: torch.nn.Module, args: Any) -> None:
        if not self._traced():
            return
        self._enter(module, args)
        n = self._counts.get(id(module), 0) + 1
        self._counts[id(module)] = n
        self.stack.append(module)
        self._numbers.append(n)
        self._starts.append(next_sequence_nr())
        self._freeze()

    def post(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        """The forward hook; also called by a light block's own hook, the global ones being off."""
        stack = self.stack
        if not stack or stack[-1] is not module or not self._traced():
            return
        start = self._starts.pop()
        self._leave(module, output, start)
        stack.pop()
        self._numbers.pop()
        self._freeze()

    def _freeze(self) -> None:
        self.frozen = tuple(self.stack)
        self.numbers = tuple(self._numbers)

    def replace(self, modules: ModuleStack, numbers: tuple[int, ...]) -> None:
        """Make ``modules`` the running stack (a replay re-runs an op inside its recorded modules)."""
        self.stack[:] = list(modules)
        self._numbers[:] = list(numbers)
        self._starts[:] = [0] * len(modules)
        self.frozen, self.numbers = modules, numbers

    def forget_calls(self) -> None:
        """Count calls afresh (after a backward: the next forward's calls are numbered from 1)."""
        self._counts = {}

    def clear(self) -> None:
        self.stack.clear()
        self._numbers.clear()
        self._starts.clear()
        self._freeze()
