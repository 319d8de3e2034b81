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
    skipped = getattr(report, "skipped", None)
    if skipped:
        lines = "; ".join(skipped[:6]) + (
            "" if len(skipped) <= 6 else "; " + t("more", lang).format(n=len(skipped) - 6)
        )
        console.print(
            f"[yellow]{e(t('notes', lang))}:[/] {e(t('skipped_ipython', lang).format(lines=lines))}", highlight=False
        )
    for note in notes_of(g, lang):
        console.print(f"[yellow]{e(t('notes', lang))}:[/] {e(note)}", highlight=False)
    every_leaf = [(n, d) for n, d in g.nodes(data=True) if d["kind"] in ("param", "leaf")]
    # Parameters inside a large model's repeated blocks were traced without their numbers.
    leaves = [(n, d) for n, d in every_leaf if d.get("value") is not None]
    unrecorded = len(every_leaf) - len(leaves)
    params = [d for _, d in leaves if d["kind"] == "param"]
    others = [d for _, d in leaves if d["kind"] != "param"]  # tensors that require grad, not parameters
    for first_column, rows in ((t("parameter", lang), params), (t("leaf", lang), others)):
        if rows:
            _leaf_table(console, g, rows, first_column, digits, lang)
    if unrecorded:
        console.print(f"[dim]{e(t('more_in_blocks', lang).format(n=unrecorded))}[/]", highlight=False)
    order = [g.nodes[n]["label"] for n in g.graph.get("backward_order", [])]
    if order:
        shown = order if len(order) <= 12 else order[:11] + [t("more", lang).format(n=len(order) - 11)]
        console.print(f"[dim]{e(t('backward_order', lang))}:[/] " + e(" → ".join(shown)), highlight=False)
    bad = g.graph.get("first_nonfinite")
    if bad:
        console.print(f"[bold red]⚠ {t('first_bad', lang)}: {e(g.nodes[bad]['label'])}[/]", highlight=False)
    if report.ended:
        console.print(e(ended_text(report.ended, lang)), style="yellow", highlight=False)
    if report.files:
        console.print(f"[green]{e(t('wrote', lang))}[/] {e(files_line(report.files, lang))}", highlight=False)


def _leaf_table(
    console: Console, g: Any, rows: list[dict[str, Any]], first_column: str, digits: int, lang: str
) -> None:
    """Value, gradient and update of each parameter; the first few of a large model, then a count."""
    opt = g.graph.get("optimizer")
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column(first_column)
    table.add_column(t("value", lang))
    table.add_column(t("grad", lang), style="dark_orange")
    if opt:
        table.add_column(f"{t('update', lang)} ({t(opt['name'], lang)})", style="green")
    shown = rows if len(rows) <= MAX_ROWS else rows[: MAX_ROWS - 1]
    for d in shown:
        row = [d["label"], value_inline(d["value"], digits, lang), value_inline(d["grad"], digits, lang)]
        if opt:
            row.append(value_inline(d["update"]["after"], digits, lang) if d.get("update") else "–")
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    if len(shown) < len(rows):
        console.print(f"[dim]{escape(t('more_in_json', lang).format(n=len(rows) - len(shown)))}[/]", highlight=False)


def ended_text(ended: dict[str, Any], lang: str = "en") -> str:
    """How the script ended the process after the traced step (`explainer.run.RunResult.ended`)."""
    at = t("ended_at", lang).format(where=ended["where"]) if ended.get("where") else ""
    return t("ended", lang).format(script=ended["script"], how=ended["how"], status=ended["status"], at=at)


def files_line(files: list[Path], lang: str = "en") -> str:
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
    top += [f"{d}/ ({t('pages' if d == 'slides' else 'files', lang).format(n=n)})" for d, n in sorted(pages.items())]
    return f"{os.path.relpath(root)}/: " + ", ".join(sorted(top))
