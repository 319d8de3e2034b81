"""Tensor values as plain data: what the trace keeps and what the graph shows.

`TensorValue` is the only form in which a tensor's numbers leave the trace stage:
numpy data for tensors up to ``keep_elements`` entries, a statistical summary
for larger ones (so memory stays bounded on big models). `to_json` turns it
into the graph schema's value: a number, nested lists, or a summary dict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from .defaults import DEFAULT_MAX_ELEMENTS

#: How many leading entries a summary lists.
HEAD_ENTRIES = 6


@dataclass(frozen=True)
class TensorValue:
    """A snapshot of one tensor's numbers, free of torch objects.

    Attributes
    ----------
    shape, dtype
        As torch reports them (dtype without the ``torch.`` prefix).
    data
        All entries as a numpy array, or ``None`` above the keep threshold.
    stats
        ``min, max, mean, norm, nan, inf`` over all entries (always present
        when ``data`` is ``None``; computed from ``data`` otherwise).
    head
        The first few entries in row-major order when ``data`` is ``None``.

    Statistics are over the finite entries; ``nan`` and ``inf`` count the others (a
    tensor with a causal ``-inf`` mask keeps a useful mean and range).
    """

    shape: tuple[int, ...]
    dtype: str
    data: np.ndarray | None = None
    stats: dict[str, float] | None = None
    head: tuple[float, ...] | None = None
    #: A sparse tensor's number of stored entries (its statistics and head are theirs); None when dense.
    nnz: int | None = None

    @property
    def numel(self) -> int:
        return int(math.prod(self.shape))

    def summary(self) -> dict[str, float]:
        """Statistics over all entries (from `data` when kept)."""
        if self.stats is not None:
            return self.stats
        if self.data is None:
            return {}
        return self._data_stats

    @cached_property
    def _data_stats(self) -> dict[str, float]:
        # Computed once: the graph asks for NaN counts and summaries of every value
        # (cached_property writes the instance dict directly, so frozen is fine).
        return stats_of_array(self.data)  # type: ignore[arg-type]

    @property
    def n_nonfinite(self) -> int:
        if self.stats is None and self.data is not None:
            # One pass, not the whole summary (the graph asks this of every value).
            if self.data.dtype.kind not in "fc":
                return 0
            return int(self.data.size - np.count_nonzero(np.isfinite(self.data)))
        s = self.summary()
        return int(s.get("nan", 0) + s.get("inf", 0))

    def item(self) -> float | None:
        """The single number of a one-element tensor, else ``None``."""
        if self.numel == 1 and self.data is not None:
            return json_number(self.data.reshape(-1)[0])
        return None

    def to_json(self, max_elements: int = DEFAULT_MAX_ELEMENTS) -> Any:
        """The schema's JSON value.

        A number for a 0-d tensor, nested lists while ``numel <= max_elements``,
        else ``{"summary": true, shape, dtype, min, max, mean, norm, nan, inf, head}``;
        a sparse tensor's summary adds ``"sparse": true`` and ``nnz`` (its statistics and
        head are those of its stored entries).
        """
        if self.data is not None and self.numel <= max_elements:
            if self.data.ndim == 0:
                return json_number(self.data.reshape(-1)[0])
            return _nested(self.data)
        s = self.summary()
        head = self.head
        if head is None and self.data is not None:
            head = tuple(json_number(v) for v in self.data.reshape(-1)[:HEAD_ENTRIES])
        out: dict[str, Any] = {"summary": True, "shape": list(self.shape), "dtype": self.dtype}
        if self.nnz is not None:
            out["sparse"] = True
            out["nnz"] = self.nnz
        for key in ("min", "max", "mean", "norm"):
            if key in s:
                out[key] = json_number(s[key])
        out["nan"] = int(s.get("nan", 0))
        out["inf"] = int(s.get("inf", 0))
        out["head"] = [json_number(v) for v in head or ()]
        return out


def stats_of_array(arr: np.ndarray) -> dict[str, float]:
    """min/max/mean/norm of the finite entries plus NaN and Inf counts, in float64."""
    if arr.size == 0:
        return {"nan": 0, "inf": 0}
    a = arr.astype(np.float64, copy=False)
    finite = np.isfinite(a)
    if finite.all():
        nan = inf = 0
    else:
        nan = int(np.isnan(a).sum())
        inf = int(np.isinf(a).sum())
        # Statistics of the finite entries: a causal mask's -inf would make them all -inf.
        a = a[finite]
        if a.size == 0:
            return {"nan": nan, "inf": inf}
    with np.errstate(all="ignore"):
        return {
            "min": float(a.min()),
            "max": float(a.max()),
            "mean": float(a.mean()),
            "norm": float(np.sqrt((a * a).sum())),
            "nan": nan,
            "inf": inf,
        }


def json_number(v: Any) -> Any:
    """A number as the graph schema stores it (a JSON-safe Python number): NaN/Inf as the strings "nan", "inf", "-inf"."""
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer, int)):
        return int(v)
    f = float(v)
    if math.isnan(f):
        return "nan"
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    return f


def _nested(arr: np.ndarray) -> Any:
    if arr.ndim == 0:
        return json_number(arr.reshape(-1)[0])
    return [_nested(sub) for sub in arr]
