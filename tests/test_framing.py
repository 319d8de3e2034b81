"""Where the video puts things and what its camera looks at, as data; the focus panel's packing."""

from __future__ import annotations

import itertools

import pytest
import torch
from conftest import lecture_graph

from explainer.choreography import choreograph
from explainer.graph import build_graph
from explainer.render.framing import FRAME_H, FRAME_W, READ_LABEL, Camera, Rect, place, regions, union
from explainer.render.graphviz import DiagramOptions
from explainer.render.panel import pack
from explainer.story import build_story
from explainer.trace import trace_call


def _inside(inner: Rect, outer: Rect, tol: float = 1e-6) -> bool:
    return (
        inner.left >= outer.left - tol
        and inner.right <= outer.right + tol
        and inner.bottom >= outer.bottom - tol
        and inner.top <= outer.top + tol
    )


def _overlap(a: Rect, b: Rect) -> bool:
    return a.left < b.right - 1e-9 and b.left < a.right - 1e-9 and a.bottom < b.top - 1e-9 and b.bottom < a.top - 1e-9


@pytest.mark.parametrize("side", [False, True])
def test_regions_tile_the_frame(side: bool) -> None:
    r = regions(side)
    frame = Rect(0, 0, FRAME_W, FRAME_H)
    for part in (r.header, r.overview, r.caption, r.viewport, r.panel, r.panel_band):
        assert _inside(part, frame)
    assert not _overlap(r.viewport, r.panel) and not _overlap(r.header, r.viewport)
    assert not _overlap(r.overview, r.caption)
    # the panel and the viewport share the body between them: nothing left half-empty
    body = FRAME_H - r.header.h
    if side:
        assert r.viewport.h > 0.9 * body and r.panel.h > 0.9 * body
    else:
        assert r.viewport.w > 0.95 * FRAME_W and r.panel.w > 0.95 * FRAME_W


def _chain(links: int):  # noqa: ANN202
    x = torch.tensor([0.5, -0.25], requires_grad=True)

    def f() -> torch.Tensor:
        h = x
        for i in range(links):
            h = torch.tanh(h * torch.tensor([1.1, 0.9]) + 0.1 * (i + 1))
        return h.sum()

    return build_graph(trace_call(f))


def _camera(story):  # noqa: ANN001, ANN202
    r = regions(story.rankdir == "TB")
    p = place(story.layout, r.overview)
    rects = {n: p.rect(b.x, b.y, b.width, b.height) for n, b in story.layout.nodes.items()}
    label = (story.theme.font_size + 1) * p.scale * 0.73 * 1.7
    return Camera(union(rects.values()), label, r.viewport), rects, r


def test_overview_uses_the_frame() -> None:
    for g in (lecture_graph(), _chain(20)):
        story = build_story(g, DiagramOptions())
        cam, rects, r = _camera(story)
        whole = union(rects.values())
        assert _inside(whole, r.overview, 1e-3)
        # the graph fills the overview in one direction at least
        assert max(whole.w / r.overview.w, whole.h / r.overview.h) > 0.97


def test_camera_follows_the_backward_pass_with_one_zoom_and_few_pans() -> None:
    g = _chain(20)
    story = build_story(g, DiagramOptions())
    cam, rects, r = _camera(story)
    back = [s for s in story.steps if s.kind == "backward"]

    def near(s):  # noqa: ANN001, ANN202
        return union([rects[s.node], *(rects[u] for u, _ in s.edges)])

    width = cam.plan([near(s) for s in back])
    assert width < cam.whole  # 80 boxes do not read in one frame: the camera comes closer
    shots = [cam.follow(near(s)) for s in back]
    for s, shot in zip(back, shots):
        assert shot.w == pytest.approx(width)  # one zoom for the stage
        assert _inside(near(s), shot.view(r.viewport), 1e-6)  # each step's nodes are in the viewport
        assert cam.label_height * shot.zoom >= READ_LABEL * 0.99  # the boxes' names can be read
    pans = sum(1 for a, b in itertools.pairwise(shots) if a != b)
    assert 0 < pans < len(back) * 0.7  # it pans only when the next step leaves the view


def test_a_small_graph_is_shown_whole_and_still() -> None:
    a = torch.tensor([1.5, -2.0], requires_grad=True)
    story = build_story(build_graph(trace_call(lambda: (a * 2).sum())), DiagramOptions())
    cam, rects, r = _camera(story)
    back = [s for s in story.steps if s.kind == "backward"]
    cam.plan([union([rects[s.node]]) for s in back])
    shots = {cam.follow(union([rects[s.node]])) for s in back}
    assert len(shots) == 1
    assert _inside(union(rects.values()), next(iter(shots)).view(r.viewport), 1e-6)


def test_panel_cards_fit_without_overlapping() -> None:
    for s in choreograph(_chain(3)) + choreograph(lecture_graph()):
        if not s.panel:
            continue
        for w, h in ((13.8, 3.6), (7.5, 6.8), (1240.0, 380.0)):
            lay = pack(s.panel, w, h, max_em=0.55 if w < 100 else 24)
            assert lay.width <= w + 1e-6 and lay.height <= h + 1e-6
            frames = [Rect(c.frame.cx, -c.frame.cy, c.frame.w, c.frame.h) for c in lay.cards]
            assert not any(_overlap(a, b) for a, b in itertools.combinations(frames, 2))
            for c in lay.cards:
                cells = [b for row in c.cells for b in row]
                assert all(
                    _inside(Rect(b.cx, -b.cy, b.w, b.h), Rect(c.frame.cx, -c.frame.cy, c.frame.w, c.frame.h))
                    for b in cells
                )
