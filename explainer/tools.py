"""External command-line tools (Graphviz's ``dot``, ``rsvg-convert``, ``pdftoppm``): found, run, checked.

A tool that exits 0 has not necessarily written anything (a broken install, a stub on
``PATH``, a full disk): every file a tool is asked for is checked to be complete, by its
format's start and end markers, before a run may use it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from .errors import GraphvizError, OutputWriteError, ToolError

#: apt packages that provide each tool (Debian, Ubuntu, Colab).
PACKAGES = {"dot": "graphviz", "rsvg-convert": "librsvg2-bin", "pdftoppm": "poppler-utils", "pdfunite": "poppler-utils"}


def _error_class(name: str) -> type[ToolError | GraphvizError]:
    return GraphvizError if name == "dot" else ToolError


def find_tool(name: str) -> str:
    """The tool's path, or an error with the line that installs it."""
    path = shutil.which(name)
    if path is None:
        package = PACKAGES.get(name, name)
        raise _error_class(name)(
            f"`{name}` was not found: install it with `sudo apt-get install {package}` "
            f"(Colab: !apt-get install -y {package}) and try again"
        )
    return path


#: A filesystem with less free space than this after a failed write counts as full.
FULL_DISK_BYTES = 64 * 1024


def no_space_message(where: Path | str) -> str:
    return (
        f"no space left on the device while writing {where}: free some space or choose another --out "
        "(the output folder keeps its earlier files)"
    )


def disk_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < FULL_DISK_BYTES
    except OSError:
        return False


def run_tool(
    cmd: list[str],
    what: str,
    *,
    stdin: bytes | None = None,
    timeout: float = 600.0,
    timeout_hint: str = "",
    writes: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``cmd``; a non-zero exit or a time-out becomes a one-line error naming ``what``.

    ``SOURCE_DATE_EPOCH`` is set so tools that date their output (PDF) write the same
    bytes every run. An exception here (Ctrl-C, SIGTERM) kills the child first:
    `subprocess.run` does that, so no tool outlives the run. A failure while the folder
    it ``writes`` into is full is reported as the full disk it is.
    """
    name = os.path.basename(cmd[0])
    env = dict(os.environ)
    env.setdefault("SOURCE_DATE_EPOCH", "0")
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise _error_class(name)(f"{what} took more than {timeout:.0f} s{timeout_hint}") from None
    if proc.returncode != 0:
        if writes is not None and disk_full(writes):
            raise OutputWriteError(no_space_message(writes))
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise _error_class(name)(f"{what} failed: {msg[-1] if msg else f'exit status {proc.returncode}'}")
    return proc


def _complete(data: bytes, fmt: str) -> bool:
    if fmt == "svg":
        return b"<svg" in data[:4096] and data.rstrip().endswith(b"</svg>")
    if fmt == "png":
        return data.startswith(b"\x89PNG\r\n\x1a\n") and data[-12:-4] == b"\x00\x00\x00\x00IEND"
    if fmt == "pdf":
        return data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]
    if fmt == "json":
        return data.lstrip().startswith(b"{") and data.rstrip().endswith(b"}")
    if fmt == "mp4":
        return len(data) > 64 and data[4:8] == b"ftyp" and b"moov" in data
    return len(data) > 0


def check_file(path: Path, fmt: str, what: str) -> None:
    """Raise `ToolError` (`GraphvizError` for dot) unless ``path`` is a complete ``fmt`` file."""
    name = what.split()[0]
    try:
        data = path.read_bytes()
    except OSError:
        raise _error_class(name)(
            f"{what} reported success but wrote no {path.name}: check the tool's installation and try again"
        ) from None
    if not _complete(data, fmt):
        if disk_full(path.parent):
            raise OutputWriteError(no_space_message(path.parent))
        state = "an empty" if not data else "an incomplete"
        raise _error_class(name)(
            f"{what} reported success but wrote {state} {path.name}: "
            "check the tool's installation and the free disk space, then try again"
        )


#: What each extra brings, and the system packages its Python packages need to build.
EXTRAS = {
    "video": ("manim", "sudo apt-get install libcairo2-dev libpango1.0-dev pkg-config python3-dev"),
    "plots": ("matplotlib", ""),
}


def require_extra(extra: str, what: str) -> None:
    """Fail, with the install line, when the optional package behind ``extra`` is missing."""
    import importlib.util

    module, system = EXTRAS[extra]
    if importlib.util.find_spec(module) is None:
        first = f" (on Debian/Ubuntu/Colab first: {system})" if system else ""
        raise ToolError(f'{what} needs {module}, which is not installed: pip install "explain-graph[{extra}]"{first}')


#: Languages whose labels need a font beyond Latin, as fontconfig names them.
SCRIPT_FONTS = {"ko": "ko"}


def check_font(lang: str) -> None:
    """Labels in ``lang`` need a font that has its script, or they render as empty boxes."""
    code = SCRIPT_FONTS.get(lang)
    fc_list = shutil.which("fc-list")
    if code is None or fc_list is None:
        return
    found = subprocess.run(
        [fc_list, f":lang={code}", "family"], capture_output=True, text=True, check=False, timeout=30
    )
    if found.returncode == 0 and not found.stdout.strip():
        raise ToolError(
            f"--lang {lang} needs a font with its letters and none is installed: sudo apt-get install "
            "fonts-noto-cjk (Colab: !apt-get install -y fonts-noto-cjk), then run again"
        )


_PDF_DATE = re.compile(rb"/CreationDate \(D:\d{14}[^)]*\)")


def undate_pdf(path: Path) -> None:
    """Give a PDF a fixed creation date, so the same diagram gives the same bytes.

    Graphviz's cairo output dates every PDF and ignores ``SOURCE_DATE_EPOCH`` on the
    cairo versions Debian 12 and Ubuntu 22.04 ship. The replacement has the same
    length, so the PDF's byte offsets stay valid.
    """
    data = path.read_bytes()

    def fixed(m: re.Match[bytes]) -> bytes:
        stamp = b"/CreationDate (D:19700101000000Z"
        return stamp + b" " * (len(m.group(0)) - len(stamp) - 1) + b")"

    new = _PDF_DATE.sub(fixed, data)
    if new != data:
        path.write_bytes(new)


__all__ = [
    "EXTRAS",
    "PACKAGES",
    "check_file",
    "check_font",
    "require_extra",
    "disk_full",
    "find_tool",
    "no_space_message",
    "run_tool",
    "undate_pdf",
]
