"""One run's hold on its output folder: checked, created, locked, staged, switched, released."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import OutputConflictError, OutputFolderError
from .names import (
    OUTPUT_PATTERNS,
    Digest,
    conflict_message,
    exists,
    file_digest,
    is_ours,
    is_output_name,
    matching,
    replaceable,
)
from .switch import MANIFEST, STAGING_PREFIX, manifest_text, recover, remove_if_empty, switch

LOCK = ".explain-graph.lock"


def check_out_path(out: str | Path) -> Path:
    """The absolute output folder; a one-line error, early, for an ``--out`` that can never work."""
    if not str(out).strip():  # an unset variable: --out "$OUT" would mean the current folder
        raise OutputFolderError("--out is empty: give a folder, e.g. --out explained/")
    out_dir = Path(out).absolute()
    for p in (out_dir, *out_dir.parents):
        if exists(p):
            if not p.is_dir():
                what = "is" if p == out_dir else f"lies below {p}, which is"
                raise OutputFolderError(f"--out {out_dir} {what} a file, not a folder: choose another --out")
            break
    return out_dir


def _cannot_write(path: Path, exc: OSError) -> OutputFolderError:
    return OutputFolderError(
        f"cannot write into {path} ({exc.strerror or exc}): choose a folder you can write to with --out"
    )


def _make_folder(out_dir: Path) -> list[Path]:
    """Create ``out_dir`` and its missing parents; return those created (outermost first)."""
    missing = [p for p in (out_dir, *out_dir.parents) if not p.exists()][::-1]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFolderError(
            f"cannot create the output folder {out_dir} ({exc.strerror or exc}): choose a folder you can write to "
            "with --out"
        ) from None
    return missing


@dataclass
class OutputFolder:
    """An output folder, locked for one run. Use `open_output` to get one."""

    path: Path
    force: bool = False
    manifest: dict[str, Digest] = field(default_factory=dict)
    staging: Path | None = None
    created: list[Path] = field(default_factory=list)
    lock_fd: int | None = None

    @property
    def staging_path(self) -> Path:
        """The hidden folder to render into; it exists while the folder is open."""
        if self.staging is None:
            raise RuntimeError("the output folder is not open")
        return self.staging

    def read_manifest(self) -> None:
        try:
            data = json.loads((self.path / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(files, dict):
            files = {}
        self.manifest = {k: v for k, v in files.items() if isinstance(v, dict) and is_output_name(k)}

    def theirs(self, planned: frozenset[str]) -> list[str]:
        """Planned names that hold something of the user's which this run may not replace."""
        found = [n for n in matching(self.path, planned) if not is_ours(self.path, n, self.manifest.get(n))]
        return [n for n in found if not (self.force and replaceable(self.path, n))]

    def check_conflicts(self, planned: frozenset[str]) -> None:
        theirs = self.theirs(planned)
        if theirs:
            raise OutputConflictError(conflict_message(self.path, theirs, self.force))

    def may_replace(self, name: str) -> bool:
        """Right before the switch moves ``name`` aside: is it still ours, or forced?"""
        return is_ours(self.path, name, self.manifest.get(name)) or (self.force and replaceable(self.path, name))

    def new_staging(self) -> None:
        try:
            self.staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=self.path))
        except OSError as exc:
            raise _cannot_write(self.path, exc) from None

    def commit(self, planned: frozenset[str]) -> list[Path]:
        """Switch the staged files in; return the output paths, in name order."""
        staging = self.staging_path
        new = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
        unknown = [n for n in new if not is_output_name(n)]
        if unknown:
            raise RuntimeError(f"a renderer wrote files that are not output names: {unknown}")
        files = {n: file_digest(staging / n) for n in new}
        self.check_conflicts(planned)  # the user may have added files while the script ran
        aside = [n for n in new if exists(self.path / n)]
        stale = [n for n in sorted(self.manifest) if n not in files and is_ours(self.path, n, self.manifest[n])]
        switch(
            self.path, staging, aside + stale, new, manifest_text(files, staging.name, __version__), self.may_replace
        )
        self.manifest = files
        for folder in OUTPUT_PATTERNS:
            remove_if_empty(self.path / folder)
        return [self.path / n for n in new]

    def close(self, ok: bool) -> None:
        """Remove the staging folder; after a failure, the folders this run created if they hold nothing."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        if not ok and self.created and sorted(os.listdir(self.path)) in ([], [LOCK]):
            (self.path / LOCK).unlink(missing_ok=True)
            for p in reversed(self.created):
                remove_if_empty(p)
        if self.lock_fd is not None:
            os.close(self.lock_fd)  # releases the flock
            self.lock_fd = None


def _lock(folder: OutputFolder, on_wait: Callable[[Path], None] | None) -> None:
    """Take the folder's lock, waiting (and saying so) while another run holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Windows: no lock, one run at a time is up to the user
        return
    told = False
    while True:
        try:
            fd = os.open(folder.path / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise _cannot_write(folder.path, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None and not told:
                on_wait(folder.path)
                told = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        # The run we waited for may have failed and removed the folder it made: lock anew then.
        if folder.path.is_dir() and _same_file(fd, folder.path / LOCK):
            folder.lock_fd = fd
            return
        os.close(fd)
        folder.created += _make_folder(folder.path)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


@contextlib.contextmanager
def open_output(
    out: str | Path, planned: frozenset[str], *, force: bool = False, on_wait: Callable[[Path], None] | None = None
) -> Iterator[OutputFolder]:
    """Check, create and lock the output folder for one run; repair what killed runs left; stage.

    Everything that can fail about the folder fails here, before the caller runs the
    user's script. On leaving, the staging folder is removed; after an error, so are the
    folders this run created, if they hold nothing.
    """
    out_dir = check_out_path(out)
    folder = OutputFolder(out_dir, force=force)
    folder.created = _make_folder(out_dir)
    ok = False
    try:
        _lock(folder, on_wait)
        recover(out_dir)
        folder.read_manifest()
        folder.check_conflicts(planned)
        folder.new_staging()
        yield folder
        ok = True
    finally:
        folder.close(ok)


__all__ = ["LOCK", "OutputFolder", "check_out_path", "open_output"]
