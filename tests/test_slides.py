"""The slide deck: pages as data, page SVGs against the graph's numbers, the real PDF and PNGs."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from conftest import lecture_graph
from PIL import Image

from explainer.choreography import choreograph
from explainer.fold import fold_for_display
from explainer.graph import load_graph
from explainer.render.frames import SVG_NS, frames, node_of, visible_texts
from explainer.render.graphviz import DiagramOptions
from explainer.render.measure import text_width
from explainer.render.slides import build_pages as _build_pages
from explainer.render.slides import fit_caption, plan_pages
from explainer.story import build_story
from explainer.text import fmt_number, value_inline
from explainer.themes import get_theme

Q = f"{{{SVG_NS}}}"


def _by_label(g: nx.DiGraph) -> dict[str, str]:
    return {d["label"]: n for n, d in g.nodes(data=True)}


def build_pages(g: nx.DiGraph, opts: DiagramOptions | None = None) -> list[ET.Element]:
    return _build_pages(build_story(g, opts or DiagramOptions()))


def _entries(v: object) -> list[str]:
    """Every entry of a small tensor as the deck writes it."""
    return [fmt_number(x) for x in np.ravel(np.asarray(v, dtype=float))]


def test_pages_follow_the_choreography() -> None:
    g = lecture_graph()
    steps = choreograph(g)
    pages = plan_pages(g, steps)
    assert [p.kind for p in pages] == ["title", "forward"] + ["backward"] * 5 + ["update"]
    back = [p for p in pages if p.kind == "backward"]
    order = g.graph["backward_order"]
    assert [steps[p.step].node for p in back] == order  # autograd's real order
    for k, p in enumerate(back, 1):
        # gradients computed so far are filled in, later ones still blank
        assert set(p.frame.grads) == set(order[:k])
        assert p.frame.highlight == (order[k - 1],)
        assert p.lines == steps[p.step].lines
    fwd = pages[1]
    assert fwd.frame.grads == () and set(fwd.frame.seen) == set(g.nodes)
    assert any("pred = b + x · Wᵀ" in line for line in fwd.lines)
    upd = pages[-1]
    ids = _by_label(g)
    assert set(upd.frame.highlight) == {ids["model.weight"], ids["model.bias"]}
    assert set(upd.frame.updates) == {ids["model.weight"], ids["model.bias"]}
    w = g.nodes[ids["model.weight"]]
    assert any(value_inline(w["update"]["after"]) in line and value_inline(w["grad"]) in line for line in upd.lines)


def test_frames_are_cumulative_and_zero_grad_clears() -> None:
    g = lecture_graph()
    fr = frames(g, choreograph(g))
    grads = [set(f.grads) for f in fr]
    back = [i for i, f in enumerate(fr) if f.stage == "backward"]
    for a, b in zip(back, back[1:]):
        assert grads[a] <= grads[b]
    assert fr[-1].kind == "zero_grad" and fr[-1].grads == () and fr[-1].edge_grads == ()
    first_fwd = next(f for f in fr if f.kind == "forward")
    assert len(first_fwd.seen) == 1  # the forward pass brings nodes in one by one


def test_page_svg_shows_this_steps_numbers_and_hides_later_ones() -> None:
    g = lecture_graph()
    ids = _by_label(g)
    theme = get_theme("light")
    pages = build_pages(g, DiagramOptions(title="linear_regression.py"))
    plans = plan_pages(g, choreograph(g))
    assert len(pages) == len(plans) == 8
    k = next(
        i
        for i, p in enumerate(plans)
        if p.kind == "backward" and plans[i].step is not None and choreograph(g)[plans[i].step].node == ids["pred"]
    )
    assert "pred = b + x · Wᵀ" in plans[k].header and "②" in plans[k].header
    page = pages[k]
    pred, w, b = (g.nodes[ids[x]] for x in ("pred", "model.weight", "model.bias"))
    pred_box = node_of(page, ids["pred"])
    assert f"grad = {value_inline(pred['grad'])}" in visible_texts(pred_box)
    assert not any(s.startswith("grad") for s in visible_texts(node_of(page, ids["model.weight"])))
    assert not any(s.startswith("update") for s in visible_texts(node_of(page, ids["model.weight"])))
    # the current node is outlined in the gradient colour
    shape = next(e for e in pred_box.iter() if "eg-shape" in e.get("class", ""))
    assert shape.get("stroke") == theme.grad and float(shape.get("stroke-width")) > 4
    # the focus panel: every entry of the gradient arriving and of what autograd sent along each edge
    panel = next(e for e in page.iter(f"{Q}g") if e.get("class") == "eg-panel")
    cells = [e.text for e in panel.iter(f"{Q}text")]
    for v in (
        pred["grad"],
        g.edges[ids["model.bias"], ids["pred"]]["grad"],
        g.edges[ids["t"], ids["pred"]]["grad"],
        pred["value"],
    ):
        assert all(x in cells for x in _entries(v))
    assert any("∂L/∂pred" in c for c in cells) and any("Σ_rows" in c for c in cells)
    np.testing.assert_allclose(np.ravel(b["grad"]), np.ravel(g.edges[ids["model.bias"], ids["pred"]]["grad"]))
    # the last page shows every gradient and the updates
    last = pages[-1]
    texts = visible_texts(node_of(last, ids["model.weight"]))
    assert f"grad = {value_inline(w['grad'])}" in texts
    assert any(value_inline(w["update"]["after"]) in s for s in texts)


def test_layout_is_the_same_on_every_page() -> None:
    g = lecture_graph()
    pages = build_pages(g)

    def geometry(page: ET.Element) -> list[str]:
        """Every box and edge line as dot placed it (a backward page turns lit arrowheads around:
        the edge's path gains a segment to the head node and its arrowhead moves to the tail)."""
        shapes = []
        for g in page.iter(f"{{{SVG_NS}}}g"):
            if g.get("data-id") is None and g.get("data-edge") is None:
                continue
            for e in g.iter():
                if "eg-shape" not in e.get("class", "") or (g.get("data-edge") and e.tag.endswith("polygon")):
                    continue
                shapes.append((e.get("d") or e.get("points") or "").split(" L")[0])
        return shapes

    first = geometry(pages[1])
    assert first and all(geometry(p) == first for p in pages[2:])


def test_folded_graph_gets_a_deck(tmp_path: Path) -> None:
    from explainer.graph import build_graph
    from explainer.run import RunOptions, run_script

    g = build_graph(run_script(Path(__file__).parent / "scripts" / "block_stack.py", [], RunOptions()).trace)
    view = fold_for_display(g)
    assert view.folded
    plans = plan_pages(view.graph, choreograph(view.graph))
    modules = [n for n, d in view.graph.nodes(data=True) if d["kind"] == "module"]
    assert modules and any(p.frame is not None and modules[0] in p.frame.highlight for p in plans)
    pages = build_pages(view.graph)
    assert len(pages) == len(plans)


def test_captions_fit_the_page() -> None:
    lines, size = fit_caption(("→ ∂L/∂x = " + ", ".join(["−1.234"] * 80) + " = 3",), 1200)
    assert size >= 17 and all(text_width(line, size, True) <= 1200 for line in lines)


def _pdf(path: Path, *args: str) -> str:
    return subprocess.run([*args, str(path)], capture_output=True, text=True, check=True).stdout


def test_lecture_deck_pdf_and_pngs(lecture_decks: dict[str, Path]) -> None:
    d = lecture_decks["linear_regression"]
    g = load_graph(d / "graph.json")
    pdf = d / "slides.pdf"
    info = _pdf(pdf, "pdfinfo")
    assert re.search(r"Pages:\s+8\b", info)
    w, h = map(float, re.search(r"Page size:\s+([\d.]+) x ([\d.]+)", info).groups())
    assert abs(w / h - 16 / 9) < 0.01
    assert _pdf(pdf, "pdfimages", "-list").count("\n") <= 2  # vector pages: no raster images
    assert "Noto" in _pdf(pdf, "pdffonts")
    pngs = sorted((d / "slides").glob("page-*.png"))
    assert [p.name for p in pngs] == [f"page-{i:02d}.png" for i in range(1, 9)]
    with Image.open(pngs[0]) as im:
        assert im.size == (1920, 1080)
    # page 4 (backward step ② pred) as text: its panel's numbers equal the graph's
    ids = _by_label(g)
    text = subprocess.run(
        ["pdftotext", "-f", "4", "-l", "4", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    words = set(text.split())
    for u in ("t", "model.bias"):
        assert set(_entries(g.edges[ids[u], ids["pred"]]["grad"])) <= words
    assert set(_entries(g.nodes[ids["pred"]]["grad"])) <= words
    assert set(_entries(g.nodes[ids["model.weight"]]["grad"])) <= words  # −25.92 sent to t
    # the optimizer page
    last = re.sub(
        r"\s+",
        "",
        subprocess.run(
            ["pdftotext", "-f", "8", "-l", "8", str(pdf), "-"], capture_output=True, text=True, check=True
        ).stdout,
    )
    after = g.nodes[ids["model.weight"]]["update"]["after"]
    assert re.sub(r"\s+", "", value_inline(after)) in last


def test_korean_dark_deck_has_every_glyph(lecture_decks: dict[str, Path]) -> None:
    d = lecture_decks["cross_entropy"]
    g = load_graph(d / "graph.json")
    pdf = d / "slides.pdf"
    assert re.search(r"Pages:\s+5\b", _pdf(pdf, "pdfinfo"))  # title, forward, 3 backward steps (no optimizer)
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "역전파" in text and "순전파" in text and "기울기" in text
    # the title page's note is in Korean too (graph.json keeps it in English as well)
    flat = re.sub(r"\s+", "", text)
    assert "backward()를호출하지않아" in flat and "never calls backward" not in text
    assert g.graph["note_data"][0]["key"] == "note_replayed" and "never calls backward" in g.graph["notes"][0]
    ids = _by_label(g)
    assert set(_entries(g.nodes[ids["pred"]]["grad"])) <= set(text.split())
    # every character on the pages has a font that draws it (no missing-glyph boxes)
    pages = build_pages(g, DiagramOptions(theme="dark", lang="ko"))
    chars = {c for p in pages for e in p.iter(f"{Q}text") for c in (e.text or "") if ord(c) > 127}
    missing = [
        c
        for c in sorted(chars)
        if not subprocess.run(
            ["fc-list", f":charset={ord(c):x}", "family"], capture_output=True, text=True
        ).stdout.strip()
    ]
    assert not missing
    with Image.open(d / "slides" / "page-03.png") as im:
        corner = im.convert("RGB").getpixel((5, 5))
    assert sum(corner) < 120  # the dark theme's background


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_deck_is_deterministic(theme: str) -> None:
    g = lecture_graph()
    a = [ET.tostring(p) for p in build_pages(g, DiagramOptions(theme=theme))]
    b = [ET.tostring(p) for p in build_pages(g, DiagramOptions(theme=theme))]
    assert a == b


def test_missing_converter_is_a_one_line_error_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from explainer.errors import ExplainerError
    from explainer.pipeline import write_outputs
    from explainer.render import slides

    real = slides.shutil.which
    monkeypatch.setattr(slides.shutil, "which", lambda name: None if name == "rsvg-convert" else real(name))
    out = tmp_path / "out"
    with pytest.raises(ExplainerError) as exc:
        write_outputs(lecture_graph(), out, DiagramOptions(), slides=True)
    assert exc.value.exit_code == 5
    assert (
        "rsvg-convert" in str(exc.value)
        and "apt-get install librsvg2-bin" in str(exc.value)
        and "\n" not in str(exc.value)
    )
    assert not out.exists()


def test_backward_pages_point_the_lit_edges_the_way_the_gradient_flows() -> None:
    """On a backward page the edges the gradient flows along end in an arrowhead at the input."""
    from explainer.render.frames import apply_frame, tag_svg
    from explainer.themes import get_theme

    story = build_story(lecture_graph())
    theme = get_theme("light")
    root = tag_svg(story.svg, theme)
    numbers = re.compile(r"-?\d+(?:\.\d+)?")
    checked = 0
    for frame in frames(story.graph, story.steps):
        drawn = apply_frame(root, frame, theme)
        for g in drawn.iter(f"{{{SVG_NS}}}g"):
            if g.get("data-edge") is None or tuple(g.get("data-edge").split()) not in set(frame.edges):
                continue
            path = [float(x) for x in numbers.findall(g.find(f"{{{SVG_NS}}}path").get("d"))]
            tri = [float(x) for x in numbers.findall(g.find(f"{{{SVG_NS}}}polygon").get("points"))]
            start, end, tip = (path[0], path[1]), (path[-2], path[-1]), (tri[0], tri[1])
            near_tail = np.hypot(*np.subtract(tip, start)) < np.hypot(*np.subtract(tip, end))
            assert near_tail == (frame.stage == "backward"), (frame.step, g.get("data-edge"))
            checked += 1
    assert checked >= 6  # forward and backward edges of the lecture
