"""``training.svg`` and ``training.png``: the runs at a glance (matplotlib, imported lazily).

Four parts: the loss surface with each run's path from the start to where it
ended and the loss's minimum; every run's loss per step (log scale when it spans
decades; a diverging run is drawn until it leaves the plot and marked); the
parameters per step; the final values and each run's first step with its numbers.

Deterministic: fixed SVG ids (``svg.hashsalt``), no date in the metadata. SVG
elements carry ids a test (or a stylesheet) can find: ``path-N``, ``end-N``,
``loss-N``, ``diverged-N``, ``minimum``, ``start``, ``surface``.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from ..text import fmt_number, t
from ..themes import FONT, get_theme
from .record import Run, TrainingRecord, finite, first_entry
from .report import loss_range, minimum_text, run_label, surface_caption, table, title
from .update_rules import first_step_rules

#: One colour per run (Okabe-Ito: distinguishable with colour-blindness), then matplotlib's cycle.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
#: A diverging run's loss is drawn up to this many times the largest loss of the runs before they diverged.
CEILING = 10.0


def colour(i: int) -> str:
    return COLOURS[i % len(COLOURS)]


def font_family() -> list[str]:
    """The Noto CJK font for Latin and Korean text; found through fontconfig when matplotlib does not know it."""
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    if FONT not in names and shutil.which("fc-match"):
        for style in ("", ":bold"):
            proc = subprocess.run(
                ["fc-match", "-f", "%{file}", FONT + style], capture_output=True, text=True, check=False
            )
            path = proc.stdout.strip()
            if proc.returncode == 0 and path and Path(path).exists():
                font_manager.fontManager.addfont(path)
        names = {f.name for f in font_manager.fontManager.ttflist}
    return [f for f in (FONT, "DejaVu Sans") if f in names] or ["sans-serif"]


def rc(theme_name: str) -> dict[str, Any]:
    th = get_theme(theme_name)
    return {
        "font.family": font_family(),
        "axes.unicode_minus": False,
        "svg.hashsalt": "explain-graph",
        "svg.fonttype": "none",
        "figure.facecolor": th.background,
        "axes.facecolor": th.background,
        "savefig.facecolor": th.background,
        "text.color": th.text,
        "axes.labelcolor": th.text,
        "axes.edgecolor": th.muted,
        "xtick.color": th.muted,
        "ytick.color": th.muted,
        "axes.titleweight": "bold",
        "axes.titlesize": 12,
        "axes.labelsize": 10,
        "legend.fontsize": 9,
        "path.simplify": False,
    }


def until_exit(points: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The points up to the first that leaves the box [lo, hi] (that one included), and where the line crosses the edge.

    A diverging run oscillates with growing steps: drawn whole, its segments would sweep
    across the plot; drawn this way it leaves the plot once and stops.
    """
    inside = np.isfinite(points).all(axis=1) & (points >= lo).all(axis=1) & (points <= hi).all(axis=1)
    if inside.all():
        return points, None
    k = int(np.argmin(inside))
    if k == 0:
        return points[:0], None
    a, b = points[k - 1], points[k]
    if not np.isfinite(b).all():
        return points[:k], a
    d = b - a
    with np.errstate(divide="ignore", invalid="ignore"):
        ts = [((hi if d[j] > 0 else lo)[j] - a[j]) / d[j] for j in range(len(a)) if d[j] != 0]
    t_exit = min([x for x in ts if x >= 0] or [1.0])
    return points[: k + 1], a + t_exit * d


def _losses(run: Run) -> np.ndarray:
    return np.array([v if finite(v) else np.nan for v in run.loss], dtype=float)


def draw_losses(ax: Any, record: TrainingRecord, lang: str, theme: Any, legend: bool = True) -> None:
    rng = loss_range(record.runs)
    log = rng is not None and rng[0] > 0 and rng[1] / rng[0] > 100
    top = rng[1] * (CEILING if log else 1.3) if rng else 1.0
    for i, run in enumerate(record.runs):
        y = _losses(run)
        x = np.arange(1, len(y) + 1)
        ax.plot(x, y, color=colour(i), lw=2, label=run_label(run), gid=f"loss-{i}")
        if run.diverged_at is not None:
            n = run.diverged_at
            ax.plot(
                [n],
                [0.93],
                marker="X",
                ms=11,
                color=colour(i),
                mec=theme.background,
                transform=ax.get_xaxis_transform(),
                clip_on=False,
                gid=f"diverged-{i}",
            )
            ax.annotate(
                t("tr_diverged", lang).format(n=n),
                (n, 0.93),
                xycoords=ax.get_xaxis_transform(),
                xytext=(8, -4 - 14 * i),
                textcoords="offset points",
                color=colour(i),
                fontsize=9,
                fontweight="bold",
            )
    if log:
        ax.set_yscale("log")
        ax.set_ylim(rng[0] / 2, top)  # type: ignore[index]
    elif rng is not None:
        ax.set_ylim(min(0.0, rng[0]), top)
    ax.set_xlabel(t("tr_step", lang))
    ax.set_ylabel(t("loss", lang))
    ax.set_title(t("tr_loss", lang), loc="left")
    ax.grid(alpha=0.25)
    if legend:
        ax.legend(loc="upper right", frameon=False)


def draw_surface(ax: Any, record: TrainingRecord, lang: str, theme: Any, digits: int, caption: bool = True) -> None:
    import matplotlib.colors as mcolors

    s = record.surface
    assert s is not None  # the caller checks
    xs, ys = np.asarray(s.x), np.asarray(s.y)
    z = np.array([[v if finite(v) else np.nan for v in row] for row in s.loss], dtype=float)
    hi = float(np.nanmax(z))
    lo = max(float(np.nanmin(z)), hi * 1e-5, 1e-12)
    if hi > lo > 0:
        levels = np.geomspace(lo, hi, 16)
        cf = ax.contourf(
            xs,
            ys,
            np.clip(z, lo, None),
            levels=levels,
            norm=mcolors.LogNorm(lo, hi),
            cmap="Blues_r",
            alpha=0.55 if theme.name == "light" else 0.4,
            extend="min",
        )
        cf.set_gid("surface")
        lines = ax.contour(xs, ys, z, levels=levels[::3], colors=theme.muted, linewidths=0.6, alpha=0.8)
        ax.clabel(lines, fmt=lambda v: fmt_number(v, 2), fontsize=7, colors=theme.muted)
    corner_lo, corner_hi = np.array([xs[0], ys[0]]), np.array([xs[-1], ys[-1]])
    for i, (run, path) in enumerate(zip(record.runs, s.paths)):
        p, exit_at = until_exit(np.asarray(path, dtype=float).reshape(-1, 2), corner_lo, corner_hi)
        if not len(p):
            continue
        label = run_label(run) + (f" — {t('tr_diverged', lang).format(n=run.diverged_at)}" if run.diverged_at else "")
        ax.plot(p[:, 0], p[:, 1], "-", color=colour(i), lw=2, gid=f"path-{i}", label=label, zorder=4)
        ax.plot(p[:, 0], p[:, 1], ".", color=colour(i), ms=3, alpha=0.6, zorder=4)
        if exit_at is not None:
            ax.plot(
                exit_at[0],
                exit_at[1],
                "X",
                color=colour(i),
                ms=12,
                mec=theme.background,
                zorder=6,
                clip_on=False,
                gid=f"exit-{i}",
            )
        elif run.diverged_at is None:
            ax.plot(
                p[-1, 0], p[-1, 1], "o", color=colour(i), ms=9, mec=theme.background, mew=1.5, zorder=6, gid=f"end-{i}"
            )
    start = np.asarray(s.paths[0][0], dtype=float)
    ax.plot(start[0], start[1], "o", color=theme.text, ms=7, zorder=7, gid="start")
    ax.annotate(t("tr_start", lang), start, xytext=(6, -12), textcoords="offset points", fontsize=9)
    if s.minimum:
        m = s.minimum
        ax.plot(m["x"], m["y"], "*", color="#FFD23F", mec=theme.text, ms=18, zorder=8, gid="minimum")
        ax.annotate(
            minimum_text(record, lang, digits),
            (m["x"], m["y"]),
            xytext=(10, 8),
            textcoords="offset points",
            fontsize=10,
            fontweight="bold",
            zorder=8,
        )
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    ax.set_xlabel(s.axes[0])
    ax.set_ylabel(s.axes[1])
    ax.set_title(t("tr_surface", lang), loc="left")
    if caption:
        ax.text(
            0,
            -0.075,
            surface_caption(record, lang),
            transform=ax.transAxes,
            fontsize=8.5,
            color=theme.muted,
            va="top",
            wrap=True,
        )
    ax.legend(loc="upper left", frameon=True, framealpha=0.85, facecolor=theme.background, edgecolor=theme.muted)


def _param_series(run: Run, name: str) -> np.ndarray:
    values = [run.initial.get(name)] + run.params.get(name, [])
    return np.array([v if finite(v) else np.nan for v in (first_entry(x) for x in values)], dtype=float)


def _norm_series(run: Run) -> np.ndarray:
    """‖θ‖ at each step (the start first), from whole values or summaries' norms."""
    out = []
    for i in range(run.steps + 1):
        total = 0.0
        for name, values in run.params.items():
            v = run.initial[name] if i == 0 else values[i - 1]
            if isinstance(v, dict):
                n = v.get("norm")
                total += float(n) ** 2 if n is not None and finite(n) else math.nan
            else:
                arr = np.asarray(v, dtype=float)
                total += float((arr * arr).sum())
        out.append(math.sqrt(total) if math.isfinite(total) else math.nan)
    return np.array(out)


def draw_params(axes: list[Any], record: TrainingRecord, lang: str, theme: Any) -> None:
    names = record.param_names()
    scalars = record.surface is not None and record.surface.kind == "params" and len(names) == 2
    keys = names if scalars else [None]
    for ax, name in zip(axes, keys):
        series = [_param_series(run, name) if name else _norm_series(run) for run in record.runs]
        settled = [y[np.isfinite(y)] for y, run in zip(series, record.runs) if run.diverged_at is None]
        m = record.surface.minimum if record.surface else None
        if name and m and m.get("kind") == "quadratic":
            target = m["x"] if name == names[0] else m["y"]
            ax.axhline(target, color=theme.text, ls="--", lw=1)
            ax.annotate(
                f"{t('tr_theory', lang)} {fmt_number(target, 4)}",
                (1, target),
                xycoords=("axes fraction", "data"),
                xytext=(-4, 4),
                textcoords="offset points",
                ha="right",
                fontsize=8.5,
            )
            settled.append(np.array([target]))
        vals = np.concatenate(settled) if settled else np.concatenate([y[:2] for y in series])
        vals = vals[np.isfinite(vals)]
        lo, hi = (float(vals.min()), float(vals.max())) if len(vals) else (0.0, 1.0)
        pad = 0.08 * (hi - lo or max(abs(hi), 1.0))
        lo, hi = lo - pad, hi + pad
        ax.set_ylim(lo, hi)
        for i, (run, y) in enumerate(zip(record.runs, series)):
            pts = np.column_stack([np.arange(len(y)), y])
            if run.diverged_at is not None:
                pts, _ = until_exit(pts, np.array([-np.inf, lo]), np.array([np.inf, hi]))
            ax.plot(pts[:, 0], pts[:, 1], color=colour(i), lw=1.8, gid=f"param-{name or 'norm'}-{i}")
        ax.set_title(t("tr_over_steps", lang).format(name=name) if name else t("tr_norm", lang), loc="left")
        ax.set_xlabel(t("tr_step", lang))
        ax.grid(alpha=0.25)


def draw_table(ax: Any, record: TrainingRecord, lang: str, theme: Any, digits: int) -> None:
    ax.axis("off")
    header, rows = table(record, lang, digits)
    tab = ax.table(
        cellText=rows,
        colLabels=header,
        loc="upper left",
        cellLoc="left",
        colLoc="left",
        bbox=(0, max(0.0, 1 - 0.16 * (len(rows) + 1)), 1, min(1.0, 0.16 * (len(rows) + 1))),
    )
    tab.auto_set_font_size(False)
    tab.set_fontsize(9)
    # columns as wide as their longest line (the table is then scaled into its box)
    chars = [
        max(len(line) for cell in [h] + [row[k] for row in rows] for line in cell.split("\n")) + 2
        for k, h in enumerate(header)
    ]
    for (r, c), cell in tab.get_celld().items():
        cell.set_width(chars[c] / sum(chars))
        cell.set_edgecolor(theme.muted)
        cell.set_linewidth(0.4)
        cell.set_facecolor(theme.background)
        if r == 0:
            cell.set_height(cell.get_height() * 1.5)
        cell.get_text().set_color(theme.text if r == 0 or c > 0 else colour(r - 1))
        if r == 0:
            cell.get_text().set_fontweight("bold")
        elif record.runs[r - 1].diverged_at is not None and c == len(header) - 2:
            cell.get_text().set_color("#c0392b")


def draw_rules(ax: Any, record: TrainingRecord, lang: str, theme: Any, digits: int) -> None:
    ax.axis("off")
    ax.set_title(t("tr_first_steps", lang), loc="left")
    lines: list[tuple[str, str, bool]] = []
    for i, run in enumerate(record.runs):
        rules = first_step_rules(run, digits)
        if not rules:
            continue
        rule = rules[0]
        lines.append((f"{run_label(run, digits)} · {rule.name}", colour(i), True))
        lines += [(f"    {line}", theme.text, False) for line in rule.lines]
    step = 1.0 / max(len(lines), 9)
    for k, (text, col, bold) in enumerate(lines):
        ax.text(
            0,
            1 - k * step,
            text,
            transform=ax.transAxes,
            fontsize=8.5,
            color=col,
            va="top",
            fontweight="bold" if bold else "normal",
        )


def training_figure(
    record: TrainingRecord, folder: Path, theme_name: str = "light", lang: str = "en", digits: int = 4
) -> list[Path]:
    """Write ``training.svg`` and ``training.png`` into ``folder``; return both paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    th = get_theme(theme_name)
    with plt.rc_context(rc(theme_name)):  # type: ignore[arg-type]
        fig = plt.figure(figsize=(15, 10.5), dpi=110)
        gs = fig.add_gridspec(
            3,
            2,
            height_ratios=[1, 1, 0.95],
            width_ratios=[1.1, 1],
            hspace=0.42,
            wspace=0.16,
            left=0.06,
            right=0.98,
            top=0.93,
            bottom=0.03,
        )
        fig.suptitle(title(record, lang), x=0.06, ha="left", fontsize=16, fontweight="bold")
        names = record.param_names()
        two = record.surface is not None and record.surface.kind == "params" and len(names) == 2
        if record.surface is not None:
            draw_surface(fig.add_subplot(gs[0:2, 0]), record, lang, th, digits)
            draw_losses(
                fig.add_subplot(gs[0, 1]), record, lang, th, legend=False
            )  # the surface's legend names the runs
            inner = gs[1, 1].subgridspec(1, 2 if two else 1, wspace=0.28)
            draw_params([fig.add_subplot(inner[0, k]) for k in range(2 if two else 1)], record, lang, th)
        else:
            draw_losses(fig.add_subplot(gs[0:2, 0]), record, lang, th)
            draw_params([fig.add_subplot(gs[0:2, 1])], record, lang, th)
        bottom = gs[2, :].subgridspec(1, 2, width_ratios=[1, 1.15], wspace=0.05)
        draw_table(fig.add_subplot(bottom[0, 0]), record, lang, th, digits)
        draw_rules(fig.add_subplot(bottom[0, 1]), record, lang, th, digits)
        svg, png = folder / "training.svg", folder / "training.png"
        fig.savefig(svg, metadata={"Date": None})
        fig.savefig(png, metadata={"Software": None})
        plt.close(fig)
    return [svg, png]


def panels_svg(record: TrainingRecord, theme_name: str = "light", lang: str = "en", digits: int = 4) -> str:
    """The surface (when there is one) and the loss curves side by side, as SVG text (for a slide)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    th = get_theme(theme_name)
    large = {**rc(theme_name), "font.size": 13, "axes.titlesize": 16, "axes.labelsize": 14, "legend.fontsize": 12}
    with plt.rc_context(large):  # type: ignore[arg-type]
        fig = plt.figure(figsize=(16, 7.2), dpi=100)
        gs = fig.add_gridspec(1, 2, width_ratios=[1.1, 1], wspace=0.18, left=0.06, right=0.98, top=0.93, bottom=0.14)
        if record.surface is not None:
            draw_surface(fig.add_subplot(gs[0, 0]), record, lang, th, digits, caption=False)  # the page has it
            draw_losses(fig.add_subplot(gs[0, 1]), record, lang, th, legend=False)
        else:
            draw_losses(fig.add_subplot(gs[0, 0]), record, lang, th)
            draw_params([fig.add_subplot(gs[0, 1])], record, lang, th)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
        plt.close(fig)
    return buf.getvalue()


__all__ = ["COLOURS", "colour", "font_family", "panels_svg", "training_figure"]
