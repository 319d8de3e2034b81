"""Static diagrams: parsed SVG structure, numbers on screen, determinism, themes, Korean."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch
import torch.nn as nn

from explainer.graph import build_graph
from explainer.render.graphviz import DiagramOptions, render_static, step_mark, to_dot
from explainer.text import fmt_number, value_lines
from explainer.themes import LIGHT
from explainer.trace import Tracer, trace_call

SVG = "{http://www.w3.org/2000/svg}"


def _graph() -> nx.DiGraph:
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    x = torch.tensor([[1.0], [2.0], [3.0]])
    y = torch.tensor([[3.0], [6.0], [9.0]])
    criterion = nn.MSELoss()
    with Tracer() as tr:
        pred = model(x)
        loss = criterion(pred, y)
        loss.backward()
        optimizer.step()
    return build_graph(tr.result)


def svg_nodes(path: Path) -> dict[str, dict]:
    """Parse an SVG written by dot: node id -> its texts, fill and tooltip."""
    root = ET.parse(path).getroot()
    out = {}
    for g in root.iter(f"{SVG}g"):
        if g.get("class") != "node":
            continue
        title = g.find(f"{SVG}title").text
        texts = ["".join(t.itertext()) for t in g.iter(f"{SVG}text")]
        shape = next((p for p in g.iter() if p.tag in (f"{SVG}path", f"{SVG}polygon") and p.get("fill")), None)
        link = g.find(f".//{SVG}a")
        out[title] = {
            "texts": texts,
            "text": " ".join(texts),
            "fill": shape.get("fill") if shape is not None else None,
            "stroke": shape.get("stroke") if shape is not None else None,
            "stroke_width": float(shape.get("stroke-width") or 1) if shape is not None else None,
            "tooltip": link.get("{http://www.w3.org/1999/xlink}title") if link is not None else None,
        }
    return out


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[nx.DiGraph, Path]:
    g = _graph()
    out = tmp_path_factory.mktemp("diagram")
    render_static(g, out, DiagramOptions(title="lecture"))
    return g, out


def test_all_formats_written(rendered) -> None:
    _, out = rendered
    assert (out / "graph.svg").read_text().startswith("<?xml")
    assert (out / "graph.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "graph.pdf").read_bytes()[:5] == b"%PDF-"


def test_svg_shows_every_node_with_its_numbers(rendered) -> None:
    g, out = rendered
    nodes = svg_nodes(out / "graph.svg")
    assert set(g.nodes) <= set(nodes)
    for nid, d in g.nodes(data=True):
        text = nodes[nid]["text"]
        assert d["label"] in text
        for line in value_lines(d["value"]):
            assert line in text, (d["label"], line, text)
        if d["grad"] is not None:
            for line in value_lines(d["grad"]):
                assert line in text
        if d["backward_step"] is not None:
            assert step_mark(d["backward_step"]) in text
        if d["update"]:
            after = value_lines(d["update"]["after"])[0]
            assert "→" in text and after in text
    # the concrete lecture numbers, as a student reads them
    by = {d["label"]: nid for nid, d in g.nodes(data=True)}
    assert "[1, 2, 3]ᵀ" in nodes[by["x"]]["text"]
    assert "[3, 6, 9]ᵀ" in nodes[by["y"]]["text"]
    loss = g.nodes[by["loss"]]["value"]
    assert f"value = {fmt_number(loss)}" in nodes[by["loss"]]["text"]
    assert "grad = 1" in nodes[by["loss"]]["text"]


def test_tooltips_carry_fuller_values(rendered) -> None:
    g, out = rendered
    nodes = svg_nodes(out / "graph.svg")
    by = {d["label"]: nid for nid, d in g.nodes(data=True)}
    tip = nodes[by["pred"]]["tooltip"]
    assert "AddmmBackward0" in tip and "backward step 2" in tip
    pred = np.array(g.nodes[by["pred"]]["value"]).ravel()
    assert fmt_number(float(pred[0]), 8) in tip


def test_clusters_and_legend(rendered) -> None:
    _, out = rendered
    svg = (out / "graph.svg").read_text()
    assert "model (Linear)" in svg and "criterion (MSELoss)" in svg
    assert "Legend" in svg and "parameter (learned)" in svg


def test_dot_and_svg_are_deterministic(tmp_path) -> None:
    g1, g2 = _graph(), _graph()
    assert to_dot(g1) == to_dot(g2)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    render_static(g1, a, formats=("svg",))
    render_static(g2, b, formats=("svg",))
    assert (a / "graph.svg").read_bytes() == (b / "graph.svg").read_bytes()


def test_korean_dark_theme_has_korean_text_and_cjk_font(tmp_path) -> None:
    g = _graph()
    render_static(g, tmp_path, DiagramOptions(theme="dark", lang="ko"), formats=("svg", "pdf"))
    svg = (tmp_path / "graph.svg").read_text()
    assert "값 = " in svg and "기울기 = " in svg and "범례" in svg
    assert 'fill="#0f172a"' in svg  # dark background
    # poppler-utils comes with the set-up script: every font embedded is the CJK one
    fonts = subprocess.run(["pdffonts", str(tmp_path / "graph.pdf")], capture_output=True, text=True, check=True)
    rows = fonts.stdout.splitlines()[2:]
    assert any("NotoSansCJKkr" in r for r in rows), fonts.stdout  # Hangul drawn with the CJK font
    assert all(" yes " in r for r in rows)  # and every font embedded: the PDF shows the same anywhere


def test_nonfinite_nodes_are_alarming(tmp_path) -> None:
    a = torch.tensor([1.0, -1.0], requires_grad=True)
    tr = trace_call(lambda: torch.log(a).sum())
    g = build_graph(tr)
    bad = [n for n, d in g.nodes(data=True) if d["nonfinite"]]
    assert bad, "log(-1) is NaN"
    assert g.graph["first_nonfinite"] is not None or any(g.nodes[n]["kind"] != "leaf" for n in bad)
    render_static(g, tmp_path, formats=("svg",))
    nodes = svg_nodes(tmp_path / "graph.svg")
    ok = [n for n in g.nodes if not g.nodes[n]["nonfinite"]]
    for n in bad:
        # a vermillion fill and a heavy dark frame, unlike any healthy node's
        assert (
            nodes[n]["fill"].lower() == LIGHT.bad_fill.lower()
            and nodes[n]["stroke"].lower() == LIGHT.bad_border.lower()
        )
        assert nodes[n]["stroke_width"] >= 3 > max(nodes[m]["stroke_width"] for m in ok)
        assert "NaN" in nodes[n]["text"]


def test_value_lines_formats() -> None:
    assert value_lines(0.123456) == ["0.1235"]
    assert value_lines([[1.0], [2.0]]) == ["[1, 2]ᵀ"]
    assert value_lines([[1.0, 2.0], [3.0, 4.0]]) == ["[[1, 2]", " [3, 4]]"]
    assert value_lines(list(range(10)))[0].count("…") == 1
    assert value_lines(-2.5e-7) == ["−2.5e−7"]
    assert re.match(r"mean", value_lines({"summary": True, "mean": 1, "norm": 2, "min": 0, "max": 3})[0])
