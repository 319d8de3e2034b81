"""The loss surface and the runs' paths on it (numpy; the loss itself comes from the `Evaluator`).

Two trainable scalars (the lecture's w and b): the plane is the parameters
themselves; the grid covers where the runs went (diverging runs may leave it)
and the loss's minimum. When the loss is exactly quadratic in the two (a linear
model with MSE: least squares) the minimum is solved from the replayed loss in
double precision and checked at other points; otherwise the grid's lowest point
is marked as such.

More parameters: a 2-D slice through the start, along the top two principal
directions of all runs' sampled trajectories (PCA), or, when the runs moved along
a single line, filter-normalised random directions (Li et al., "Visualizing the
Loss Landscape of Neural Nets", 2018). Paths are projected onto the plane.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .record import Run, Surface, finite, flat
from .runner import Evaluator
from .spec import SLICE_MAX_PARAMS

#: Grid points per axis: two scalars, a slice.
GRID_PARAMS, GRID_SLICE = 61, 25
#: Relative agreement asked of the replayed loss and the quadratic model.
RTOL = 1e-6


def axis_names(run: Run) -> list[str]:
    """Names of the two scalars: two one-entry parameters, or the two entries of one."""
    names = list(run.params)
    if len(names) == 2:
        return names
    return [f"{names[0]}[0]", f"{names[0]}[1]"]


def path_of(run: Run) -> np.ndarray:
    """The run's points in the plane of its two scalars: the start, then after each step."""
    names = list(run.params)
    rows = [[x for n in names for x in flat(run.initial[n])]]
    for i in range(run.steps):
        rows.append([x for n in names for x in flat(run.params[n][i])])
    return np.asarray(rows, dtype=np.float64)


def _usable(run: Run, points: np.ndarray, steps: Sequence[int]) -> np.ndarray:
    """The points a grid should cover: all of a run that converged; of a diverging run, those before it went off."""
    if run.diverged_at is None:
        mask = np.isfinite(points).all(axis=1)
    else:
        first = run.first_loss() or 0.0
        # a point is kept while the loss the script computed there was no worse than at the start
        mask = np.array(
            [
                s < run.steps and finite(run.loss[s]) and run.loss[s] <= first  # type: ignore[operator]
                for s in steps
            ]
        )
        mask[0] = True
    return points[mask]


def _box(points: np.ndarray, margin: float = 0.12) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = hi - lo
    floor = np.maximum(1e-3, 0.1 * np.abs(points).max(axis=0))
    span = np.maximum(span, floor)
    mid = (lo + hi) / 2
    return mid - span * (0.5 + margin), mid + span * (0.5 + margin)


def quadratic_minimum(
    ev: Evaluator,
    origin: np.ndarray,
    dirs: np.ndarray,
    centre: np.ndarray,
    h: float,
    box: tuple[np.ndarray, np.ndarray],
    seed: int,
) -> np.ndarray | None:
    """The minimum of the loss when it is exactly quadratic in the plane's coordinates, else None.

    Central differences give a quadratic's gradient and Hessian exactly (double precision);
    the fitted quadratic must then predict the loss at other points to `RTOL`.
    """
    cx, cy = centre
    stencil = [
        (cx, cy),
        (cx + h, cy),
        (cx - h, cy),
        (cx, cy + h),
        (cx, cy - h),
        (cx + h, cy + h),
        (cx + h, cy - h),
        (cx - h, cy + h),
        (cx - h, cy - h),
    ]
    f = ev.evaluate(origin, dirs, stencil, float64=True)
    if not all(map(math.isfinite, f)):
        return None
    f0, fxp, fxm, fyp, fym, fpp, fpm, fmp, fmm = f
    g = np.array([(fxp - fxm) / (2 * h), (fyp - fym) / (2 * h)])
    hxy = (fpp - fpm - fmp + fmm) / (4 * h * h)
    H = np.array([[(fxp - 2 * f0 + fxm) / h**2, hxy], [hxy, (fyp - 2 * f0 + fym) / h**2]])
    if not (H[0, 0] > 0 and np.linalg.det(H) > 0):
        return None
    zmin = centre - np.linalg.solve(H, g)

    def model(z: np.ndarray) -> float:
        d = z - centre
        return float(f0 + g @ d + 0.5 * d @ H @ d)

    rng = np.random.default_rng(seed)
    checks = [zmin] + [box[0] + rng.random(2) * (box[1] - box[0]) for _ in range(4)]
    actual = ev.evaluate(origin, dirs, [tuple(z) for z in checks], float64=True)
    scale = max(abs(v) for v in f + actual)
    if any(abs(model(z) - a) > RTOL * scale for z, a in zip(checks, actual)):
        return None
    return np.array([float(f"{v:.12g}") if abs(v) > 1e-12 * max(1.0, float(np.abs(zmin).max())) else 0.0 for v in zmin])


def _grid(
    ev: Evaluator, origin: np.ndarray, dirs: np.ndarray, box: tuple[np.ndarray, np.ndarray], n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs = np.linspace(box[0][0], box[1][0], n)
    ys = np.linspace(box[0][1], box[1][1], n)
    coords = [(x, y) for y in ys for x in xs]
    z = np.asarray(ev.evaluate(origin, dirs, coords), dtype=np.float64).reshape(n, n)
    return xs, ys, z


def _matches(ev: Evaluator, runs: Sequence[Run], points: Sequence[tuple[np.ndarray, int, Run]]) -> bool:
    """Is the replayed loss the loss the script computed, at these (full parameter vector, step) points?"""
    for theta, s, run in points:
        want = run.loss[s] if s < run.steps else None
        if want is None or not finite(want):
            continue
        got = ev.evaluate(theta, np.zeros((2, theta.size)), [(0.0, 0.0)])[0]
        if not (finite(got) and abs(got - want) <= RTOL * max(abs(want), 1e-12)):
            return False
    return True


def _spread(n: int, most: int) -> list[int]:
    return sorted(set(np.linspace(0, n - 1, min(n, most)).round().astype(int).tolist())) if n else []


def two_scalar_surface(runs: Sequence[Run], ev: Evaluator, seed: int) -> Surface:
    paths = [path_of(r) for r in runs]
    origin, dirs = np.zeros(2), np.eye(2)
    keep = np.vstack([_usable(r, p, range(len(p))) for r, p in zip(runs, paths)])
    box = _box(keep)
    h = float(max(box[1] - box[0])) / 4
    zmin = quadratic_minimum(ev, origin, dirs, paths[0][0], h, box, seed)
    if zmin is not None:
        box = _box(np.vstack([keep, zmin]))
    xs, ys, z = _grid(ev, origin, dirs, box, GRID_PARAMS)
    if zmin is not None:
        minimum = {
            "x": float(zmin[0]),
            "y": float(zmin[1]),
            "loss": ev.evaluate(origin, dirs, [tuple(zmin)])[0],
            "kind": "quadratic",
        }
    else:
        j, i = np.unravel_index(np.nanargmin(np.where(np.isfinite(z), z, np.nan)), z.shape)
        minimum = {"x": float(xs[i]), "y": float(ys[j]), "loss": float(z[j, i]), "kind": "grid"}
    checks = [(p[k], k, r) for r, p in zip(runs, paths) for k in _spread(len(p) - 1, 40)]
    return Surface(
        kind="params",
        axes=axis_names(runs[0]),
        x=xs.tolist(),
        y=ys.tolist(),
        loss=[[float(v) for v in row] for row in z],
        paths=[p.tolist() for p in paths],
        path_steps=[list(range(len(p))) for p in paths],
        minimum=minimum,
        matches_script=_matches(ev, runs, checks),
    )


def load_vectors(path: Path) -> tuple[np.ndarray, list[int]]:
    return np.load(path), json.loads(Path(str(path) + ".steps.json").read_text())


def random_directions(run: Run, theta0: np.ndarray, seed: int) -> np.ndarray:
    """Two filter-normalised random directions: each filter (row of a weight) scaled to that filter's norm."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(2):
        parts, at = [], 0
        for shape in run.shapes.values():
            n = int(math.prod(shape))
            w = theta0[at : at + n].reshape(shape) if shape else theta0[at : at + n]
            d = rng.standard_normal(w.shape)
            if d.ndim >= 2:
                for i in range(d.shape[0]):
                    d[i] *= float(np.linalg.norm(w[i])) / max(float(np.linalg.norm(d[i])), 1e-12)
            else:  # biases and other vectors: as Li et al., left out of the direction
                d[...] = 0.0
            parts.append(d.reshape(-1))
            at += n
        vec = np.concatenate(parts)
        if not vec.any():  # a model of vectors only: scale the whole direction to the parameters' norm
            vec = rng.standard_normal(theta0.size) * np.linalg.norm(theta0) / math.sqrt(max(theta0.size, 1))
        out.append(vec)
    return np.stack(out)


def slice_surface(runs: Sequence[Run], ev: Evaluator, vectors: Sequence[Path], seed: int) -> Surface | None:
    loaded = [load_vectors(p) for p in vectors]
    theta0 = loaded[0][0][0].astype(np.float64)
    rows = []
    for run, (vecs, steps) in zip(runs, loaded):
        rows.append(_usable(run, vecs.astype(np.float64) - theta0, steps))
    D = np.vstack(rows)
    D = D[np.isfinite(D).all(axis=1)]
    _, s, vt = np.linalg.svd(D, full_matrices=False) if len(D) >= 2 else (None, np.zeros(1), None)
    if len(s) >= 2 and s[1] > 1e-9 * s[0] and vt is not None:
        kind, dirs = "pca", vt[:2]
        explained = (s[:2] ** 2 / (s**2).sum()).tolist()
    else:
        kind, dirs, explained = "random", random_directions(runs[0], theta0, seed), []
    paths, path_steps = [], []
    for vecs, steps in loaded:
        coords, *_ = np.linalg.lstsq(dirs.T, (vecs.astype(np.float64) - theta0).T, rcond=None)
        paths.append(coords.T)
        path_steps.append(list(steps))
    keep = np.vstack([_usable(r, p, st) for r, p, st in zip(runs, paths, path_steps)])
    xs, ys, z = _grid(ev, theta0, dirs, _box(keep), GRID_SLICE)
    j, i = np.unravel_index(np.nanargmin(np.where(np.isfinite(z), z, np.nan)), z.shape)
    minimum = {"x": float(xs[i]), "y": float(ys[j]), "loss": float(z[j, i]), "kind": "grid"}
    checks = [
        (vecs[k].astype(np.float64), steps[k], r)
        for r, (vecs, steps) in zip(runs, loaded)
        for k in _spread(len(steps) - 1, 3)
    ]
    names = ["PC1", "PC2"] if kind == "pca" else ["d1", "d2"]
    return Surface(
        kind=kind,
        axes=names,
        x=xs.tolist(),
        y=ys.tolist(),
        loss=[[float(v) for v in r] for r in z],
        paths=[p.tolist() for p in paths],
        path_steps=path_steps,
        minimum=minimum,
        matches_script=_matches(ev, runs, checks),
        explained=explained,
    )


def build_surface(runs: Sequence[Run], ev: Evaluator, vectors: Sequence[Path] | None, seed: int) -> Surface | None:
    """The surface for these runs (None when the model has fewer than two scalars or no kept trajectories)."""
    usable = [r for r in runs if r.steps]
    if not usable or len(usable) != len(runs):
        return None
    if ev.numel == 2:
        return two_scalar_surface(runs, ev, seed)
    if ev.numel > 2 and vectors and all(p.exists() for p in vectors):
        return slice_surface(runs, ev, vectors, seed)
    return None


__all__ = ["GRID_PARAMS", "GRID_SLICE", "SLICE_MAX_PARAMS", "build_surface", "path_of", "quadratic_minimum"]
