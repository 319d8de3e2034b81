"""Manim video of backpropagation: the choreography performed on the shared layout.

The scene performs `explainer.choreography.choreograph(g)` step by step on the
Graphviz positions of the static diagram, so video and slides look alike. Manim is
imported only here (and in ``scenes/``), only when a video is asked for.

Speed: every node's texts are built once, before the first frame; each animation
touches only the mobjects it moves, so Manim's Cairo renderer keeps everything else
in its cached static frame (a scene that re-creates or restyles all boxes on every
step redraws them all on every frame, roughly 2x slower on an 80-node graph).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import networkx as nx

from ..choreography import Step, choreograph
from ..errors import ExplainerError, ToolError
from ..layout import Layout, run_dot
from ..text import stage_name, value_inline
from ..themes import FONT, Theme, get_theme
from ..tools import check_file
from .graphviz import DiagramOptions, frame_rankdir, step_mark, to_dot

#: Quality presets: (Manim quality name, width, height, fps).
QUALITIES = {
    "low": ("low_quality", 854, 480, 15),
    "medium": ("medium_quality", 1280, 720, 30),
    "high": ("high_quality", 1920, 1080, 60),
}
#: Each step gets a shorter run time on big graphs, so the video stays around two minutes.
TARGET_SECONDS = 100.0


@dataclass
class VideoPlan:
    """Everything the scene needs, computed before Manim starts."""

    graph: nx.DiGraph
    layout: Layout
    steps: list[Step]
    theme: Theme
    lang: str = "en"
    digits: int = 4
    on_step: Callable[[int, int], None] | None = None
    cues: list[tuple[float, float, str]] = field(default_factory=list)


def plan_video(g: nx.DiGraph, theme: str = "light", lang: str = "en", digits: int = 4) -> VideoPlan:
    """Lay the graph out (same DOT as the diagram, without legend and title) and choreograph it."""
    opts = DiagramOptions(theme=theme, lang=lang, digits=digits, legend=False, title_bar=False)
    source = to_dot(g, replace(opts, rankdir=frame_rankdir(g, opts)))
    layout = run_dot(source)
    return VideoPlan(g, layout, choreograph(g, lang=lang, digits=digits), get_theme(theme), lang, digits)


def check_manim() -> None:
    """Fail now, with the install line, if Manim cannot be loaded (before a script is traced)."""
    _import_manim()


def _import_manim() -> Any:
    try:
        import manim
    except (ImportError, OSError) as exc:  # cairo/pango shared libraries missing
        raise ToolError(
            f"Manim could not be loaded ({exc}): install the libraries it needs with sudo apt-get install "
            "libcairo2-dev libpango1.0-dev, then try again"
        ) from None
    return manim


def build_scene_class() -> type:
    """The Manim scene class (defined lazily so importing this module never imports Manim)."""
    m = _import_manim()
    import numpy as np

    class Appear(m.Animation):
        """Fade a mobject in by setting its opacity, without the copies FadeIn makes.

        FadeIn is a Transform: it deep-copies the mobject (every glyph of every text)
        when it begins, which dominated render time on large graphs.
        """

        def __init__(self, mobject: Any, **kwargs: Any) -> None:
            self._opacity = [(sm, sm.get_fill_opacity(), sm.get_stroke_opacity()) for sm in mobject.family_members_with_points()]
            super().__init__(mobject, introducer=True, **kwargs)

        def create_starting_mobject(self) -> Any:
            return self.mobject

        def interpolate_mobject(self, alpha: float) -> None:
            a = self.rate_func(alpha)
            for sm, fill, stroke in self._opacity:
                sm.set_fill(opacity=fill * a, family=False)
                sm.set_stroke(opacity=stroke * a, family=False)

    class Restroke(m.Animation):
        """Change a box's outline colour and width in place (no copies)."""

        def __init__(self, mobject: Any, color: str, width: float, **kwargs: Any) -> None:
            self.c0, self.w0 = mobject.get_stroke_color(), mobject.get_stroke_width()
            self.c1, self.w1 = m.ManimColor(color), width
            super().__init__(mobject, **kwargs)

        def create_starting_mobject(self) -> Any:
            return self.mobject

        def interpolate_mobject(self, alpha: float) -> None:
            a = self.rate_func(alpha)
            self.mobject.set_stroke(
                color=m.interpolate_color(self.c0, self.c1, a), width=self.w0 + (self.w1 - self.w0) * a, family=False
            )

    class BackpropScene(m.Scene):
        """Performs a `VideoPlan`: forward, loss, backward step by step, update."""

        def __init__(self, plan: VideoPlan, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.plan = plan
            self.clock = 0.0

        # -- timing and subtitles ------------------------------------------------
        def timed_play(self, *anims: Any, run_time: float) -> None:
            self.play(*anims, run_time=run_time)
            self.clock += run_time

        def timed_wait(self, seconds: float) -> None:
            self.wait(seconds)
            self.clock += seconds

        # -- geometry --------------------------------------------------------------
        def setup_geometry(self) -> None:
            lay = self.plan.layout
            fw, fh = m.config.frame_width, m.config.frame_height
            self.caption_h = 1.9
            self.header_h = 0.55
            avail_w, avail_h = fw * 0.94, fh - self.caption_h - self.header_h - 0.2
            self.scale = min(avail_w / max(lay.width, 1), avail_h / max(lay.height, 1))
            self.origin = np.array([-lay.width * self.scale / 2, -fh / 2 + self.caption_h + 0.1, 0.0])
            # centre vertically in the available band
            extra = avail_h - lay.height * self.scale
            self.origin[1] += extra / 2

        def p(self, x: float, y: float) -> Any:
            return self.origin + np.array([x * self.scale, y * self.scale, 0.0])

        def fit(self, mob: Any, max_w: float, max_h: float) -> Any:
            if mob.width > max_w:
                mob.scale_to_fit_width(max_w)
            if mob.height > max_h:
                mob.scale_to_fit_height(max_h)
            return mob

        def text(self, s: str, color: str, size: float, bold: bool = False) -> Any:
            return m.Text(s, font=FONT, color=color, font_size=size, weight=m.BOLD if bold else m.NORMAL)

        # -- building --------------------------------------------------------------
        def build_nodes(self) -> None:
            g, th, lang, digits = self.plan.graph, self.plan.theme, self.plan.lang, self.plan.digits
            from .graphviz import _style

            self.boxes: dict[str, Any] = {}
            self.values: dict[str, Any] = {}
            self.grads: dict[str, Any] = {}
            self.groups: dict[str, Any] = {}
            self.badges: dict[str, Any] = {}
            for n, d in g.nodes(data=True):
                box = self.plan.layout.nodes.get(n)
                if box is None:
                    continue
                fill, border = _style(d["kind"], th)
                if d.get("nonfinite"):
                    fill, border = th.bad_fill, th.bad_border
                bw, bh = box.width * self.scale, box.height * self.scale
                rect = m.RoundedRectangle(
                    corner_radius=min(0.08, bh / 4), width=bw, height=bh,
                    fill_color=fill, fill_opacity=1.0, stroke_color=border, stroke_width=2,
                )
                rect.move_to(self.p(box.x, box.y))
                line_h = bh / 3.6
                label = self.fit(self.text(d["label"], th.text, 28, bold=True), bw * 0.9, line_h)
                value = self.fit(
                    self.text(f"{value_inline(d.get('value'), digits, lang)}", th.text, 24), bw * 0.9, line_h * 0.85
                )
                label.move_to(rect.get_top() + m.DOWN * (line_h * 0.65))
                value.move_to(rect.get_center())
                self.boxes[n], self.values[n] = rect, value
                self.groups[n] = m.VGroup(rect, label, value)
                if d.get("grad") is not None:
                    grad = self.fit(
                        self.text(f"∂ {value_inline(d['grad'], digits, lang)}", th.grad, 24), bw * 0.9, line_h * 0.85
                    )
                    grad.move_to(rect.get_bottom() + m.UP * (line_h * 0.6))
                    self.grads[n] = grad
                if d.get("backward_step") is not None:
                    badge = self.text(step_mark(d["backward_step"]), th.grad, 30, bold=True)
                    badge.scale_to_fit_height(min(line_h * 0.8, 0.3))
                    badge.next_to(rect.get_corner(m.UR), m.DL, buff=0.04)
                    self.badges[n] = badge

        def build_edges(self) -> None:
            th = self.plan.theme
            self.edges: dict[tuple[str, str], Any] = {}
            for (u, v), pts in self.plan.layout.edges.items():
                if len(pts) < 4:
                    continue
                anchors = [self.p(x, y) for x, y in pts]
                # Graphviz splines: p0, then (c1, c2, p) triples; Manim wants [a, h, h, a] per curve.
                quads = []
                for i in range(0, len(anchors) - 3, 3):
                    quads += [anchors[i], anchors[i + 1], anchors[i + 2], anchors[i + 3]]
                path = m.VMobject(stroke_color=th.edge, stroke_width=2)
                path.set_points(np.array(quads))
                d = self.plan.graph.edges[u, v]
                if d.get("grad") is None:
                    path = m.DashedVMobject(path, num_dashes=14)
                    path.set_stroke(th.edge, 2)
                end, before = anchors[-1], anchors[-2]
                direction = end - before
                angle = float(np.arctan2(direction[1], direction[0]))
                tip = m.Triangle(fill_color=th.edge, fill_opacity=1, stroke_width=0).scale(0.05)
                tip.rotate(angle - np.pi / 2).move_to(end)
                target = self.boxes.get(v)
                if target is not None:
                    # Graphviz ends the spline at the arrow tip's base; put the tip on the box border.
                    tip.move_to(end + direction / max(np.linalg.norm(direction), 1e-9) * 0.05)
                self.edges[(u, v)] = m.VGroup(path, tip)
                self.edges[(u, v)].path = path

        def node_mobjects(self, n: str) -> list[Any]:
            """Node ``n``'s box and texts that are in the scene, bottom to top."""
            mobs = [self.groups[n], self.grads.get(n), self.badges.get(n)]
            return [mob for mob in mobs if mob is not None and mob in self.mobjects]

        # -- caption -----------------------------------------------------------------
        def caption(self, lines: tuple[str, ...], color: str | None = None) -> Any:
            th = self.plan.theme
            fw = m.config.frame_width
            # One Text for all lines: each Text is a Pango render plus an SVG parse.
            body = "\n".join(lines[:5])
            group = m.Text(body, font=FONT, color=color or th.text, font_size=26, line_spacing=0.8,
                           t2w={lines[0]: m.BOLD} if lines else None)
            self.fit(group, fw * 0.94, self.caption_h - 0.15)
            group.to_edge(m.DOWN, buff=0.1)
            group.to_edge(m.LEFT, buff=fw * 0.03)
            return group

        def header(self, key: str) -> Any:
            """The stage's name at the top: forward, backward or update."""
            th = self.plan.theme
            h = self.text(stage_name(key, self.plan.lang), th.muted, 26, bold=True)
            h.scale_to_fit_height(min(h.height, self.header_h * 0.55))
            h.to_edge(m.UP, buff=0.12)
            return h

        # -- the performance -----------------------------------------------------------
        def construct(self) -> None:
            plan = self.plan
            th = plan.theme
            self.camera.background_color = th.background
            self.setup_geometry()
            self.build_nodes()
            self.build_edges()
            steps = plan.steps
            budget = TARGET_SECONDS / max(len(steps), 1)
            rt = max(0.5, min(1.6, budget * 0.8))
            shown: set[str] = set()
            shown_grads: set[str] = set()
            cap: Any = None
            head: Any = None
            stage = None
            lit: str | None = None  # the box highlighted by the previous step
            # One `play` per step: each play re-draws every static mobject once into
            # Manim's background image, so a step with many plays costs many redraws.
            for i, step in enumerate(steps):
                if plan.on_step:
                    plan.on_step(i, len(steps))
                start = self.clock
                first: list[Any] = []  # runs at the start of the step, together
                then: list[Any] = []  # runs after `first`, together
                front: list[Any] = []  # mobjects this step changes: drawn last, see below
                if lit is not None:
                    first.append(Restroke(self.boxes[lit], th.grad, 2))
                    front += self.node_mobjects(lit)
                    lit = None
                if step.stage != stage:
                    stage = step.stage
                    self.next_section(stage)
                    if stage in ("forward", "backward", "update"):
                        # Header and caption change at once, not faded: fading text redraws
                        # every glyph on every frame; swapped, they join the cached background.
                        if head is not None:
                            self.remove(head)
                        head = self.header(stage)
                        self.add(head)
                        self.bring_to_back(head)
                if step.kind == "title":
                    title = self.text(step.lines[0], th.text, 44, bold=True)
                    sub = self.text(step.lines[1], th.loss_border, 32)
                    extra = [self.text(line, th.muted, 22) for line in step.lines[2:]]
                    grp = m.VGroup(title, sub, *extra).arrange(m.DOWN, buff=0.3)
                    self.fit(grp, m.config.frame_width * 0.9, 3)
                    self.timed_play(m.FadeIn(grp), run_time=0.6)
                    self.timed_wait(0.8)
                    self.timed_play(m.FadeOut(grp), run_time=0.6)
                    continue
                if cap is not None:
                    self.remove(cap)
                cap = self.caption(step.lines)
                self.add(cap)
                self.bring_to_back(cap)
                n = step.node
                if step.kind in ("forward", "loss"):
                    for u, _ in step.edges:
                        if u not in shown and u in self.groups:
                            first.append(Appear(self.groups[u]))
                            shown.add(u)
                    if n not in shown and n in self.groups:
                        then.append(Appear(self.groups[n]))
                        shown.add(n)
                    then += [m.Create(self.edges[e]) for e in step.edges if e in self.edges]
                    if step.kind == "loss":
                        then.append(Restroke(self.boxes[n], th.loss_border, 5))
                        front += self.node_mobjects(n)
                        lit = n
                        if n in self.grads:
                            then.append(Appear(self.grads[n]))
                            shown_grads.add(n)
                elif step.kind in ("backward", "accumulate"):
                    if n in self.badges and step.kind == "backward":
                        first.append(Appear(self.badges[n]))
                    first.append(Restroke(self.boxes[n], th.grad, 5))
                    front += self.node_mobjects(n)
                    lit = n
                    if step.kind == "backward" and n in self.grads and n not in shown_grads:
                        # The node's full upstream gradient is known now: write it at the node.
                        first.append(Appear(self.grads[n]))
                        shown_grads.add(n)
                    for u, v in step.edges:
                        if v != n or (u, v) not in self.edges or step.kind != "backward":
                            continue
                        path = self.edges[(u, v)].path.copy()
                        path.reverse_points()
                        dot = m.Dot(radius=0.06, color=th.grad).move_to(path.get_start())
                        then.append(m.MoveAlongPath(dot, path, rate_func=m.smooth, remover=True))
                        then.append(Restroke(self.edges[(u, v)][0], th.grad, 3))
                        front.append(self.edges[(u, v)])
                elif step.kind == "update":
                    d = plan.graph.nodes[n]
                    after = self.text(value_inline(d["update"]["after"], plan.digits, plan.lang), th.update, 24, bold=True)
                    after.match_height(self.values[n]).move_to(self.values[n])
                    first.append(Restroke(self.boxes[n], th.update, 5))
                    front += self.node_mobjects(n)
                    lit = n
                    then.append(m.Transform(self.values[n], after))
                elif step.kind == "zero_grad":
                    then += [m.FadeOut(self.grads[g]) for g in sorted(shown_grads)]
                    shown_grads = set()
                # `first` then `then` in ONE play, by shifting rate functions rather than
                # wrapping them in Succession: a composite animation's Group would be added to
                # the scene on top of everything, painting boxes over their own labels.
                if first and then:
                    for a in first:
                        a.rate_func = _window(a.rate_func, 0.0, 0.45)
                    for a in then:
                        a.rate_func = _window(a.rate_func, 0.45, 1.0)
                # Manim redraws, on every frame, every mobject listed after the first one that
                # moves; so the few that change go to the end of the list (a node's box with
                # its own texts, in order), and the rest stays in the cached background.
                if front:
                    self.bring_to_front(*front)
                anims = first + then
                if anims:
                    self.timed_play(*anims, run_time=rt if then else rt * 0.6)
                else:
                    self.timed_wait(rt * 0.6)
                plan.cues.append((start, self.clock, " / ".join(step.lines)))
            self.timed_wait(1.0)
            if plan.on_step:
                plan.on_step(len(steps), len(steps))

    return BackpropScene


def _window(rate_func: Callable[[float], float], start: float, end: float) -> Callable[[float], float]:
    """``rate_func`` squeezed into [start, end] of the play's time: before it 0, after it 1."""

    def windowed(t: float) -> float:
        if t <= start:
            return rate_func(0.0)
        if t >= end:
            return rate_func(1.0)
        return rate_func((t - start) / (end - start))

    return windowed


def write_srt(cues: list[tuple[float, float, str]], path: Path) -> Path:
    """Subtitles, one cue per step, times from the scene's own clock."""

    def ts(sec: float) -> str:
        ms = int(round(sec * 1000))
        h, ms = divmod(ms, 3_600_000)
        mi, ms = divmod(ms, 60_000)
        s, ms = divmod(ms, 1000)
        return f"{h:02d}:{mi:02d}:{s:02d},{ms:03d}"

    out = []
    for i, (a, b, text) in enumerate(cues, 1):
        out.append(f"{i}\n{ts(a)} --> {ts(b)}\n{text}\n")
    path.write_text("\n".join(out), encoding="utf-8")
    return path


def render_video(
    g: nx.DiGraph,
    out_dir: Path,
    quality: str = "low",
    theme: str = "light",
    lang: str = "en",
    digits: int = 4,
    on_step: Callable[[int, int], None] | None = None,
) -> tuple[Path, Path]:
    """Render ``backward.mp4`` and ``backward.srt`` into ``out_dir``."""
    if quality not in QUALITIES:
        raise ExplainerError(f"unknown quality {quality!r}: use one of {', '.join(QUALITIES)}")
    m = _import_manim()
    plan = plan_video(g, theme, lang, digits)
    plan.on_step = on_step
    scene_cls = build_scene_class()
    qname, width, height, fps = QUALITIES[quality]
    with tempfile.TemporaryDirectory(prefix="explain-graph-video-") as tmp:
        settings = {
            "quality": qname,
            "pixel_width": width,
            "pixel_height": height,
            "frame_rate": fps,
            "media_dir": tmp,
            "output_file": "backward",
            "disable_caching": True,
            "progress_bar": "none",
            "verbosity": "ERROR",
            "background_color": plan.theme.background,
            "write_to_movie": True,
            "format": "mp4",
        }
        with m.tempconfig(settings):
            scene = scene_cls(plan)
            scene.render()
            movie = Path(scene.renderer.file_writer.movie_file_path)
        out_dir.mkdir(parents=True, exist_ok=True)
        mp4 = out_dir / "backward.mp4"
        check_file(movie, "mp4", "Manim (backward.mp4)")
        shutil.copyfile(movie, mp4)
    srt = write_srt(plan.cues, out_dir / "backward.srt")
    return mp4, srt


__all__ = ["QUALITIES", "VideoPlan", "build_scene_class", "check_manim", "plan_video", "render_video", "write_srt"]
