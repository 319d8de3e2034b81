"""Notebook display: a real notebook executed headlessly (nbclient + the venv's ipykernel)."""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from explainer.text import value_inline

ROOT = Path(__file__).resolve().parents[1]

SETUP = """\
import sys
print(sys.executable)
import torch, torch.nn as nn, torch.optim as optim
import explainer
torch.manual_seed(0)
model = nn.Linear(1, 1)
criterion = nn.MSELoss()
optimizer = optim.SGD(model.parameters(), lr=0.05)
x = torch.tensor([[1.0], [2.0], [3.0]])
y = torch.tensor([[3.0], [6.0], [9.0]])
"""

SHOW = """\
with explainer.show() as shown:
    pred = model(x)
    loss = criterion(pred, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
"""

NUMBERS = """\
import json
g = shown.graph
w = next(d for _, d in g.nodes(data=True) if d["label"] == "model.weight")
print(json.dumps({"grad": w["grad"], "loss": g.nodes[g.graph["loss"]]["value"]}))
"""

STEPS = "explainer.show(shown.trace, steps=True, lang='ko')"

TRACE_REPR = """\
with explainer.Tracer() as tr:
    loss2 = criterion(model(x), y)
    loss2.backward()
tr.result
"""


BAD_CALL = "explainer.show(42)"


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    tmp = tmp_path_factory.mktemp("nb")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in (SETUP, SHOW, NUMBERS, STEPS, TRACE_REPR, BAD_CALL)]
    nb.cells[-1].metadata["tags"] = ["raises-exception"]
    # The kernel is this interpreter (the venv's): nbclient's "python3" is ipykernel's own
    # spec for sys.executable; runtime files stay in tmp.
    env = {
        "JUPYTER_RUNTIME_DIR": str(tmp / "rt"),
        "IPYTHONDIR": str(tmp / "ipy"),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    }
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        mp.setenv(k, v)
    try:
        client = NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp)}})
        assert client.kernel_manager_class is not None
        client.execute()
    finally:
        mp.undo()
    return nb


def _outputs(cell: nbformat.NotebookNode, mime: str) -> list[str]:
    return [
        o["data"][mime]
        for o in cell.outputs
        if o.get("output_type") in ("display_data", "execute_result") and mime in o.get("data", {})
    ]


def test_kernel_is_this_python(executed: nbformat.NotebookNode) -> None:
    out = executed.cells[0].outputs
    assert [o["text"].strip() for o in out if o.get("name") == "stdout"] == [sys.executable]


def test_with_show_displays_the_svg_diagram_with_the_numbers(executed: nbformat.NotebookNode) -> None:
    cell = executed.cells[1]
    svgs = _outputs(cell, "image/svg+xml")
    assert len(svgs) == 1, cell.outputs  # displayed once, as the diagram
    svg = svgs[0]
    assert "<svg" in svg and 'class="node"' in svg
    numbers = executed.cells[2].outputs[0]["text"]
    import json

    data = json.loads(numbers)
    text = html.unescape(svg)
    # labels and the real numbers of this step, formatted as the diagram formats them
    for label in ("model.weight", "model.bias", "pred", "loss", "x", "y"):
        assert f">{label}<" in text
    assert value_inline(data["grad"]) in text  # ∂L/∂w = [[−25.92]]
    assert f"value = {value_inline(data['loss'])}" in text
    np.testing.assert_allclose(np.array(data["grad"]).ravel(), [-25.92], atol=0.01)
    assert "Noto Sans CJK KR,Noto Sans KR" in svg  # fonts fall back on machines without Noto CJK


def test_steps_shows_the_offline_page_in_an_iframe(executed: nbformat.NotebookNode) -> None:
    cell = executed.cells[3]
    pages = _outputs(cell, "text/html")
    assert len(pages) == 1
    page = html.unescape(re.search(r'srcdoc="([^"]*)"', pages[0]).group(1))
    assert page.startswith("<!DOCTYPE html>") and 'id="eg-data"' in page
    assert "역전파" in page  # lang="ko"
    assert "http://" not in page.replace("http://www.w3.org/", "")
    assert [o for o in cell.outputs if o.get("output_type") == "execute_result"] == []  # shown once


def test_a_trace_displays_itself(executed: nbformat.NotebookNode) -> None:
    cell = executed.cells[4]
    svgs = _outputs(cell, "image/svg+xml")
    assert len(svgs) == 1 and ">loss2<" in html.unescape(svgs[0])
    text = _outputs(cell, "text/plain")[0]
    assert text.startswith("<explainer.Trace: ") and len(text) < 300  # not a dump of every node


def test_an_error_is_one_readable_line(executed: nbformat.NotebookNode) -> None:
    errors = [o for o in executed.cells[5].outputs if o.get("output_type") == "error"]
    assert len(errors) == 1
    lines = errors[0]["traceback"]
    assert len(lines) == 1 and lines[0].startswith("ExplainerError: cannot draw a int"), lines


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    """docs/colab_quickstart.ipynb as Colab runs it, less its install cell (no network here)."""
    nb = nbformat.read(ROOT / "docs" / "colab_quickstart.ipynb", as_version=4)
    installs = [c for c in nb.cells if "install" in c.metadata.get("tags", [])]
    assert len(installs) == 1 and "apt-get" in installs[0].source and "pip install" in installs[0].source
    nb.cells = [c for c in nb.cells if c not in installs]
    tmp = tmp_path_factory.mktemp("colab")
    mp = pytest.MonkeyPatch()
    for k, v in {
        "JUPYTER_RUNTIME_DIR": str(tmp / "rt"),
        "IPYTHONDIR": str(tmp / "ipy"),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    }.items():
        mp.setenv(k, v)
    try:
        NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp)}}).execute()
    finally:
        mp.undo()
    return nb


def test_colab_quickstart_runs_and_its_diagram_is_whole(
    quickstart: nbformat.NotebookNode,
    browser,  # noqa: ANN001
    tmp_path: Path,
) -> None:
    code = [c for c in quickstart.cells if c.cell_type == "code"]
    svgs = [s for c in code for s in _outputs(c, "image/svg+xml")]
    assert len(svgs) == 1
    svg = svgs[0]
    assert "기울기" in html.unescape(svg) and ">model.weight<" in html.unescape(svg)  # Korean labels, real names
    assert 'transform="scale(1 1)' in svg and "max-width: 100%" in svg
    pages = [p for c in code for p in _outputs(c, "text/html")]
    assert len(pages) == 1 and "srcdoc=" in pages[0]
    printed = [o["text"] for c in code for o in c.outputs if o.get("name") == "stdout"]
    diagram, autograd = (re.findall(r"-?\d+\.\d+", line) for line in printed[-1].splitlines())
    assert float(diagram[0]) == pytest.approx(float(autograd[0]), rel=1e-6)
    # What a student sees: the inline SVG in a browser, every node's text inside the picture.
    path = tmp_path / "cell.html"
    path.write_text(f"<!DOCTYPE html><html><body style='width:700px'>{svg}</body></html>", encoding="utf-8")
    page = browser.new_page(viewport={"width": 760, "height": 900})
    page.goto(path.as_uri())
    box = page.evaluate(
        "() => { const r = document.querySelector('svg').getBoundingClientRect(); "
        "return [r.left, r.top, r.right, r.bottom]; }"
    )
    texts = page.evaluate(
        "() => [...document.querySelectorAll('g.node text')].map(t => { "
        "const r = t.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })"
    )
    assert box[2] - box[0] <= 700.5  # fits the cell
    assert len(texts) > 10 and all(
        t[0] >= box[0] - 1 and t[2] <= box[2] + 1 and t[1] >= box[1] - 1 and t[3] <= box[3] + 1 for t in texts
    )
    page.close()
