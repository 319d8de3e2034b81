"""How the process ends: every way out of the command mapped to its documented exit status.

0 done; 1 the output could not be written; 2 bad input or options (also a file of yours in
the way); 3 the script raised; 4 nothing to explain; 5 an external tool failed; 70 a bug in
explain-graph; 130 Ctrl-C; 143 SIGTERM. Errors are one red line on stderr; a script's own
traceback is printed above its line.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import rich_click as click
from click.exceptions import Abort, Exit

from .errors import ExplainerError, UserScriptError
from .output import SignalAfterCommit
from .tools import no_space_message

__all__ = ["Terminated", "print_error", "run_guarded"]


class Terminated(BaseException):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so every cleanup on the way out runs."""


def print_error(console: Any, message: str) -> None:
    """One red line; the message is plain text (a user's [brackets] are not rich markup)."""
    from rich.markup import escape

    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def run_guarded(call: Callable[[], Any]) -> int:
    """Run the command (``call``) and return the process's exit status for however it ended."""
    from rich.console import Console

    err = Console(stderr=True)
    if _stdout_closed():
        print_error(err, "standard output is closed: run explain-graph with it open (or redirected, >/dev/null)")
        return 2
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        rv = call()
        return rv if isinstance(rv, int) else 0
    except Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (KeyboardInterrupt, Abort):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        print_error(err, "interrupted: the output folder keeps its earlier files")
        return 130
    except Terminated:
        print_error(err, "terminated: the output folder keeps its earlier files")
        return 143
    except SignalAfterCommit as exc:
        print_error(err, "interrupted after the new files were in place: the output folder holds this run's files")
        return 143 if exc.signum == signal.SIGTERM else 130
    except UserScriptError as exc:
        if exc.user_traceback:
            sys.stderr.write(exc.user_traceback)
        print_error(err, str(exc))
        return exc.exit_code
    except ExplainerError as exc:
        print_error(err, str(exc))
        return exc.exit_code
    except OSError as exc:
        print_error(err, _os_error_message(exc))
        return 1
    except Exception:  # a bug of ours: say so, with the full traceback to report
        import traceback

        traceback.print_exc()
        print_error(err, "explain-graph hit an internal error (traceback above): please report it with the script")
        return 70


def _on_sigterm(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second TERM must not cut the cleanup short
    raise Terminated


def _stdout_closed() -> bool:
    try:
        return sys.stdout is None or os.fstat(sys.stdout.fileno()) is None
    except (OSError, ValueError, AttributeError):
        return True


def _os_error_message(exc: OSError) -> str:
    where = exc.filename or "the output folder"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return no_space_message(where)
    return (
        f"could not write the output ({exc.strerror or exc}: {where}): check the --out folder's permissions "
        "and free space"
    )
