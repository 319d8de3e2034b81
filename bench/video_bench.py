"""Video speed: render seconds per step at 480p, and the 1080p60 render of a 17-node MLP.

    .venv/bin/python bench/video_bench.py               # chains of about 5, 20 and 80 nodes, and the MLP
    .venv/bin/python bench/video_bench.py --sizes 5     # quicker
    .venv/bin/python bench/video_bench.py --no-mlp      # the chains only

For each size it traces a chain of ops (mul, add, tanh per link), renders our backprop
video at the lowest quality and reports seconds per step; the baseline, measured in the
same run, is a plain Manim scene with the same number of boxes and arrows that animates
one box and one arrow per step, written the usual way (all mobjects added to the scene,
one ``play`` per step). Then the 17-node MLP of tests/scripts/mlp17.py is rendered at
480p15 and at 1080p60, in the same run.

Targets on 2 cores: at most 0.4 s per step at 480p on the 80-node graph; the 1080p60
MLP video in under 2 minutes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

torch.set_num_threads(1)

from explainer.graph import build_graph  # noqa: E402
from explainer.story import build_story  # noqa: E402
from explainer.trace import trace_call  # noqa: E402

#: Targets (issue 12): seconds per step at 480p on the 80-node graph; seconds for the 1080p60 MLP.
TARGET_STEP_480P = 0.4
TARGET_MLP_1080P60 = 120.0


def chain_graph(target_nodes: int):  # noqa: ANN201
    """A traced chain with about ``target_nodes`` nodes (3 ops and 1 input per link)."""
    links = max(1, (target_nodes - 3) // 4)
    x = torch.tensor([0.5, -0.25], requires_grad=True)

    def f() -> torch.Tensor:
        h = x
        for i in range(links):
            h = torch.tanh(h * torch.tensor([1.1, 0.9]) + 0.1 * (i + 1))
        return h.sum()

    return build_graph(trace_call(f))


def mlp_graph():  # noqa: ANN201
    """The 17-node MLP of tests/scripts/mlp17.py, run as a user's script."""
    from explainer.run import RunOptions, run_script

    return build_graph(run_script(ROOT / "tests" / "scripts" / "mlp17.py", [], RunOptions()).trace)


def time_ours(g, out: Path, quality: str = "low") -> tuple[float, int]:  # noqa: ANN001
    from explainer.render.video import render_video

    story = build_story(g)
    t0 = time.perf_counter()
    render_video(story, out, quality=quality)
    return time.perf_counter() - t0, len(story.steps)


def time_plain(n_boxes: int, n_steps: int, out: Path) -> float:
    import manim as m
    import numpy as np

    class Plain(m.Scene):
        def construct(self) -> None:
            cols = int(np.ceil(np.sqrt(n_boxes * 16 / 9)))
            boxes = [
                m.RoundedRectangle(width=0.5, height=0.3, corner_radius=0.05).move_to(
                    [(-6 + (i % cols) * 12 / max(cols, 1)), (3 - (i // cols) * 6 / max(n_boxes // cols, 1)), 0]
                )
                for i in range(n_boxes)
            ]
            labels = [m.Text(f"n{i}", font_size=14).move_to(b) for i, b in enumerate(boxes)]
            arrows = [m.Arrow(boxes[i].get_center(), boxes[i + 1].get_center(), buff=0.2) for i in range(n_boxes - 1)]
            self.add(*boxes, *labels, *arrows)
            for s in range(n_steps):
                i = s % max(n_boxes - 1, 1)
                dot = m.Dot(arrows[i].get_end())
                self.play(m.Indicate(boxes[i]), m.MoveAlongPath(dot, arrows[i]), run_time=1.0)
                self.remove(dot)

    settings = {
        "quality": "low_quality",
        "media_dir": str(out),
        "disable_caching": True,
        "progress_bar": "none",
        "verbosity": "ERROR",
        "output_file": "plain",
    }
    t0 = time.perf_counter()
    with m.tempconfig(settings):
        Plain().render()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[5, 20, 80])
    ap.add_argument("--no-mlp", action="store_true", help="skip the 17-node MLP at 480p15 and 1080p60")
    args = ap.parse_args()
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="backprop video, 480p15, 2 cores")
    for col in ("nodes", "steps", "ours s/step", "plain Manim s/step", "ratio", f"target ≤ {TARGET_STEP_480P} s/step"):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            g = chain_graph(size)
            ours, steps = time_ours(g, Path(tmp) / f"ours{size}")
            plain = time_plain(g.number_of_nodes(), steps, Path(tmp) / f"plain{size}")
            per, per_plain = ours / steps, plain / steps
            table.add_row(
                str(g.number_of_nodes()),
                str(steps),
                f"{per:.3f}",
                f"{per_plain:.3f}",
                f"{per / per_plain:.2f}x",
                ("met" if per <= TARGET_STEP_480P else "missed") if g.number_of_nodes() >= 60 else "–",
            )
        console.print(table)
        if args.no_mlp:
            return
        g = mlp_graph()
        low, steps = time_ours(g, Path(tmp) / "mlp-low", "low")
        high, _ = time_ours(g, Path(tmp) / "mlp-high", "high")
        mlp = Table(title=f"17-node MLP ({g.number_of_nodes()} nodes, {steps} steps), same run")
        for col in ("480p15 s", "1080p60 s", "1080p60 / 480p15", f"target 1080p60 < {TARGET_MLP_1080P60:.0f} s"):
            mlp.add_column(col, justify="right")
        mlp.add_row(f"{low:.1f}", f"{high:.1f}", f"{high / low:.1f}x", "met" if high < TARGET_MLP_1080P60 else "missed")
        console.print(mlp)


if __name__ == "__main__":
    main()
