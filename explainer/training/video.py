"""``training.mp4``: the runs moving on the loss surface, step by step (Manim, imported only here).

The contour is drawn once by matplotlib into the camera's background image (`backdrop`):
a few thousand contour polygons as Manim mobjects would be redrawn on every frame.
One Manim section per part: the surface and the start, then one per run (its path
growing step by step on the surface, a counter, its loss curve growing beside
it; the runs before it stay drawn), then all runs with their final values.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExplainerError
from ..render.video import QUALITIES, import_manim
from ..text import fmt_number, t
from ..themes import FONT, get_theme
from .plots import colour, rc, until_exit
from .record import Surface, TrainingRecord, finite
from .report import loss_range, minimum_text, run_label, title

#: Seconds of video for one run's growth, the opening and the closing.
RUN_SECONDS, OPEN_SECONDS, CLOSE_SECONDS = 3.5, 1.5, 2.5
#: Scene units (the frame is 14.2 × 8): the surface panel and the loss panel, as (left, bottom, width, height).
SURFACE_BOX = (-6.05, -3.35, 5.95, 6.0)
LOSS_BOX = (1.05, -0.75, 5.7, 3.7)


def backdrop(record: TrainingRecord, path: Path, theme_name: str, width: int, height: int) -> Path:
    """The whole frame's background: the surface's filled contour where the surface panel is.

    Manim's camera starts every frame from this image, so the contour costs nothing per frame.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.colors as mcolors
    import matplotlib.pyplot as plt

    s = record.surface
    assert s is not None  # the caller checks
    z = np.array([[v if finite(v) else np.nan for v in row] for row in s.loss], dtype=float)
    hi = float(np.nanmax(z))
    lo = max(float(np.nanmin(z)), hi * 1e-5, 1e-12)
    fw, fh = 8.0 * width / height, 8.0
    left, bottom, w, h = SURFACE_BOX
    with plt.rc_context(rc(theme_name)):  # type: ignore[arg-type]
        fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
        ax = fig.add_axes(((left + fw / 2) / fw, (bottom + fh / 2) / fh, w / fw, h / fh))
        ax.set_axis_off()
        if hi > lo > 0:
            levels = np.geomspace(lo, hi, 16)
            ax.contourf(
                s.x,
                s.y,
                np.clip(z, lo, None),
                levels=levels,
                norm=mcolors.LogNorm(lo, hi),
                cmap="Blues_r",
                alpha=0.55 if theme_name == "light" else 0.4,
                extend="min",
            )
            ax.contour(s.x, s.y, z, levels=levels[::3], colors=get_theme(theme_name).muted, linewidths=0.8)
        ax.set_xlim(s.x[0], s.x[-1])
        ax.set_ylim(s.y[0], s.y[-1])
        fig.savefig(path, metadata={"Software": None})
        plt.close(fig)
    return path


def build_scene_class() -> type:
    m = import_manim()

    class TrainingScene(m.Scene):  # type: ignore[name-defined]
        """Performs a training record: the surface, then each run's path and loss curve growing."""

        def __init__(
            self,
            record: TrainingRecord,
            image: Path,
            theme: str,
            lang: str,
            digits: int,
            on_part: Callable[[int, int], None] | None = None,
            **kwargs: Any,
        ) -> None:

            class Backdrop(m.Camera):  # type: ignore[name-defined]
                def __init__(self, **kw: Any) -> None:
                    super().__init__(background_image=str(image), **kw)

            super().__init__(camera_class=Backdrop, **kwargs)
            if record.surface is None:
                raise ExplainerError("training.mp4 needs a loss surface to draw the runs on")
            self.s: Surface = record.surface
            self.record, self.th, self.lang, self.digits = record, get_theme(theme), lang, digits
            self.on_part = on_part
            self.texts: dict[str, Any] = {}

        def text(self, s: str, size: float, colour_: str | None = None, bold: bool = False) -> Any:
            return m.Text(
                s, font=FONT, font_size=size, color=colour_ or self.th.text, weight=m.BOLD if bold else m.NORMAL
            )

        # -- coordinates -----------------------------------------------------------------
        def surf(self, x: float, y: float) -> Any:
            s = self.s
            left, bottom, w, h = SURFACE_BOX
            return np.array(
                [left + (x - s.x[0]) / (s.x[-1] - s.x[0]) * w, bottom + (y - s.y[0]) / (s.y[-1] - s.y[0]) * h, 0.0]
            )

        def curve(self, step: float, loss: float) -> Any:
            left, bottom, w, h = LOSS_BOX
            lo, hi = self.loss_lo, self.loss_hi
            v = math.log10(loss) if self.log else loss
            a, b = (math.log10(lo), math.log10(hi)) if self.log else (lo, hi)
            return np.array([left + step / max(self.steps, 1) * w, bottom + (v - a) / (b - a) * h, 0.0])

        # -- parts -----------------------------------------------------------------------
        def construct(self) -> None:
            rec = self.record
            self.steps = max(r.steps for r in rec.runs)
            rng = loss_range(rec.runs) or (1e-3, 1.0)
            self.log = rng[0] > 0 and rng[1] / rng[0] > 100
            self.loss_lo, self.loss_hi = (rng[0] / 2, rng[1] * 2) if self.log else (min(0.0, rng[0]), rng[1] * 1.1)
            parts = len(rec.runs) + 2
            self.next_section("surface")
            self.opening()
            self.tick(1, parts)
            for i, run in enumerate(rec.runs):
                self.next_section(run_label(run, self.digits))
                self.grow(i)
                self.tick(i + 2, parts)
            self.next_section(t("tr_all", self.lang))
            self.closing()
            self.tick(parts, parts)

        def tick(self, done: int, total: int) -> None:
            if self.on_part is not None:
                self.on_part(done, total)

        def opening(self) -> None:
            rec, th, s = self.record, self.th, self.s
            head = self.text(title(rec, self.lang), 30, bold=True).to_edge(m.UP, buff=0.25).to_edge(m.LEFT, buff=0.4)
            left, bottom, w, h = SURFACE_BOX  # the contour itself is the camera's background (`backdrop`)
            frame = m.Rectangle(width=w, height=h, stroke_color=th.muted, stroke_width=1.5)
            frame.move_to([left + w / 2, bottom + h / 2, 0])
            xl = self.text(s.axes[0], 18, th.muted).next_to(frame, m.DOWN, buff=0.12)
            yl = self.text(s.axes[1], 18, th.muted).rotate(math.pi / 2).next_to(frame, m.LEFT, buff=0.12)
            ticks = m.VGroup()
            for v in (s.x[0], s.x[-1]):
                ticks.add(self.text(fmt_number(v, 3), 14, th.muted).next_to(self.surf(v, s.y[0]), m.DOWN, buff=0.08))
            for v in (s.y[0], s.y[-1]):
                label = self.text(fmt_number(v, 3), 14, th.muted).next_to(self.surf(s.x[0], v), m.LEFT, buff=0.08)
                ticks.add(label.shift(m.UP * 0.12 if v == s.y[0] else m.ORIGIN))  # clear of the x axis' first label
            start = s.paths[0][0]
            dot = m.Dot(self.surf(*start), color=th.text, radius=0.07)
            parts = [
                head,
                frame,
                xl,
                yl,
                ticks,
                dot,
                self.text(t("tr_start", self.lang), 16).next_to(dot, m.DOWN, buff=0.08),
            ]
            if s.minimum:
                star = m.Star(
                    outer_radius=0.16, color="#FFD23F", fill_opacity=1, stroke_color=th.text, stroke_width=1
                ).move_to(self.surf(s.minimum["x"], s.minimum["y"]))
                parts += [
                    star,
                    self.text(minimum_text(rec, self.lang, self.digits), 18, bold=True).next_to(star, m.UR, buff=0.05),
                ]
            left, bottom, w, h = LOSS_BOX
            box = m.Rectangle(width=w, height=h, stroke_color=th.muted, stroke_width=1.5)
            box.move_to([left + w / 2, bottom + h / 2, 0])
            parts += [
                box,
                self.text(t("tr_loss", self.lang), 20, bold=True).next_to(box, m.UP, buff=0.1).align_to(box, m.LEFT),
                self.text(t("tr_step", self.lang), 14, th.muted).next_to(box, m.DOWN, buff=0.08),
            ]
            for v in (self.loss_lo, self.loss_hi):
                parts.append(self.text(fmt_number(v, 2), 13, th.muted).next_to(self.curve(0, v), m.LEFT, buff=0.08))
            self.legend = m.VGroup(
                *[self.text(run_label(r, self.digits), 18, colour(i)) for i, r in enumerate(rec.runs)]
            ).arrange(m.DOWN, aligned_edge=m.LEFT, buff=0.1)
            self.legend.next_to(box, m.DOWN, buff=0.45).align_to(box, m.LEFT)
            self.counter = self.text(t("tr_counter", self.lang).format(n=0, total=self.steps), 22)
            self.counter.next_to(box, m.UP, buff=0.1).align_to(box, m.RIGHT)
            self.add(*parts, self.legend, self.counter)
            self.wait(OPEN_SECONDS)

        def set_counter(self, n: int) -> None:
            key = str(n)
            if key not in self.texts:
                self.texts[key] = self.text(t("tr_counter", self.lang).format(n=n, total=self.steps), 22)
            self.counter.become(self.texts[key].copy().move_to(self.counter, aligned_edge=m.RIGHT))

        def grow(self, i: int) -> None:
            run, s, col = self.record.runs[i], self.s, colour(i)
            left, bottom, _, h = SURFACE_BOX
            pts, exit_at = until_exit(
                np.asarray(s.paths[i], dtype=float).reshape(-1, 2),
                np.array([s.x[0], s.y[0]]),
                np.array([s.x[-1], s.y[-1]]),
            )
            if exit_at is not None and len(pts):
                pts = np.vstack([pts[:-1], exit_at])
            scene_pts = [self.surf(*p) for p in pts] or [self.surf(*s.paths[i][0])]
            losses = [(k, float(v)) for k, v in enumerate(run.loss, 1) if v is not None and finite(v)]
            curve_pts = []
            for k, v in losses:  # drawn until the curve leaves the panel
                if self.loss_lo < v <= self.loss_hi or not self.log:
                    curve_pts.append(self.curve(k, min(max(v, self.loss_lo), self.loss_hi)))
                else:
                    break
            steps = max(run.steps, 1)
            tracker = m.ValueTracker(0)
            path = m.VMobject(stroke_color=col, stroke_width=4)
            line = m.VMobject(stroke_color=col, stroke_width=3)
            dot = m.Dot(scene_pts[0], color=col, radius=0.08)

            def upto(points: list[Any], n: int) -> list[Any]:
                got = points[: max(n, 1)]
                return got if len(got) > 1 else [got[0], got[0]] if got else []

            def update(_: Any) -> None:
                n = round(tracker.get_value())
                # path points: the start, then after each step; n steps shown
                sp = upto(scene_pts, n + 1)
                path.set_points_as_corners(sp)
                dot.move_to(sp[-1])
                cp = upto(curve_pts, n)
                if cp:
                    line.set_points_as_corners(cp)
                self.set_counter(n)

            update(None)
            path.add_updater(update)
            self.add(path, line, dot, self.counter)  # after the updated path: redrawn on every frame
            self.play(tracker.animate.set_value(steps), run_time=RUN_SECONDS, rate_func=m.linear)
            path.remove_updater(update)
            update(None)
            if run.diverged_at is not None:
                mark = m.Cross(scale_factor=0.14, stroke_color=col, stroke_width=5).move_to(scene_pts[-1])
                note = self.text(t("tr_diverged", self.lang).format(n=run.diverged_at), 18, col, bold=True)
                note.next_to(scene_pts[-1], m.DL, buff=0.1)
                note.shift(m.RIGHT * max(0.0, (left + 0.1) - note.get_left()[0]))
                note.shift(m.DOWN * max(0.0, note.get_top()[1] - (bottom + h - 0.1)))
                self.add(mark, note)
            self.wait(0.4)

        def closing(self) -> None:
            rec = self.record
            lines = []
            names = rec.param_names()
            for i, run in enumerate(rec.runs):
                if run.diverged_at is not None:
                    value = t("tr_diverged", self.lang).format(n=run.diverged_at)
                else:
                    value = ", ".join(
                        f"{n.split('.')[-1]} = {fmt_number(run.params[n][-1], self.digits)}"
                        for n in names[:2]
                        if not isinstance(run.params[n][-1], (list, dict))
                    )
                    if not value:
                        value = f"{t('loss', self.lang)} = {fmt_number(run.loss[-1], self.digits)}"
                lines.append(self.text(f"{run_label(run, self.digits)}: {value}", 18, colour(i)))
            summary = (
                m.VGroup(*lines).arrange(m.DOWN, aligned_edge=m.LEFT, buff=0.1).move_to(self.legend, aligned_edge=m.UL)
            )
            self.play(m.FadeOut(self.legend), m.FadeIn(summary), run_time=0.6)
            self.wait(CLOSE_SECONDS)

    return TrainingScene


def render_training_video(
    record: TrainingRecord,
    folder: Path,
    quality: str = "low",
    theme: str = "light",
    lang: str = "en",
    digits: int = 4,
    on_part: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``training.mp4`` into ``folder`` (needs a surface: the paths are drawn on it)."""
    if record.surface is None:
        raise ExplainerError(
            "training.mp4 draws the runs on the loss surface, and this training has none "
            "(see the note in training.json): run without --video"
        )
    m = import_manim()
    qname, width, height, fps = QUALITIES[quality]
    scene_cls = build_scene_class()
    with tempfile.TemporaryDirectory(prefix="explain-graph-training-video-") as tmp:
        image = backdrop(record, Path(tmp) / "backdrop.png", theme, width, height)
        settings = {
            "quality": qname,
            "pixel_width": width,
            "pixel_height": height,
            "frame_rate": fps,
            "media_dir": tmp,
            "output_file": "training",
            "disable_caching": True,
            "progress_bar": "none",
            "verbosity": "ERROR",
            "background_color": get_theme(theme).background,
            "write_to_movie": True,
            "format": "mp4",
        }
        with m.tempconfig(settings):
            scene = scene_cls(record, image, theme, lang, digits, on_part)
            scene.render()
            movie = Path(scene.renderer.file_writer.movie_file_path)
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / "training.mp4"
        shutil.copyfile(movie, out)
    return out


__all__ = ["backdrop", "build_scene_class", "render_training_video"]
