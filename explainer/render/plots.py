"""Small matplotlib plots: the loss of every backward call when the script runs to the end."""

from __future__ import annotations

from pathlib import Path

from ..text import t
from ..themes import get_theme


def loss_curve(
    losses: list[float], path: Path, theme: str = "light", lang: str = "en", captured_step: int | None = None
) -> Path:
    """Plot ``losses`` (one per backward call) to ``path``; mark the traced step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    th = get_theme(theme)
    family = ["Noto Sans CJK KR", "DejaVu Sans"]
    available = {f.name for f in font_manager.fontManager.ttflist}
    family = [f for f in family if f in available] or ["sans-serif"]
    with plt.rc_context({"font.family": family, "axes.unicode_minus": False}):
        fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
        fig.patch.set_facecolor(th.background)
        ax.set_facecolor(th.background)
        steps = list(range(1, len(losses) + 1))
        ax.plot(steps, losses, color=th.loss_border, linewidth=2)
        if captured_step is not None and 1 <= captured_step <= len(losses):
            ax.scatter([captured_step], [losses[captured_step - 1]], color=th.grad, zorder=3, s=50)
        ax.set_xlabel(t("backward_calls", lang), color=th.text)
        ax.set_ylabel(t("loss", lang), color=th.text)
        if losses and min(losses) > 0 and max(losses) / max(min(losses), 1e-30) > 100:
            ax.set_yscale("log")
        ax.tick_params(colors=th.muted)
        for spine in ax.spines.values():
            spine.set_color(th.muted)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, facecolor=th.background)
        plt.close(fig)
    return path
