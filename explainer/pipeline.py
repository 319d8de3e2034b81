"""The whole path as one call: run -> trace -> graph -> fold -> story -> renderers -> output folder.

The story (the choreography and the frame layout, `explainer.story`) is computed once
per run, only when a step-through output (video, slides, page) is asked for, and
handed to each of them.

Files are rendered into a staging folder inside the output folder and switched into
place only when everything succeeded (`explainer.output`), so a failure leaves the
folder as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import networkx as nx

from .defaults import DEFAULT_MAX_ELEMENTS, FORMATS
from .fold import FoldOptions, FoldResult, fold_for_display
from .graph import build_graph, save_graph
from .output import open_output, planned_outputs
from .render.graphviz import DiagramOptions, render_static
from .render.html import render_html
from .render.plots import loss_curve
from .render.pptx import import_pptx
from .render.slides import render_slides
from .render.video import check_manim, render_video
from .run import RunOptions, load_source, run_script
from .story import build_story
from .tools import check_font, find_tool, require_extra
from .trace.model import RecordOptions
from .training.explain import run_training, training_writer


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
    ended: dict[str, Any] | None = None  # how the script ended the process after the traced step, if it did
    skipped: list[str] = field(default_factory=list)  # a notebook's IPython lines, not run
    training: Any = None  # explainer.training.record.TrainingRecord with --train/--compare/--lr-sweep


def required_tools(
    video: bool = False, slides: bool = False, losses: bool = False, lang: str = "en", pptx: bool = False
) -> None:
    """Check, in seconds, that every tool, extra and font the requested outputs need is there.

    Runs before the script, so a missing one costs no traced run.
    """
    find_tool("dot")
    check_font(lang)
    if slides:
        find_tool("rsvg-convert")
        find_tool("pdftoppm")
    if losses:
        require_extra("plots", "--run-to-end's loss curve")
    if video:
        require_extra("video", "--video")
        check_manim()
    if pptx:
        import_pptx()


def render_outputs(
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
    pptx: bool = False,
) -> None:
    """Render every requested output of ``g`` into the (staging) folder ``out_dir``.

    ``shown`` is the graph the diagram draws when it is not ``g`` itself (a folded
    view, `explainer.fold`); graph.json always holds the full ``g``. ``slides`` adds
    ``slides.pdf`` and ``slides/page-NN.png``, ``html`` an offline ``index.html``:
    both show the same view as the diagram; ``pptx`` adds ``slides.pptx`` to the deck. ``extra``
    writes more files into the same folder after these (the training outputs, which add to
    the page and the deck).
    """
    view = g if shown is None else shown
    slides = slides or pptx
    # The story's one dot process also chooses the diagram's direction: two dot calls in all.
    story = build_story(view, diagram) if video is not None or slides or html else None
    chosen = story.diagram_rankdir if story is not None else None
    render_static(view, out_dir, replace(diagram, rankdir=chosen) if chosen else diagram, formats)
    save_graph(g, out_dir / "graph.json")
    if losses:
        loss_curve(losses, out_dir / "loss_curve.png", diagram.theme, diagram.lang, captured_step)
    if story is None:
        return
    if video is not None:
        render_video(story, out_dir, video.quality, on_video_step)
    if slides:
        render_slides(story, out_dir, pptx=pptx)
    if html:
        render_html(story, out_dir)
    if extra is not None:
        extra(out_dir)


def write_outputs(
    g: nx.DiGraph,
    out_dir: Path,
    diagram: DiagramOptions,
    formats: tuple[str, ...] = FORMATS,
    shown: nx.DiGraph | None = None,
    slides: bool = False,
    html: bool = False,
    force: bool = False,
) -> list[Path]:
    """Render ``g`` into ``out_dir`` under the output-folder contract (`explainer.output`); return the files."""
    planned = planned_outputs(formats, slides=slides, html=html)
    required_tools(slides=slides, lang=diagram.lang)
    with open_output(out_dir, planned, force=force) as folder:
        render_outputs(g, folder.staging_path, diagram, formats, shown=shown, slides=slides, html=html)
        return folder.commit(planned)


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
    force: bool = False,
    on_wait: Callable[[Path], None] | None = None,
    training: Any = None,
    pptx: bool = False,
) -> Report:
    """Trace ``script`` and write its diagrams and graph.json into ``out_dir``.

    The output folder is checked, created and locked before the script runs, and files
    appear in it only when everything succeeded (`explainer.output`); ``force`` lets the
    run replace files of the user's that have output names.

    The diagram is folded as ``fold`` says (by default, automatically above
    `explainer.fold.DEFAULT_MAX_NODES` nodes); graph.json holds the full graph.
    The repeated blocks of a large model record only their outputs unless the
    diagram opens them (``fold.depth``, ``fold.expand``, ``max_nodes=0``) or
    ``full_trace`` asks for every op (`explainer.trace.RecordOptions`).
    ``training`` (`explainer.training.TrainingOptions`) also trains the script over
    time after the trace and writes training.json/svg/png (`explainer.training`).
    """
    run = run or RunOptions()
    fold = fold or FoldOptions()
    if run.record is None:
        record = RecordOptions(everything=full_trace or fold.max_nodes <= 0, depth=fold.depth, expand=fold.expand)
        run = replace(run, record=record)
    diagram = diagram or DiagramOptions(title=Path(script).name)
    load_source(Path(script))  # a missing script or a syntax error before anything else
    required_tools(video=video is not None, slides=slides or pptx, losses=run.run_to_end, lang=diagram.lang, pptx=pptx)
    if training is not None:
        require_extra("plots", "--train, --compare and --lr-sweep")
        if slides or pptx:
            find_tool("pdfunite")  # the training pages join the deck
    planned = planned_outputs(
        formats,
        losses=run.run_to_end,
        video=video is not None,
        slides=slides,
        html=html,
        training=training is not None,
        pptx=pptx,
    )
    with open_output(out_dir, planned, force=force, on_wait=on_wait) as folder:
        result = run_script(script, argv, run)
        g = build_graph(result.trace, max_elements=max_elements)
        losses = result.losses if run.run_to_end else None
        view = fold_for_display(g, fold)
        trained, extra = None, None
        if training is not None:
            trained = run_training(script, argv, training, seed=run.seed)
            extra = training_writer(
                trained, diagram, video.quality if video else None, slides=slides or pptx, html=html
            )
        render_outputs(
            g,
            folder.staging_path,
            diagram,
            formats,
            losses,
            run.step,
            video,
            on_video_step,
            shown=view.graph if view.folded else None,
            slides=slides,
            html=html,
            extra=extra,
            pptx=pptx,
        )
        files = folder.commit(planned)
    return Report(
        graph=g,
        trace=result.trace,
        files=files,
        losses=result.losses,
        fold=view,
        ended=result.ended,
        skipped=result.skipped,
        training=trained,
    )


def draw(
    g: nx.DiGraph, out_dir: str | Path, slides: bool = False, html: bool = False, force: bool = False, **options: Any
) -> list[Path]:
    """Write graph.svg/png/pdf and graph.json for graph ``g`` into ``out_dir`` (the Python API).

    ``options`` are `DiagramOptions` fields (``theme``, ``lang``, ``digits``...);
    ``slides=True`` adds slides.pdf and slides/page-NN.png, ``html=True`` index.html.
    Files of yours with those names are left alone unless ``force=True`` (`explainer.output`).
    """
    return write_outputs(g, Path(out_dir), DiagramOptions(**options), slides=slides, html=html, force=force)
