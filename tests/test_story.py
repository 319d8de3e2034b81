"""The story and the frame layout, computed once per run and shared by the video, the slides and the page."""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import EXAMPLES, lecture_graph, run_cli

import explainer.layout
import explainer.story
from explainer.choreography import choreograph
from explainer.layout import Layout
from explainer.render.frames import SVG_NS
from explainer.render.graphviz import DiagramOptions
from explainer.story import build_story, choose_rankdir

ROOT = Path(__file__).resolve().parents[1]


def _dot_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *options: str) -> list[str]:
    """The ``dot`` command lines of one CLI run of the lecture with every step-through output."""
    bin_dir, log = tmp_path / "bin", tmp_path / "dot-calls"
    real = shutil.which(
        "dot", path=os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != str(bin_dir))
    )
    assert real
    bin_dir.mkdir(exist_ok=True)
    stand_in = bin_dir / "dot"
    stand_in.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexec "{real}" "$@"\n')
    stand_in.chmod(0o755)
    log.unlink(missing_ok=True)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "out"
    proc = run_cli(str(EXAMPLES / "linear_regression.py"), "--out", str(out), "--video", "--slides", "--html", *options)
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in out.iterdir()} >= {"backward.mp4", "slides.pdf", "index.html"}
    return log.read_text().splitlines()


def test_a_run_with_every_output_calls_dot_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One dot for the diagram files, one for the frame the video, slides and page share (which
    also lays out the diagram both ways when its direction is left to the tool)."""
    for options in (("--rankdir", "LR"), ()):
        calls = _dot_calls(tmp_path, monkeypatch, *options)
        assert len(calls) == 2, calls
        assert any("-Tjson0" in c and "-Tsvg" in c and "-O" in c for c in calls)  # the frame, with its SVG


def test_renderers_only_read_the_story(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After `build_story`, rendering the slides and the page runs neither dot nor the choreography again."""
    from explainer.render import html, slides

    g = lecture_graph()
    story = build_story(g, DiagramOptions())
    calls: list[str] = []

    def forbidden(name: str):  # noqa: ANN202
        def fail(*a: object, **k: object) -> None:
            calls.append(name)
            raise AssertionError(f"{name} called by a renderer")

        return fail

    monkeypatch.setattr(explainer.layout, "run_dot", forbidden("run_dot"))
    monkeypatch.setattr(explainer.layout, "lay_out", forbidden("lay_out"))
    monkeypatch.setattr(explainer.story, "lay_out", forbidden("lay_out"))
    monkeypatch.setattr(explainer.story, "choreograph", forbidden("choreograph"))
    slides.render_slides(story, tmp_path)
    html.render_html(story, tmp_path)
    assert calls == []
    # and no renderer module imports the choreography or dot at all
    for mod in ("video", "scene", "slides", "html", "hud", "nodes"):
        text = (ROOT / "explainer" / "render" / f"{mod}.py").read_text(encoding="utf-8")
        assert "choreograph(" not in text and "run_dot" not in text and "frame_rankdir" not in text, mod


def test_story_is_the_choreography_on_one_layout() -> None:
    g = lecture_graph()
    story = build_story(g, DiagramOptions(lang="ko", digits=3))
    assert list(story.steps) == choreograph(g, lang="ko", digits=3)
    # the positions and the SVG come from the same layout: the SVG's node polygons sit where the layout says
    root = ET.fromstring(story.svg)
    for el in root.iter(f"{{{SVG_NS}}}g"):
        if el.get("class") != "node":
            continue
        nid = el.find(f"{{{SVG_NS}}}title").text
        text = next(t for t in el.iter(f"{{{SVG_NS}}}text"))
        box = story.layout.nodes[nid]
        x = float(text.get("x"))
        assert box.x - box.width / 2 <= x <= box.x + box.width / 2


def test_rankdir_follows_the_option_or_the_frame() -> None:
    g = lecture_graph()
    assert build_story(g, DiagramOptions(rankdir="TB")).rankdir == "TB"
    wide, tall = Layout(width=800, height=200), Layout(width=200, height=800)
    assert choose_rankdir({"LR": wide, "TB": tall}) == "LR"
    assert choose_rankdir({"LR": Layout(width=3000, height=100), "TB": Layout(width=600, height=300)}) == "TB"
    assert choose_rankdir({"LR": Layout(width=800, height=300), "TB": Layout(width=780, height=300)}) == "LR"


def test_notebook_steps_use_the_same_story(monkeypatch: pytest.MonkeyPatch) -> None:
    import explainer.notebook as nb

    built: list[object] = []
    real = nb.build_story

    def spy(g, options=None, steps=None):  # noqa: ANN001, ANN202
        built.append(g)
        return real(g, options, steps)

    monkeypatch.setattr(nb, "build_story", spy)
    page = nb.Diagram(lecture_graph()).steps()
    assert len(built) == 1 and 'id="eg-data"' in page.page


def test_the_diagram_is_the_same_with_or_without_the_story(tmp_path: Path) -> None:
    """The diagram's direction chosen in the story's dot process is the one it chooses alone."""
    for name, extra in (("alone", ()), ("with", ("--html",))):
        proc = run_cli(str(EXAMPLES / "cross_entropy.py"), "--out", str(tmp_path / name), "--format", "svg", *extra)
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "alone" / "graph.svg").read_bytes() == (tmp_path / "with" / "graph.svg").read_bytes()
