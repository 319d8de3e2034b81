"""What to train: options from the command line and one `RunSpec` per run (no torch here).

``--compare sgd,adam`` names torch.optim classes, case-insensitively, each optionally
with hyperparameters after colons (``sgd:momentum=0.9:nesterov=true``); ``--lr-sweep``
lists learning rates for the script's own optimizer.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import TrainingOptionError

#: torch.optim classes that cannot be swapped in: LBFGS needs a closure, SparseAdam sparse gradients.
UNSWAPPABLE = ("LBFGS", "SparseAdam")
#: Largest model (trainable numbers) whose sampled trajectories are kept for a 2-D slice of the surface.
SLICE_MAX_PARAMS = 2_000_000
#: Flags that choose an implementation, not the arithmetic; never listed as hyperparameters.
IMPL_FLAGS = frozenset({"foreach", "fused", "capturable", "differentiable", "maximize"})


@dataclass(frozen=True)
class OptimizerChoice:
    """One entry of ``--compare``: a torch.optim class name and explicit hyperparameters."""

    name: str  # the class name as torch spells it: "SGD", "Adam"
    kwargs: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.kwargs)
        return f"{self.name} ({extra})" if extra else self.name


@dataclass(frozen=True)
class TrainingOptions:
    """``--train`` (one run), ``--compare`` (one run per optimizer) or ``--lr-sweep`` (one per lr).

    ``lr``: the learning rate for every run of ``--train``/``--compare`` (None: the
    script's). ``jobs``: runs in parallel (None: the number of cores).
    """

    compare: tuple[OptimizerChoice, ...] = ()
    lr_sweep: tuple[float, ...] = ()
    lr: float | None = None
    jobs: int | None = None
    max_elements: int = 16
    surface: bool = True

    @property
    def mode(self) -> str:
        return "compare" if self.compare else "lr-sweep" if self.lr_sweep else "train"


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker process needs for one run (sent to it as JSON)."""

    index: int
    script: str
    argv: list[str]
    seed: int | None
    optimizer: str | None = None  # None: the script's own optimizer class
    kwargs: dict[str, Any] = field(default_factory=dict)
    lr: float | None = None  # None: the script's
    label: str = ""
    max_elements: int = 16
    record_program: bool = False  # keep the first step's forward to evaluate the loss surface
    vectors: str | None = None  # where to save sampled parameter vectors (.npy) for a 2-D slice

    def to_line(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_line(cls, line: str) -> RunSpec:
        return cls(**json.loads(line))


def optimizer_classes() -> dict[str, str]:
    """Lower-case name -> class name of every torch.optim optimizer that can be swapped in."""
    import torch

    out = {}
    for name in dir(torch.optim):
        obj = getattr(torch.optim, name)
        is_optimizer = isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer)
        if is_optimizer and obj is not torch.optim.Optimizer and name not in UNSWAPPABLE:
            out[name.lower()] = name
    return out


def _literal(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return json.loads(text)
    except ValueError:
        pass
    if "," in text:
        return [_literal(p) for p in text.split(",")]
    raise TrainingOptionError(f"--compare: cannot read the value {text!r}: use a number, true/false or a list")


def parse_compare(value: str) -> tuple[OptimizerChoice, ...]:
    """``sgd,adam,sgd:momentum=0.9`` -> choices; unknown names get a one-line error listing the known ones."""
    known = optimizer_classes()
    out = []
    for item in (v.strip() for v in value.split(",") if v.strip()):
        name, *params = item.split(":")
        cls = known.get(name.strip().lower())
        if cls is None:
            raise TrainingOptionError(f"--compare: unknown optimizer {name!r}: choose from {', '.join(sorted(known))}")
        kwargs = []
        for p in params:
            key, sep, val = p.partition("=")
            if not sep or not key.strip():
                raise TrainingOptionError(f"--compare: {p!r} in {item!r} is not key=value (e.g. sgd:momentum=0.9)")
            kwargs.append((key.strip(), _literal(val.replace(";", ","))))
        out.append(OptimizerChoice(cls, tuple(kwargs)))
    if not out:
        raise TrainingOptionError("--compare needs at least one optimizer, e.g. --compare sgd,adam")
    if len(set(out)) != len(out):
        raise TrainingOptionError(f"--compare: {value!r} names an optimizer twice")
    return tuple(out)


def parse_lrs(value: str) -> tuple[float, ...]:
    """``0.01,0.05,0.1`` -> learning rates (positive, distinct)."""
    out = []
    for item in (v.strip() for v in value.split(",") if v.strip()):
        try:
            lr = float(item)
        except ValueError:
            raise TrainingOptionError(f"--lr-sweep: {item!r} is not a number (e.g. --lr-sweep 0.01,0.05,0.1)") from None
        if not lr > 0:
            raise TrainingOptionError(f"--lr-sweep: {item} is not a positive learning rate")
        out.append(lr)
    if not out:
        raise TrainingOptionError("--lr-sweep needs at least one learning rate, e.g. --lr-sweep 0.01,0.1")
    if len(set(out)) != len(out):
        raise TrainingOptionError(f"--lr-sweep: {value!r} lists a learning rate twice")
    return tuple(out)


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def plan_runs(script: str, argv: list[str], seed: int | None, options: TrainingOptions) -> list[RunSpec]:
    """One `RunSpec` per run, in the order the user listed them. Run 0 keeps the loss program."""
    common: dict[str, Any] = {"script": script, "argv": list(argv), "seed": seed, "max_elements": options.max_elements}
    specs = []
    if options.compare:
        for i, choice in enumerate(options.compare):
            specs.append(
                RunSpec(
                    index=i,
                    optimizer=choice.name,
                    kwargs=dict(choice.kwargs),
                    lr=options.lr,
                    label=choice.label,
                    **common,
                )
            )
    elif options.lr_sweep:
        for i, lr in enumerate(options.lr_sweep):
            specs.append(RunSpec(index=i, lr=lr, **common))
    else:
        specs.append(RunSpec(index=0, lr=options.lr, **common))
    if options.surface and specs:
        specs[0] = RunSpec(**{**asdict(specs[0]), "record_program": True})
    return specs


__all__ = [
    "IMPL_FLAGS",
    "SLICE_MAX_PARAMS",
    "OptimizerChoice",
    "RunSpec",
    "TrainingOptions",
    "default_jobs",
    "optimizer_classes",
    "parse_compare",
    "parse_lrs",
    "plan_runs",
]
