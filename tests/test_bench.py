"""The benchmark script runs and reports its ratios (no timing assertions: machines are noisy)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import ROOT

RATIO = re.compile(r"^\d+\.\d\d?x$")


def _bench(script: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``bench/SCRIPT`` as a developer does, one torch thread."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, str(ROOT / "bench" / script), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def test_bench_quick_prints_the_ratios() -> None:
    r = _bench("bench.py", "--quick", "--markdown")
    assert r.returncode == 0, r.stderr
    assert "explain-graph vs plain PyTorch and torchviz" in r.stdout  # the rich table
    rows = [line.strip("|").split(" | ") for line in r.stdout.splitlines() if line.startswith("| ")]
    header, body = [c.strip() for c in rows[0]], [[c.strip() for c in row] for row in rows[1:]]
    assert [row[0] for row in body] == ["linear regression", "MLP", "small CNN"]
    for col in ("in-step ratio", "trace+graph ratio", "full trace ratio", "default ratio", "expanded ratio"):
        i = header.index(col)
        for row in body:
            assert RATIO.match(row[i]), (col, row[i])
    nodes = header.index("autograd nodes")
    assert [int(row[nodes]) for row in body][0] == 5  # y = w·x + b: the loss, addmm, t, two AccumulateGrad


def test_video_bench_quick_prints_its_table() -> None:
    proc = _bench("video_bench.py", "--sizes", "5", "--no-mlp", timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "s/step" in proc.stdout and "x" in proc.stdout


def test_process_bench_quick_prints_its_ratio() -> None:
    proc = _bench("process_bench.py", "--quick", "--repeat", "1")
    assert proc.returncode == 0, proc.stderr
    rows = [line.strip("|").split(" | ") for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert [c.strip() for c in rows[0]] == ["model", "explain-graph, s", "torchviz, s", "ratio"]
    (model, ours, torchviz, ratio) = [c.strip() for c in rows[-1]]
    assert model == "linear regression" and float(ours) > 0 and float(torchviz) > 0
    assert RATIO.match(ratio), ratio
