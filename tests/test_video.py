"""The backprop video: choreography as data, a real low-quality Manim render decoded with PyAV."""

from __future__ import annotations

import os
from pathlib import Path

import av
import networkx as nx
import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import lecture_graph

from explainer.choreography import choreograph
from explainer.graph import build_graph
from explainer.story import build_story
from explainer.text import value_inline
from explainer.trace import trace_call

# Renders real videos: ./dev.sh test -m "not slow" skips them.
pytestmark = pytest.mark.slow

GOLDENS = Path(__file__).parent / "goldens"
UPDATE = os.environ.get("UPDATE_GOLDENS") == "1"


def test_choreography_follows_recorded_backward_order() -> None:
    g = lecture_graph()
    steps = choreograph(g)
    back = [s.node for s in steps if s.kind == "backward"]
    assert back == g.graph["backward_order"]
    with_grad = {n for n, d in g.nodes(data=True) if d["grad"] is not None}
    assert set(back) == with_grad
    kinds = [s.kind for s in steps]
    assert kinds[0] == "title" and kinds[-1] == "zero_grad"
    assert kinds.index("loss") < kinds.index("backward") < kinds.index("update")
    # every forward step's node appears after the nodes it consumes
    seen: set[str] = set()
    for s in steps:
        if s.kind in ("forward", "loss"):
            assert all(u in seen for u, _ in s.edges), s
            seen.add(s.node)
            seen.update(u for u, _ in s.edges)


def test_caption_numbers_equal_the_graph() -> None:
    g = lecture_graph()
    for s in choreograph(g):
        if s.kind != "backward":
            continue
        d = g.nodes[s.node]
        assert s.numbers["grad"] == d["grad"]
        text = " ".join(s.lines)
        assert value_inline(d["grad"]) in text
        for u, sent in s.numbers.get("sent", {}).items():
            assert sent == g.edges[u, s.node]["grad"]
            assert value_inline(sent) in text
    pred = next(s for s in choreograph(g) if s.kind == "backward" and g.nodes[s.node]["label"] == "pred")
    assert "∂/∂b = Σ_rows g" in " ".join(pred.lines)  # exact local derivative of addmm w.r.t. the bias
    upd = [s for s in choreograph(g) if s.kind == "update"]
    assert {g.nodes[s.node]["label"] for s in upd} == {"model.weight", "model.bias"}
    w = next(s for s in upd if g.nodes[s.node]["label"] == "model.weight")
    before = np.array(w.numbers["before"]).ravel()[0]
    grad = np.array(w.numbers["grad"]).ravel()[0]
    after = np.array(w.numbers["after"]).ravel()[0]
    assert after == pytest.approx(before - 0.05 * grad, rel=1e-6)
    assert "0.05 ×" in " ".join(w.lines)


def test_fan_out_shows_accumulation() -> None:
    a = torch.tensor(1.5, requires_grad=True)
    g = build_graph(trace_call(lambda: a * a + a))
    acc = [s for s in choreograph(g) if s.kind == "accumulate"]
    assert len(acc) == 1 and g.nodes[acc[0].node]["label"] == "a"
    parts = acc[0].numbers["parts"]
    assert sum(parts) == pytest.approx(g.nodes[acc[0].node]["grad"])
    assert g.nodes[acc[0].node]["grad"] == pytest.approx(2 * 1.5 + 1)


def test_cross_entropy_shows_log_softmax_and_nll_loss_as_separate_steps() -> None:
    logits = torch.tensor([[2.0, 0.5, -1.0]])
    target = torch.tensor([0])
    g = build_graph(trace_call(lambda: nn.CrossEntropyLoss()(logits, target)))
    ops = [g.nodes[s.node]["op"] for s in choreograph(g) if s.kind == "backward" and g.nodes[s.node]["op"]]
    assert ops == ["nll_loss", "log_softmax"]


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> tuple[Path, Path, nx.DiGraph]:
    from explainer.render.video import render_video

    out = tmp_path_factory.mktemp("video")
    g = lecture_graph()
    calls: list[tuple[int, int]] = []
    files = render_video(build_story(g), out, quality="low", on_step=lambda i, n: calls.append((i, n)))
    assert calls and calls[-1][0] == calls[-1][1], "progress reaches the end"
    assert [f.name for f in files[:2]] == ["backward.mp4", "backward.srt"]
    return files[0], files[1], g


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """48x85 block means of a 480x854 grey frame: small, and tolerant of antialiasing."""
    img = frame[:480, :850].astype(np.float32)
    return img.reshape(48, 10, 85, 10).mean(axis=(1, 3))


def _frames(mp4: Path) -> tuple[list[float], list[np.ndarray], tuple[int, int]]:
    times, frames = [], []
    with av.open(str(mp4)) as c:
        stream = c.streams.video[0]
        w, h = stream.width, stream.height
        for f in c.decode(video=0):
            times.append(float(f.pts * f.time_base))
            frames.append(f.to_ndarray(format="gray"))
    return times, frames, (w, h)


def cues(srt: Path) -> list[tuple[float, float, list[str]]]:
    """The subtitles: (start, end, lines) per cue."""
    out = []
    for block in srt.read_text(encoding="utf-8").strip().split("\n\n"):
        lines = block.split("\n")
        a, b = (
            sum(float(x) * m for x, m in zip(t.replace(",", ".").split(":"), (3600, 60, 1)))
            for t in lines[1].split(" --> ")
        )
        out.append((a, b, lines[2:]))
    return out


def test_video_decodes_with_expected_shape_and_length(video) -> None:
    mp4, srt, g = video
    times, frames, (w, h) = _frames(mp4)
    assert (w, h) == (854, 480)
    duration = times[-1]
    last_end = cues(srt)[-1][1]
    assert last_end < duration < last_end + 1.5  # the subtitles run on the video's own clock
    assert abs(len(frames) - duration * 15) <= 3  # 15 fps
    assert 10 < duration < 60  # a short preview


def test_srt_has_one_cue_per_step_in_order_with_lines_as_lines(video) -> None:
    mp4, srt, g = video
    steps = [s for s in choreograph(g) if s.kind != "title"]
    got = cues(srt)
    # one per step, and one where the camera pulls back to show the whole graph before each stage
    assert len(got) == len(steps) + 2
    assert [c[2] for c in got if c[2] in (["Backward pass"], ["Optimizer step"])] == [
        ["Backward pass"],
        ["Optimizer step"],
    ]
    text = srt.read_text(encoding="utf-8")
    assert "loss = mse_loss" in text and "model.weight.grad" in text
    assert " / " not in text  # caption lines stay lines (a slash reads as division)
    pred = next(c for c in got if c[2][0] == "pred = b + x · Wᵀ")
    assert pred[2] == list(next(s for s in steps if s.kind == "backward" and s.lines[0] == "pred = b + x · Wᵀ").lines)
    starts = [c[0] for c in got]
    assert starts == sorted(starts)


def test_stages_look_different_and_match_goldens(video) -> None:
    """Frames at tiny resolution against stored ones (tolerance: a mean difference of 6 grey levels)."""
    mp4, srt, g = video
    times, frames, _ = _frames(mp4)
    got = cues(srt)
    first_backward = next((a + b) / 2 for a, b, lines in got if lines[0].startswith("loss = mean"))
    first_update = next((a + b) / 2 for a, b, lines in got if lines[0].startswith("Optimizer step ("))
    picks = {"forward": 3.0, "backward": first_backward, "update": first_update, "end": times[-1] - 0.3}
    small = {}
    for name, t in picks.items():
        i = min(range(len(times)), key=lambda k: abs(times[k] - t))
        small[name] = thumbnail(frames[i])
    assert first_update > first_backward
    assert np.abs(small["forward"] - small["backward"]).mean() > 1.0
    assert np.abs(small["backward"] - small["update"]).mean() > 1.0
    for name in ("forward", "backward", "update", "end"):
        golden = GOLDENS / f"lecture_{name}.npy"
        if UPDATE or not golden.exists():
            if not UPDATE:
                pytest.fail(f"missing golden {golden}: run with UPDATE_GOLDENS=1 once and look at the frames")
            np.save(golden, small[name].astype(np.uint8))
            continue
        ref = np.load(golden).astype(np.float32)
        assert np.abs(ref - small[name]).mean() < 6.0, f"{name} frame drifted from its golden"


def _mobjects(g: nx.DiGraph):  # noqa: ANN202
    from explainer.render.framing import place, regions
    from explainer.render.mobjects import Typesetter
    from explainer.render.nodes import GraphMobjects

    story = build_story(g)
    return GraphMobjects(story, place(story.layout, regions(False).overview), Typesetter(), Typesetter(bold=True))


def test_step_badges_sit_after_names_never_on_them() -> None:
    g = build_graph(trace_call(_mlp17_step))
    nodes = _mobjects(g)
    assert nodes.badges
    for n, badge in nodes.badges.items():
        rect, label = nodes.groups[n][0], nodes.groups[n][1]
        assert badge.get_left()[0] > label.get_right()[0]  # after the name, not over it
        assert badge.get_right()[0] <= rect.get_right()[0] + 1e-6  # inside the box
        assert abs(badge.get_center()[1] - label.get_center()[1]) < label.height  # on the name's line


def test_backward_arrowheads_point_to_where_the_gradient_goes() -> None:
    g = lecture_graph()
    nodes = _mobjects(g)
    for (u, v), back in nodes.back_tips.items():
        fwd = nodes.tips[(u, v)]
        # the forward head touches the consumer v, the backward head the producer u
        point_fwd, point_back = fwd.get_vertices()[0], back.get_vertices()[0]
        dist = lambda p, n: np.linalg.norm(p[:2] - nodes.groups[n][0].get_center()[:2])  # noqa: E731
        assert dist(point_back, u) < dist(point_back, v)
        assert dist(point_fwd, v) < dist(point_fwd, u)
        # and it points at u: from its base toward its point is the way to u
        base = back.get_vertices()[1:].mean(axis=0)
        to_u = nodes.groups[u][0].get_center() - base
        assert float(np.dot(point_back - base, to_u)) > 0


def _mlp17_step() -> torch.Tensor:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    return nn.functional.mse_loss(model(torch.randn(2, 4)), torch.zeros(2, 1))


def test_sections_one_per_backward_step(video, tmp_path: Path) -> None:
    import json

    mp4, srt, g = video
    folder = mp4.parent / "backward_sections"
    index = json.loads((folder / "sections.json").read_text(encoding="utf-8"))
    names = [s["name"] for s in index["sections"]]
    backward = [n for n in names if "-backward-" in n]
    assert len(backward) == len(g.graph["backward_order"])  # one clip per backward step
    assert names[0].endswith("title") and any(n.endswith("-update") for n in names)
    for s in index["sections"]:
        clip = folder / s["file"]
        with av.open(str(clip)) as c:
            assert c.streams.video[0].frames > 0 or c.duration
    starts = [s["start"] for s in index["sections"] if "start" in s]
    assert starts == sorted(starts)
