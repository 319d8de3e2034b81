"""The backprop video: ``backward.mp4``, its subtitles and one clip per step to present with.

`render_video` performs the story (`explainer.story`: the choreography on the frame
layout that the slides and the page share) with Manim (`explainer.render.scene`,
imported only here, only when a video is asked for), and writes

* ``backward.mp4`` — the whole video;
* ``backward.srt`` — one subtitle per step, its caption lines as lines;
* ``backward_sections/`` — Manim's sections, one per backward step (and one for the
  title, the forward pass and the update), as ``NN-<name>.mp4`` with ``sections.json``
  listing them in order with their steps and times: a presenter steps through these
  clips one by one (any player, or PowerPoint: `explainer.render.pptx`).

manim-slides was tried as the presenter's tool: its 5.7 release (the newest) sets
``config["write_to_movie"]``, which Manim 0.22 no longer has, and stops at its first
scene; the sections above and the slide deck's PPTX cover the same need without it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ExplainerError, ToolError
from ..story import Story
from ..tools import check_file

#: Quality presets: (Manim quality name, width, height, fps).
QUALITIES = {
    "low": ("low_quality", 854, 480, 15),
    "medium": ("medium_quality", 1280, 720, 30),
    "high": ("high_quality", 1920, 1080, 60),
}
DEFAULT_QUALITY = "low"
#: libx264 settings: flat colours and still frames need little effort to compress well; at
#: 1080p60 the encoder, not the drawing, sets the pace (x264's default preset took 2/3 of the time).
ENCODER = {"crf": "23", "preset": "superfast", "tune": "animation"}
SECTIONS = "backward_sections"


def check_manim() -> None:
    """Fail now, with the install line, if Manim cannot be loaded (before a script is traced)."""
    import_manim()


def import_manim() -> Any:
    try:
        import manim
    except (ImportError, OSError) as exc:  # cairo/pango shared libraries missing
        raise ToolError(
            f"Manim could not be loaded ({exc}): install the libraries it needs with sudo apt-get install "
            "libcairo2-dev libpango1.0-dev, then try again"
        ) from None
    return manim


def srt_time(sec: float) -> str:
    ms = int(round(sec * 1000))
    h, ms = divmod(ms, 3_600_000)
    mi, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{mi:02d}:{s:02d},{ms:03d}"


def write_srt(cues: list[Any], path: Path) -> Path:
    """Subtitles, one cue per step (its lines as lines), times from the scene's own clock."""
    out = []
    for i, cue in enumerate(cues, 1):
        out.append(f"{i}\n{srt_time(cue.start)} --> {srt_time(cue.end)}\n" + "\n".join(cue.lines) + "\n")
    path.write_text("\n".join(out), encoding="utf-8")
    return path


def manim_settings(quality: str, media_dir: str, background: str) -> dict[str, Any]:
    """Manim's configuration for one render of ours (sections saved, no cache, quiet)."""
    qname, width, height, fps = QUALITIES[quality]
    return {
        "quality": qname,
        "pixel_width": width,
        "pixel_height": height,
        "frame_rate": fps,
        "media_dir": media_dir,
        "output_file": "backward",
        "disable_caching": True,
        "progress_bar": "none",
        "verbosity": "ERROR",
        "background_color": background,
        "write_to_movie": True,
        "save_sections": True,
        "format": "mp4",
        "video_encoder_options": ENCODER,
    }


def copy_sections(scene: Any, dest: Path) -> list[Path]:
    """Manim's section clips into ``dest`` as ``NN-<name>.mp4``, with ``sections.json``; the files."""
    writer = scene.renderer.file_writer
    src_dir = Path(writer.sections_output_dir)
    dest.mkdir(parents=True, exist_ok=True)
    index, files = [], []
    width = max(2, len(str(len(writer.sections))))
    for k, section in enumerate(s for s in writer.sections if s.video):
        name = f"{k + 1:0{width}d}-{section.name.split('-', 1)[-1]}.mp4"
        src = src_dir / section.video
        check_file(src, "mp4", f"Manim (section {section.name})")
        shutil.copyfile(src, dest / name)
        files.append(dest / name)
        index.append({"file": name, "name": section.name})
    times = {c.section: c for c in scene.cues if getattr(c, "section", None)}
    for item in index:
        cue = times.get(item["name"])
        if cue is not None:
            item.update(start=round(cue.start, 3), lines=list(cue.lines))
    (dest / "sections.json").write_text(
        json.dumps({"video": "backward.mp4", "sections": index}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    return [*files, dest / "sections.json"]


def render_video(
    story: Story, out_dir: Path, quality: str = DEFAULT_QUALITY, on_step: Callable[[int, int], None] | None = None
) -> list[Path]:
    """Render ``backward.mp4``, ``backward.srt`` and ``backward_sections/`` into ``out_dir``; the files."""
    if quality not in QUALITIES:
        raise ExplainerError(f"unknown quality {quality!r}: use one of {', '.join(QUALITIES)}")
    m = import_manim()
    from .scene import BackpropScene  # Manim is imported with it: only on this path

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="explain-graph-video-") as tmp:
        with m.tempconfig(manim_settings(quality, tmp, story.theme.background)):
            scene = BackpropScene(story, on_step)
            scene.render()
            movie = Path(scene.renderer.file_writer.movie_file_path)
            check_file(movie, "mp4", "Manim (backward.mp4)")
            mp4 = out_dir / "backward.mp4"
            shutil.copyfile(movie, mp4)
            sections = copy_sections(scene, out_dir / SECTIONS)
    srt = write_srt(scene.cues, out_dir / "backward.srt")
    return [mp4, srt, *sections]


__all__ = [
    "DEFAULT_QUALITY",
    "QUALITIES",
    "SECTIONS",
    "check_manim",
    "copy_sections",
    "import_manim",
    "manim_settings",
    "render_video",
    "write_srt",
]
