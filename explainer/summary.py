"""The short terminal report after an explanation (rich)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .text import notes_of, t, value_inline

#: Most parameter rows printed; the rest are counted (graph.json has them all).
MAX_ROWS = 12


def print_summary(report: Any, digits: int = 4, lang: str = "en", console: Console | None = None) -> None:
    """Loss, each parameter's value, gradient and update, the backward order, the files."""
    console = console or Console()
    g = report.graph
    e = escape  # every name and number is plain text, never rich markup
    loss = g.nodes[g.graph["loss"]]
    console.print(
        f"[bold]{t('loss', lang)}[/] ({e(str(loss.get('op')))}) = [bold red]{e(value_inline(loss['value'], digits, lang))}[/]"
        f"   [dim]{t('step', lang)} {g.graph.get('step', 1)}[/]",
        highlight=False,
    )
    for note in notes_of(g, lang):
        console.print(f"[yellow]{e(t('notes', lang))}:[/] {e(note)}", highlight=False)
    every_leaf = [(n, d) for n, d in g.nodes(data=True) if d["kind"] in ("param", "leaf")]
    # Parameters inside a large model's repeated blocks were traced without their numbers.
    leaves = [(n, d) for n, d in every_leaf if d.get("value") is not None]
    unrecorded = len(every_leaf) - len(leaves)
    if leaves:
        opt = g.graph.get("optimizer")
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        table.add_column(t("parameter", lang))
        table.add_column(t("value", lang))
        table.add_column(t("grad", lang), style="dark_orange")
        if opt:
            table.add_column(f"{t('update', lang)} ({t(opt['name'], lang)})", style="green")
        # A large model has hundreds of parameters: the first few, then a count.
        shown = leaves if len(leaves) <= MAX_ROWS else leaves[: MAX_ROWS - 1]
        for _, d in shown:
            row = [d["label"], value_inline(d["value"], digits, lang), value_inline(d["grad"], digits, lang)]
            if opt:
                row.append(value_inline(d["update"]["after"], digits, lang) if d.get("update") else "–")
            table.add_row(*(e(cell) for cell in row))
        console.print(table)
        if len(shown) < len(leaves):
            console.print(f"[dim]… {len(leaves) - len(shown)} more (all in graph.json)[/]", highlight=False)
    if unrecorded:
        console.print(f"[dim]… {unrecorded} more inside the repeated blocks (numbers not recorded: see the note)[/]",
                      highlight=False)
    order = [g.nodes[n]["label"] for n in g.graph.get("backward_order", [])]
    if order:
        shown = order if len(order) <= 12 else order[:11] + [f"… {len(order) - 11} more"]
        console.print("[dim]backward:[/] " + e(" → ".join(shown)), highlight=False)
    bad = g.graph.get("first_nonfinite")
    if bad:
        console.print(f"[bold red]⚠ {t('first_bad', lang)}: {e(g.nodes[bad]['label'])}[/]", highlight=False)
    if report.files:
        console.print(f"[green]wrote[/] {e(files_line(report.files))}", highlight=False)


def files_line(files: list[Path]) -> str:
    """``out/: graph.json, graph.svg, slides/ (8 pages)``: the folder, then what is in it."""
    root = Path(os.path.commonpath([f.parent for f in files]))
    top: list[str] = []
    pages: dict[str, int] = {}
    for f in files:
        rel = f.relative_to(root)
        if len(rel.parts) > 1:
            pages[rel.parts[0]] = pages.get(rel.parts[0], 0) + 1
        else:
            top.append(rel.name)
    # slides/ holds one PNG per page; backward_sections/ one clip per step and its index
    top += [f"{d}/ ({n} pages)" if d == "slides" else f"{d}/ ({n} files)" for d, n in sorted(pages.items())]
    return f"{os.path.relpath(root)}/: " + ", ".join(sorted(top))
