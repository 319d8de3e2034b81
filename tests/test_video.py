"""The backprop video: choreography as data, a real low-quality Manim render decoded with PyAV."""

from __future__ import annotations

import os
import re
from pathlib import Path

import av
import networkx as nx
import numpy as np
import pytest
import torch
import torch.nn as nn

from explainer.choreography import choreograph
from explainer.graph import build_graph
from explainer.text import value_inline
from explainer.trace import trace_call

from conftest import lecture_graph

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
    mp4, srt = render_video(g, out, quality="low", on_step=lambda i, n: calls.append((i, n)))
    assert calls and calls[-1][0] == calls[-1][1], "progress reaches the end"
    return mp4, srt, g


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """48x85 block means of a 480x854 grey frame: small, and tolerant of antialiasing."""
    img = frame[:480, :850].astype(np.float32)
    return img.reshape(48, 10, 85, 10).mean(axis=(1, 3))


def _frames(mp4: Path) -> tuple[list[float], list[np.ndarray], av.video.stream.VideoStream]:
    times, frames = [], []
    with av.open(str(mp4)) as c:
        stream = c.streams.video[0]
        w, h = stream.width, stream.height
        for f in c.decode(video=0):
            times.append(float(f.pts * f.time_base))
            frames.append(f.to_ndarray(format="gray"))
    return times, frames, (w, h)


def test_video_decodes_with_expected_shape_and_length(video) -> None:
    mp4, srt, g = video
    times, frames, (w, h) = _frames(mp4)
    assert (w, h) == (854, 480)
    duration = times[-1]
    cues = re.findall(r"(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)", srt.read_text())
    last_end = sum(int(v) * m for v, m in zip(cues[-1][4:], (3600, 60, 1, 0.001)))
    assert last_end < duration < last_end + 3
    assert abs(len(frames) - duration * 15) <= 3  # 15 fps
    assert 10 < duration < 60  # a short preview


def test_srt_has_one_cue_per_step_in_order(video) -> None:
    mp4, srt, g = video
    text = srt.read_text()
    steps = [s for s in choreograph(g) if s.kind != "title"]
    blocks = [b for b in text.strip().split("\n\n") if b]
    assert len(blocks) == len(steps)
    assert "loss = mse_loss" in text and "model.weight.grad" in text
    starts = re.findall(r"(\d\d:\d\d:\d\d,\d\d\d) -->", text)
    assert starts == sorted(starts)


def test_stages_look_different_and_match_goldens(video) -> None:
    mp4, srt, g = video
    times, frames, _ = _frames(mp4)
    cue_times = [
        (sum(int(v) * m for v, m in zip(c[:4], (3600, 60, 1, 0.001))), c[-1])
        for c in re.findall(r"(\d\d):(\d\d):(\d\d),(\d\d\d) --> .*\n(.*)", srt.read_text())
    ]
    first_backward = next(t for t, line in cue_times if "upstream" in line)
    first_update = next(t for t, line in cue_times if "Optimizer step" in line)
    picks = {"forward": 3.0, "backward": first_backward + 0.9, "update": times[-1] - 0.5}
    small = {}
    for name, t in picks.items():
        i = min(range(len(times)), key=lambda k: abs(times[k] - t))
        small[name] = thumbnail(frames[i])
    assert first_update > first_backward
    assert np.abs(small["forward"] - small["backward"]).mean() > 1.0
    assert np.abs(small["backward"] - small["update"]).mean() > 1.0
    for name in ("forward", "update"):
        golden = GOLDENS / f"lecture_{name}.npy"
        if UPDATE or not golden.exists():
            if not UPDATE:
                pytest.fail(f"missing golden {golden}: run with UPDATE_GOLDENS=1 once and look at the frames")
            np.save(golden, small[name].astype(np.uint8))
            continue
        ref = np.load(golden).astype(np.float32)
        assert np.abs(ref - small[name]).mean() < 6.0, f"{name} frame drifted from its golden"
