"""Each optimizer's first step written out with its numbers: the lecture's comparison table as arithmetic.

The numbers come from the run (`explainer.training.record.ParamUpdate`): the
parameter before and after the step, its gradient, and the optimizer's own state
right after the step (``momentum_buffer``, ``exp_avg``, ``exp_avg_sq``,
``square_avg``, ``sum``). The quantities the optimizers do not store (bias-corrected
moments, the step's ratio) are worked out from those in double precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..text import fmt_number
from .record import ParamUpdate, Run


@dataclass(frozen=True)
class Rule:
    """One parameter's first update: the symbolic rule and the same with numbers, line by line."""

    name: str
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return " · ".join(self.lines)


def _n(v: Any, digits: int) -> str:
    return fmt_number(v, digits)


def _p(v: Any, digits: int) -> str:
    """A number as a factor: negative ones in parentheses."""
    s = fmt_number(v, digits)
    return f"({s})" if s.startswith("−") else s


def _hyper(run: Run, key: str, default: Any) -> Any:
    v = run.hyper.get(key, default)
    return default if v is None else v


def _sgd(run: Run, u: ParamUpdate, d: int) -> list[str]:
    lr, mu, wd = run.lr, _hyper(run, "momentum", 0), _hyper(run, "weight_decay", 0)
    out = []
    g = "g"
    if wd:
        out.append(f"g ← g + λ·θ = {_n(u.grad, d)} + {_n(wd, d)}·{_p(u.before, d)} = {_n(u.grad + wd * u.before, d)}")
    if mu:
        v = u.state.get("momentum_buffer", math.nan)
        out.append(f"v = μ·v + g = g (first step) = {_n(v, d)}")
        g = "v"
        step = v
    else:
        step = u.grad + wd * u.before
    out.append(f"θ ← θ − η·{g} = {_n(u.before, d)} − {_n(lr, d)}·{_p(step, d)} = {_n(u.after, d)}")
    return out


def _adam(run: Run, u: ParamUpdate, d: int) -> list[str]:
    b1, b2 = _hyper(run, "betas", [0.9, 0.999])
    eps, lr = _hyper(run, "eps", 1e-8), run.lr or 0.0
    m, v = u.state.get("exp_avg", math.nan), u.state.get("exp_avg_sq", math.nan)
    mh, vh = m / (1 - b1), v / (1 - b2)
    ratio = mh / (math.sqrt(vh) + eps) if vh >= 0 else math.nan
    out = [
        f"m = (1−β₁)·g = {_n(1 - b1, d)}·{_p(u.grad, d)} = {_n(m, d)}",
        f"v = (1−β₂)·g² = {_n(1 - b2, d)}·{_p(u.grad, d)}² = {_n(v, d)}",
        f"m̂ = m/(1−β₁) = {_n(mh, d)}, v̂ = v/(1−β₂) = {_n(vh, d)}",
    ]
    wd, theta = _hyper(run, "weight_decay", 0), u.before
    if wd and run.optimizer == "AdamW":  # decoupled weight decay first, then the Adam step
        theta = u.before * (1 - lr * wd)
        out.append(f"θ ← θ·(1 − η·λ) = {_n(u.before, d)}·(1 − {_n(lr, d)}·{_n(wd, d)}) = {_n(theta, d)}")
    out.append(f"θ ← θ − η·m̂/(√v̂+ε) = {_n(theta, d)} − {_n(lr, d)}·{_p(ratio, d)} = {_n(u.after, d)}")
    return out


def _rmsprop(run: Run, u: ParamUpdate, d: int) -> list[str]:
    alpha, eps, lr = _hyper(run, "alpha", 0.99), _hyper(run, "eps", 1e-8), run.lr or 0.0
    s = u.state.get("square_avg", math.nan)
    ratio = u.grad / (math.sqrt(s) + eps) if s >= 0 else math.nan
    return [
        f"s = (1−α)·g² = {_n(1 - alpha, d)}·{_p(u.grad, d)}² = {_n(s, d)}",
        f"θ ← θ − η·g/(√s+ε) = {_n(u.before, d)} − {_n(lr, d)}·{_p(ratio, d)} = {_n(u.after, d)}",
    ]


def _adagrad(run: Run, u: ParamUpdate, d: int) -> list[str]:
    eps, lr = _hyper(run, "eps", 1e-10), run.lr or 0.0
    G = u.state.get("sum", math.nan)
    ratio = u.grad / (math.sqrt(G) + eps) if G >= 0 else math.nan
    return [
        f"G = G + g² = {_p(u.grad, d)}² = {_n(G, d)}",
        f"θ ← θ − η·g/(√G+ε) = {_n(u.before, d)} − {_n(lr, d)}·{_p(ratio, d)} = {_n(u.after, d)}",
    ]


def _other(run: Run, u: ParamUpdate, d: int) -> list[str]:
    state = ", ".join(f"{k} = {_n(v, d)}" for k, v in sorted(u.state.items()) if k != "step")
    return [f"g = {_n(u.grad, d)}" + (f"; {state}" if state else ""), f"θ: {_n(u.before, d)} → {_n(u.after, d)}"]


RULES = {"SGD": _sgd, "Adam": _adam, "AdamW": _adam, "RMSprop": _rmsprop, "Adagrad": _adagrad}


def first_step_rules(run: Run, digits: int = 4) -> list[Rule]:
    """The first update of every parameter of ``run`` (first entries of larger tensors)."""
    rule = RULES.get(run.optimizer, _other)
    if run.optimizer == "RMSprop" and (_hyper(run, "momentum", 0) or _hyper(run, "centered", False)):
        rule = _other
    if run.optimizer == "Adam" and _hyper(run, "amsgrad", False):
        rule = _other
    out = []
    for u in run.first_step:
        name = u.name if run.shapes.get(u.name) in ([], [1], [1, 1]) or not run.shapes.get(u.name) else f"{u.name}[0]"
        out.append(Rule(name, tuple(rule(run, u, digits))))
    return out


__all__ = ["RULES", "Rule", "first_step_rules"]
