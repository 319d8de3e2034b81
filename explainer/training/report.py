"""The words and the table every training output shares: labels, notes, final values, the terminal report."""

from __future__ import annotations

from typing import Any

from ..text import fmt_number, t
from .record import Run, TrainingRecord, finite, first_entry

#: Most parameters given a column of their own in the table.
MAX_PARAM_COLUMNS = 2


def run_label(run: Run, digits: int = 4) -> str:
    """``Adam (lr 0.05)``: the run's optimizer and learning rate."""
    base = run.label or run.optimizer
    if run.lr is None or "lr=" in base:
        return base
    return f"{base} (lr {fmt_number(run.lr, digits)})"


def title(record: TrainingRecord, lang: str = "en") -> str:
    key = {"compare": "tr_title_compare", "lr-sweep": "tr_title_sweep"}.get(record.mode, "tr_title")
    return t(key, lang).format(script=record.script)


def note_text(note: dict[str, Any], lang: str = "en") -> str:
    params = dict(note.get("params") or {})
    if params.get("source") == "script":
        params["source"] = t("tr_script_lr", lang)
    if "reason" in params:
        params["reason"] = t(params["reason"], lang)
    return t(note["key"], lang).format(**params)


def notes(record: TrainingRecord, lang: str = "en") -> list[str]:
    return [note_text(n, lang) for n in record.notes]


def table(record: TrainingRecord, lang: str = "en", digits: int = 4) -> tuple[list[str], list[list[str]]]:
    """The final-values table: header and one row of text per run."""
    names = record.param_names()
    shown = names[:MAX_PARAM_COLUMNS] if all(_scalar(record, n) for n in names[:MAX_PARAM_COLUMNS]) else []
    threshold = record.threshold
    steps = max((r.steps for r in record.runs), default=0)
    header = [
        t("tr_run", lang),
        *[f"{n}\n({t('tr_final', lang).format(n=steps)})" for n in shown],
        t("tr_final_loss", lang),
        t("tr_reached", lang).format(threshold=fmt_number(threshold, 2)) if threshold is not None else "",
    ]
    rows = []
    for run in record.runs:
        row = [run_label(run, digits)]
        row += [fmt_number(first_entry(run.final(n)), digits) for n in shown]
        last = next((v for v in reversed(run.loss) if v is not None), None)
        if run.diverged_at is not None:
            row.append(t("tr_diverged", lang).format(n=run.diverged_at))
        else:
            row.append(fmt_number(last, digits))
        reached = run.reached_at(threshold) if threshold is not None else None
        row.append(t("tr_reached_at", lang).format(n=reached) if reached else t("tr_never", lang))
        rows.append(row)
    if threshold is None:
        header.pop()
        for row in rows:
            row.pop()
    return header, rows


def _scalar(record: TrainingRecord, name: str) -> bool:
    shape = record.runs[0].shapes.get(name, []) if record.runs else []
    n = 1
    for s in shape:
        n *= s
    return n == 1


def minimum_text(record: TrainingRecord, lang: str = "en", digits: int = 4) -> str:
    s = record.surface
    if s is None or not s.minimum:
        return ""
    m = s.minimum
    if m.get("kind") == "quadratic":
        return t("tr_minimum", lang).format(x=fmt_number(m["x"], digits), y=fmt_number(m["y"], digits))
    return t("tr_minimum_grid", lang)


def surface_caption(record: TrainingRecord, lang: str = "en") -> str:
    s = record.surface
    if s is None:
        return ""
    if s.kind == "params":
        text = t("tr_surface_params", lang).format(x=s.axes[0], y=s.axes[1])
    elif s.kind == "pca":
        text = t("tr_surface_pca", lang).format(share=f"{100 * sum(s.explained):.0f}%")
    else:
        text = t("tr_surface_random", lang)
    if not s.matches_script:
        text += "; " + t("tr_first_batch", lang)
    return text


def print_training(record: TrainingRecord, lang: str = "en", digits: int = 4, console: Any = None) -> None:
    """The table and the notes in the terminal (rich)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    header, rows = table(record, lang, digits)
    steps = max((r.steps for r in record.runs), default=0)
    tab = Table(
        title=f"{title(record, lang)} · {t('tr_final', lang).format(n=steps)}",
        title_justify="left",
        show_header=True,
        header_style="bold",
        box=None,
        pad_edge=False,
    )
    header = [h.split("\n")[0] for h in header]
    for h in header:
        tab.add_column(h)
    for run, row in zip(record.runs, rows):
        style = "red" if run.diverged_at is not None else None
        tab.add_row(*(escape(c) for c in row), style=style)
    console.print(tab)
    text = minimum_text(record, lang, digits)
    if text:
        console.print(f"[dim]{escape(surface_caption(record, lang))}: {escape(text)}[/]", highlight=False)
    for line in notes(record, lang):
        console.print(f"[yellow]{escape(t('notes', lang))}:[/] {escape(line)}", highlight=False)


def loss_range(runs: list[Run]) -> tuple[float, float] | None:
    """Smallest and largest finite loss of the runs before they diverged."""
    values = [
        float(v)
        for r in runs
        for i, v in enumerate(r.loss, 1)
        if v is not None and finite(v) and (r.diverged_at is None or i < r.diverged_at)
    ]
    if not values:
        return None
    return min(values), max(values)


__all__ = [
    "loss_range",
    "minimum_text",
    "note_text",
    "notes",
    "print_training",
    "run_label",
    "surface_caption",
    "table",
    "title",
]
