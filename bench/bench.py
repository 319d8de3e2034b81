"""Benchmark explain-graph against plain PyTorch and torchviz on a ladder of models.

    .venv/bin/python bench/bench.py            # every model (a few minutes on 2 cores)
    .venv/bin/python bench/bench.py --quick    # the small ones only (a smoke test)

For each model of ``bench/models.py``, in one process, on one thread:

* autograd nodes: reachable from the loss's ``grad_fn``; diagram nodes: our full graph;
* trace in step: the step (forward + loss + backward) run under our trace, which
  records values, gradients and the backward order, as a ratio to the plain step.
  This is what a traced training step costs; a large model's repeated blocks
  record their outputs only (``RecordOptions``), as the CLI does by default;
* trace + graph: the same plus turning the records into the `Trace` and the graph
  (work done once, after the step), as a ratio to the plain step;
* full trace: the whole of it with every op recorded (``--full-trace``), as a ratio;
* default render: what the CLI draws (folded above ``--max-nodes``), as SVG, as a
  ratio to torchviz's ``make_dot`` + SVG render of the same model;
* expanded render: our full graph (full trace), unfolded, as SVG, as a ratio to torchviz's;
* trace peak: the most memory the default trace held (``tracemalloc``: Python objects
  and the numpy copies of values and gradients; torch's own buffers are not counted).

Times are the best of a few repeats (renders interleaved with torchviz's), each
after a ``gc.collect()`` so that none pays for an earlier one's garbage (collection
during a run still counts); the first trace of the process (one-time imports) is
run before any timing. The whole command as a process (start-up imports included)
against torchviz's whole process: ``bench/process_bench.py``.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import models  # noqa: E402

from explainer.fold import fold_for_display  # noqa: E402
from explainer.graph import build_graph  # noqa: E402
from explainer.render.graphviz import DiagramOptions, render_static  # noqa: E402
from explainer.trace import RecordOptions, Session  # noqa: E402


@dataclass
class Row:
    name: str
    autograd_nodes: int
    nodes: int
    shown: int
    plain_s: float
    step_s: float
    trace_s: float
    full_s: float
    torchviz_s: float
    default_s: float
    expanded_s: float
    peak_mib: float

    @property
    def step_ratio(self) -> float:
        return self.step_s / self.plain_s

    @property
    def trace_ratio(self) -> float:
        return self.trace_s / self.plain_s

    @property
    def full_ratio(self) -> float:
        return self.full_s / self.plain_s

    @property
    def default_ratio(self) -> float:
        return self.default_s / self.torchviz_s

    @property
    def expanded_ratio(self) -> float:
        return self.expanded_s / self.torchviz_s


def best(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        gc.collect()  # no run pays for garbage an earlier one left
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def autograd_nodes(loss: torch.Tensor) -> int:
    seen = {loss.grad_fn}
    stack = [loss.grad_fn]
    while stack:
        for child, _ in stack.pop().next_functions:
            if child is not None and child not in seen:
                seen.add(child)
                stack.append(child)
    return len(seen)


def measure(case: models.Case, tmp: Path) -> Row:
    from torchviz import make_dot

    case.step()  # warm up the model's kernels
    n_autograd = autograd_nodes(case.loss())

    def traced(options: RecordOptions, times: list[tuple[float, float]] | None = None) -> object:
        session = Session(record=options)
        gc.collect()
        t0 = time.perf_counter()
        with session.active():
            case.step()
        t1 = time.perf_counter()
        g = build_graph(session.finish({"model": case.model, "criterion": case.criterion}))
        if times is not None:
            times.append((t1 - t0, time.perf_counter() - t0))
        return g

    # Interleaved with the plain step, best of several: single runs on a small shared
    # machine vary by tens of percent.
    plains: list[float] = []
    light: list[tuple[float, float]] = []
    full: list[tuple[float, float]] = []
    for i in range(15):
        plains.append(best(case.step, 1))
        traced(RecordOptions(), light)
        if i % 5 == 0:  # the full trace is slow: fewer runs
            traced(RecordOptions(everything=True), full)
    plain = min(plains)
    g_full = traced(RecordOptions(everything=True))
    g = traced(RecordOptions())
    tracemalloc.start()
    traced(RecordOptions())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    opts = DiagramOptions(title=case.name)

    def torchviz() -> object:
        loss = case.loss()
        return make_dot(loss, params=dict(case.model.named_parameters())).pipe(format="svg")

    def default() -> object:
        view = fold_for_display(g).graph
        return render_static(view, tmp, opts, ("svg",), stem="default")

    def expanded() -> object:
        return render_static(g_full, tmp, opts, ("svg",), stem="expanded")

    # Interleaved, best of three: other processes on a small machine slow single runs.
    torchviz_s = default_s = expanded_s = float("inf")
    for _ in range(3):
        torchviz_s = min(torchviz_s, best(torchviz, 1))
        default_s = min(default_s, best(default, 1))
        expanded_s = min(expanded_s, best(expanded, 1))
    return Row(
        name=case.name,
        autograd_nodes=n_autograd,
        nodes=g.number_of_nodes(),
        shown=fold_for_display(g).nodes,
        plain_s=plain,
        step_s=min(t for t, _ in light),
        trace_s=min(t for _, t in light),
        full_s=min(t for _, t in full),
        torchviz_s=torchviz_s,
        default_s=default_s,
        expanded_s=expanded_s,
        peak_mib=peak / 2**20,
    )


COLUMNS = (
    "model",
    "autograd nodes",
    "graph nodes (shown)",
    "fwd+loss+bwd",
    "trace in step",
    "in-step ratio",
    "trace+graph ratio",
    "full trace ratio",
    "torchviz svg",
    "default svg",
    "default ratio",
    "expanded svg",
    "expanded ratio",
    "trace peak",
)


def cells(r: Row) -> list[str]:
    return [
        r.name,
        f"{r.autograd_nodes:,}",
        f"{r.nodes:,} ({r.shown:,})",
        f"{r.plain_s * 1e3:.1f} ms",
        f"{r.step_s * 1e3:.1f} ms",
        f"{r.step_ratio:.2f}x",
        f"{r.trace_ratio:.1f}x",
        f"{r.full_ratio:.1f}x",
        f"{r.torchviz_s:.2f} s",
        f"{r.default_s:.2f} s",
        f"{r.default_ratio:.2f}x",
        f"{r.expanded_s:.2f} s",
        f"{r.expanded_ratio:.2f}x",
        f"{r.peak_mib:.1f} MiB",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the small models (a smoke test)")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    args = parser.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    torch.set_num_threads(1)
    console = Console(width=200)
    warm = models.linear_regression()
    session = Session()
    with session.active():
        warm.step()
    build_graph(session.finish({}))  # one-time imports of the first trace
    rows = []
    with tempfile.TemporaryDirectory(prefix="explain-graph-bench-") as tmp:
        for make in models.ladder(quick=args.quick):
            case = make()
            console.print(f"[dim]measuring {case.name} …[/]", highlight=False)
            rows.append(measure(case, Path(tmp)))

    table = Table(
        title="explain-graph vs plain PyTorch and torchviz (1 thread; ratios: ours / theirs, lower is better)"
    )
    for col in COLUMNS:
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in rows:
        table.add_row(*cells(r))
    console.print(table)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(
        f"process peak RSS {rss:.0f} MiB · torch {torch.__version__} · {os.cpu_count()} CPUs", highlight=False
    )
    if args.markdown:
        print("| " + " | ".join(COLUMNS) + " |")
        print("|" + "---|" * len(COLUMNS))
        for r in rows:
            print("| " + " | ".join(cells(r)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
