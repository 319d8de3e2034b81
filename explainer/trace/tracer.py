"""The Python API of the trace: `Tracer` (a ``with`` block) and `trace_call` (one call)."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import torch

from ..errors import ExplainerError
from .model import DEFAULT_KEEP_ELEMENTS, RecordOptions, Trace
from .session import Session

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Self

__all__ = ["Tracer", "trace_call"]


class Tracer:
    """Trace one training step inside a ``with`` block.

    >>> with Tracer() as tr:                      # doctest: +SKIP
    ...     loss = criterion(model(x), y)
    ...     loss.backward()
    ...     optimizer.step()
    >>> graph = explainer.build_graph(tr.result)  # doctest: +SKIP

    If the block never calls backward, the final scalar (a variable named ``loss``
    in the block's scope, else the last scalar computed) is explained instead.
    """

    def __init__(
        self, step: int = 1, keep_elements: int = DEFAULT_KEEP_ELEMENTS, record: RecordOptions | None = None
    ) -> None:
        self.session = Session(step=step, stop_when_done=False, keep_elements=keep_elements, record=record)
        self.result: Trace | None = None
        self._cm: AbstractContextManager[Session] | None = None

    def __enter__(self) -> Self:
        self._cm = self.session.active()
        self._cm.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: types.TracebackType | None
    ) -> None:
        self.close(sys._getframe(1), exc_type, exc, tb)

    def close(
        self,
        frame: types.FrameType,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: types.TracebackType | None = None,
    ) -> None:
        """End the trace; ``frame`` is the ``with`` block's, whose variables name the tensors.

        For wrappers of a ``with`` block (`explainer.notebook.Show`): their ``__exit__``
        passes the frame of the block, which is not the caller of this method.
        """
        if self._cm is None:
            raise ExplainerError("Tracer.close() before the trace started: use `with Tracer() as tr: ...`")
        self._cm.__exit__(exc_type, exc, tb)
        if exc_type is not None:
            return
        namespace = dict(frame.f_globals)
        namespace.update(frame.f_locals)
        self.result = self.session.finish(namespace)


def trace_call(
    fn: Callable[..., Any],
    *args: Any,
    step: int = 1,
    keep_elements: int = DEFAULT_KEEP_ELEMENTS,
    record: RecordOptions | None = None,
    **kwargs: Any,
) -> Trace:
    """Call ``fn(*args, **kwargs)`` and trace the step it performs.

    If ``fn`` calls backward, that call is captured; otherwise, when it returns a
    scalar tensor, the trace back-propagates from that value. ``record`` says which
    blocks of a large model run light (`RecordOptions`).
    """
    session = Session(step=step, stop_when_done=False, keep_elements=keep_elements, record=record)
    with session.active():
        out = fn(*args, **kwargs)
    # Names for the tensors: the caller's variables and those the callable closes over.
    caller = sys._getframe(1)
    namespace: dict[str, Any] = {**caller.f_globals, **caller.f_locals}
    namespace.update(_closure_vars(fn))
    namespace.pop("loss", None)
    if isinstance(out, torch.Tensor):
        namespace["loss"] = out
    return session.finish(namespace)


def _closure_vars(fn: Callable[..., Any]) -> Iterator[tuple[str, Any]]:
    code, cells = getattr(fn, "__code__", None), getattr(fn, "__closure__", None) or ()
    if code is None:
        return
    for var, cell in zip(code.co_freevars, cells):
        try:
            yield var, cell.cell_contents
        except ValueError:  # an empty cell
            pass
