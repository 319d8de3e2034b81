"""The trace's two modes, and the one place that moves them on and off the mode stacks.

* `Interceptor`, a ``TorchFunctionMode``, intercepts ``Tensor.backward``,
  ``torch.autograd.backward`` and ``torch.autograd.grad`` and notes the function-level call each op runs in
  (``linear``, ``cross_entropy``); torch before 2.11 hands it ``torch.autograd.backward`` only
  through `explainer.trace.routing`'s wrapper;
* `Recorder`, a ``TorchDispatchMode``, sees every aten op (so ops inside composites,
  e.g. ``log_softmax`` inside ``cross_entropy``) and hands it to the session to record.

Both own nothing but a reference to the `Switches` they obey and the `Listener`
they report to (the session), like PyTorch's own small modes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch.overrides import TorchFunctionMode

from .internals import (
    DispatchMode,
    dispatch_mode_off,
    pop_dispatch_mode,
    pop_function_mode,
    push_dispatch_mode,
    push_function_mode,
    version_of,
)
from .naming import named_call
from .records import mutated_inputs, rng_state, tensors_in

__all__ = ["Interceptor", "Listener", "Modes", "Recorder", "Switches"]


@dataclass
class Switches:
    """What the modes ask on every op: record it at all, and which call it runs in."""

    #: Ops are recorded from the start: a graph kept with ``retain_graph=True`` can be
    #: back-propagated again at a later step, and its values must be known then.
    recording: bool = True
    busy: bool = False  # the trace's own work (copies, graph walks): passed through unrecorded
    call: str | None = None  # the torch function running now ("linear")
    #: while set, told of every in-place op that runs unrecorded (a hand-written update after
    #: the captured backward: ``p.data.add_(p.grad, alpha=-lr)``)
    on_write: Callable[[list[torch.Tensor]], None] | None = None

    @contextmanager
    def busy_now(self) -> Iterator[None]:
        """Mark the block as the trace's own work (its ops are not the script's)."""
        self.busy = True
        try:
            yield
        finally:
            self.busy = False


class Listener(Protocol):
    """What the modes report to (`explainer.trace.session.Session`)."""

    def record(
        self,
        func: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        out: Any,
        rng: Any = None,
        versions: tuple[int, ...] = (),
    ) -> None: ...

    def note_mutation(self, tensors: list[torch.Tensor], func: Any = None) -> None: ...

    def on_backward(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], kind: str) -> Any: ...


class Recorder(DispatchMode):
    """Records every aten op while the switches say so."""

    def __init__(self, switches: Switches, listener: Listener) -> None:
        super().__init__()
        self.switches = switches
        self.listener = listener

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        sw = self.switches
        if not sw.recording or sw.busy:
            if sw.on_write is not None and not sw.busy:
                written = mutated_inputs(func, args, kwargs)
                if written:
                    sw.on_write(written)
            return func(*args, **kwargs)
        mutated = mutated_inputs(func, args, kwargs)
        if mutated:
            self.listener.note_mutation(mutated, func)
        rng = rng_state(func, kwargs)
        # Each argument's version as the op saw it (a constant changed in place later is
        # shown as it was then): read before the op, which may change it in place.
        versions = tuple(version_of(a) for a in tensors_in((args, kwargs)))
        out = func(*args, **kwargs)
        self.listener.record(func, args, kwargs, out, rng, versions)
        return out


_TENSOR_BACKWARD = torch.Tensor.backward
_AUTOGRAD_BACKWARD = torch.autograd.backward
_AUTOGRAD_GRAD = torch.autograd.grad


class Interceptor(TorchFunctionMode):
    """Hands backward calls to the listener; notes the call each op runs in."""

    def __init__(self, switches: Switches, listener: Listener) -> None:
        super().__init__()
        self.switches = switches
        self.listener = listener

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func is _TENSOR_BACKWARD:
            return self.listener.on_backward(func, args, kwargs, kind="method")
        if func is _AUTOGRAD_BACKWARD:
            return self.listener.on_backward(func, args, kwargs, kind="function")
        if func is _AUTOGRAD_GRAD:
            return self.listener.on_backward(func, args, kwargs, kind="grad")
        sw = self.switches
        if not sw.recording or sw.busy:
            return func(*args, **kwargs)
        try:
            name = named_call(func)
        except TypeError:  # an unhashable callable
            name = None
        if name is None:
            return func(*args, **kwargs)
        prev = sw.call
        sw.call = name
        try:
            return func(*args, **kwargs)
        finally:
            sw.call = prev


class Modes:
    """The interceptor and the recorder, and every change to their place on the stacks."""

    def __init__(self, switches: Switches, listener: Listener) -> None:
        self.recorder = Recorder(switches, listener)
        self.interceptor = Interceptor(switches, listener)
        self._interceptor_aside = False

    @contextmanager
    def on(self) -> Iterator[None]:
        """Both modes on the stacks for the block (the recorder innermost)."""
        with self.interceptor, self.recorder:
            yield

    def recorder_off(self) -> Any:
        """A context without the recorder (if on top): for a backward pass, where it records
        nothing, yet its Python call on every aten op would double the pass's time."""
        return dispatch_mode_off(self.recorder)

    def step_aside(self) -> bool:
        """Take both modes off for a light block; False, changing nothing, unless the
        recorder is on top (a user's mode above it keeps them on). The interceptor only
        names calls, and there are none to name inside a light block."""
        if not pop_dispatch_mode(self.recorder):
            return False
        self._interceptor_aside = pop_function_mode(self.interceptor)
        return True

    def step_back(self) -> None:
        """Put back what `step_aside` took off."""
        push_dispatch_mode(self.recorder)
        if self._interceptor_aside:
            push_function_mode(self.interceptor)
