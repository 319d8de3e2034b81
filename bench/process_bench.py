"""Whole-process time: ``explain-graph SCRIPT`` against torchviz on the same script.

    .venv/bin/python bench/process_bench.py            # ResNet-18 and a 48-layer Transformer
    .venv/bin/python bench/process_bench.py --quick    # the lecture's model only (a smoke test)

A user meets the tool as a command: start-up imports, running their script, the trace,
the graph, the layout and writing the file all count. For each model of
``bench/models.py`` a training script is written (model, SGD, forward, loss,
``zero_grad``, ``backward``, ``step``: what a lecturer's script does). Two processes run it:

* ours: ``python -m explainer SCRIPT --format svg`` (the default diagram, folded as the CLI folds);
* torchviz: the same script with ``make_dot(loss, params=...).render(format="svg")`` appended.

Runs are interleaved, each pair ``--repeat`` times after one untimed warm-up; the best
of each is kept, and the ratio ours / torchviz is printed (target: at most 1.0x). One torch
thread. Both run as installed packages run: with their bytecode cached (the warm-up writes
it, whatever ``PYTHONDONTWRITEBYTECODE`` says), not compiled anew from source each time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

SCRIPT = """\
import sys
sys.path.insert(0, {bench!r})
import torch
from models import {factory}

case = {factory}({args})
model, criterion, x, y = case.model, case.criterion, case.x, case.y
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
pred = model(x)
loss = criterion(pred, y)
optimizer.zero_grad()
loss.backward()
optimizer.step()
"""

TORCHVIZ = """
from torchviz import make_dot
make_dot(loss, params=dict(model.named_parameters())).render({out!r}, format="svg", cleanup=True)
"""

MODELS = {
    "linear regression": ("linear_regression", ""),
    "ResNet-18": ("resnet18", ""),
    "Transformer-48": ("transformer", "48"),
}


def _time(cmd: list[str], cwd: Path) -> float:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[2:]} failed:\n{proc.stderr[-2000:]}")
    return elapsed


def measure(name: str, repeat: int, tmp: Path) -> tuple[float, float]:
    factory, args = MODELS[name]
    script = tmp / f"{factory}_step.py"
    script.write_text(SCRIPT.format(bench=str(BENCH), factory=factory, args=args), encoding="utf-8")
    tv_script = tmp / f"{factory}_torchviz.py"
    tv_script.write_text(script.read_text() + TORCHVIZ.format(out=str(tmp / f"{factory}_tv")), encoding="utf-8")
    ours_cmd = [
        sys.executable,
        "-m",
        "explainer",
        str(script),
        "--out",
        str(tmp / f"{factory}_ours"),
        "--format",
        "svg",
        "--force",
    ]
    tv_cmd = [sys.executable, str(tv_script)]
    _time(ours_cmd, ROOT), _time(tv_cmd, ROOT)  # warm-up: caches, bytecode
    ours, tv = [], []
    for _ in range(repeat):
        ours.append(_time(ours_cmd, ROOT))
        tv.append(_time(tv_cmd, ROOT))
    return min(ours), min(tv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the lecture's model only")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    names = ["linear regression"] if args.quick else ["linear regression", "ResNet-18", "Transformer-48"]
    print("| model | explain-graph, s | torchviz, s | ratio |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="explain-graph-bench-") as tmp:
        for name in names:
            ours, tv = measure(name, args.repeat, Path(tmp))
            print(f"| {name} | {ours:.2f} | {tv:.2f} | {ours / tv:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
