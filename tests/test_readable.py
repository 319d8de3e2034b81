"""Readable is what a student can read: tesseract reads every backward step's numbers from the video and the slides.

The 17-node MLP (tests/scripts/mlp17.py: 4 → 8 → 4 → 1, ReLU, MSE, SGD; its first layer's
weight is 8×4) through ``explain-graph --video --slides --pptx`` at the default quality:
the middle frame of each backward step, and each backward page of the deck, must show
that step's gradient numbers as graph.json holds them (every entry of a small tensor;
a large one's min, max, mean, norm and first entries), written as the tool writes them.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import av
import networkx as nx
import pytest
from conftest import EXAMPLES, run_cli
from ocr import TESSERACT, as_written, graph_numbers, read_numbers
from PIL import Image

from explainer.choreography import Step, choreograph
from explainer.graph import load_graph
from explainer.text import stage_name

SCRIPTS = Path(__file__).parent / "scripts"
pytestmark = [
    pytest.mark.slow,  # renders videos and decks to read them
    pytest.mark.skipif(TESSERACT is None, reason="tesseract-ocr is missing: run scripts/bootstrap.sh"),
]


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mlp17")
    proc = run_cli(str(SCRIPTS / "mlp17.py"), "--out", str(out), "--video", "--slides", "--pptx", timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out


def step_numbers(g: nx.DiGraph, s: Step) -> list[str]:
    """A backward step's gradient numbers: what arrives at the node and what it sends along each edge."""
    vals = graph_numbers(g.nodes[s.node]["grad"])
    for u, v in s.edges:
        if v == s.node and g.edges[u, v].get("grad") is not None:
            vals += graph_numbers(g.edges[u, v]["grad"])
    return [as_written(x) for x in vals]


def middle_frames(folder: Path, g: nx.DiGraph, lang: str = "en") -> list[tuple[Step, Image.Image]]:
    """Each step with the video's frame in the middle of its subtitle (the pull-back cues skipped)."""
    cues = []
    for block in (folder / "backward.srt").read_text(encoding="utf-8").strip().split("\n\n"):
        lines = block.split("\n")
        a, b = (
            sum(float(x) * m for x, m in zip(t.replace(",", ".").split(":"), (3600, 60, 1)))
            for t in lines[1].split(" --> ")
        )
        cues.append(((a + b) / 2, lines[2:]))
    with av.open(str(folder / "backward.mp4")) as c:
        frames = [(float(f.pts * f.time_base), f) for f in c.decode(video=0)]
    out, k, stage = [], 0, None
    for s in choreograph(g, lang=lang):
        if s.kind == "title":
            continue
        if s.stage != stage:
            stage = s.stage
            if cues[k][1] == [stage_name(s.stage, lang)]:
                k += 1
        t, lines = cues[k]
        assert lines == list(s.lines)
        out.append((s, min(frames, key=lambda p: abs(p[0] - t))[1].to_image()))
        k += 1
    return out


def check_read(results: list[tuple[str, list[str], set[str]]]) -> None:
    """Every step reads (≥ 90% of its numbers; OCR misreads a digit now and then), ≥ 97% of all."""
    total = found = 0
    bad = []
    for name, want, got in results:
        hit = sum(1 for w in want if w in got)
        total, found = total + len(want), found + hit
        if hit < 0.9 * len(want):
            bad.append((name, [w for w in want if w not in got]))
    assert not bad, bad
    assert found >= 0.97 * total, (found, total)


def test_every_backward_step_of_the_mlp_video_is_read(mlp: Path) -> None:
    g = load_graph(mlp / "graph.json")
    assert g.number_of_nodes() == 17 and [8, 4] in [d["shape"] for _, d in g.nodes(data=True)]
    with av.open(str(mlp / "backward.mp4")) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (854, 480)  # the default quality
    results = [
        (g.nodes[s.node]["label"], step_numbers(g, s), read_numbers(img, want=step_numbers(g, s)))
        for s, img in middle_frames(mlp, g)
        if s.kind == "backward"
    ]
    assert len(results) == len(g.graph["backward_order"])
    check_read(results)


def test_every_backward_page_of_the_mlp_deck_is_read(mlp: Path) -> None:
    from explainer.render.slides import plan_pages

    g = load_graph(mlp / "graph.json")
    steps = choreograph(g)
    pages = plan_pages(g, steps)
    results = []
    for i, page in enumerate(pages, 1):
        if page.kind != "backward" or page.step is None or steps[page.step].kind != "backward":
            continue
        with Image.open(mlp / "slides" / f"page-{i:02d}.png") as im:
            want = step_numbers(g, steps[page.step])
            results.append((page.header, want, read_numbers(im.convert("RGB"), scale=2, want=want)))
    assert len(results) == len(g.graph["backward_order"])
    check_read(results)


def test_the_lecture_in_korean_and_dark_is_read(tmp_path: Path) -> None:
    out = tmp_path / "ko"
    proc = run_cli(
        str(EXAMPLES / "linear_regression.py"), "--out", str(out), "--video", "--lang", "ko", "--theme", "dark"
    )
    assert proc.returncode == 0, proc.stderr
    g = load_graph(out / "graph.json")
    results = [
        (g.nodes[s.node]["label"], step_numbers(g, s), read_numbers(img, want=step_numbers(g, s)))
        for s, img in middle_frames(out, g, "ko")
        if s.kind == "backward"
    ]
    check_read(results)


def test_pptx_has_every_page_with_its_caption_as_notes(mlp: Path) -> None:
    from pptx import Presentation

    from explainer.render.slides import plan_pages

    g = load_graph(mlp / "graph.json")
    pages = plan_pages(g, choreograph(g))
    prs = Presentation(str(mlp / "slides.pptx"))
    assert len(prs.slides) == len(pages) == len(list((mlp / "slides").glob("page-*.png")))
    assert abs(prs.slide_width / prs.slide_height - 16 / 9) < 0.01
    for slide, page in zip(prs.slides, pages):
        pictures = [s for s in slide.shapes if s.shape_type == 13]
        assert len(pictures) == 1 and pictures[0].width == prs.slide_width
        assert slide.notes_slide.notes_text_frame.text == "\n".join(page.lines)
    with zipfile.ZipFile(mlp / "slides.pptx") as z:  # no clock in the file: the same deck, the same bytes
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_video_sections_index(mlp: Path) -> None:
    index = json.loads((mlp / "backward_sections" / "sections.json").read_text(encoding="utf-8"))
    g = load_graph(mlp / "graph.json")
    backward = [s for s in index["sections"] if "-backward-" in s["name"]]
    assert len(backward) == len(g.graph["backward_order"])
    assert all((mlp / "backward_sections" / s["file"]).is_file() for s in index["sections"])
