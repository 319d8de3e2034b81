"""The whole static path as one call: run -> trace -> graph -> layout -> renderers.

Files are written to a temporary folder beside the output folder and moved into
place only when everything succeeded, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import networkx as nx

from collections.abc import Callable

from .fold import FoldOptions, FoldResult, fold_for_display
from .graph import DEFAULT_MAX_ELEMENTS, build_graph, save_graph
from .render.graphviz import FORMATS, DiagramOptions, render_static
from .run import RunOptions, run_script


#: Every file or folder an explanation may write; others in the folder are left alone.
OUTPUT_NAMES = frozenset(
    {"graph.svg", "graph.png", "graph.pdf", "graph.json", "loss_curve.png", "backward.mp4", "backward.srt",
     "slides.pdf", "slides", "index.html", "training.json", "training.svg", "training.png", "training.mp4"}
)


@dataclass(frozen=True)
class VideoOptions:
    """``--video``: quality preset (low = 480p15 ... high = 1080p60)."""

    quality: str = "low"


@dataclass
class Report:
    """What one explanation produced."""

    graph: nx.DiGraph
    trace: Any
    files: list[Path] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    fold: FoldResult | None = None  # how the diagram was folded (graph.json is always full)
    training: Any = None  # explainer.training.record.TrainingRecord with --train/--compare/--lr-sweep


def write_outputs(
    g: nx.DiGraph,
    out_dir: Path,
    diagram: DiagramOptions,
    formats: tuple[str, ...] = FORMATS,
    losses: list[float] | None = None,
    captured_step: int | None = None,
    video: VideoOptions | None = None,
    on_video_step: Callable[[int, int], None] | None = None,
    shown: nx.DiGraph | None = None,
    slides: bool = False,
    html: bool = False,
    extra: Callable[[Path], list[Path]] | None = None,
) -> list[Path]:
    """Render ``g`` into ``out_dir`` atomically; return the files written.

    ``shown`` is the graph the diagram draws when it is not ``g`` itself (a folded
    view, `explainer.fold`); graph.json always holds the full ``g``. ``slides`` adds
    ``slides.pdf`` and ``slides/page-NN.png``, ``html`` an offline ``index.html``:
    both show the same view as the diagram. ``extra`` writes more files into the
    same temporary folder after these (the training outputs), so they move with them.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".explain-graph-", dir=out_dir.parent))
    try:
        render_static(g if shown is None else shown, tmp, diagram, formats)
        save_graph(g, tmp / "graph.json")
        if losses:
            from .render.plots import loss_curve

            loss_curve(losses, tmp / "loss_curve.png", diagram.theme, diagram.lang, captured_step)
        if video is not None:
            from .render.video import render_video  # imports Manim: only on this path

            # The video shows the same (possibly folded) view as the diagram.
            render_video(g if shown is None else shown, tmp, video.quality, diagram.theme, diagram.lang,
                         diagram.digits, on_video_step)
        if slides:
            from .render.slides import render_slides

            render_slides(g if shown is None else shown, tmp, diagram)
        if html:
            from .render.html import render_html

            render_html(g if shown is None else shown, tmp, diagram)
        if extra is not None:
            extra(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for f in sorted(tmp.iterdir()):
            dest = out_dir / f.name
            if f.is_dir() and dest.is_dir():  # slides/: replace the folder, no stale pages
                shutil.rmtree(dest)
            f.replace(dest)
            written.append(dest)
        # Outputs of an earlier run that this run did not make would show other numbers.
        for name in OUTPUT_NAMES - {f.name for f in written}:
            stale = out_dir / name
            if stale.is_dir():
                shutil.rmtree(stale)
            elif stale.exists():
                stale.unlink()
        return written
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def explain_script(
    script: str | Path,
    out_dir: str | Path,
    argv: list[str] | None = None,
    run: RunOptions | None = None,
    diagram: DiagramOptions | None = None,
    formats: tuple[str, ...] = FORMATS,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    video: VideoOptions | None = None,
    on_video_step: Callable[[int, int], None] | None = None,
    fold: FoldOptions | None = None,
    slides: bool = False,
    html: bool = False,
    full_trace: bool = False,
    training: Any = None,
) -> Report:
    """Trace ``script`` and write its diagrams and graph.json into ``out_dir``.

    The diagram is folded as ``fold`` says (by default, automatically above
    `explainer.fold.DEFAULT_MAX_NODES` nodes); graph.json holds the full graph.
    The repeated blocks of a large model record only their outputs unless the
    diagram opens them (``fold.depth``, ``fold.expand``, ``max_nodes=0``) or
    ``full_trace`` asks for every op (`explainer.trace.RecordOptions`).
    ``training`` (`explainer.training.TrainingOptions`) also trains the script over
    time after the trace and writes training.json/svg/png (`explainer.training`).
    """
    from .trace import RecordOptions

    run = run or RunOptions()
    fold = fold or FoldOptions()
    if run.record is None:
        record = RecordOptions(everything=full_trace or fold.max_nodes <= 0, depth=fold.depth, expand=fold.expand)
        run = replace(run, record=record)
    diagram = diagram or DiagramOptions(title=Path(script).name)
    result = run_script(script, argv, run)
    g = build_graph(result.trace, max_elements=max_elements)
    losses = result.losses if run.run_to_end else None
    view = fold_for_display(g, fold)
    trained, extra = None, None
    if training is not None:
        from .training.explain import run_training, training_writer

        trained = run_training(script, argv, training, seed=run.seed)
        extra = training_writer(trained, diagram, video.quality if video else None, slides=slides, html=html)
    files = write_outputs(g, Path(out_dir), diagram, formats, losses, run.step, video, on_video_step,
                          shown=view.graph if view.folded else None, slides=slides, html=html, extra=extra)
    return Report(graph=g, trace=result.trace, files=files, losses=result.losses, fold=view, training=trained)


def draw(g: nx.DiGraph, out_dir: str | Path, slides: bool = False, html: bool = False, **options: Any) -> list[Path]:
    """Write graph.svg/png/pdf and graph.json for graph ``g`` into ``out_dir`` (the Python API).

    ``options`` are `DiagramOptions` fields (``theme``, ``lang``, ``digits``...);
    ``slides=True`` adds slides.pdf and slides/page-NN.png, ``html=True`` index.html.
    """
    return write_outputs(g, Path(out_dir), DiagramOptions(**options), slides=slides, html=html)
