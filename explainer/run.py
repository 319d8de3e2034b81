"""Run stage: execute a user's script as ``__main__`` under a trace session.

The script runs unmodified, with its own argv, its folder first on ``sys.path``
and the caller's working directory, as ``python script.py`` would run it. The
session stops it once the requested step (and the optimizer update after it) is
recorded, unless asked to run it to the end.
"""

from __future__ import annotations

import os
import random
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ExplainerError, ScriptExitedError, ScriptNotFoundError, ScriptSyntaxError, UserScriptError
from .ipynb import read_notebook
from .scriptenv import ScriptOsExit, script_environment
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
    ended: dict[str, Any] | None = None  # how the script ended the process after the traced step, if it did
    skipped: list[str] = field(default_factory=list)  # a notebook's IPython lines, not run


#: The lecture's examples, shipped inside the package (``explain-graph --example NAME``).
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"


def examples() -> dict[str, Path]:
    """Example name (``linear-regression``) -> its script or notebook, in name order."""
    files = sorted([*EXAMPLES_DIR.glob("*.py"), *EXAMPLES_DIR.glob("*.ipynb")])
    return {f.stem.replace("_", "-"): f for f in files}


@dataclass
class Source:
    """A script compiled for running: one code object, or one per notebook cell."""

    codes: list[types.CodeType]
    skipped: list[str]  # IPython lines of a notebook that were not run
    notebook: bool = False


def load_source(path: Path) -> Source:
    """Read and compile the script (or the notebook's code cells), turning problems into one-line errors."""
    if not path.exists():
        raise ScriptNotFoundError(f"no such script: {path}: check the path and try again")
    if not path.is_file():
        raise ScriptNotFoundError(f"{path} is not a file: pass the path of a Python script or a notebook")
    if path.suffix == ".ipynb":
        nb = read_notebook(path)
        return Source([_compile(src, name, path) for name, src in nb.cells], nb.skipped, notebook=True)
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ScriptSyntaxError(f"{path} is not UTF-8 text: pass a Python script") from None
    return Source([_compile(source, str(path), path)], [])


def _compile(source: str, filename: str, path: Path) -> types.CodeType:
    try:
        return compile(source, filename, "exec")
    except SyntaxError as exc:
        check = f" (python {path.name} shows the same)" if path.suffix == ".py" else ""
        raise ScriptSyntaxError(
            f"{filename}:{exc.lineno}: syntax error: {exc.msg}: fix the script{check} and run again"
        ) from None


def _notebook_display(*objs: Any, **_: Any) -> None:
    """``display()`` outside a notebook: print what would be shown."""
    for obj in objs:
        print(obj)


def user_traceback(exc: BaseException, script: Path) -> str:
    """The exception's traceback, trimmed to the user's own frames."""
    from .trace.naming import is_user_file  # imports torch

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if is_user_file(f.filename)]
    lines = ["Traceback (most recent call last):\n"]
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


def _raised_in_explainer(exc: BaseException) -> bool:
    """Did the exception start in explain-graph's own code (not torch's, not the user's)?"""
    from .trace.naming import is_user_file  # imports torch

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
    from .trace.naming import is_user_file  # imports torch
    from .trace.session import Session, StopScript

    options = options or RunOptions()
    script = Path(path)
    source = load_source(script)
    session = Session(
        step=options.step,
        stop_when_done=not options.run_to_end,
        keep_elements=options.keep_elements,
        record=options.record,
    )

    module = types.ModuleType("__main__")
    module.__file__ = str(script)
    module.__dict__["__builtins__"] = __builtins__
    if source.notebook:
        module.__dict__["display"] = _notebook_display  # IPython's builtin, used in many notebooks
    stopped = False
    ended: dict[str, Any] | None = None
    with script_environment(script, list(argv or []), module, is_user_file):
        if options.seed is not None:
            seed_everything(options.seed)
        with session.active():
            try:
                for code in source.codes:
                    exec(code, module.__dict__)
            except StopScript:
                stopped = True
            except SystemExit as exc:
                ended = _exit_status(script, exc.code, "sys.exit", "", session.state != "forward")
            except ScriptOsExit as exc:
                ended = _exit_status(script, exc.code, "os._exit", exc.where, session.state != "forward")
            except ExplainerError:
                raise
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # the user's own error: report it as theirs
                if _raised_in_explainer(exc):
                    raise  # a bug of ours, inside a hook the script triggered: keep its full traceback
                same = "it names the cell" if source.notebook else f"`python {script.name}` shows the same"
                raise UserScriptError(
                    f"{script.name} raised {type(exc).__name__}: {exc}. Fix the script "
                    f"(its traceback is above; {same}) and run again",
                    user_traceback(exc, script),
                ) from None
    trace = session.finish(module.__dict__)
    trace.source = os.path.basename(str(script))
    return RunResult(
        trace=trace, losses=list(session.losses), stopped_early=stopped, ended=ended, skipped=source.skipped
    )


def _exit_status(script: Path, code: Any, how: str, where: str, traced: bool) -> dict[str, Any] | None:
    """What a script's own exit means for the run: what to report, or an error.

    After the traced step, an exit is the script's own business: it is reported
    (``{"script", "how", "status", "where"}``, worded by `explainer.summary`). Before, a
    failing ``sys.exit`` is an error, and so is any ``os._exit`` (it would end the process
    with nothing written); ``sys.exit(0)`` is an ordinary end.
    """
    at = f" at {where}" if where else ""
    status = 0 if code is None else code
    if traced:
        if status == 0 and how == "sys.exit":
            return None
        return {"script": script.name, "how": how, "status": repr(status), "where": where}
    if how == "os._exit":
        raise ScriptExitedError(
            f"{script.name} called os._exit({status!r}){at} before the traced step was complete, which ends the "
            "process with nothing to explain: remove that call (or let the script return) and run again"
        )
    if status not in (0, None):
        raise UserScriptError(
            f"{script.name} exited with status {status!r}{at} before the trace was complete: "
            "check the arguments you pass after --"
        )
    return None
