"""The session: one trace, from installing the modes and hooks to the finished `Trace`.

Its state is split by concern, each part in its own module:

* `switches` (`explainer.trace.modes.Switches`): record now? which call is running?
* `modes` (`explainer.trace.modes.Modes`): the interceptor and the recorder;
* `tracker` (`explainer.trace.tracker.ModuleTracker`): the modules running now;
* `blocks` (`explainer.trace.blocks.LightBlocks`): the light blocks of large models;
* `records` (`explainer.trace.records.Records`): the recorded ops;
* and here, which backward call is captured: ``state`` goes forward -> captured
  (the backward ran, the optimizer step may follow) -> done (``result`` is built).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)
from torch.utils.hooks import RemovableHandle

from ..errors import (
    BackwardElsewhereError,
    NoLossError,
    NonScalarLossError,
    StepNotReachedError,
)
from .blocks import LightBlocks
from .calls import BackwardCall, closure_of, read_backward_call
from .capture import Capture
from .internals import next_sequence_nr
from .model import DEFAULT_KEEP_ELEMENTS, Note, RecordOptions, Trace
from .modes import Modes, Switches
from .naming import Names, names_in_frames
from .pending import Pending
from .records import Records
from .routing import backward_through_modes
from .stop import Stopper, StopScript
from .threads import OtherThreads
from .tracker import ModuleTracker
from .without import back_propagate, choose_root

__all__ = ["Pending", "Session", "StopScript"]


class Session:
    """The state of one trace: which backward call to capture, what was recorded.

    Parameters
    ----------
    step
        Capture the ``step``-th ``backward()`` call (1-based).
    stop_when_done
        Raise `StopScript` once the capture (and the optimizer step after it) is
        complete: the CLI uses this to stop the user's script early.
    keep_elements
        Tensors up to this many entries keep all numbers; larger ones a summary.
    record
        Which blocks of a large model run light (`RecordOptions`).
    """

    def __init__(
        self,
        step: int = 1,
        stop_when_done: bool = False,
        keep_elements: int = DEFAULT_KEEP_ELEMENTS,
        record: RecordOptions | None = None,
    ) -> None:
        if step < 1:
            raise ValueError("step must be >= 1")
        self.step = step
        self.stop_when_done = stop_when_done
        self.keep = keep_elements
        self.switches = Switches()
        self.modes = Modes(self.switches, self)
        self.threads = OtherThreads()
        self.tracker = ModuleTracker(self._module_enter, self._module_leave, self.threads.is_traced)
        self.blocks = LightBlocks(record or RecordOptions(), keep_elements)
        self.records = Records(keep_elements)
        self.backward_calls = 0
        self.losses: list[float] = []
        self.state = "forward"  # forward -> captured -> done
        self.result: Trace | None = None
        self._pending: Pending | None = None
        self._in_backward = False
        self._in_optimizer = False
        self._stepping: list[torch.optim.Optimizer] = []  # closure steps running now (LBFGS)
        self._optimizing = 0  # optimizer steps running now
        self._stopper = Stopper()
        self._optimizer_hooks: list[RemovableHandle] = []

    # -- installation ---------------------------------------------------------

    @contextmanager
    def active(self) -> Iterator[Session]:
        """Install the modes and hooks; everything is removed on exit."""
        self.tracker.hooks_on()
        self._optimizer_hooks = [
            register_optimizer_step_pre_hook(self._opt_pre),
            register_optimizer_step_post_hook(self._opt_post),
        ]
        try:
            with self.threads.watched(), backward_through_modes(), self.modes.on():
                try:
                    yield self
                finally:
                    # A KeyboardInterrupt inside a block skips its post-hook: modes back first.
                    self._end_light_block()
        finally:
            for h in self._optimizer_hooks:
                h.remove()
            self._optimizer_hooks = []
            self.blocks.close()
            self.tracker.hooks_off()
            self.tracker.clear()

    # -- forward recording ------------------------------------------------------

    def _module_enter(self, module: torch.nn.Module, args: Any) -> None:
        stack = self.tracker.stack
        if not stack:
            self._stopped_already()
            if self._pending is not None and self._pending.capture.step.optimizers and not self._stepping:
                # The next forward begins after an update: every optimizer that will update
                # this step's parameters has stepped.
                self._finish_capture(stop=True)
            self.blocks.find(module, self._light_block_end)
        elif (
            self.blocks.running_at is None
            and self.blocks.is_block(module, stack[0])
            # Not without grad: a reentrant checkpoint runs its block so, then wraps the output.
            and torch.is_grad_enabled()
            and self.modes.step_aside()
        ):
            self.blocks.running_at = len(stack)
            if self.switches.recording:
                produced = self.blocks.note_inputs(args, self.records.produced)
                if produced:
                    self.note_mutation(produced)
            self.tracker.hooks_off()

    def _module_leave(self, module: torch.nn.Module, output: Any, start: int) -> None:
        if self.blocks.running_at is not None and len(self.tracker.stack) - 1 == self.blocks.running_at:
            # The light block ends (its own hook: its submodules ran without any).
            if self.switches.recording:
                self.blocks.end_call(self.tracker.frozen, self.tracker.numbers, start, next_sequence_nr(), module)
                with self.switches.busy_now():
                    self.blocks.keep_output(output)
            self._end_light_block()

    def _light_block_end(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        """A light block's own forward hook: the global ones are off while it runs."""
        stack = self.tracker.stack
        if self.blocks.running_at is not None and stack and stack[-1] is module:
            self.tracker.hooks_on()
            self.tracker.post(module, args, output)

    def _end_light_block(self) -> None:
        """Put back what a light block took off (also after it was interrupted)."""
        if self.blocks.running_at is None:
            return
        self.tracker.hooks_on()
        self.modes.step_back()
        self.blocks.running_at = None

    def record(
        self,
        func: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        out: Any,
        rng: Any = None,
        versions: tuple[int, ...] = (),
    ) -> None:
        """The recorder saw an op of the script's (``rng``: a random op's generator state;
        ``versions``: its tensor arguments' version counters before it ran)."""
        tracker = self.tracker
        self.records.add(func, args, kwargs, out, tracker.frozen, self.switches.call, tracker.numbers, rng, versions)

    def note_mutation(self, tensors: list[torch.Tensor], func: Any = None) -> None:
        """Keep what an in-place op is about to overwrite (`Records.note_mutation`)."""
        with self.switches.busy_now():
            self.records.note_mutation(tensors, func)

    def _forget_records(self) -> None:
        self.records.reset()
        self.blocks.new_calls()
        self.tracker.forget_calls()

    # -- backward interception --------------------------------------------------

    def on_backward(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], kind: str) -> Any:
        """The interceptor saw a backward call (``kind``: "method" or "function")."""
        self._stopped_already()
        if self._in_backward:
            # A backward inside a backward (a reentrant checkpoint recomputing its block):
            # part of the one being run, not a call of the script's.
            return func(*args, **kwargs)
        self._in_backward = True
        if self.blocks.running_at is not None:
            # A forward never runs a backward inside a block: it was interrupted (a
            # KeyboardInterrupt the script caught skips module hooks). Start afresh.
            self._end_light_block()
            self.tracker.clear()
        try:
            return self._on_backward(func, args, kwargs, kind)
        finally:
            self._in_backward = False

    def _on_backward(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], kind: str) -> Any:
        call = read_backward_call(args, kwargs, kind)
        root = call.root
        if root is not None and root.numel() == 1:
            with self.switches.busy_now():
                self.losses.append(float(root.detach().reshape(-1)[0]))
        self.backward_calls += 1
        if self.state == "captured" and not self._adds_to_capture():
            self._finish_capture(stop=True)
        if self.backward_calls != self.step or self.state != "forward":
            return self._run_uncaptured(func, args, kwargs, call)
        self.switches.recording = False
        if root is None:
            raise NonScalarLossError(
                "backward() was called on several tensors at once; explain-graph traces one loss: "
                "call backward on a single tensor (e.g. sum the losses first)"
            )
        tensor_names, module_names = names_in_frames(sys._getframe(1))
        with self.switches.busy_now():
            pending = self.prepare(root, call.gradient, Names(tensor_names, module_names))
        if self._stepping:
            pending.capture.step.inside = self._stepping[-1]
        result = self.run_captured(pending, lambda: func(*args, **kwargs), call.inputs)
        self._pending = pending
        self.state = "captured"
        self.switches.on_write = self._written
        self._forget_records()
        return result

    def _written(self, tensors: list[torch.Tensor]) -> None:
        """An in-place op outside any optimizer while the capture waits: a hand-written update?"""
        pending = self._pending
        if pending is None or self._optimizing or pending.capture.step.optimizers:
            return
        with self.switches.busy_now():
            if pending.capture.step.written(tensors):
                self.switches.on_write = None  # the gradients it used are kept

    def _adds_to_capture(self) -> bool:
        """Another backward while the captured one waits for its update: part of the same step?"""
        if self._pending is None:
            return False
        with self.switches.busy_now():
            return self._pending.adds_backward(self._stepping)

    def _run_uncaptured(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], call: BackwardCall) -> Any:
        """A backward call that is not the captured one."""
        self.switches.recording = False
        try:
            with self.modes.recorder_off():
                return func(*args, **kwargs)
        finally:
            if self.state == "forward":
                # A retained graph may be back-propagated again: keep its values.
                if not call.retains_graph:
                    self._forget_records()
                self.switches.recording = True

    def prepare(
        self, root: torch.Tensor, gradient: torch.Tensor | None, names: Names, notes: list[Note] | None = None
    ) -> Pending:
        """Check the loss and set up the capture of the backward from ``root``."""
        name = names.tensors.get(id(root), "the loss")
        if root.grad_fn is None:
            raise NoLossError(
                f"{name} has no autograd graph (it is a leaf or does not require grad): "
                "compute the loss from tensors that require grad, e.g. a model's output"
            )
        if gradient is None and root.numel() != 1:
            raise NonScalarLossError(
                f"{name} has shape {list(root.shape)}, not a scalar, and backward() got no gradient: "
                f"reduce it first (e.g. {name}.mean()) or pass a gradient of the same shape"
            )
        capture = Capture(root, self.records, self.blocks.calls, self.switches, self.keep)
        return Pending(capture, names, notes or [])

    def run_captured(self, pending: Pending, backward: Any, inputs: tuple[torch.Tensor, ...] = ()) -> Any:
        """Run ``backward()`` with the capture's hooks on, then note what it left.

        ``inputs``: a ``torch.autograd.grad`` call's, whose gradients it returns instead
        of adding them to ``.grad``."""
        pending.capture.install_hooks()
        try:
            with self.modes.recorder_off():
                result = backward()
        finally:
            pending.capture.remove_hooks()
        with self.switches.busy_now():
            if inputs:
                pending.capture.returned_grads(inputs, result)
            pending.capture.after_backward()
        return result

    # -- optimizer ----------------------------------------------------------------

    def _opt_pre(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if not self.threads.is_traced():
            return
        self._stopped_already()
        self._optimizing += 1
        if closure_of(args, kwargs) is not None:
            # LBFGS and other closure optimizers: the closure's forward and backward run
            # inside the step, and are recorded like any other.
            self._stepping.append(optimizer)
        elif self.state == "forward" and self.switches.recording:
            # An update before the captured step is no part of any forward pass.
            self.switches.recording = False
            self._in_optimizer = True
        pending = self._pending
        if self.state == "captured" and pending is not None and pending.capture.step.inside is not optimizer:
            with self.switches.busy_now():
                pending.capture.step.before_step(optimizer)

    def _opt_post(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if not self.threads.is_traced():
            return
        self._optimizing = max(0, self._optimizing - 1)
        if self._stepping and self._stepping[-1] is optimizer:
            self._stepping.pop()
        if self._in_optimizer:
            self._in_optimizer = False
            if self.state == "forward":
                self.switches.recording = True
        pending = self._pending
        if self.state != "captured" or pending is None:
            return
        step = pending.capture.step
        with self.switches.busy_now():
            if step.inside is optimizer:
                step.before_step(optimizer)  # "before" is what the closure's first forward used
            ours = step.after_step(optimizer)
            done = ours and step.remaining() == 0
        if done:
            self._finish_capture(stop=True)

    # -- finishing ----------------------------------------------------------------

    def _finish_capture(self, stop: bool = False) -> None:
        """Build the trace of the captured step; with ``stop``, then stop the script if asked to."""
        if self._pending is None:
            return
        self.switches.on_write = None
        with self.switches.busy_now():
            self.result = self._pending.build(self.step)
        self.result.losses = self.losses
        self._pending = None
        self.state = "done"
        if stop and self.stop_when_done:
            self._stop()

    def _stop(self) -> None:
        self._stopper.stop(self.result)

    def _stopped_already(self) -> None:
        """The script runs on after it was stopped (it caught `StopScript`): stop it again."""
        if self.state == "done" and self._stopper.stopped_at is not None:
            self._stop()

    def finish(self, namespace: dict[str, Any] | None = None) -> Trace:
        """Complete the trace once the script (or ``with`` block) has ended.

        If no backward call was captured, explain the final scalar loss instead:
        ``namespace['loss']`` when it is a tensor the traced code computed, else the
        last scalar the forward computed (`explainer.trace.without`).
        """
        if self.state == "captured":
            self._finish_capture()
        if self.result is not None:
            self.result.losses = self.losses
            return self.result
        if self.backward_calls == 0 and self.threads.backward_calls:
            raise BackwardElsewhereError(
                f"backward() ran only in another thread: {self.threads.describe()}; explain-graph traces the "
                "thread that runs the script: call the training step from the main thread to explain it"
            )
        if self.backward_calls:
            raise StepNotReachedError(
                f"the script called backward() {self.backward_calls} time(s), so there is no step {self.step}: "
                f"use --step {self.backward_calls} or lower"
            )
        root, names, notes = choose_root(
            namespace or {}, self.records, self.switches, self.tracker, self.active, self.backward_calls
        )
        result = back_propagate(self, root, names, notes)
        self.result = result
        result.losses = self.losses
        self.state = "done"
        return result
