"""The focus panel: the numbers of the current step, large, as data.

Every step of the story (`explainer.choreography`) carries a panel: a few `Card`s,
each one tensor of that step with a title saying what it is. A backward step shows
the node's forward value, the gradient arriving at it and, per input, the local
derivative and the gradient passed on; a parameter's step shows its ``.grad``; an
optimizer step shows the arithmetic of the update with its numbers (for Adam: m, v,
their bias corrections and the step). The video, the slides and the page draw the
same cards; tests read them as data.

A card writes a tensor the way the graph stores it (`explainer.graph`): every entry
of a small tensor as a grid (up to `MAX_GRID` rows and columns; larger grids show
their corner and say so), and for a tensor the graph keeps only as a summary, its
shape, min, max, mean, norm and first entries. No rendering here, no torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .defaults import DEFAULT_DIGITS
from .text import fmt_number, fmt_shape, t

#: Most rows and columns a card writes out; larger grids show their first ones and "…".
MAX_GRID = 8

#: Card roles, each drawn in its colour: forward values, gradients, optimizer state, the update.
ROLES = ("value", "grad", "state", "update")


@dataclass(frozen=True)
class Card:
    """One tensor of the focus panel.

    Attributes
    ----------
    role
        ``value`` (forward), ``grad`` (a gradient), ``state`` (optimizer state or a
        step of its arithmetic), ``update`` (a parameter after the step).
    title
        What the tensor is, e.g. ``∂L/∂pred  arriving``.
    cells
        The entries as written, row by row (``…`` where rows or columns are left out).
    numbers
        The raw entries in the same places (None for ``…``), for colouring by sign and size.
    notes
        For a tensor stored as a summary: its shape and statistics, one line each.
    scale
        The largest magnitude among the entries (colours are relative to it).
    """

    role: str
    title: str
    cells: tuple[tuple[str, ...], ...]
    numbers: tuple[tuple[Any, ...], ...]
    notes: tuple[str, ...] = ()
    scale: float = 0.0

    @property
    def texts(self) -> list[str]:
        """Every number the card writes (for tests that look for them on screen)."""
        out = [c for row in self.cells for c in row if c != "…"]
        return out + [w for line in self.notes for w in line.split() if any(ch.isdigit() for ch in w)]


def _magnitude(v: Any) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return abs(float(v))
    return 0.0


def _grid(v: Any) -> list[list[Any]]:
    """A value as rows of entries: a scalar 1×1, a vector one row, higher ranks flattened to 2-D."""
    if not isinstance(v, list):
        return [[v]]
    if not v or not isinstance(v[0], list):
        return [list(v)]
    rows: list[list[Any]] = []
    for e in v:
        rows.extend(_grid(e) if isinstance(e, list) and e and isinstance(e[0], list) else [list(e)])
    return rows


def _clip(rows: list[list[Any]]) -> list[list[Any]]:
    """At most `MAX_GRID` × `MAX_GRID`: the first rows and columns, then ``…`` (kept as the string "…")."""
    out = []
    for r in rows[:MAX_GRID]:
        out.append(r[: MAX_GRID - 1] + ["…"] if len(r) > MAX_GRID else list(r))
    if len(rows) > MAX_GRID:
        out[-1] = ["…"] * len(out[-1])
    return out


def card(role: str, title: str, v: Any, digits: int = DEFAULT_DIGITS, lang: str = "en") -> Card:
    """A card for value ``v`` of the graph schema (number, nested lists or summary dict)."""
    if isinstance(v, dict) and v.get("summary"):
        head = list(v.get("head") or [])
        shape = fmt_shape(v.get("shape") or [], lang)
        notes = [
            f"{shape}   min {fmt_number(v.get('min'), digits)}   max {fmt_number(v.get('max'), digits)}",
            f"{t('mean', lang)} {fmt_number(v.get('mean'), digits)}   "
            f"{t('norm', lang)} {fmt_number(v.get('norm'), digits)}",
        ]
        if v.get("nan") or v.get("inf"):
            notes.append(f"NaN {v.get('nan', 0)}   Inf {v.get('inf', 0)}")
        notes[-1] += "   " + t("first_entries", lang)
        scale = max(_magnitude(v.get("min")), _magnitude(v.get("max")))
        return Card(
            role,
            title,
            (tuple(fmt_number(x, digits) for x in head) + ("…",),),
            (tuple(head) + (None,),),
            tuple(notes),
            scale,
        )
    rows = _clip(_grid(v))
    cells = tuple(tuple("…" if x == "…" else fmt_number(x, digits) for x in r) for r in rows)
    numbers = tuple(tuple(None if x == "…" else x for x in r) for r in rows)
    scale = max((_magnitude(x) for r in numbers for x in r), default=0.0)
    return Card(role, title, cells, numbers, (), scale)


# --------------------------------------------------------------------------- optimizer arithmetic


def _array(v: Any) -> np.ndarray | None:
    """Stored entries as float64, or None for a summary or NaN/Inf strings."""
    if v is None or isinstance(v, dict):
        return None
    try:
        return np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _listed(a: np.ndarray) -> Any:
    return float(a) if a.ndim == 0 else a.tolist()


@dataclass(frozen=True)
class UpdateMath:
    """An optimizer step written out: named intermediate tensors, in order, and the rule."""

    rule: str  # e.g. "w ← w − η·∂L/∂w"
    parts: tuple[tuple[str, Any], ...]  # (title, value) in the order they are computed


def plain_step(before: Any, grad: Any, after: Any, lr: float | None) -> bool:
    """Is ``after == before − lr × grad`` (to float32 rounding)?"""
    b, g, a = _array(before), _array(grad), _array(after)
    if lr is None or b is None or g is None or a is None or not (b.shape == g.shape == a.shape):
        return False
    return bool(np.allclose(a, b - lr * g, rtol=1e-5, atol=1e-7))


def adam_first_step(
    before: Any, grad: Any, after: Any, hyper: dict[str, Any], name: str, label: str, digits: int = DEFAULT_DIGITS
) -> UpdateMath | None:
    """Adam's (or AdamW's) first step written out, when it reproduces ``after``; else None.

    On the first step Adam's moments start at zero, so m, v and their bias corrections
    follow from the gradient alone. Later steps carry moments from earlier steps that
    the trace does not see: then this returns None and the panel shows the step taken.
    """
    b, g, a = _array(before), _array(grad), _array(after)
    lr = hyper.get("lr")
    betas = hyper.get("betas") or [0.9, 0.999]
    eps = hyper.get("eps", 1e-8)
    wd = hyper.get("weight_decay") or 0.0
    if b is None or g is None or a is None or not isinstance(lr, (int, float)) or b.shape != g.shape:
        return None
    if hyper.get("amsgrad") or hyper.get("maximize") or not isinstance(eps, (int, float)):
        return None
    b1, b2 = float(betas[0]), float(betas[1])
    decoupled = name == "AdamW"
    g_eff = g if decoupled or not wd else g + wd * b
    start = b * (1 - lr * wd) if decoupled and wd else b
    m = (1 - b1) * g_eff
    v = (1 - b2) * g_eff**2
    m_hat, v_hat = m / (1 - b1), v / (1 - b2)
    step = lr * m_hat / (np.sqrt(v_hat) + eps)
    if not np.allclose(a, start - step, rtol=1e-4, atol=1e-7):
        return None
    n = fmt_number
    parts: list[tuple[str, Any]] = [(f"g = ∂L/∂{label}", _listed(g_eff))]
    parts.append((f"m = (1 − β₁)·g,  β₁ = {n(b1, digits)}", _listed(m)))
    parts.append((f"v = (1 − β₂)·g²,  β₂ = {n(b2, digits)}", _listed(v)))
    parts.append(("m̂ = m / (1 − β₁¹)", _listed(m_hat)))
    parts.append(("v̂ = v / (1 − β₂¹)", _listed(v_hat)))
    parts.append((f"η·m̂ / (√v̂ + ε),  η = {n(lr, digits)}", _listed(step)))
    rule = f"{name} (t = 1): {label} ← {label}" + ("·(1 − η·λ)" if decoupled and wd else "") + " − η·m̂ / (√v̂ + ε)"
    return UpdateMath(rule, tuple(parts))


def _plain_sgd(hyper: dict[str, Any]) -> bool:
    """SGD without momentum, weight decay or maximize: ``w ← w − η·g`` exactly."""
    return not (hyper.get("momentum") or hyper.get("weight_decay") or hyper.get("maximize") or hyper.get("nesterov"))


def update_math(
    before: Any,
    grad: Any,
    after: Any,
    lr: float | None,
    optimizer: dict[str, Any] | None,
    label: str,
    digits: int = DEFAULT_DIGITS,
) -> UpdateMath:
    """The update of one parameter, written out as far as the graph's numbers prove it."""
    name = (optimizer or {}).get("name") or ""
    hyper = dict((optimizer or {}).get("hyper") or {})
    if lr is not None and plain_step(before, grad, after, lr):
        g = _array(grad)
        step = _listed(-lr * g + 0.0) if g is not None else None  # + 0.0: no "−0"
        return UpdateMath(
            f"{label} ← {label} − η·∂L/∂{label},  η = {fmt_number(lr, digits)}",
            ((f"∂L/∂{label}", grad), (f"−η·∂L/∂{label}", step)),
        )
    if name == "SGD" and lr is not None and _plain_sgd(hyper) and (_array(before) is None or _array(after) is None):
        # A large tensor (a summary in the graph): the rule is the optimizer's own, shown without entries.
        rule = f"{label} ← {label} − η·∂L/∂{label},  η = {fmt_number(lr, digits)}"
        return UpdateMath(rule, ((f"∂L/∂{label}", grad),))
    if name in ("Adam", "AdamW"):
        adam = adam_first_step(before, grad, after, hyper, name, label, digits)
        if adam is not None:
            return adam
    b, a = _array(before), _array(after)
    taken = _listed(a - b) if a is not None and b is not None and a.shape == b.shape else None
    rule = f"{name or '?'}: {label} ← f({label}, ∂L/∂{label})" + (f",  η = {fmt_number(lr, digits)}" if lr else "")
    parts: list[tuple[str, Any]] = [(f"∂L/∂{label}", grad)]
    if taken is not None:
        parts.append((f"Δ{label} = after − before", taken))
    return UpdateMath(rule, tuple(parts))


def panel(cards: Sequence[Card]) -> tuple[Card, ...]:
    """A step's cards, without empty ones (a tensor with no stored numbers)."""
    return tuple(c for c in cards if c.cells and c.cells[0])


__all__ = ["MAX_GRID", "ROLES", "Card", "UpdateMath", "adam_first_step", "card", "panel", "plain_step", "update_math"]
