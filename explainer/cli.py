"""``explain-graph``: the command line. Thin: parse options, call the stages, report.

Heavy imports (torch, networkx) happen inside the command, so ``--help`` is instant.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import rich_click as click
from click import get_current_context
from rich.console import Console

from .defaults import DEFAULT_DIGITS, DEFAULT_MAX_ELEMENTS, DEFAULT_MAX_NODES, FORMATS
from .exits import run_guarded
from .output import check_out_path
from .run import RunOptions, examples, load_source
from .summary import print_summary
from .text import LANGS, t  # cheap: no torch, no networkx
from .themes import THEMES
from .training.report import print_training
from .training.spec import TrainingOptions, parse_compare, parse_lrs


def _formats(value: str) -> tuple[str, ...]:
    items = tuple(dict.fromkeys(v.strip().lower() for v in value.split(",") if v.strip()))
    bad = [v for v in items if v not in FORMATS]
    if bad or not items:
        raise click.BadParameter(f"{', '.join(bad) or value!r}: choose from {', '.join(FORMATS)}")
    return items


@dataclass(frozen=True)
class Invocation:
    """How the command was started, as click's ``obj``: `main` runs it as a process of its own."""

    own_process: bool = False


INPUT, OUTPUT, LOOK, LARGE, VIDEO = "Input", "Output", "Look", "Large models", "Video"
TRAIN = "Training over time"


@click.command(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog="Exit status: 0 done, 1 output not written, 2 bad input or options, 3 the script raised, "
    "4 nothing to explain, 5 an external tool failed, 70 internal error, 130/143 interrupted. "
    "Docs and the graph.json schema: the README.",
)
@click.argument("script", type=click.Path(path_type=Path, dir_okay=True), required=False)
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--example",
    type=click.Choice(tuple(examples())),
    metavar="NAME",
    panel=INPUT,
    help=f"Explain one of the lecture's examples that come with explain-graph instead of a SCRIPT: "
    f"{', '.join(examples())}.",
)
@click.option(
    "--step",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    panel=INPUT,
    help="Explain the N-th backward() call of the script.",
)
@click.option(
    "--run-to-end",
    is_flag=True,
    panel=INPUT,
    help="Let the script finish after the traced step; record every loss and write loss_curve.png.",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=click.IntRange(0, 2**32 - 1),
    panel=INPUT,
    help="Seed Python, NumPy and torch before the script runs, so pictures are reproducible.",
)
@click.option("--no-seed", is_flag=True, panel=INPUT, help="Do not seed: the script's randomness is left as it is.")
@click.option(
    "-o",
    "--out",
    "out_dir",
    metavar="DIR",
    panel=OUTPUT,
    help="Output folder (default: explained/<script name>/). Files of yours there are never replaced "
    "unless --force names them.",
)
@click.option(
    "--force",
    is_flag=True,
    panel=OUTPUT,
    help="Replace files in the output folder that have output names but were not written by "
    "explain-graph (or were changed since).",
)
@click.option(
    "--format",
    "formats",
    default=",".join(FORMATS),
    show_default=True,
    panel=OUTPUT,
    help="Diagram formats, comma-separated.",
)
@click.option(
    "--slides",
    is_flag=True,
    panel=OUTPUT,
    help="Also write slides.pdf (16:9: title, forward pass, one page per backward step, update) "
    "and slides/page-NN.png.",
)
@click.option(
    "--html",
    "html",
    is_flag=True,
    panel=OUTPUT,
    help="Also write index.html: one offline page to step through the forward and backward pass.",
)
@click.option(
    "--theme",
    type=click.Choice(tuple(THEMES)),
    default="light",
    show_default=True,
    panel=LOOK,
    help="light for documents, dark (large type) for slides.",
)
@click.option("--lang", type=click.Choice(LANGS), default="en", show_default=True, panel=LOOK, help="Label language.")
@click.option(
    "--digits",
    default=DEFAULT_DIGITS,
    show_default=True,
    type=click.IntRange(1, 12),
    panel=LOOK,
    help="Significant digits shown.",
)
@click.option(
    "--max-elements",
    default=DEFAULT_MAX_ELEMENTS,
    show_default=True,
    type=click.IntRange(min=1),
    panel=LOOK,
    help="Tensors with more entries are shown (and stored in graph.json) as a summary.",
)
@click.option(
    "--rankdir",
    type=click.Choice(("LR", "TB")),
    default=None,
    panel=LOOK,
    help="Diagram direction (default: LR for shallow graphs, TB for deep ones).",
)
@click.option(
    "--depth",
    type=click.IntRange(min=0),
    default=None,
    panel=LARGE,
    help="Fold every module deeper than N into one box showing its output (model = 1, model.fc1 = 2). "
    "Default: automatic above --max-nodes.",
)
@click.option(
    "--expand",
    "expand",
    multiple=True,
    metavar="PATH",
    panel=LARGE,
    help="Open this folded module, e.g. model.layers.0 (repeatable).",
)
@click.option(
    "--max-nodes",
    default=DEFAULT_MAX_NODES,
    show_default=True,
    type=click.IntRange(min=0),
    panel=LARGE,
    help="Fold the diagram automatically when the graph has more nodes (0: never). graph.json stays full.",
)
@click.option(
    "--full-trace",
    is_flag=True,
    panel=LARGE,
    help="Record every op's value and gradient, also inside the repeated blocks of a large model "
    "(slower; by default those blocks record only their outputs and stay folded).",
)
@click.option(
    "--video",
    is_flag=True,
    panel=VIDEO,
    help="Also render backward.mp4 (Manim): the gradient travelling backward step by step, plus "
    "backward.srt. Needs the [video] extra.",
)
@click.option(
    "--quality",
    type=click.Choice(("low", "medium", "high")),
    default="low",
    show_default=True,
    panel=VIDEO,
    help="Video quality: low = 480p15 (quick preview), medium = 720p30, high = 1080p60.",
)
@click.option(
    "--train",
    is_flag=True,
    panel=TRAIN,
    help="Also run the whole training: loss curve, parameters over the steps and their path on the loss "
    "surface (training.json/svg/png; training.mp4 with --video).",
)
@click.option(
    "--compare",
    "compare",
    metavar="LIST",
    panel=TRAIN,
    help="Train once per optimizer swapped in for the script's, e.g. sgd,adam,rmsprop,adagrad "
    "(hyperparameters after colons: sgd:momentum=0.9). Implies --train.",
)
@click.option(
    "--lr-sweep",
    "lr_sweep",
    metavar="LIST",
    panel=TRAIN,
    help="Train once per learning rate with the script's own optimizer, e.g. 0.01,0.05,0.1,0.2. Implies --train.",
)
@click.option(
    "--lr",
    "lr",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    panel=TRAIN,
    help="Learning rate for --train and --compare (default: the script's).",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    panel=TRAIN,
    help="Training runs in parallel (default: the number of cores).",
)
@click.option(
    "--pptx",
    is_flag=True,
    panel=OUTPUT,
    help="Also write slides.pptx (the deck for PowerPoint, the chain rule in the speaker notes); "
    "implies --slides; needs pip install 'explain-graph[pptx]'.",
)
@click.version_option(package_name="explain-graph")
def command(
    script: Path | None,
    script_args: tuple[str, ...],
    example: str | None,
    step: int,
    run_to_end: bool,
    seed: int,
    no_seed: bool,
    out_dir: str | None,
    force: bool,
    formats: str,
    slides: bool,
    html: bool,
    theme: str,
    lang: str,
    digits: int,
    max_elements: int,
    rankdir: str | None,
    depth: int | None,
    expand: tuple[str, ...],
    max_nodes: int,
    full_trace: bool,
    video: bool,
    quality: str,
    train: bool,
    compare: str | None,
    lr_sweep: str | None,
    lr: float | None,
    jobs: int | None,
    pptx: bool,
) -> None:
    """Explain one training step of SCRIPT (a .py file or a Jupyter/Colab notebook): its autograd
    graph with the real values and gradients.

    Runs SCRIPT unmodified as __main__ (arguments after -- go to it), records its first forward
    pass, loss, backward pass and optimizer step, then draws the graph.

    \b
    Examples (they work from any folder):
      explain-graph --example linear-regression --slides --html
      explain-graph --example cross-entropy --lang ko --theme dark
      explain-graph train.py --out out/ --step 3 -- --epochs 5
      explain-graph lecture.ipynb --video
      explain-graph --example linear-regression --compare sgd,adam,rmsprop,adagrad
    """
    if example is not None:
        # The example is the script: any positional words are its arguments.
        script_args = ((str(script),) if script is not None else ()) + script_args
        script = examples()[example]
    elif script is None:
        raise click.UsageError("give a SCRIPT to explain (a .py file or a notebook), or --example NAME")
    try:
        fmt = _formats(formats)
    except click.BadParameter as exc:
        raise click.UsageError(f"--format: {exc.message}") from None
    if compare and lr_sweep:
        raise click.UsageError("--compare and --lr-sweep are separate experiments: give one of them")
    if lr is not None and lr_sweep:
        raise click.UsageError("--lr-sweep sets the learning rates itself: drop --lr")
    if lr is not None and not (train or compare):
        raise click.UsageError("--lr applies to training runs: add --train or --compare")
    training = (compare, lr_sweep, lr, jobs) if (train or compare or lr_sweep) else None
    # The user's folder, resolved now: the script may change directory.
    out = check_out_path(Path("explained") / script.stem if out_dir is None else out_dir)
    err = Console(stderr=True)
    with _video_progress(video) as on_video_step:
        report = _explain(
            script,
            list(script_args),
            out,
            step,
            run_to_end,
            theme,
            lang,
            digits,
            max_elements,
            fmt,
            rankdir,
            None if no_seed else seed,
            quality if video else None,
            on_video_step,
            fold=(depth, tuple(expand), max_nodes),
            slides=slides,
            html=html,
            full_trace=full_trace,
            force=force,
            training=training,
            pptx=pptx,
            own_process=(get_current_context().obj or Invocation()).own_process,
            on_wait=lambda folder: err.print(
                t("waiting", lang).format(folder=folder), style="yellow", highlight=False, markup=False
            ),
        )
    print_summary(report, digits=digits, lang=lang)
    if report.training is not None:
        print_training(report.training, lang=lang, digits=digits)
    if report.fold is not None and report.fold.message:
        Console().print(report.fold.message, style="yellow", highlight=False, markup=False, soft_wrap=True)


@contextmanager
def _video_progress(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar over the video's steps (Manim's own bars are switched off)."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("rendering backward.mp4"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
    ) as progress:
        task = progress.add_task("video", total=None)

        def on_step(i: int, n: int) -> None:
            progress.update(task, completed=i, total=n)

        yield on_step


def _freeze_imports() -> None:
    """Keep what is imported so far (torch: over 150,000 objects) out of the garbage collector's walks.

    These objects live until the process exits; left in, every full collection during the
    script, the trace and our own imports walks them all again, about 0.3 s of a ResNet-18
    run (``bench/process_bench.py``). Only for a process of our own: a caller's frozen heap
    would never give its garbage back.
    """
    gc.freeze()


def _explain(
    script,
    argv,
    out_dir,
    step,
    run_to_end,
    theme,
    lang,
    digits,
    max_elements,
    formats,
    rankdir,
    seed,
    quality=None,
    on_video_step=None,
    fold=(None, (), 30),
    slides=False,
    html=False,
    full_trace=False,
    force=False,
    on_wait=None,
    training=None,
    pptx=False,
    own_process=False,
):  # noqa: ANN001, ANN202
    load_source(script)  # a missing file or a syntax error is reported before torch loads (~2 s)
    import torch  # noqa: F401  (imported here so --help stays fast)

    if own_process:
        _freeze_imports()

    from .fold import FoldOptions
    from .pipeline import VideoOptions, explain_script
    from .render.graphviz import DiagramOptions

    options = None
    if training is not None:
        compare, lr_sweep, lr, jobs = training
        options = TrainingOptions(
            compare=parse_compare(compare) if compare else (),
            lr_sweep=parse_lrs(lr_sweep) if lr_sweep else (),
            lr=lr,
            jobs=jobs,
            max_elements=max_elements,
        )
    return explain_script(
        script,
        out_dir,
        argv=argv,
        run=RunOptions(step=step, run_to_end=run_to_end, seed=seed),
        diagram=DiagramOptions(theme=theme, lang=lang, digits=digits, rankdir=rankdir, title=script.name),
        formats=formats,
        max_elements=max_elements,
        video=VideoOptions(quality) if quality else None,
        on_video_step=on_video_step,
        fold=FoldOptions(depth=fold[0], expand=fold[1], max_nodes=fold[2]),
        slides=slides,
        html=html,
        full_trace=full_trace,
        force=force,
        on_wait=on_wait,
        training=options,
        pptx=pptx,
    )


def main(argv: list[str] | None = None) -> NoReturn:
    """``explain-graph``: the command, with every way out mapped to a documented exit status.

    0 done; 1 the output could not be written; 2 bad input or options (also a file of yours
    in the way); 3 the script raised; 4 nothing to explain; 5 an external tool failed;
    70 a bug in explain-graph; 130 Ctrl-C; 143 SIGTERM (`explainer.exits`).
    """
    # Without standalone mode click returns --help's and --version's exit status, and
    # raises everything else, where `run_guarded` gives each its exit status.
    sys.exit(
        run_guarded(
            lambda: command.main(
                args=argv, prog_name="explain-graph", standalone_mode=False, obj=Invocation(own_process=True)
            )
        )
    )


if __name__ == "__main__":  # pragma: no cover
    main()
