"""The training record (``training.json``): plain data, no torch.

One `Run` per training run of the script (its own optimizer, a swapped one, or
another learning rate), an optional `Surface` (the loss over two parameters or a
2-D slice of parameter space, with each run's path on it), and notes. The JSON
form is documented in the README ("The training record"); `TrainingRecord.to_json`
and `load_training` are each other's inverse.

Numbers that are not finite are stored as the strings ``"nan"``, ``"inf"`` and
``"-inf"``, as in ``graph.json``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import values
from ..errors import SchemaError

SCHEMA = "explain-graph-training/1"

#: A run has diverged once its loss is this many times its first loss (or not finite).
DIVERGE_FACTOR = 1e6
#: "Reached" is the first step whose loss is below this fraction of the first loss.
REACH_FRACTION = 1e-3


def json_number(v: float | None) -> float | str | None:
    """A float as JSON: NaN and infinities become strings, as in graph.json (None stays None)."""
    return None if v is None else values.json_number(float(v))


def read_number(v: Any) -> float | None:
    """The inverse of `json_number`."""
    if v is None:
        return None
    if isinstance(v, str):
        return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[v]
    return float(v)


def json_value(v: Any) -> Any:
    """Nested lists of floats (or a summary dict) with non-finite entries as strings."""
    if isinstance(v, dict):
        return {k: json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_value(x) for x in v]
    if v is None or isinstance(v, (bool, int, str)):
        return v
    return json_number(v)


def read_value(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: read_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [read_value(x) for x in v]
    if isinstance(v, str) and v in ("nan", "inf", "-inf"):
        return read_number(v)
    return v


def first_entry(v: Any) -> float | None:
    """The first number of a stored value (a number, nested lists or a summary's head)."""
    if isinstance(v, dict):
        head = v.get("head") or [None]
        return read_number(head[0])
    while isinstance(v, list):
        if not v:
            return None
        v = v[0]
    return read_number(v) if v is not None else None


def flat(v: Any) -> list[float]:
    """Every number of a stored value in row-major order (a summary gives its head)."""
    if isinstance(v, dict):
        return [read_number(x) or 0.0 for x in v.get("head", [])]
    if isinstance(v, list):
        out: list[float] = []
        for x in v:
            out.extend(flat(x))
        return out
    return [read_number(v) if v is not None else math.nan]  # type: ignore[list-item]


def finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


@dataclass
class ParamUpdate:
    """One parameter's first update, with the optimizer's state right after it (first entries)."""

    name: str
    before: float
    grad: float
    after: float
    state: dict[str, float] = field(default_factory=dict)


@dataclass
class Run:
    """One training run: the loss of every optimizer step and every parameter after it.

    ``loss[i]`` is the loss the script computed for step ``i + 1`` (before that
    step's update; the sum when several ``backward()`` calls feed one step);
    ``params[name][i]`` the parameter right after step ``i + 1``. Parameters with
    at most ``max_elements`` entries are stored whole at every step; larger ones
    as a summary per step, with full values at ``samples["steps"]``.
    """

    label: str
    optimizer: str
    lr: float | None
    hyper: dict[str, Any] = field(default_factory=dict)
    origin: str = "script"  # "script": as written; "swapped": another optimizer; "lr": the script's at another lr
    defaulted: list[str] = field(default_factory=list)
    loss: list[float | None] = field(default_factory=list)
    params: dict[str, list[Any]] = field(default_factory=dict)
    initial: dict[str, Any] = field(default_factory=dict)
    shapes: dict[str, list[int]] = field(default_factory=dict)
    samples: dict[str, Any] = field(default_factory=dict)
    first_step: list[ParamUpdate] = field(default_factory=list)
    diverged_at: int | None = None
    error: str | None = None

    @property
    def steps(self) -> int:
        return len(self.loss)

    def first_loss(self) -> float | None:
        return next((v for v in self.loss if v is not None), None)

    def reached_at(self, threshold: float) -> int | None:
        """The first step (1-based) whose loss is below ``threshold``, or None."""
        for i, v in enumerate(self.loss, 1):
            if self.diverged_at is not None and i >= self.diverged_at:
                return None
            if finite(v) and v < threshold:  # type: ignore[operator]
                return i
        return None

    def final(self, name: str) -> Any:
        values = self.params.get(name) or []
        return values[-1] if values else self.initial.get(name)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["loss"] = [json_number(v) for v in self.loss]
        d["params"] = json_value(self.params)
        d["initial"] = json_value(self.initial)
        d["samples"] = json_value(self.samples)
        d["hyper"] = json_value(self.hyper)
        d["first_step"] = [json_value(asdict(u)) for u in self.first_step]
        d["steps"] = self.steps
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Run:
        d = dict(d)
        d.pop("steps", None)
        d["loss"] = [read_number(v) for v in d.get("loss", [])]
        d["params"] = read_value(d.get("params", {}))
        d["initial"] = read_value(d.get("initial", {}))
        d["samples"] = read_value(d.get("samples", {}))
        d["first_step"] = [ParamUpdate(**read_value(u)) for u in d.get("first_step", [])]
        return cls(**d)


def find_divergence(loss: list[float | None], factor: float = DIVERGE_FACTOR) -> int | None:
    """The first step (1-based) whose loss is not finite or ``factor`` times the first loss."""
    first = next((v for v in loss if v is not None), None)
    for i, v in enumerate(loss, 1):
        if v is None:
            continue
        if not math.isfinite(v):
            return i
        if first is not None and math.isfinite(first) and first > 0 and v > factor * first:
            return i
    return None


@dataclass
class Surface:
    """The loss over a plane of parameter space, with each run's path on it.

    ``kind`` is ``"params"`` (the axes are the model's two trainable scalars),
    ``"pca"`` (a slice along the top two principal directions of the runs'
    trajectories, through the start) or ``"random"`` (filter-normalised random
    directions, Li et al. 2018). ``loss[j][i]`` is the loss at ``(x[i], y[j])``.
    ``paths[r]`` holds run ``r``'s points: the start, then after each step (for a
    slice, at the sampled steps ``path_steps[r]``). ``matches_script`` says whether
    the replayed loss equals the loss the script computed at the path's points;
    when it does not (data that changes between steps) the surface is the first
    batch's loss.
    """

    kind: str
    axes: list[str]
    x: list[float]
    y: list[float]
    loss: list[list[float | None]]
    paths: list[list[list[float]]]
    path_steps: list[list[int]] = field(default_factory=list)
    minimum: dict[str, Any] | None = None
    matches_script: bool = True
    explained: list[float] = field(default_factory=list)  # pca: share of the path's variance per direction

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["loss"] = json_value(self.loss)
        d["paths"] = json_value(self.paths)
        d["minimum"] = json_value(self.minimum) if self.minimum else None
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Surface:
        d = dict(d)
        d["loss"] = read_value(d["loss"])
        d["paths"] = read_value(d["paths"])
        d["minimum"] = read_value(d["minimum"]) if d.get("minimum") else None
        return cls(**d)


@dataclass
class TrainingRecord:
    """Every run of one ``--train`` / ``--compare`` / ``--lr-sweep``, and the surface."""

    script: str
    argv: list[str]
    seed: int | None
    mode: str  # "train" | "compare" | "lr-sweep"
    runs: list[Run]
    surface: Surface | None = None
    notes: list[dict[str, Any]] = field(default_factory=list)  # {"key", "params"}, worded by explainer.text

    @property
    def threshold(self) -> float | None:
        """The loss a run counts as "reached": `REACH_FRACTION` of the first run's first loss."""
        first = next((r.first_loss() for r in self.runs if finite(r.first_loss())), None)
        return None if first is None else first * REACH_FRACTION

    def param_names(self) -> list[str]:
        return list(self.runs[0].params) if self.runs else []

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "script": self.script,
            "argv": list(self.argv),
            "seed": self.seed,
            "mode": self.mode,
            "threshold": json_number(self.threshold),
            "runs": [r.to_json() for r in self.runs],
            "surface": self.surface.to_json() if self.surface else None,
            "notes": self.notes,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TrainingRecord:
        if d.get("schema") != SCHEMA:
            raise SchemaError(f"not an explain-graph training record (schema {d.get('schema')!r}, expected {SCHEMA!r})")
        return cls(
            script=d["script"],
            argv=list(d.get("argv", [])),
            seed=d.get("seed"),
            mode=d.get("mode", "train"),
            runs=[Run.from_json(r) for r in d["runs"]],
            surface=Surface.from_json(d["surface"]) if d.get("surface") else None,
            notes=list(d.get("notes", [])),
        )


def save_training(record: TrainingRecord, path: Path) -> Path:
    path.write_text(json.dumps(record.to_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path


def load_training(path: str | Path) -> TrainingRecord:
    """Read a ``training.json`` back (`SchemaError` when it is not one)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemaError(f"cannot read {path}: {exc}") from None
    return TrainingRecord.from_json(data)


__all__ = [
    "DIVERGE_FACTOR",
    "REACH_FRACTION",
    "SCHEMA",
    "ParamUpdate",
    "Run",
    "Surface",
    "TrainingRecord",
    "find_divergence",
    "first_entry",
    "flat",
    "json_number",
    "load_training",
    "read_number",
    "save_training",
]
