"""The process state a user's script may change, saved before it runs and put back after.

``python script.py`` gives a script the whole process; explain-graph runs it inside its
own, and carries on after it (drawing, writing files). So the script's ``sys.argv``,
``sys.path``, ``__main__``, working directory and signal handlers are the script's only
while it runs, and two ways a script can end the process are turned into exceptions:

* ``os._exit(n)``, which would end the process at once with nothing written, raises
  `ScriptOsExit` in the process that ran the script (a forked worker exits as asked);
* Ctrl-C and SIGTERM reach explain-graph's handlers again once the script's part is
  over, even if the script installed its own.

Warnings that torch raises from a user's line while explain-graph's modes sit in the
call stack would be attributed to explain-graph's frames; they are reported at the
user's own file and line instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

_PKG_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ScriptOsExit(BaseException):
    """The script called ``os._exit(code)``; a BaseException so its own ``except Exception`` skips it."""

    def __init__(self, code: int, where: str) -> None:
        super().__init__(code, where)
        self.code = code
        self.where = where


def _caller(is_user_file: Callable[[str], bool]) -> tuple[str, int] | None:
    """The innermost frame of the user's own code on the current stack."""
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None:
        if is_user_file(frame.f_code.co_filename):
            return frame.f_code.co_filename, frame.f_lineno
        frame = frame.f_back
    return None


@contextmanager
def _os_exit_raises(is_user_file: Callable[[str], bool]) -> Iterator[None]:
    real_exit = os._exit
    pid = os.getpid()

    def exit_(status: int) -> NoReturn:
        if os.getpid() != pid:  # a forked worker (DataLoader) ends as it asked
            real_exit(status)
        where = _caller(is_user_file)
        raise ScriptOsExit(status, f"{os.path.basename(where[0])}:{where[1]}" if where else "")

    os._exit = exit_
    try:
        yield
    finally:
        os._exit = real_exit


@contextmanager
def _user_warning_locations(is_user_file: Callable[[str], bool]) -> Iterator[None]:
    with warnings.catch_warnings():  # restores the filters and showwarning on exit
        shown = warnings.showwarning

        def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
            if os.path.abspath(filename).startswith(_PKG_DIR):
                where = _caller(is_user_file)
                if where is not None:
                    filename, lineno = where
                    line = None
            shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


@contextmanager
def script_environment(
    script: Path, argv: list[str], module: types.ModuleType, is_user_file: Callable[[str], bool]
) -> Iterator[None]:
    """Run the body as ``python script argv...`` would see the process; restore it after."""
    saved_main = sys.modules.get("__main__")
    saved_argv, saved_path, saved_cwd = sys.argv[:], sys.path[:], os.getcwd()
    saved_handlers = {s: signal.getsignal(s) for s in _SIGNALS}
    sys.modules["__main__"] = module
    sys.argv = [str(script), *argv]
    sys.path.insert(0, str(script.resolve().parent))
    try:
        with _os_exit_raises(is_user_file), _user_warning_locations(is_user_file):
            yield
    finally:
        for sig, handler in saved_handlers.items():
            if handler is not None and signal.getsignal(sig) is not handler:
                with contextlib.suppress(ValueError):  # only the main thread sets handlers
                    signal.signal(sig, handler)
        os.chdir(saved_cwd)  # a script may chdir; outputs are relative to the user's folder
        sys.argv = saved_argv
        sys.path[:] = saved_path
        if saved_main is not None:
            sys.modules["__main__"] = saved_main
        else:
            sys.modules.pop("__main__", None)


__all__ = ["ScriptOsExit", "script_environment"]
