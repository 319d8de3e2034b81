"""The backprop video's Manim scene: the story (`explainer.story`) performed on its frame layout.

Imports Manim at the top; `explainer.render.video` imports this module only inside
``render_video``, and ``scenes/backprop.py`` wraps it for Manim's own command line.

Each step of the story is one method (`forward`, `loss`, `backward`, `accumulate`,
`update`, `zero_grad`, `title`) that says what changes; `perform` frames it: the camera
shot (`explainer.render.framing`), the header and the focus panel (`explainer.focus`,
placed by `explainer.render.panel`), one ``play`` for the step, a hold to read it, the
subtitle cue and, for each backward step, its own Manim section.

Speed: every node's mobjects are built once; each play animates only what the step
changes and moves it to the end of Manim's draw list, so the rest stays in the cached
background; while the camera is close, boxes outside the shot leave the scene.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import manim as m

from ..choreography import Step
from ..story import Story
from ..text import stage_name
from .framing import HOME, Camera, Rect, Shot, place, regions, union
from .hud import Hud
from .mobjects import Appear, Fade, MoveCamera, Restroke, Typesetter
from .nodes import GraphMobjects

#: The video lasts about this long: steps get shorter on big graphs.
TARGET_SECONDS = 100.0
#: Run time of one step (seconds), before and after the budget above shortens it.
STEP_MIN, STEP_MAX = 0.5, 1.6
#: A step that shows numbers stays on screen this much longer, to be read (fraction of its run time).
HOLD = 0.6


@dataclass
class Cue:
    """One subtitle: a step's time span and its caption lines."""

    start: float
    end: float
    lines: tuple[str, ...]
    section: str | None = None  # the Manim section this cue opens, if it opens one


@dataclass
class Beat:
    """What one step animates: ``first`` runs at the start, ``then`` after it; ``front`` is redrawn each frame."""

    first: list[Any] = field(default_factory=list)
    then: list[Any] = field(default_factory=list)
    front: list[Any] = field(default_factory=list)


def section_name(index: int, step: Step, label: str) -> str:
    """A file-name-safe section name: ``012-backward-fc1.weight``."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_")[:40]
    return f"{index:03d}-{step.kind}" + (f"-{safe}" if safe else "")


class BackpropScene(m.MovingCameraScene):
    """Performs a `Story`: forward, loss, backward step by step, update."""

    def __init__(self, story: Story, on_step: Callable[[int, int], None] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.story, self.on_step = story, on_step
        self.g, self.theme, self.lang = story.graph, story.theme, story.options.lang
        self.clock = 0.0
        self.cues: list[Cue] = []
        self.stage: str | None = None
        self.lit: str | None = None
        self.opened: str | None = None  # a section started and not yet given a cue
        budget = TARGET_SECONDS / max(len(story.steps), 1)
        self.rt = max(STEP_MIN, min(STEP_MAX, budget * 0.8))

    # ------------------------------------------------------------------ timing
    # The clock is the video's own: frames written so far (a play rounds its run time up to
    # whole frames), so subtitles and section times match the frames exactly.
    def timed_play(self, *anims: Any, run_time: float) -> None:
        self.play(*anims, run_time=run_time)
        self.clock = self.renderer.time

    def timed_wait(self, seconds: float) -> None:
        if seconds > 0:
            self.wait(seconds)
            self.clock = self.renderer.time

    # ------------------------------------------------------------------ set-up
    def setup_stage(self) -> None:
        story = self.story
        camera: Any = self.camera
        camera.background_color = self.theme.background
        self.regions = regions(side_by_side=story.rankdir == "TB")
        self.placement = place(story.layout, self.regions.overview)
        fonts = (Typesetter(), Typesetter(bold=True))
        self.nodes = GraphMobjects(story, self.placement, *fonts)
        self.hud = Hud(story, self.regions, *fonts)
        boxes = list(self.nodes.rects.values())
        whole = union(boxes) if boxes else Rect(0, 0, 1, 1)
        self.cam = Camera(whole, self.nodes.label_height, self.regions.viewport)
        self.shot = HOME
        self.hud_group: Any = None

    def construct(self) -> None:
        self.setup_stage()
        steps = self.story.steps
        for i, step in enumerate(steps):
            if self.on_step:
                self.on_step(i, len(steps))
            self.perform(i, step)
        self.timed_wait(1.0)
        if self.on_step:
            self.on_step(len(steps), len(steps))

    # ------------------------------------------------------------------ one step
    def open_section(self, name: str) -> None:
        self.next_section(name)
        self.opened = name

    def cue(self, start: float, lines: tuple[str, ...]) -> None:
        self.cues.append(Cue(start, self.clock, lines, self.opened))
        self.opened = None

    def near(self, step: Step) -> set[str]:
        """The nodes a step's shot frames: its node with what it reads from or sends to."""
        n = step.node
        if n is None:
            return set(self.g.nodes)
        if step.kind in ("forward", "loss"):
            return {n, *(u for u, _ in step.edges)}
        if step.kind == "backward":
            senders = [v for v in self.g.successors(n) if self.g.edges[n, v].get("grad") is not None]
            return {n, *(u for u, _ in step.edges), *senders[:2]}
        if step.kind == "accumulate":
            return {n, *(v for _, v in step.edges)}
        return {n}

    def perform(self, index: int, step: Step) -> None:
        if step.stage != self.stage:
            self.stage = step.stage
            self.open_section(f"{index:03d}-{step.stage}")
            if step.stage in ("backward", "update"):
                self.pull_back(step)
            stage = [s for s in self.story.steps if s.stage == step.stage and s.kind not in ("title", "zero_grad")]
            self.cam.plan(self.nodes.area(self.near(s)) for s in stage)
        if step.kind in ("backward", "accumulate"):
            self.open_section(section_name(index, step, self.g.nodes[step.node]["label"] if step.node else ""))
        start = self.clock
        if step.kind == "title":
            self.title(step)
            return
        beat = Beat()
        if self.lit is not None:
            beat.first.append(self.nodes.unlight(self.lit))
            beat.front += self.nodes.node_mobjects(self.lit, self)
            self.lit = None
        getattr(self, step.kind)(step, beat)
        overview = step.kind == "zero_grad"
        shot = HOME if overview else self.cam.follow(self.nodes.area(self.near(step)))
        hud = self.hud.overview(step) if overview else self.hud.focus(step)
        self.show(beat, shot, hud)
        reading = bool(step.panel) and step.kind in ("backward", "accumulate", "update")
        self.timed_wait(self.rt * HOLD if reading else 0.0)
        self.cue(start, step.lines)

    def show(self, beat: Beat, shot: Shot, hud: Any) -> None:
        """One play: the camera to ``shot`` (the header and panel keep their place on screen), then the beat."""
        if self.hud_group is not None:
            self.remove(self.hud_group)
        moving = shot != self.shot
        self.nodes.cull(self, [self.shot, shot])
        first, then = list(beat.first), list(beat.then)
        if moving:
            # The camera's move redraws every mobject on every frame: it gets a short play of its
            # own, with the header only (the panel's hundreds of glyphs join once it has landed).
            header = self.hud.at(self.hud.header_of(hud), self.shot)
            self.add(header)
            self.to_front(beat.front, first)
            frame = cast(Any, self.camera).frame
            header.add_updater(self.hud.follower(frame))
            self.timed_play(MoveCamera(frame, (shot.x, shot.y), shot.w), *first, run_time=self.rt * 0.45)
            header.clear_updaters()
            self.remove(header)
            self.nodes.cull(self, [shot])
            first = []
        hud = self.hud.at(hud, shot)
        self.add(hud)
        self.hud_group = hud
        self.to_front(beat.front, first + then)
        if first and then:
            for a in first:
                a.rate_func = _window(a.rate_func, 0.0, 0.45)
            for a in then:
                a.rate_func = _window(a.rate_func, 0.45, 1.0)
        if first or then:
            self.timed_play(*first, *then, run_time=(self.rt * 0.55 if moving else self.rt) if then else self.rt * 0.6)
        elif not moving:
            self.timed_wait(self.rt * 0.6)
        self.shot = shot
        self.nodes.cull(self, [shot])

    def to_front(self, mobs: list[Any], anims: list[Any]) -> None:
        """Move what this step changes to the end of the draw list, after the header and panel.

        Manim redraws, on every frame, every mobject listed after the first one that changes;
        all the others stay in the cached background, drawn once per play.
        """
        changing = {id(mob) for mob in mobs}
        for a in anims:
            changing.update(id(x) for x in a.mobject.get_family())
        top = [mob for mob in self.mobjects if any(id(x) in changing for x in mob.get_family())]
        if top:
            self.bring_to_front(*top)

    def pull_back(self, step: Step) -> None:
        """Between stages: the whole graph, with the stage's name."""
        start = self.clock
        lines = (stage_name(step.stage, self.lang),)
        beat = Beat()
        if self.lit is not None:
            beat.first.append(self.nodes.unlight(self.lit))
            beat.front += self.nodes.node_mobjects(self.lit, self)
            self.lit = None
        self.show(beat, HOME, self.hud.overview(Step("stage", step.stage, None, lines=lines)))
        self.cue(start, lines)

    # ------------------------------------------------------------------ step kinds
    def title(self, step: Step) -> None:
        card = self.hud.title_card(step)
        self.timed_play(Appear(card), run_time=0.6)
        self.timed_wait(0.8)
        self.timed_play(Fade(card, 0.0, remove=True), run_time=0.6)
        self.opened = None  # the title has no subtitle

    def forward(self, step: Step, beat: Beat) -> None:
        n = _node(step)
        for u, _ in step.edges:
            beat.first += self.nodes.bring_in(u)
        beat.then += self.nodes.bring_in(n)
        beat.then += [self.nodes.draw_edge(e) for e in step.edges if e in self.nodes.edges]

    def loss(self, step: Step, beat: Beat) -> None:
        self.forward(step, beat)
        n = _node(step)
        beat.then.append(Restroke(self.nodes.boxes[n], self.theme.loss_border, 5))
        beat.then += self.nodes.show_grad(n)
        beat.front += self.nodes.node_mobjects(n, self)
        self.lit = n

    def backward(self, step: Step, beat: Beat) -> None:
        n = _node(step)
        beat.first += self.nodes.show_badge(n)
        beat.first.append(Restroke(self.nodes.boxes[n], self.theme.grad, 5))
        beat.first += self.nodes.show_grad(n)
        beat.front += self.nodes.node_mobjects(n, self)
        self.lit = n
        for u, v in step.edges:
            if v == n and (u, v) in self.nodes.edges:
                beat.then += self.nodes.pulse((u, v))
                beat.front.append(self.nodes.edges[(u, v)])

    def accumulate(self, step: Step, beat: Beat) -> None:
        n = _node(step)
        beat.first.append(Restroke(self.nodes.boxes[n], self.theme.grad, 5))
        beat.front += self.nodes.node_mobjects(n, self)
        self.lit = n

    def update(self, step: Step, beat: Beat) -> None:
        n = _node(step)
        beat.first.append(Restroke(self.nodes.boxes[n], self.theme.update, 5))
        beat.then.append(self.nodes.updated_value(n))
        beat.front += self.nodes.node_mobjects(n, self)
        self.lit = n

    def zero_grad(self, step: Step, beat: Beat) -> None:
        beat.then += self.nodes.clear_grads()


def _node(step: Step) -> str:
    """The node of a step that has one (every kind but title and zero_grad)."""
    if step.node is None:
        raise ValueError(f"a {step.kind} step without a node")
    return step.node


def _window(rate_func: Callable[[float], float], start: float, end: float) -> Callable[[float], float]:
    """``rate_func`` squeezed into [start, end] of the play's time: before it 0, after it 1."""

    def windowed(t_: float) -> float:
        if t_ <= start:
            return rate_func(0.0)
        if t_ >= end:
            return rate_func(1.0)
        return rate_func((t_ - start) / (end - start))

    return windowed


__all__ = ["BackpropScene", "Cue", "section_name"]
