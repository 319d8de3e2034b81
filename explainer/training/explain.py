"""Training over time, as one call: run the script once per run, build the surface, write the files.

`run_training` does the work and returns a `TrainingRecord` (plain data);
`write_training` turns a record into ``training.json``, ``training.svg`` and
``training.png`` (``training.mp4`` with a video, a section of ``index.html``, pages
of the slide deck) inside a folder it is given; `explain_training` is both.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..render.slides import append_pages
from ..render.views import add_view
from ..text import fmt_number, t
from .pages import VIEW_ID, html_view, page_notes, slide_pages
from .plots import training_figure
from .record import Run, TrainingRecord, save_training
from .runner import run_all
from .spec import SLICE_MAX_PARAMS, TrainingOptions, default_jobs, plan_runs
from .surface import build_surface
from .video import render_training_video

OUTPUTS = ("training.json", "training.svg", "training.png", "training.mp4")


def _notes(runs: list[Run], options: TrainingOptions, surface_reason: str | None) -> list[dict[str, Any]]:
    out = []
    for run in runs:
        lr = fmt_number(run.lr) if run.lr is not None else "?"
        if run.origin == "swapped":
            defaults = ", ".join(f"{k}={_show(run.hyper.get(k))}" for k in run.defaulted if k in run.hyper)
            out.append(
                {
                    "key": "tr_note_swapped",
                    "params": {
                        "label": run.label,
                        "lr": lr,
                        "source": "--lr" if options.lr is not None else "script",
                        "defaults": defaults or "–",
                    },
                }
            )
        elif run.origin == "lr":
            out.append({"key": "tr_note_lr", "params": {"label": run.label, "optimizer": run.optimizer, "lr": lr}})
    if surface_reason:
        out.append({"key": "tr_note_no_surface", "params": {"reason": surface_reason}})
    return out


def _show(v: Any) -> str:
    if isinstance(v, list):
        return "(" + ", ".join(_show(x) for x in v) + ")"
    return str(v)


def run_training(
    script: str | Path,
    argv: list[str] | None = None,
    options: TrainingOptions | None = None,
    seed: int | None = 0,
    progress: bool = True,
) -> TrainingRecord:
    """Run ``script`` once per run of ``options`` (each in a fresh process) and build the surface.

    Raises `UserScriptError` when the script raises in a run that had not diverged,
    `NoTrainingError` when it never calls ``optimizer.step()``, `TrainingOptionError`
    when the optimizer cannot be swapped as asked.
    """
    options = options or TrainingOptions()
    script = Path(script)
    with tempfile.TemporaryDirectory(prefix="explain-graph-train-") as tmp:
        specs = plan_runs(str(script.absolute()), list(argv or []), seed, options)
        if options.surface:
            specs = [replace(s, vectors=str(Path(tmp) / f"run-{s.index}.npy")) for s in specs]
        jobs = options.jobs or default_jobs()
        with _progress_bars(specs, progress) as on_event, run_all(specs, jobs, on_event) as (runs, ev, note):
            reason = None
            surface = None
            if ev is not None:
                vectors = [Path(s.vectors) for s in specs if s.vectors]
                surface = build_surface(runs, ev, vectors, seed or 0)
                if surface is None:
                    reason = (
                        "tr_reason_one" if ev.numel < 2 else "tr_reason_large" if ev.numel > SLICE_MAX_PARAMS else None
                    )
            elif options.surface:
                reason = "tr_reason_program" if note else None
    return TrainingRecord(
        script=script.name,
        argv=list(argv or []),
        seed=seed,
        mode=options.mode,
        runs=runs,
        surface=surface,
        notes=_notes(runs, options, reason),
    )


def write_training(
    record: TrainingRecord,
    folder: Path,
    theme: str = "light",
    lang: str = "en",
    digits: int = 4,
    video: str | None = None,
    progress: bool = False,
) -> list[Path]:
    """Write ``training.json``, ``training.svg``, ``training.png`` (and ``training.mp4`` at quality ``video``,
    when there is a surface to draw the runs on; else a note says why not)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if video is not None and record.surface is None and not any(n["key"] == "tr_note_no_video" for n in record.notes):
        record.notes.append({"key": "tr_note_no_video", "params": {}})
    files = [save_training(record, folder / "training.json")]
    files += training_figure(record, folder, theme, lang, digits)
    if video is not None and record.surface is not None:
        with _video_bar(progress) as on_part:
            files.append(render_training_video(record, folder, video, theme, lang, digits, on_part))
    return files


@contextmanager
def _video_bar(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("rendering training.mp4"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("video", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def training_writer(
    record: TrainingRecord, diagram: Any, video: str | None = None, slides: bool = False, html: bool = False
) -> Callable[[Path], list[Path]]:
    """What `explainer.pipeline.write_outputs` calls with its temporary folder, after the other outputs:
    the training files, plus a view of ``index.html`` and pages of the deck when those were written."""

    def write(folder: Path) -> list[Path]:
        theme, lang, digits = diagram.theme, diagram.lang, diagram.digits
        files = write_training(record, folder, theme, lang, digits, video, progress=True)
        page = folder / "index.html"
        if html and page.exists():
            view = html_view(record, (folder / "training.svg").read_text(encoding="utf-8"), lang, digits)
            page.write_text(
                add_view(page.read_text(encoding="utf-8"), VIEW_ID, t("tr_page", lang), view, lang), encoding="utf-8"
            )
        if slides and (folder / "slides.pdf").exists():
            pages = slide_pages(record, theme, lang, digits)
            append_pages(folder, pages, [page_notes(p) for p in pages])
        return files

    return write


def explain_training(
    script: str | Path,
    argv: list[str] | None,
    options: TrainingOptions,
    folder: Path,
    seed: int | None = 0,
    **style: Any,
) -> list[Path]:
    """`run_training` then `write_training` into ``folder``; ``style``: theme, lang, digits, video."""
    return write_training(run_training(script, argv, options, seed), folder, **style)


@contextmanager
def _progress_bars(specs: list[Any], enabled: bool) -> Iterator[Callable[[int, str, Any], None] | None]:
    """One rich bar per run: steps done (the total is known once a first run has finished), elapsed time."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    labels = [s.label or (f"lr {fmt_number(s.lr)}" if s.lr is not None else "the script") for s in specs]
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    ) as bars:
        tasks = [
            bars.add_task(f"run {i + 1}: {label}", total=None, start=False, status="waiting")
            for i, label in enumerate(labels)
        ]
        known: list[int] = []

        def on_event(index: int, event: str, value: Any) -> None:
            task = tasks[index]
            if event == "start":
                bars.start_task(task)
                bars.update(task, status="", total=known[0] if known else None)
            elif event == "steps":
                bars.update(task, completed=value)
            elif event == "done":
                run: Run = value
                if not known:
                    known.append(run.steps)
                    for other in tasks:
                        if bars.tasks[other].total is None and other != task:
                            bars.update(other, total=run.steps)
                status = f"diverged at step {run.diverged_at}" if run.diverged_at else "done"
                bars.update(task, completed=run.steps, total=run.steps, status=status)
                bars.stop_task(task)

        yield on_event


__all__ = ["OUTPUTS", "explain_training", "run_training", "training_writer", "write_training"]
