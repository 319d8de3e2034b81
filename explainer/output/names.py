"""Which paths in an output folder are explain-graph's: the output names, and proof of authorship.

A path is the tool's to replace or remove only when its name is an output name and the
manifest recorded exactly its bytes (size and SHA-256), and when no folder on the way
to it is a symlink (a symlinked ``slides/`` leads outside the output folder).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

#: Every file an explanation may write, relative to the output folder.
OUTPUT_FILES = frozenset(
    {
        "graph.svg",
        "graph.png",
        "graph.pdf",
        "graph.json",
        "loss_curve.png",
        "backward.mp4",
        "backward.srt",
        "slides.pdf",
        "slides.pptx",
        "index.html",
        "training.json",
        "training.svg",
        "training.png",
        "training.mp4",
    }
)
#: Output names whose count depends on the run (one PNG per slide page, one clip per step of the
#: video), by the folder they live in.
OUTPUT_PATTERNS = {
    "slides": re.compile(r"slides/page-\d+\.png", re.IGNORECASE),
    "backward_sections": re.compile(r"backward_sections/(sections\.json|\d+-[A-Za-z0-9_.-]+\.mp4)", re.IGNORECASE),
}

_HASH_CHUNK = 1 << 20

Digest = dict[str, "int | str"]


def planned_outputs(
    formats: Iterable[str],
    *,
    losses: bool = False,
    video: bool = False,
    slides: bool = False,
    html: bool = False,
    training: bool = False,
    pptx: bool = False,
) -> frozenset[str]:
    """The names a run with these options writes (``slides`` stands for every page PNG,
    ``backward_sections`` for every clip of the video).

    ``training`` (``--train``, ``--compare``, ``--lr-sweep``) adds ``training.*``;
    ``training.mp4`` only with ``video`` and when there is a surface to draw it on.
    """
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
    if training:
        names |= {"training.json", "training.svg", "training.png"} | ({"training.mp4"} if video else set())
    return frozenset(names)


def is_output_name(rel: str) -> bool:
    return rel in OUTPUT_FILES or any(p.fullmatch(rel) for p in OUTPUT_PATTERNS.values())


def file_digest(path: Path) -> Digest:
    """Size and SHA-256 of a file, as the manifest records them."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return {"size": path.stat().st_size, "sha256": h.hexdigest()}


def exists(path: Path) -> bool:
    """Anything at ``path``, a dangling symlink included."""
    return path.exists() or path.is_symlink()


def within(out_dir: Path, rel: str) -> bool:
    """No folder between ``out_dir`` and ``rel`` is a symlink (which could lead anywhere)."""
    parent = out_dir
    for part in Path(rel).parts[:-1]:
        parent = parent / part
        if parent.is_symlink():
            return False
    return True


def is_ours(out_dir: Path, rel: str, recorded: Digest | None) -> bool:
    """Did explain-graph write exactly this file (the manifest recorded its bytes)?"""
    path = out_dir / rel
    if recorded is None or not within(out_dir, rel) or path.is_symlink() or not path.is_file():
        return False
    if path.stat().st_size != recorded.get("size"):
        return False
    return file_digest(path) == recorded


def replaceable(out_dir: Path, rel: str) -> bool:
    """May ``--force`` replace this path? Files and links yes; folders, and the slides/ name, never."""
    path = out_dir / rel
    return rel not in OUTPUT_PATTERNS and within(out_dir, rel) and (path.is_symlink() or path.is_file())


def matching(out_dir: Path, planned: frozenset[str]) -> list[str]:
    """Existing paths in ``out_dir`` that a run planning ``planned`` may write (any letter case)."""
    found = [n for n in sorted(planned) if n in OUTPUT_FILES and exists(out_dir / n)]
    for key, pattern in OUTPUT_PATTERNS.items():
        folder = out_dir / key
        if key not in planned or not exists(folder):
            continue
        if folder.is_dir() and not folder.is_symlink():
            found += sorted(f"{key}/{p.name}" for p in folder.iterdir() if pattern.fullmatch(f"{key}/{p.name}"))
        else:
            found.append(key)  # a file or a link where the run needs its own folder
    return found


def conflict_message(out_dir: Path, names: list[str], force: bool) -> str:
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    if force:
        return (
            f"{shown} in {out_dir} cannot be replaced, not even with --force (a folder where explain-graph "
            "writes a file, or something other than a folder where it needs its slides/ folder): move it away "
            "or choose another --out"
        )
    them = "it" if len(names) == 1 else "them"
    return (
        f"{out_dir} already holds {shown}, which explain-graph did not write (or which changed since): "
        f"keep {them} by choosing another --out, or pass --force to overwrite {them}"
    )


__all__ = [
    "OUTPUT_FILES",
    "OUTPUT_PATTERNS",
    "conflict_message",
    "exists",
    "file_digest",
    "is_ours",
    "is_output_name",
    "matching",
    "planned_outputs",
    "replaceable",
    "within",
]
