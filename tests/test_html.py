"""The step-through page in a real headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import re
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from PIL import Image, ImageStat
from playwright.sync_api import Browser, Page

from explainer.choreography import choreograph
from explainer.graph import load_graph
from explainer.render.html import detail_lines
from explainer.text import value_inline


def _open(browser: Browser, path: Path) -> tuple[Page, list[str], list[str]]:
    page = browser.new_page(viewport={"width": 1400, "height": 860})
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(path.as_uri())
    return page, requests, errors


def _numbers(text: str) -> np.ndarray:
    return np.array([float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", text.replace("−", "-"))])


def _by_label(g: nx.DiGraph) -> dict[str, str]:
    return {d["label"]: n for n, d in g.nodes(data=True)}


def test_step_through_the_lecture(browser: Browser, lecture_decks: dict[str, Path], tmp_path: Path) -> None:
    d = lecture_decks["linear_regression"]
    g = load_graph(d / "graph.json")
    steps = choreograph(g)
    ids = _by_label(g)
    page, requests, errors = _open(browser, d / "index.html")
    assert page.inner_text("#eg-count") == f"1 / {len(steps)}"
    assert steps[0].lines[0] in page.inner_text("#eg-lines")

    # arrow keys: to the backward step of pred
    k = next(i for i, s in enumerate(steps) if s.kind == "backward" and s.node == ids["pred"])
    for _ in range(k):
        page.keyboard.press("ArrowRight")
    assert page.inner_text("#eg-count") == f"{k + 1} / {len(steps)}"
    caption = page.inner_text("#eg-lines")
    for line in steps[k].lines:
        assert line in caption
    assert value_inline(g.edges[ids["model.bias"], ids["pred"]]["grad"]) in caption
    assert page.eval_on_selector_all("g.node.eg-hl", "els => els.map(e => e.getAttribute('data-id'))") == [ids["pred"]]
    # this step's gradient is filled in, later ones are still blank
    shown = page.eval_on_selector_all(
        "g.node .eg-grad",
        "els => els.filter(e => getComputedStyle(e).display !== 'none')"
        ".map(e => e.closest('g.node').getAttribute('data-id'))",
    )
    assert set(shown) == {ids["loss"], ids["pred"]}
    page.screenshot(path=str(tmp_path / "backward.png"))

    # buttons
    page.click("#eg-next")
    assert page.inner_text("#eg-count") == f"{k + 2} / {len(steps)}"
    page.click("#eg-prev")
    page.click("#eg-prev")
    assert page.inner_text("#eg-count") == f"{k} / {len(steps)}"
    assert page.eval_on_selector_all("g.node.eg-hl", "els => els.map(e => e.getAttribute('data-id'))") == [
        steps[k - 1].node
    ]
    page.keyboard.press("End")
    assert page.inner_text("#eg-count") == f"{len(steps)} / {len(steps)}"
    assert page.is_disabled("#eg-next")

    # click a node: its full value and gradient, equal to the graph's
    page.click(f'g.node[data-id="{ids["model.weight"]}"]')
    page.mouse.move(5, 5)  # hover elsewhere: the clicked node stays pinned
    assert page.get_attribute("#eg-details", "data-node") == ids["model.weight"]
    w = g.nodes[ids["model.weight"]]
    grad = _numbers(page.inner_text("#eg-details pre.grad"))
    np.testing.assert_allclose(grad, np.ravel(w["grad"]), rtol=1e-6)
    value = _numbers(page.inner_text("#eg-details pre.value"))
    np.testing.assert_allclose(value, np.ravel(w["value"]), rtol=1e-6)
    after = _numbers(page.inner_text("#eg-details pre.update >> nth=1"))
    np.testing.assert_allclose(after, np.ravel(w["update"]["after"]), rtol=1e-6)

    # hover shows another node's numbers
    page.hover(f'g.node[data-id="{ids["pred"]}"]')
    np.testing.assert_allclose(
        _numbers(page.inner_text("#eg-details pre.value")), np.ravel(g.nodes[ids["pred"]]["value"]), rtol=1e-6
    )

    # search
    page.fill("#eg-search", "bias")
    page.press("#eg-search", "Enter")
    page.mouse.move(5, 5)
    assert page.get_attribute("#eg-details", "data-node") == ids["model.bias"]
    assert page.get_attribute(f'g.node[data-id="{ids["model.bias"]}"]', "class").count("eg-pin") == 1
    np.testing.assert_allclose(
        _numbers(page.inner_text("#eg-details pre.grad")), np.ravel(g.nodes[ids["model.bias"]]["grad"]), rtol=1e-6
    )
    # zoom: + widens the diagram (the panel scrolls), 0 fits it again
    fit = page.eval_on_selector("#eg-diagram svg", "e => e.getBoundingClientRect().width")
    page.click("#eg-zoom-in")
    assert page.eval_on_selector("#eg-diagram svg", "e => e.getBoundingClientRect().width") == pytest.approx(
        1.5 * fit, rel=0.02
    )
    page.keyboard.press("0")
    assert page.eval_on_selector("#eg-diagram svg", "e => e.getBoundingClientRect().width") == pytest.approx(
        fit, rel=0.02
    )
    page.fill("#eg-search", "nosuchnode")
    page.press("#eg-search", "Enter")
    assert "nosuchnode" in page.inner_text("#eg-search-msg")
    page.screenshot(path=str(tmp_path / "search.png"))

    assert errors == []
    assert [u for u in requests if not u.startswith("file://")] == []  # no network at all
    for shot in ("backward.png", "search.png"):
        with Image.open(tmp_path / shot) as im:
            assert im.size == (1400, 860)
            assert max(ImageStat.Stat(im.convert("L")).stddev) > 20  # a real picture, not a blank page


def test_korean_dark_page(browser: Browser, lecture_decks: dict[str, Path], tmp_path: Path) -> None:
    d = lecture_decks["cross_entropy"]
    g = load_graph(d / "graph.json")
    steps = choreograph(g, lang="ko")
    page, requests, errors = _open(browser, d / "index.html")
    page.keyboard.press("End")
    ids = _by_label(g)
    assert page.inner_text("#eg-stage").split() == ["역전파", "③", "pred"]  # stage, badge, node
    assert value_inline(g.nodes[ids["pred"]]["grad"]) in page.inner_text("#eg-lines")
    assert page.eval_on_selector_all("g.node.eg-hl", "els => els.map(e => e.getAttribute('data-id'))") == [
        steps[-1].node
    ]
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(15, 23, 42)"  # the dark theme
    page.keyboard.press("Home")
    assert page.inner_text("#eg-count") == f"1 / {len(steps)}"
    assert page.get_attribute("#eg-details", "data-node") is None  # the title step: the hint, no node
    assert "노드" in page.inner_text("#eg-details")
    page.screenshot(path=str(tmp_path / "ko.png"))
    assert errors == [] and [u for u in requests if not u.startswith("file://")] == []


def test_page_is_self_contained(lecture_decks: dict[str, Path]) -> None:
    text = (lecture_decks["linear_regression"] / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", text)
    assert "@import" not in text and "url(" not in text
    assert text.count("<svg") == 1 and 'id="eg-data"' in text
    assert "<title>n" not in text and "xlink:title" not in text  # no native tooltips over the details panel


def test_details_of_large_tensors_are_statistics() -> None:
    summary = {
        "summary": True,
        "shape": [64, 128],
        "dtype": "float32",
        "min": -2.5,
        "max": 3.25,
        "mean": 0.125,
        "norm": 11.5,
        "nan": 0,
        "inf": 0,
        "head": [0.5, -0.25],
    }
    lines = detail_lines(summary)
    assert any("64×128" in s for s in lines) and any("3.25" in s for s in lines) and any("11.5" in s for s in lines)
    assert detail_lines([[1.0, 2.0], [3.0, 4.0]]) == ["[1, 2]", "[3, 4]"]
    assert detail_lines(0.1234567891) == ["0.12345679"]


def test_every_step_shows_its_frame(browser: Browser, lecture_decks: dict[str, Path]) -> None:
    """The page stores each step as changes from the one before; what it shows is each whole frame."""
    from explainer.render.frames import frames

    d = lecture_decks["linear_regression"]
    g = load_graph(d / "graph.json")
    fr = frames(g, choreograph(g))
    page, _, errors = _open(browser, d / "index.html")
    ids = "els => els.map(e => e.closest('g.node, g.edge').getAttribute('data-id') || e.getAttribute('data-edge'))"
    for i, f in enumerate(fr):
        if i:
            page.keyboard.press("ArrowRight")
        assert set(page.eval_on_selector_all("g.node.eg-g", ids)) == set(f.grads), i
        assert set(page.eval_on_selector_all("g.node:not(.eg-dim)", ids)) == set(f.seen), i
        assert set(page.eval_on_selector_all("g.node.eg-u", ids)) == set(f.updates), i
        lit = page.eval_on_selector_all("g.edge.eg-g", "els => els.map(e => e.getAttribute('data-edge'))")
        assert set(lit) == {f"{u} {v}" for u, v in f.edge_grads}, i
    assert errors == []


def test_page_data_grows_with_steps_not_nodes_times_steps() -> None:
    """The page's per-step sets are changes: rebuilding them gives every frame back."""
    from conftest import lecture_graph

    from explainer.render.frames import frames
    from explainer.render.graphviz import DiagramOptions
    from explainer.render.html import page_data
    from explainer.story import build_story

    g = lecture_graph()
    data = page_data(build_story(g, DiagramOptions()))
    fr = frames(g, choreograph(g))
    state: dict[str, list] = {k: [] for k in ("seen", "grads", "edge_grads", "updates")}
    for step, f in zip(data["steps"], fr):
        for k in state:
            gone = [tuple(e) if isinstance(e, list) else e for e in step[k]["del"]]
            state[k] = [e for e in state[k] if (tuple(e) if isinstance(e, list) else e) not in gone] + step[k]["add"]
        assert set(state["seen"]) == set(f.seen) and set(state["grads"]) == set(f.grads)
        assert {tuple(e) for e in state["edge_grads"]} == set(f.edge_grads)
        assert set(state["updates"]) == set(f.updates)
    changes = sum(len(s[k]["add"]) + len(s[k]["del"]) for s in data["steps"] for k in state)
    whole = sum(len(f.seen) + len(f.grads) + len(f.edge_grads) + len(f.updates) for f in fr)
    assert changes < whole / 2


def test_a_name_that_opens_a_comment_does_not_stop_the_page(browser: Browser, tmp_path: Path) -> None:
    from conftest import lecture_graph

    from explainer.render.graphviz import DiagramOptions
    from explainer.render.html import render_html

    g = lecture_graph()
    for _, d in g.nodes(data=True):
        if d["label"] == "x":
            d["label"] = "x<!--<script>"
    from explainer.story import build_story

    path = render_html(build_story(g, DiagramOptions()), tmp_path)
    page, _, errors = _open(browser, path)
    steps = choreograph(g)
    assert page.inner_text("#eg-count") == f"1 / {len(steps)}"  # the script ran
    page.keyboard.press("ArrowRight")
    assert page.inner_text("#eg-count") == f"2 / {len(steps)}"
    assert errors == []
    page.close()


def _texts_outside_the_picture(page: Page) -> tuple[int, list[str]]:
    """How many node texts there are, and those not inside the SVG's visible box."""
    return page.evaluate(
        """() => {
            const svg = document.querySelector('svg');
            const box = svg.getBoundingClientRect();
            const texts = [...document.querySelectorAll('g.node text')];
            const out = texts.filter(t => {
                const r = t.getBoundingClientRect();
                return r.left < box.left - 1 || r.top < box.top - 1 || r.right > box.right + 1 || r.bottom > box.bottom + 1;
            }).map(t => t.textContent);
            return [texts.length, out];
        }"""
    )


@pytest.mark.parametrize("script, theme", [("linear_regression.py", "light"), ("cnn.py", "dark")])
def test_graph_svg_is_whole_in_the_browser(browser: Browser, tmp_path: Path, script: str, theme: str) -> None:
    from conftest import EXAMPLES, run_cli

    path = EXAMPLES / script if (EXAMPLES / script).exists() else Path(__file__).parent / "scripts" / script
    r = run_cli(str(path), "--out", str(tmp_path), "--format", "svg", "--theme", theme)
    assert r.returncode == 0, r.stderr
    page, _, errors = _open(browser, tmp_path / "graph.svg")
    count, outside = _texts_outside_the_picture(page)
    assert count > 10 and outside == [] and errors == []
    # The picture is drawn at its natural size: about as wide as the layout, not several times it.
    width = page.evaluate("() => document.querySelector('svg').getBoundingClientRect().width")
    view_w = float(page.evaluate("() => document.querySelector('svg').viewBox.baseVal.width"))
    assert abs(width - view_w * 96 / 72) < 2
    page.close()


def test_keyboard_and_screen_readers(browser: Browser, lecture_decks: dict[str, Path]) -> None:
    d = lecture_decks["linear_regression"]
    g = load_graph(d / "graph.json")
    ids = _by_label(g)
    page, _, errors = _open(browser, d / "index.html")
    assert page.get_attribute("#eg-caption", "aria-live") == "polite"
    for button in page.query_selector_all("button"):
        assert (button.get_attribute("aria-label") or "").strip(), button.inner_text()
    assert page.get_attribute("#eg-search", "aria-label") and page.query_selector("label[for=eg-search]")
    nodes = page.query_selector_all("g.node")
    assert len(nodes) == g.number_of_nodes()
    for el in nodes:
        assert el.get_attribute("tabindex") == "0" and el.get_attribute("role") == "button"
        label = el.get_attribute("aria-label") or ""
        assert g.nodes[el.get_attribute("data-id")]["label"] in label
    # Tab reaches the nodes; Enter pins one, its numbers appear in the details panel
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('data-id')"):
            break
    focused = page.evaluate("document.activeElement.getAttribute('data-id')")
    assert focused in g
    page.keyboard.press("Enter")
    assert page.get_attribute("#eg-details", "data-node") == focused
    assert g.nodes[focused]["label"] in page.inner_text("#eg-details h2")
    # arrows still step once the focus leaves the diagram
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("End")
    assert page.inner_text("#eg-count").startswith(f"{len(choreograph(g))} /")
    assert ids["pred"] in g and errors == []


def test_no_gradients_before_backward_computes_them(browser: Browser, lecture_decks: dict[str, Path]) -> None:
    d = lecture_decks["linear_regression"]
    g = load_graph(d / "graph.json")
    ids = _by_label(g)
    steps = choreograph(g)
    page, _, errors = _open(browser, d / "index.html")

    def headings(node: str) -> list[str]:
        page.focus(f'g.node[data-id="{node}"]')
        return page.eval_on_selector_all("#eg-details h3", "els => els.map(e => e.textContent)")

    w = ids["model.weight"]
    page.keyboard.press("ArrowRight")  # the forward pass
    page.evaluate("document.activeElement.blur()")
    assert headings(w) == ["value"]  # no gradient, no update yet
    assert headings(ids["pred"]) == ["value"]
    first_w = next(i for i, s in enumerate(steps) if s.kind == "backward" and s.node == w)
    page.evaluate(f"location.hash = '#{first_w + 1}'; location.reload()")
    page.wait_for_selector("#eg-count")
    assert headings(w) == ["value", "grad"]
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("End")
    assert headings(w) == ["value", "grad", "before update", "after update"]
    assert errors == []


def test_backward_steps_point_the_lit_edges_the_way_the_gradient_flows(
    browser: Browser, lecture_decks: dict[str, Path]
) -> None:
    page, _, errors = _open(browser, lecture_decks["linear_regression"] / "index.html")

    def lit_edges() -> list[tuple[str, str, str]]:
        return page.eval_on_selector_all(
            "g.edge.eg-lit polygon[data-back]",
            "els => els.map(e => [e.getAttribute('points'), e.getAttribute('data-fwd'), e.getAttribute('data-back')])",
        )

    stages = {"forward": 0, "backward": 0}
    for _ in range(40):
        page.keyboard.press("ArrowRight")
        stage = page.evaluate("document.querySelector('#eg-lines').className")
        for points, fwd, back in lit_edges():
            assert fwd != back
            if stage in stages:
                assert points == (back if stage == "backward" else fwd), stage
                stages[stage] += 1
    assert stages["forward"] >= 3 and stages["backward"] >= 3 and errors == []
    # back to the start: every arrowhead as dot drew it
    page.keyboard.press("Home")
    assert page.eval_on_selector_all(
        "polygon[data-back]", "els => els.every(e => e.getAttribute('points') === e.getAttribute('data-fwd'))"
    )
