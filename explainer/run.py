"""Run stage: execute a user's script as ``__main__`` under a trace session.

The script runs unmodified, with its own argv, its folder first on ``sys.path``
and the caller's working directory, as ``python script.py`` would run it. The
session stops it once the requested step (and the optimizer update after it) is
recorded, unless asked to run it to the end.
"""

from __future__ import annotations

import os
import random
import sys
import traceback
import types
from dataclasses import dataclass
from pathlib import Path

from .errors import ExplainerError, ScriptNotFoundError, ScriptSyntaxError, UserScriptError
from .trace.model import RecordOptions, Trace


@dataclass(frozen=True)
class RunOptions:
    """How to run the user's script.

    ``seed`` seeds Python, NumPy and torch before the script starts (None: leave
    them alone), so the same script gives the same numbers and the same picture.
    """

    step: int = 1
    run_to_end: bool = False
    seed: int | None = 0
    keep_elements: int = 4096
    record: RecordOptions | None = None  # None: the defaults


@dataclass
class RunResult:
    trace: Trace
    losses: list[float]
    stopped_early: bool


def load_source(path: Path) -> types.CodeType:
    """Read and compile the script, turning problems into one-line errors."""
    if not path.exists():
        raise ScriptNotFoundError(f"no such script: {path}: check the path and try again")
    if not path.is_file():
        raise ScriptNotFoundError(f"{path} is not a file: pass the path of a Python script")
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ScriptSyntaxError(f"{path} is not UTF-8 text: pass a Python script") from None
    try:
        return compile(source, str(path), "exec")
    except SyntaxError as exc:
        raise ScriptSyntaxError(
            f"{path}:{exc.lineno}: syntax error: {exc.msg}: fix the script (python {path.name} shows the same) and run again"
        ) from None


def user_traceback(exc: BaseException, script: Path) -> str:
    """The exception's traceback, trimmed to the user's own frames."""
    from .trace import is_user_file

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if is_user_file(f.filename)]
    lines = ["Traceback (most recent call last):\n"]
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


def _raised_in_explainer(exc: BaseException) -> bool:
    """Did the exception start in explain-graph's own code (not torch's, not the user's)?"""
    from .trace import is_user_file

    frames = traceback.extract_tb(exc.__traceback__)
    pkg = os.path.dirname(os.path.abspath(__file__)) + os.sep
    last_user = max((i for i, f in enumerate(frames) if is_user_file(f.filename)), default=-1)
    # Our hooks run inside the user's calls (backward(), optimizer.step()): the error is
    # ours when one of our frames lies between the user's last frame and the raise. The
    # modes' handlers only pass the user's own ops through, so they do not count.
    passthrough = {"__torch_function__", "__torch_dispatch__"}
    return any(
        os.path.abspath(f.filename).startswith(pkg) and f.name not in passthrough for f in frames[last_user + 1 :]
    )


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_script(path: str | Path, argv: list[str] | None = None, options: RunOptions | None = None) -> RunResult:
    """Run ``path`` as ``__main__`` and trace its ``options.step``-th backward call.

    Raises
    ------
    ScriptNotFoundError, ScriptSyntaxError
        Before anything runs.
    UserScriptError
        The script raised; ``user_traceback`` holds its own frames.
    ExplainerError
        Nothing to explain (no loss, a non-scalar loss, a step never reached).
    """
    from .trace import Session, StopScript

    options = options or RunOptions()
    script = Path(path)
    code = load_source(script)
    session = Session(step=options.step, stop_when_done=not options.run_to_end, keep_elements=options.keep_elements,
                      record=options.record)

    module = types.ModuleType("__main__")
    module.__file__ = str(script)
    module.__dict__["__builtins__"] = __builtins__
    saved_main = sys.modules.get("__main__")
    saved_argv = sys.argv[:]
    saved_path = sys.path[:]
    saved_cwd = os.getcwd()
    sys.modules["__main__"] = module
    sys.argv = [str(script)] + list(argv or [])
    sys.path.insert(0, str(script.resolve().parent))
    stopped = False
    try:
        if options.seed is not None:
            seed_everything(options.seed)
        with session.active():
            try:
                exec(code, module.__dict__)
            except StopScript:
                stopped = True
            except SystemExit as exc:
                if exc.code not in (None, 0):
                    raise UserScriptError(
                        f"{script.name} exited with status {exc.code} before the trace was complete: "
                        "check the arguments you pass after --"
                    ) from None
            except ExplainerError:
                raise
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # the user's own error: report it as theirs
                if _raised_in_explainer(exc):
                    raise  # a bug of ours, inside a hook the script triggered: keep its full traceback
                raise UserScriptError(
                    f"{script.name} raised {type(exc).__name__}: {exc}. Fix the script "
                    f"(its traceback is above; `python {script.name}` shows the same) and run again",
                    user_traceback(exc, script),
                ) from None
    finally:
        os.chdir(saved_cwd)  # a script may chdir; outputs are relative to the user's folder
        sys.argv = saved_argv
        sys.path[:] = saved_path
        if saved_main is not None:
            sys.modules["__main__"] = saved_main
        else:
            sys.modules.pop("__main__", None)
    trace = session.finish(module.__dict__)
    trace.source = os.path.basename(str(script))
    return RunResult(trace=trace, losses=list(session.losses), stopped_early=stopped)
