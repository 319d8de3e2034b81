"""A Jupyter/Colab notebook as a script: its code cells, in order, without IPython's syntax.

Lecturers keep their code in ``.ipynb`` files. The run stage runs the notebook's code
cells one after another in one namespace, as "Run all" would. IPython's own syntax is
not Python and is never executed: shell lines (``!pip install torch -q``), line magics
(``%matplotlib inline``), help lines (``model?``) and cells of other languages
(``%%bash``, ``%%html``) are skipped and listed in a note. Cells whose magic only
measures or hides the body (``%%time``, ``%%timeit``, ``%%capture``) run their body once.

Each cell is compiled under its own file name, ``lecture.ipynb [cell 3]``, so a
traceback names the cell, and its lines are shown from the notebook.
"""

from __future__ import annotations

import io
import json
import linecache
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ScriptSyntaxError

#: Cell magics whose body is plain Python that runs once without them.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun"})

_IPYTHON_LINE = re.compile(r"^\s*(?:[!%]|[\w.]+\s*=\s*[!%])|^\s*[\w.]+\?\??\s*$|^\s*\?")


@dataclass
class NotebookCode:
    """The code cells of a notebook, ready to compile, and what was left out."""

    cells: list[tuple[str, str]] = field(default_factory=list)  # (file name, source)
    skipped: list[str] = field(default_factory=list)  # "cell 1: !pip install torch -q"


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _starts_statement(before: list[str]) -> bool:
    """Does a line that follows ``before`` begin a new statement (not inside brackets, a string, a ``\\``)?"""
    text = "".join(before)
    if text.rstrip("\n").endswith("\\"):
        return False
    try:
        for _ in tokenize.generate_tokens(io.StringIO(text).readline):
            pass
    except (tokenize.TokenError, SyntaxError):  # an open bracket or string runs on
        return False
    return True


def _plain_python(lines: list[str], number: int, skipped: list[str]) -> str:
    """The cell's lines with IPython-only statements replaced by ``pass`` (indentation kept)."""
    out: list[str] = []
    for line in lines:
        if _IPYTHON_LINE.match(line) and _starts_statement(out):
            skipped.append(f"cell {number}: {line.strip()}")
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}pass\n")
        else:
            out.append(line if line.endswith("\n") else line + "\n")
    return "".join(out)


def read_notebook(path: Path) -> NotebookCode:
    """The notebook's code cells as Python; a one-line error if it is not a notebook."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        if not isinstance(cells, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise ScriptSyntaxError(
            f"{path} is not a Jupyter notebook (no JSON with cells): pass a .py script or an "
            ".ipynb saved by Jupyter or Colab"
        ) from None
    code = NotebookCode()
    number = 0
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        number += 1
        lines = _source(cell).splitlines(keepends=True)
        first = lines[0].strip() if lines else ""
        if first.startswith("%%"):
            magic = first[2:].split()[0] if len(first) > 2 else ""
            if magic not in PYTHON_CELL_MAGICS:
                skipped_text = first if len(lines) == 1 else f"{first} … ({len(lines) - 1} more lines)"
                code.skipped.append(f"cell {number}: {skipped_text}")
                continue
            code.skipped.append(f"cell {number}: {first}")
            lines = ["pass\n", *lines[1:]]  # the body runs once, line numbers kept
        name = f"{path} [cell {number}]"
        source = _plain_python(lines, number, code.skipped)
        linecache.cache[name] = (len(source), None, source.splitlines(keepends=True), name)
        code.cells.append((name, source))
    return code


__all__ = ["NotebookCode", "PYTHON_CELL_MAGICS", "read_notebook"]
