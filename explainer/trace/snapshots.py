"""Tensor snapshots: a tensor's numbers copied out of torch as a `TensorValue`.

All numbers when the tensor is small (up to ``keep_elements`` entries), otherwise a
summary (min, max, mean, norm, NaN/Inf counts, the first entries), so a trace of a
large model stays bounded in memory.
"""

from __future__ import annotations

import functools
import math

import torch

from ..values import HEAD_ENTRIES, TensorValue
from .internals import dispatch_modes_off, function_modes_off
from .model import DEFAULT_KEEP_ELEMENTS

__all__ = ["dtype_name", "snapshot"]


def snapshot(t: torch.Tensor, keep_elements: int = DEFAULT_KEEP_ELEMENTS) -> TensorValue:
    """Copy a tensor's numbers out of torch: all of them, or a summary when large.

    For plain tensors the copy runs with torch-function and dispatch modes switched
    off (C++ guards, restored on exit): otherwise the trace's own modes would see,
    and pass on, every op of every copy, the largest share of the trace's time.
    Tensor subclasses keep their own dispatch.
    """
    if type(t) is torch.Tensor or type(t) is torch.nn.Parameter:
        with function_modes_off(), dispatch_modes_off():
            return _snapshot(t, keep_elements)
    return _snapshot(t, keep_elements)


#: dtypes numpy holds as they are: small tensors of these take the short path in `_snapshot`.
_NUMPY_DTYPES = frozenset(
    {torch.float32, torch.float64, torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool}
)


def _snapshot(t: torch.Tensor, keep_elements: int) -> TensorValue:
    t = t.detach()
    if (
        t.dtype in _NUMPY_DTYPES
        and t.layout is torch.strided
        and t.device.type == "cpu"
        and not t.is_neg()
        and t.numel() <= keep_elements
    ):
        # The common case, kept short: a trace snapshots a few hundred tensors.
        return TensorValue(tuple(t.shape), dtype_name(t.dtype), data=t.numpy().copy())
    shape = tuple(int(s) for s in t.shape)
    dtype = str(t.dtype).removeprefix("torch.")
    if t.layout is not torch.strided and t.device.type != "meta" and not t.is_complex():
        return _sparse(t, shape, dtype)
    if t.is_quantized or t.device.type == "meta" or t.is_complex():
        return TensorValue(shape, dtype)
    if t.dtype in (torch.bfloat16, torch.float16) or str(t.dtype).startswith("torch.float8"):
        t = t.float()
    if t.numel() <= keep_elements:
        return TensorValue(shape, dtype, data=t.to("cpu", copy=True).numpy())
    return _summary(t, shape, dtype)


def _summary(t: torch.Tensor, shape: tuple[int, ...], dtype: str) -> TensorValue:
    """A large tensor's statistics and first entries."""
    f = t.float() if t.dtype != torch.bool else t.to(torch.float32)
    head = tuple(float(v) for v in f.reshape(-1)[:HEAD_ENTRIES].tolist())
    stats = _stats(f)
    if not (math.isfinite(stats["min"]) and math.isfinite(stats["max"])):
        # Only then count: a NaN makes min/max NaN and an Inf makes one of them infinite,
        # so finite tensors (nearly all) skip these passes. The statistics are then the
        # finite entries' (a causal mask's -inf would make them all -inf).
        finite = torch.isfinite(f)
        nan, inf = int(torch.isnan(f).sum()), int(torch.isinf(f).sum())
        stats = _stats(f[finite]) if bool(finite.any()) else {}
        stats.update(nan=nan, inf=inf)
    return TensorValue(shape, dtype, stats=stats, head=head)


def _sparse(t: torch.Tensor, shape: tuple[int, ...], dtype: str) -> TensorValue:
    """A sparse tensor: how many entries it stores, and their statistics and first ones."""
    values = (t.coalesce() if t.layout is torch.sparse_coo else t).values()
    nnz = int(values.numel())
    if nnz == 0:
        return TensorValue(shape, dtype, stats={"nan": 0, "inf": 0}, head=(), nnz=0)
    dense = _summary(values.reshape(-1), (nnz,), dtype)
    return TensorValue(shape, dtype, stats=dense.stats, head=dense.head, nnz=nnz)


def _stats(f: torch.Tensor) -> dict[str, float]:
    lo, hi = torch.aminmax(f)
    lo_, hi_, mean, norm = torch.stack([lo, hi, f.mean(), torch.linalg.vector_norm(f)]).tolist()
    return {"min": lo_, "max": hi_, "mean": mean, "norm": norm, "nan": 0, "inf": 0}


@functools.lru_cache(maxsize=64)
def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``float32``."""
    return str(dtype).removeprefix("torch.")
