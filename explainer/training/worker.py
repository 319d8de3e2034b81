"""One training run in its own process (`work`, started by `explainer.training.runner`).

Protocol, over a `multiprocessing` connection: the worker runs the script
unmodified as ``__main__`` (seeded like the one-step trace) and sends
``{"type": "progress", "steps": n}`` now and then, then ``{"type": "done", "run": ...}``
or ``{"type": "error", ...}``. The script's own output is kept (its last lines
come back with an error) and never reaches the terminal, where the progress bars
are. A worker that recorded the loss program then answers surface requests
(``{"origin": array, "dirs": 2 arrays, "coords": [(a, b), ...]}``) with
``{"type": "values", "values": [...]}`` until it is sent ``{"stop": true}``.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
import traceback
import types
from collections import deque
from pathlib import Path
from typing import Any

from ..errors import ExplainerError, NoTrainingError, UserScriptError
from ..run import load_source, seed_everything, user_traceback
from ..scriptenv import ScriptOsExit, script_environment
from .record import find_divergence
from .spec import RunSpec

#: Seconds between progress messages.
PROGRESS_EVERY = 0.1


class Tail(io.TextIOBase):
    """A text stream that keeps only the last lines written to it (the script's output)."""

    def __init__(self, lines: int = 40) -> None:
        self.lines: deque[str] = deque(maxlen=lines)
        self.partial = ""

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        text = self.partial + s
        *done, self.partial = text.split("\n")
        self.lines.extend(done)
        return len(s)

    def text(self) -> str:
        return "\n".join([*self.lines, self.partial]).strip()


class Worker:
    def __init__(self, spec: RunSpec, conn: Any) -> None:
        self.spec = spec
        self.conn = conn
        self.last = 0.0
        self.program: Any = None
        self.program_note = ""
        self.recording = False
        self.root: Any = None

    def send(self, **message: Any) -> None:
        self.conn.send(message)

    def progress(self, steps: int) -> None:
        now = time.perf_counter()
        if now - self.last >= PROGRESS_EVERY:
            self.last = now
            self.send(type="progress", steps=steps)

    def run(self) -> None:
        from ..trace.naming import is_user_file  # imports torch, as the two below do
        from .hooks import StepRecorder
        from .replay import ProgramRecorder

        spec = self.spec
        script = Path(spec.script)
        source = load_source(script)
        module = types.ModuleType("__main__")
        module.__file__ = str(script)
        module.__dict__["__builtins__"] = __builtins__
        recorder = StepRecorder(spec, self.progress)
        program = ProgramRecorder() if spec.record_program else None
        if program is not None:
            recorder.first_backward = lambda root: self._cut(program, root)
        tail = Tail()
        error = None
        with script_environment(script, list(spec.argv), module, is_user_file):
            saved_out, saved_err = sys.stdout, sys.stderr
            sys.stdout = sys.stderr = tail
            try:
                if spec.seed is not None:
                    seed_everything(spec.seed)
                with recorder.active():
                    if program is not None:
                        program.__enter__()
                        self.recording = True
                    try:
                        for code in source.codes:  # one per notebook cell
                            exec(code, module.__dict__)  # noqa: S102  (the user's script, as python would run it)
                    finally:
                        if program is not None and self.recording:  # the script never called backward()
                            self.recording = False
                            program.__exit__(None, None, None)
            except (SystemExit, ScriptOsExit) as exc:
                if exc.code not in (None, 0):
                    error = UserScriptError(
                        f"{script.name} exited with status {exc.code}: check the arguments after --", tail.text()
                    )
            except ExplainerError:
                raise
            except Exception as exc:  # noqa: BLE001  (the user's own error: reported as theirs)
                error = UserScriptError(
                    f"{script.name} raised {type(exc).__name__}: {exc} (run {spec.index + 1}: {recorder.run.label or 'the script'}). "
                    f"Fix the script (`python {script.name}` shows the same) and run again",
                    user_traceback(exc, script),
                )
            finally:
                sys.stdout, sys.stderr = saved_out, saved_err
        run = recorder.finish()
        run.diverged_at = find_divergence(run.loss)
        if error is not None:
            if run.diverged_at is None:
                raise error
            run.error = str(error).split(" (run ")[0]
        if recorder.opt is None:
            raise NoTrainingError(
                f"{script.name} never called optimizer.step(): --train, --compare and --lr-sweep need a training loop "
                "with a torch.optim optimizer"
            )
        if program is not None:
            self._keep_program(program, recorder.params)
        if spec.vectors and recorder.vectors:
            import numpy as np

            np.save(spec.vectors, np.stack([v for _, v in recorder.vectors]))
            Path(spec.vectors + ".steps.json").write_text(json.dumps([s for s, _ in recorder.vectors]))
        self.send(
            type="done",
            run=run.to_json(),
            program=self.program is not None,
            note=self.program_note,
            numel=sum(p.numel() for p in recorder.params),
        )

    def _cut(self, program: Any, root: Any) -> None:
        """At the first backward: stop recording ops; the program is cut once the optimizer is known."""
        if self.recording:
            self.recording = False
            program.__exit__(None, None, None)
            self.root = root

    def _keep_program(self, program: Any, params: list[Any]) -> None:
        if self.root is not None and params:
            self.program = program.program(self.root, params)
            if self.program is None:
                self.program_note = "the loss of the first backward() does not depend on the trained parameters"
            else:
                self.program.seed = self.spec.seed or 0
        self.root = None
        program.clear()

    def serve(self) -> None:
        """Answer surface requests until told to stop."""
        prog = self.program
        while True:
            req = self.conn.recv()
            if req.get("stop"):
                break
            origin, dirs, wide = req["origin"], req["dirs"], bool(req.get("float64"))
            values = [
                prog.evaluate(prog.split(origin + a * dirs[0] + b * dirs[1], wide), wide) for a, b in req["coords"]
            ]
            self.send(type="values", values=values)


def work(spec: RunSpec, conn: Any) -> None:
    """The process's whole life: the run, then (for the run that kept the loss program) the surface."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # output below Python (C libraries) must not scribble over the progress bars
    os.dup2(devnull, 2)
    worker = Worker(spec, conn)
    try:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "0")) or torch.get_num_threads())
        worker.run()
    except UserScriptError as exc:
        worker.send(type="error", kind="script", message=str(exc), traceback=exc.user_traceback)
        return
    except ExplainerError as exc:
        worker.send(type="error", kind="explainer", cls=type(exc).__name__, message=str(exc), exit_code=exc.exit_code)
        return
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the parent reports it and ends us
        return
    except BaseException:  # noqa: BLE001  (a bug of ours: the parent shows the traceback)
        worker.send(type="error", kind="bug", message=traceback.format_exc())
        return
    if worker.program is not None:
        try:
            worker.serve()
        except EOFError:  # the parent went away
            pass
    conn.close()
