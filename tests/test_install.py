"""The package as a user installs it: a fresh venv, `pip install .`, then `.[video]`.

The core install must not pull Manim or matplotlib and must draw the lecture's
diagram; asking for an output whose extra is missing says which `pip install`
brings it, before the script runs; the `[video]` extra then makes the video.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=dict(env, OMP_NUM_THREADS="1")
    )


def test_core_install_draws_without_manim_and_the_video_extra_adds_it(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    r = _run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    assert r.returncode == 0, r.stderr
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints" / "dev.txt")]
    r = _run([*pip, str(ROOT)], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    listed = _run([str(venv / "bin" / "python"), "-m", "pip", "list"], tmp_path).stdout.lower()
    assert "torch" in listed and "manim" not in listed and "matplotlib" not in listed

    cli = str(venv / "bin" / "explain-graph")
    r = _run([cli, "--example", "linear-regression", "--out", "plain", "--slides", "--html"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "plain").iterdir() if not p.name.startswith(".")) == [
        "graph.json",
        "graph.pdf",
        "graph.png",
        "graph.svg",
        "index.html",
        "slides",
        "slides.pdf",
    ]
    # python -m explainer is the same command, and the examples travel with the package.
    r = _run([str(venv / "bin" / "python"), "-m", "explainer", "--help"], tmp_path)
    assert r.returncode == 0 and "--example" in r.stdout and "linear-regression" in r.stdout

    r = _run([cli, "--example", "linear-regression", "--out", "video", "--video"], tmp_path)
    assert r.returncode == 5
    assert 'pip install "explain-graph[video]"' in " ".join(r.stderr.split())
    assert not (tmp_path / "video").exists()
    r = _run([cli, "--example", "linear-regression", "--out", "curve", "--run-to-end"], tmp_path)
    assert r.returncode == 5 and 'pip install "explain-graph[plots]"' in " ".join(r.stderr.split())

    r = _run([*pip, f"{ROOT}[video]"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    r = _run([cli, "--example", "linear-regression", "--out", "video", "--video"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "video" / "backward.mp4").stat().st_size > 10_000
