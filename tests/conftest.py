"""Shared fixtures. torch runs on one thread: on 2 cores the default oversubscribes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "explainer" / "examples"
CLI = [sys.executable, "-m", "explainer.cli"]


@pytest.fixture
def examples() -> Path:
    return EXAMPLES


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``explain-graph`` in a subprocess, as a user would."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():  # noqa: ANN201  (a playwright Browser)
    """Headless Chromium: the system's (Debian) or, where that is a snap (Ubuntu), Playwright's own."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:  # noqa: BLE001 - say what to install, once
            raise RuntimeError(f"no headless Chromium ({exc}): run scripts/bootstrap.sh") from None
        yield b
        b.close()


def visible(folder: Path) -> list[str]:
    """The names in ``folder`` a user sees (not explain-graph's hidden manifest and lock)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


@pytest.fixture(scope="session")
def lecture_decks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The lecture's two scripts through ``explain-graph --slides --html``, once per session.

    ``linear_regression``: light theme, English; ``cross_entropy``: dark theme, Korean.
    """
    out = tmp_path_factory.mktemp("decks")
    runs = {
        "linear_regression": ("--theme", "light", "--lang", "en"),
        "cross_entropy": ("--theme", "dark", "--lang", "ko"),
    }
    dirs = {}
    for name, opts in runs.items():
        d = out / name
        proc = run_cli(str(EXAMPLES / f"{name}.py"), "--out", str(d), "--slides", "--html", *opts)
        assert proc.returncode == 0, proc.stderr
        dirs[name] = d
    return dirs


def lecture_graph(seed: int = 0, max_elements: int = 16):  # noqa: ANN201  (a networkx.DiGraph)
    """The lecture's linear regression (``nn.Linear(1, 1)``, MSE, SGD 0.05), traced in-process."""
    import torch.nn as nn

    from explainer.graph import build_graph
    from explainer.trace import Tracer

    torch.manual_seed(seed)
    model = nn.Linear(1, 1)
    criterion = nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    x = torch.tensor([[1.0], [2.0], [3.0]])
    y = torch.tensor([[3.0], [6.0], [9.0]])
    with Tracer() as tr:
        pred = model(x)
        loss = criterion(pred, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    g = build_graph(tr.result, max_elements=max_elements)
    g.graph["source"] = "linear_regression.py"
    return g
