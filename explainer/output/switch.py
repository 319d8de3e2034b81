"""The switch from the previous run's files to this run's, journalled so it can always be undone.

The journal (``.explain-graph-switch.json``) lists the moves in order, files of the old
run moved aside into a backup folder, then the new files moved in from staging, and how
many are done; it is rewritten after every move. The new manifest is written last, and
carries this run's name, so its hash is the commit point: a journal whose manifest is in
place is finished by removing the backup; any other is rolled back, move by move in reverse,
each undo also recorded, so a rollback that is itself interrupted can run again. A move
is a rename (``os.replace``): it happened or it did not, and whether it did can be read
from the folders, so the one move a crash may have cut off is resolved on the spot.

SIGINT and SIGTERM are held while a switch or a rollback runs. A signal that arrived
during a switch that completed is raised afterwards as `SignalAfterCommit`, so the
caller can say that the new files are in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import OutputConflictError, OutputFolderError
from .names import OUTPUT_PATTERNS, exists, is_output_name

MANIFEST = ".explain-graph.json"
JOURNAL = ".explain-graph-switch.json"
STAGING_PREFIX = ".explain-graph-staging-"
BACKUP_PREFIX = ".explain-graph-backup-"
TMP_PREFIX = ".explain-graph-tmp-"
#: The hidden folders and files a run makes (``mkdtemp``/``mkstemp`` add 8 characters).
HIDDEN = re.compile(r"\.explain-graph-(?:(?:staging|backup)-\d+-|tmp-)[a-z0-9_]{8}")

_HELD = (signal.SIGINT, signal.SIGTERM)


class SignalAfterCommit(BaseException):
    """Ctrl-C or SIGTERM arrived while the new files were being switched in; they are in place."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@dataclass
class Journal:
    staging: str
    backup: str
    moves: list[tuple[str, str]]  # ("aside", name): out -> backup; ("place", name): staging -> out
    manifest_sha256: str
    done: int = 0

    @classmethod
    def read(cls, path: Path) -> Journal | None:
        """The journal at ``path`` if it is one this tool wrote; anything else is left alone."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            journal = cls(
                str(data["staging"]),
                str(data["backup"]),
                [(str(k), str(n)) for k, n in data["moves"]],
                str(data["manifest_sha256"]),
                int(data["done"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        names_ok = all(k in ("aside", "place") and is_output_name(n) for k, n in journal.moves)
        if not (names_ok and HIDDEN.fullmatch(journal.staging) and HIDDEN.fullmatch(journal.backup)):
            return None
        return journal

    def write(self, out_dir: Path) -> None:
        write_atomic(out_dir / JOURNAL, json.dumps(asdict(self), indent=1))


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a fresh hidden file, then rename it over ``path`` (never through a link)."""
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def manifest_text(files: dict[str, dict[str, int | str]], run: str, version: str) -> str:
    return (
        json.dumps({"tool": "explain-graph", "version": version, "run": run, "files": files}, indent=1, sort_keys=True)
        + "\n"
    )


def move(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)


def switch(
    out_dir: Path, staging: Path, aside: list[str], place: list[str], manifest: str, may_replace: Callable[[str], bool]
) -> None:
    """Move ``aside`` out of the way and ``place`` in; write ``manifest`` last.

    ``may_replace(name)`` is asked again right before each file is moved aside, so a file
    the user saved meanwhile stops the switch (rolled back) instead of being replaced.
    """
    with signals_held(after_commit=True):
        backup = Path(tempfile.mkdtemp(prefix=f"{BACKUP_PREFIX}{os.getpid()}-", dir=out_dir))
        journal = Journal(
            staging.name,
            backup.name,
            [("aside", n) for n in aside] + [("place", n) for n in place],
            hashlib.sha256(manifest.encode()).hexdigest(),
        )
        try:
            journal.write(out_dir)
            for kind, name in journal.moves:
                if kind == "aside":
                    if not may_replace(name):
                        raise OutputConflictError(
                            f"{out_dir / name} changed while explain-graph ran: it is kept; "
                            "run again (or choose another --out)"
                        )
                    move(out_dir / name, backup / name)
                else:
                    if exists(out_dir / name):
                        raise OutputConflictError(
                            f"{out_dir / name} appeared while explain-graph ran: it is kept; "
                            "run again (or choose another --out)"
                        )
                    move(staging / name, out_dir / name)
                journal.done += 1
                journal.write(out_dir)
            write_atomic(out_dir / MANIFEST, manifest)  # the commit point
        except BaseException:
            roll_back(out_dir, journal)
            raise
        finish(out_dir, journal)


def committed(out_dir: Path, journal: Journal) -> bool:
    try:
        return hashlib.sha256((out_dir / MANIFEST).read_bytes()).hexdigest() == journal.manifest_sha256
    except OSError:
        return False


def roll_back(out_dir: Path, journal: Journal) -> None:
    """Undo the switch's moves in reverse; raise if an old file cannot be put back (it stays in the backup)."""
    staging, backup = out_dir / journal.staging, out_dir / journal.backup
    # The move after the last one counted may have happened before the run stopped.
    for i in range(min(journal.done + 1, len(journal.moves)) - 1, -1, -1):
        kind, name = journal.moves[i]
        if kind == "place" and not exists(staging / name) and (out_dir / name).is_file():
            move(out_dir / name, staging / name)
        elif kind == "aside" and exists(backup / name):
            if exists(out_dir / name):
                raise OutputFolderError(
                    f"an interrupted explain-graph run could not put {name} back: the earlier file is in "
                    f"{backup / name}; move it where you want it, delete {out_dir / JOURNAL}, and run again"
                )
            move(backup / name, out_dir / name)
        journal.done = i
        journal.write(out_dir)
    for folder in OUTPUT_PATTERNS:
        remove_if_empty(out_dir / folder)
    finish(out_dir, journal)


def finish(out_dir: Path, journal: Journal) -> None:
    """The switch is complete (or undone): its backup holds only replaced files of ours, or nothing."""
    shutil.rmtree(out_dir / journal.backup, ignore_errors=True)
    (out_dir / JOURNAL).unlink(missing_ok=True)


def recover(out_dir: Path) -> None:
    """Finish or roll back a switch that a killed run left, and clear the hidden leftovers of killed runs.

    Called with the folder locked, so no other run is using them.
    """
    journal = Journal.read(out_dir / JOURNAL)
    if journal is not None:
        with signals_held():
            if committed(out_dir, journal):
                finish(out_dir, journal)
            else:
                roll_back(out_dir, journal)
    elif exists(out_dir / JOURNAL):
        raise OutputFolderError(
            f"{out_dir / JOURNAL} is not a journal explain-graph wrote, and a run needs that name: "
            "move it away (explain-graph touched nothing) or choose another --out"
        )
    for p in sorted(out_dir.iterdir()):
        if HIDDEN.fullmatch(p.name) and not p.is_symlink():
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def remove_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()  # only an empty folder; anything of the user's keeps it


@contextlib.contextmanager
def signals_held(after_commit: bool = False) -> Iterator[None]:
    """Hold SIGINT/SIGTERM in the body; with ``after_commit``, a held one is raised as `SignalAfterCommit`.

    Python runs signal handlers in the main thread whichever thread the signal reached,
    so the handlers themselves are swapped for one that only notes the signal (masking
    the main thread would not stop a signal delivered to another thread).
    """
    caught: list[int] = []

    def note(signum: int, frame: object) -> None:
        caught.append(signum)

    try:
        old = {s: signal.signal(s, note) for s in _HELD}
    except ValueError:  # not the main thread: signals cannot reach this code there
        yield
        return
    done = False
    try:
        yield
        done = True
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if caught and not (done and after_commit):
            signal.raise_signal(caught[0])  # as if it arrived now: the usual handler runs
    if caught and after_commit:
        raise SignalAfterCommit(caught[0])


__all__ = [
    "BACKUP_PREFIX",
    "HIDDEN",
    "JOURNAL",
    "MANIFEST",
    "STAGING_PREFIX",
    "SignalAfterCommit",
    "manifest_text",
    "recover",
    "remove_if_empty",
    "switch",
    "write_atomic",
]
