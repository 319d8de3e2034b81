"""What every renderer draws alike: node colours by kind, the step mark, subtitles, heat colours.

The diagram, the video, the slides and the page all import these, so a box, a badge
or a highlighted node looks the same in each of them.
"""

from __future__ import annotations

import math
from typing import Any

from ..text import fmt_number, fmt_shape, t
from ..themes import Theme, mix

#: Ops whose plain-number arguments a student needs to see (the 2 of ``x * 2``);
#: other ops' numbers are internal settings (reduction enums, ignore_index).
SCALAR_OPS = frozenset(
    {"add", "sub", "rsub", "mul", "div", "pow", "clamp", "clamp_min", "clamp_max", "leaky_relu", "remainder"}
)


def node_colours(kind: str, theme: Theme) -> tuple[str, str]:
    """``(fill, border)`` of a node of ``kind`` (param, leaf, input, buffer, loss; anything else is an op)."""
    return {
        "param": (theme.param_fill, theme.param_border),
        "leaf": (theme.leaf_fill, theme.param_border),
        "input": (theme.input_fill, theme.input_border),
        "buffer": (theme.input_fill, theme.input_border),
        "loss": (theme.loss_fill, theme.loss_border),
    }.get(kind, (theme.op_fill, theme.op_border))


def subtitle(d: dict[str, Any], lang: str) -> str:
    """The small line under a node's name: what it is and its shape (``parameter · 8×4``, ``⊂ linear · 2×8``)."""
    kind = d["kind"]
    shape = fmt_shape(d.get("shape") or [], lang)
    if kind == "module":
        what = d.get("module_type") or t("module", lang)
        if (d.get("repeat") or 1) > 1:
            what += f" × {d['repeat']}"
        return f"{what} · {d.get('ops', 0):,} {t('ops', lang)} · {shape}"
    if kind in ("param", "leaf", "input", "buffer"):
        what = t("parameter" if kind == "param" else kind, lang)
        scalars = d.get("scalars") or []
        if kind == "input" and scalars and d.get("op") in SCALAR_OPS:  # data computed from data: x ** 2
            what += f" · {d['op']}(·, " + ", ".join(fmt_number(s) for s in scalars) + ")"
        if (d.get("repeat") or 1) > 1:  # a stack of inputs in a folded view
            what += f" × {d['repeat']}"
        return f"{what} · {shape}"
    op = d.get("op") or ""
    scalars = d.get("scalars") or []
    if scalars and d.get("op") in SCALAR_OPS:
        op += "(·, " + ", ".join(fmt_number(s) for s in scalars) + ")"
    call = d.get("call")
    if call and call != d.get("op") and call not in (d.get("op") or ""):
        op += f" ⊂ {call}"
    if not d.get("name"):
        # The title already is the op's name: keep only what it adds (arguments, call).
        op = op[len(d.get("op") or "") :].strip()
    return f"{op} · {shape}" if op else shape


def step_mark(step: int) -> str:
    """The backward step as a circled number (① ... ㊿), ``(51)`` beyond."""
    if 1 <= step <= 20:
        return chr(0x2460 + step - 1)
    if 21 <= step <= 35:
        return chr(0x3251 + step - 21)
    if 36 <= step <= 50:
        return chr(0x32B1 + step - 36)
    return f"({step})"


def highlight_colour(stage: str, kind: str, theme: Theme) -> str:
    """The lit node's outline: blue forward, purple at the loss, vermillion backward, green for the update."""
    if kind == "loss":
        return theme.loss_border
    return {"backward": theme.grad, "update": theme.update}.get(stage, theme.param_border)


def heat_colour(x: Any, scale: float, theme: Theme) -> str:
    """A focus-panel cell's colour: blue for negative, vermillion for positive, stronger with ``|x| / scale``.

    Zero, NaN/Inf (strings) and a zero ``scale`` give the panel colour; the number is written on
    the cell in the theme's text colour, readable on every shade (see `explainer.themes`).
    """
    if isinstance(x, str) or x is None or scale <= 0:
        return theme.panel
    v = float(x)
    if not math.isfinite(v) or v == 0:
        return theme.panel
    strength = min(abs(v) / scale, 1.0) ** 0.7  # small entries still show their sign
    return mix(theme.panel, theme.heat_positive if v > 0 else theme.heat_negative, 0.2 + 0.8 * strength)


__all__ = ["SCALAR_OPS", "heat_colour", "highlight_colour", "node_colours", "step_mark", "subtitle"]
