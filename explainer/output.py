"""The output folder: explain-graph replaces only files it can prove it wrote.

The contract, for every run into a folder:

* A manifest, ``.explain-graph.json``, lists the files the last run wrote with their
  sizes and SHA-256 hashes. A file with an output name that is not in it, or that
  differs from what it recorded, is the user's: the run stops before the script runs
  (`OutputConflictError`, exit 2) unless ``force`` names it. Old outputs this run does
  not make again are removed only when the manifest lists them unchanged.
* Outputs are rendered into a hidden staging folder *inside* the output folder, so the
  final switch is a set of same-filesystem renames (an output on another filesystem,
  behind a symlink or on a mount point works the same).
* The switch is journalled (``.explain-graph-switch.json``): what is replaced is moved
  aside first, the new files are moved in, and the new manifest is written last, which
  is the commit point. A failure part-way, or a run killed part-way, is rolled back (now,
  or by the next run into the folder), so the folder never mixes two runs.
* A lock file (``.explain-graph.lock``, ``flock``) makes a second run into the same
  folder wait for the first.

Only the names in `OUTPUT_FILES` and `OUTPUT_PATTERNS` are ever written; the hidden
files above are the tool's own.
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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .errors import OutputConflictError, OutputFolderError

MANIFEST = ".explain-graph.json"
LOCK = ".explain-graph.lock"
JOURNAL = ".explain-graph-switch.json"
STAGING_PREFIX = ".explain-graph-staging-"
BACKUP_PREFIX = ".explain-graph-backup-"

#: Every file an explanation may write, relative to the output folder.
OUTPUT_FILES = frozenset(
    {"graph.svg", "graph.png", "graph.pdf", "graph.json", "loss_curve.png", "backward.mp4", "backward.srt",
     "slides.pdf", "slides.pptx", "index.html"}
)
#: Output names whose count depends on the run (one PNG per slide page, one clip per step of the video).
OUTPUT_PATTERNS = {"slides": re.compile(r"slides/page-\d+\.png"),
                   "backward_sections": re.compile(r"backward_sections/(sections\.json|\d+-[A-Za-z0-9_.-]+\.mp4)")}

_HASH_CHUNK = 1 << 20


def planned_outputs(formats: Iterable[str], *, losses: bool = False, video: bool = False, slides: bool = False,
                    html: bool = False, pptx: bool = False) -> frozenset[str]:
    """The names a run with these options writes (``slides`` stands for every page PNG, ``backward_sections``
    for every clip of the video)."""
    names = {f"graph.{fmt}" for fmt in formats} | {"graph.json"}
    if losses:
        names.add("loss_curve.png")
    if video:
        names |= {"backward.mp4", "backward.srt", "backward_sections"}
    if slides or pptx:
        names |= {"slides.pdf", "slides"}
    if pptx:
        names.add("slides.pptx")
    if html:
        names.add("index.html")
    return frozenset(names)


def is_output_name(rel: str) -> bool:
    return rel in OUTPUT_FILES or any(p.fullmatch(rel) for p in OUTPUT_PATTERNS.values())


def file_digest(path: Path) -> dict[str, int | str]:
    """Size and SHA-256 of a file, as the manifest records them."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return {"size": path.stat().st_size, "sha256": h.hexdigest()}


# --------------------------------------------------------------------------- checks


def check_out_path(out: str | Path) -> Path:
    """The absolute output folder; a one-line error, early, for an ``--out`` that can never work."""
    if not str(out).strip():  # an unset variable: --out "$OUT" would mean the current folder
        raise OutputFolderError("--out is empty: give a folder, e.g. --out explained/")
    out_dir = Path(out).absolute()
    for p in (out_dir, *out_dir.parents):
        if _exists(p):
            if not p.is_dir():
                what = "is" if p == out_dir else f"lies below {p}, which is"
                raise OutputFolderError(f"--out {out_dir} {what} a file, not a folder: choose another --out")
            break
    return out_dir


def _make_folder(out_dir: Path) -> list[Path]:
    """Create ``out_dir`` and its missing parents; return those created (outermost first)."""
    missing = [p for p in (out_dir, *out_dir.parents) if not p.exists()][::-1]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFolderError(
            f"cannot create the output folder {out_dir} ({exc.strerror or exc}): choose a folder you can write to with --out"
        ) from None
    return missing


def _is_ours(path: Path, recorded: dict[str, int | str] | None) -> bool:
    if recorded is None or not path.is_file() or path.is_symlink():
        return False
    if path.stat().st_size != recorded.get("size"):
        return False
    return file_digest(path) == recorded


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _matching(out_dir: Path, planned: frozenset[str]) -> list[str]:
    """Existing paths in ``out_dir`` that a run planning ``planned`` may write."""
    found = [n for n in sorted(planned) if n in OUTPUT_FILES and _exists(out_dir / n)]
    for key, pattern in OUTPUT_PATTERNS.items():
        if key not in planned or not _exists(out_dir / key):
            continue
        if (out_dir / key).is_dir() and not (out_dir / key).is_symlink():
            found += sorted(f"{key}/{p.name}" for p in (out_dir / key).iterdir() if pattern.fullmatch(f"{key}/{p.name}"))
        else:
            found.append(key)  # a file or a link where the run needs its own folder
    return found


def _replaceable(out_dir: Path, name: str) -> bool:
    """May ``--force`` replace this path? Files and links yes; folders, and the slides/ name, never."""
    path = out_dir / name
    return name not in OUTPUT_PATTERNS and (path.is_symlink() or path.is_file())


def _conflict_message(out_dir: Path, names: list[str], force: bool) -> str:
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    if force:
        return (f"{shown} in {out_dir} cannot be replaced, not even with --force (a folder where explain-graph "
                "writes a file, or a file where it needs its slides/ folder): move it away or choose another --out")
    them = "it" if len(names) == 1 else "them"
    return (f"{out_dir} already holds {shown}, which explain-graph did not write (or which changed since): "
            f"keep {them} by choosing another --out, or pass --force to overwrite {them}")


# --------------------------------------------------------------------------- the folder


@dataclass
class OutputFolder:
    """An output folder, locked for one run. Use `open_output` to get one."""

    path: Path
    force: bool = False
    manifest: dict[str, dict[str, int | str]] = field(default_factory=dict)
    staging: Path | None = None
    created: list[Path] = field(default_factory=list)
    lock_fd: int | None = None

    @property
    def staging_path(self) -> Path:
        """The hidden folder to render into; it exists while the folder is open."""
        if self.staging is None:
            raise RuntimeError("the output folder is not open")
        return self.staging

    # ---- set-up

    def read_manifest(self) -> None:
        try:
            data = json.loads((self.path / MANIFEST).read_text(encoding="utf-8"))
            files = data.get("files", {}) if isinstance(data, dict) else {}
            self.manifest = {k: v for k, v in files.items() if isinstance(v, dict) and is_output_name(k)}
        except (OSError, ValueError):
            self.manifest = {}

    def check_conflicts(self, planned: frozenset[str]) -> None:
        """Raise `OutputConflictError` for each planned name that holds a file of the user's."""
        theirs = [n for n in _matching(self.path, planned) if not _is_ours(self.path / n, self.manifest.get(n))]
        if self.force:
            theirs = [n for n in theirs if not _replaceable(self.path, n)]
        if theirs:
            raise OutputConflictError(_conflict_message(self.path, theirs, self.force))

    def new_staging(self) -> Path:
        try:
            self.staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=self.path))
        except OSError as exc:
            raise OutputFolderError(
                f"cannot write into {self.path} ({exc.strerror or exc}): choose a folder you can write to with --out"
            ) from None
        return self.staging

    # ---- the switch

    def commit(self, planned: frozenset[str]) -> list[Path]:
        """Move the staged files into place; return the output paths, in name order."""
        self.check_conflicts(planned)  # the user may have added files while the script ran
        staging = self.staging_path
        new = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
        unknown = [n for n in new if not is_output_name(n)]
        if unknown:
            raise RuntimeError(f"a renderer wrote files that are not output names: {unknown}")
        aside = [n for n in new if _exists(self.path / n)]
        stale = [n for n in sorted(self.manifest) if n not in new and _is_ours(self.path / n, self.manifest[n])]
        manifest = {n: file_digest(staging / n) for n in new}
        text = json.dumps({"tool": "explain-graph", "version": __version__, "files": manifest}, indent=1, sort_keys=True) + "\n"
        backup = Path(tempfile.mkdtemp(prefix=f"{BACKUP_PREFIX}{os.getpid()}-", dir=self.path))
        journal = {"staging": staging.name, "backup": backup.name, "aside": aside + stale, "place": new,
                   "manifest_sha256": hashlib.sha256(text.encode()).hexdigest()}
        with _signals_held():
            _write_atomic(self.path / JOURNAL, json.dumps(journal, indent=1))
            try:
                for n in aside + stale:
                    _move(self.path / n, backup / n)
                for n in new:
                    _move(staging / n, self.path / n)
                _write_atomic(self.path / MANIFEST, text)  # the commit point
            except BaseException:
                recover(self.path)
                raise
            _finish_switch(self.path, journal)
        self.manifest = manifest
        for folder in OUTPUT_PATTERNS:
            _remove_if_empty(self.path / folder)
        return [self.path / n for n in new]

    def close(self, ok: bool) -> None:
        """Remove the staging folder; after a failure, the folders this run created if still empty."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        if not ok and self.created and sorted(os.listdir(self.path)) in ([], [LOCK]):
            # The folder is this run's own and holds nothing: leave no trace of a failed run.
            (self.path / LOCK).unlink(missing_ok=True)
            for p in reversed(self.created):
                _remove_if_empty(p)
        if self.lock_fd is not None:
            os.close(self.lock_fd)  # releases the flock
            self.lock_fd = None


def _lock(folder: OutputFolder, on_wait: Callable[[str], None] | None) -> None:
    """Take the folder's lock, waiting (and saying so) while another run holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Windows: no lock, one run at a time is up to the user
        return
    told = False
    while True:
        fd = _open_lock(folder.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None and not told:
                on_wait(f"another explain-graph run is writing into {folder.path}: waiting for it to finish")
                told = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        # The run we waited for may have failed and removed the folder it made: lock anew then.
        if folder.path.is_dir() and _same_file(fd, folder.path / LOCK):
            folder.lock_fd = fd
            return
        os.close(fd)
        folder.created += _make_folder(folder.path)


def _open_lock(path: Path) -> int:
    try:
        return os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise OutputFolderError(
            f"cannot write into {path} ({exc.strerror or exc}): choose a folder you can write to with --out"
        ) from None


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


@contextlib.contextmanager
def open_output(out: str | Path, planned: frozenset[str], *, force: bool = False,
                on_wait: Callable[[str], None] | None = None) -> Iterator[OutputFolder]:
    """Check, create and lock ``out_dir`` for one run; recover from killed runs; stage.

    Everything that can fail about the folder fails here, before the caller runs the
    user's script. On leaving, the staging folder is removed; on an error, so are the
    folders this run created, if they are still empty.
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


def recover(out_dir: Path) -> None:
    """Finish or roll back a switch that a failure or a killed run left, and clear leftovers.

    Called with the folder locked, so no other run is using these hidden folders.
    """
    journal_path = out_dir / JOURNAL
    if journal_path.exists():
        try:
            journal = json.loads(journal_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            journal = None
        if isinstance(journal, dict):
            if not _committed(out_dir, journal):
                _roll_back(out_dir, journal)
            _finish_switch(out_dir, journal)
        else:
            journal_path.unlink(missing_ok=True)
    for p in sorted(out_dir.iterdir()):
        if p.is_dir() and not p.is_symlink() and p.name.startswith((STAGING_PREFIX, BACKUP_PREFIX)):
            shutil.rmtree(p, ignore_errors=True)


def _committed(out_dir: Path, journal: dict) -> bool:
    try:
        return hashlib.sha256((out_dir / MANIFEST).read_bytes()).hexdigest() == journal.get("manifest_sha256")
    except OSError:
        return False


def _roll_back(out_dir: Path, journal: dict) -> None:
    staging, backup = out_dir / str(journal.get("staging")), out_dir / str(journal.get("backup"))
    for n in journal.get("place", []):
        # A name gone from staging was moved in: all of the "aside" moves came before.
        if not (staging / n).exists() and (out_dir / n).is_file():
            (out_dir / n).unlink()
    for n in journal.get("aside", []):
        if _exists(backup / n):
            _move(backup / n, out_dir / n)


def _finish_switch(out_dir: Path, journal: dict) -> None:
    shutil.rmtree(out_dir / str(journal.get("backup")), ignore_errors=True)
    (out_dir / JOURNAL).unlink(missing_ok=True)


def _move(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _remove_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()  # only an empty folder; anything of the user's keeps it


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM during the switch: it completes or rolls back, never stops half-way."""
    held = {signal.SIGINT, signal.SIGTERM}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, ValueError, OSError):  # pragma: no cover - no pthreads / not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


__all__ = [
    "MANIFEST",
    "OUTPUT_FILES",
    "OutputFolder",
    "check_out_path",
    "file_digest",
    "open_output",
    "planned_outputs",
    "recover",
]
