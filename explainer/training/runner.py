"""Runs of the script in worker processes, ``--jobs`` at a time, with progress events per run.

Each run is a fresh process (`explainer.training.worker.work`), so runs never share
torch state, seeds or a ``__main__``. They are forked from a `multiprocessing`
fork server that has imported torch once (`explainer.training.worker.preload`):
a run starts in a fraction of a second instead of the seconds torch's import and
an optimizer's first construction take. Where there is no fork server (Windows)
runs are spawned. The worker that kept the loss program stays alive after its
run as the `Evaluator` of the loss surface.
"""

from __future__ import annotations

import multiprocessing
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import wait
from typing import Any

from .. import errors
from ..errors import ExplainerError, UserScriptError
from .record import Run
from .spec import RunSpec
from .worker import work

#: Callback for the progress display: (run index, event, value) with event "start" | "steps" | "done".
OnEvent = Callable[[int, str, Any], None]


def _context() -> Any:
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["explainer.training.preload"])
        return ctx
    return multiprocessing.get_context("spawn")


@contextmanager
def _bare_main() -> Iterator[None]:
    """Start a worker without re-importing the caller's ``__main__`` in it.

    multiprocessing re-imports the parent's main script in every child; the
    workers need nothing from it, and a caller's script without an
    ``if __name__ == "__main__"`` guard would start its work again there.
    """
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


class WorkerProcess:
    """One worker process and our end of its connection."""

    def __init__(self, ctx: Any, spec: RunSpec) -> None:
        self.spec = spec
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=work, args=(spec, child), daemon=True, name=f"explain-graph-run-{spec.index}")
        with _bare_main():
            self.proc.start()
        child.close()

    def stop(self, wait_s: float = 5.0) -> None:
        """Ask the worker to end; kill it if it does not."""
        if self.proc.is_alive():
            try:
                self.conn.send({"stop": True})
            except (OSError, ValueError):
                pass
            self.proc.join(wait_s)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


def _raise(spec: RunSpec, msg: dict[str, Any]) -> None:
    if msg["kind"] == "script":
        raise UserScriptError(msg["message"], msg.get("traceback", ""))
    if msg["kind"] == "explainer":
        cls = getattr(errors, msg.get("cls", ""), ExplainerError)
        if not (isinstance(cls, type) and issubclass(cls, ExplainerError)):
            cls = ExplainerError
        raise cls(msg["message"])
    raise RuntimeError(f"training run {spec.index + 1} failed inside explain-graph:\n{msg['message']}")


class Evaluator:
    """The loss program of the first step, in the worker that recorded it (see `explainer.training.replay`)."""

    def __init__(self, worker: WorkerProcess, numel: int) -> None:
        self.worker = worker
        self.numel = numel

    def evaluate(self, origin: Any, dirs: Any, coords: Sequence[Sequence[float]], float64: bool = False) -> list[float]:
        """The loss at ``origin + a·dirs[0] + b·dirs[1]`` for each ``(a, b)`` in ``coords``."""
        import numpy as np

        self.worker.conn.send(
            {
                "origin": np.asarray(origin, dtype=np.float64),
                "dirs": np.asarray(dirs, dtype=np.float64),
                "coords": [(float(a), float(b)) for a, b in coords],
                "float64": float64,
            }
        )
        try:
            msg = self.worker.conn.recv()
        except EOFError:
            raise RuntimeError("the worker evaluating the loss surface ended unexpectedly") from None
        if msg.get("type") == "error":
            _raise(self.worker.spec, msg)
        return [float(v) for v in msg["values"]]


@contextmanager
def run_all(
    specs: Sequence[RunSpec], jobs: int, on_event: OnEvent | None = None
) -> Iterator[tuple[list[Run], Evaluator | None, str]]:
    """Run every spec, ``jobs`` at a time; yield the runs, the surface evaluator (or None) and why not.

    Every worker this started is ended when the block ends, also on errors and Ctrl-C.
    """
    ctx = _context()
    waiting = list(specs)
    running: dict[Any, WorkerProcess] = {}
    started: list[WorkerProcess] = []
    runs: dict[int, Run] = {}
    evaluator: Evaluator | None = None
    note = ""
    emit = on_event or (lambda i, e, v: None)
    try:
        while waiting or running:
            while waiting and len(running) < max(1, jobs):
                spec = waiting.pop(0)
                w = WorkerProcess(ctx, spec)
                running[w.conn] = w
                started.append(w)
                emit(spec.index, "start", None)
            for conn in wait(list(running)):
                w = running[conn]
                try:
                    msg: dict[str, Any] = conn.recv()  # type: ignore[union-attr, call-arg, assignment]
                except EOFError:
                    w.proc.join(5)
                    raise RuntimeError(
                        f"training run {w.spec.index + 1} ended without a result (exit status {w.proc.exitcode})"
                    ) from None
                if msg["type"] == "progress":
                    emit(w.spec.index, "steps", msg["steps"])
                elif msg["type"] == "error":
                    _raise(w.spec, msg)
                elif msg["type"] == "done":
                    run = Run.from_json(msg["run"])
                    runs[w.spec.index] = run
                    del running[conn]
                    emit(w.spec.index, "done", run)
                    if msg.get("program"):
                        evaluator = Evaluator(w, int(msg["numel"]))
                    else:
                        note = note or msg.get("note", "")
                        w.stop()
        yield [runs[s.index] for s in specs], evaluator, note
    finally:
        for w in started:
            if evaluator is not None and w is evaluator.worker:
                w.stop()
            elif w.proc.is_alive():
                w.proc.kill()
                w.proc.join()


__all__ = ["Evaluator", "OnEvent", "WorkerProcess", "run_all"]
