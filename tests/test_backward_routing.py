"""``torch.autograd.backward`` reaches the trace's function mode on every supported torch.

Before torch 2.11 torch did not hand ``torch.autograd.backward`` to torch-function modes;
`explainer.trace.routing` puts a wrapper in its place while tracing where that is so. On a
torch that routes it itself the tests force the wrapper too (``native`` / ``wrapper``), so
both paths are checked on every torch the suite runs under.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.overrides import TorchFunctionMode

from explainer.graph import build_graph
from explainer.trace import routing, trace_call

ORIGINAL = torch.autograd.backward


class Seen(TorchFunctionMode):
    """Notes every backward call it is handed, then runs it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Any] = []

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        if func in (torch.Tensor.backward, ORIGINAL, torch.autograd.grad):
            self.calls.append(func)
        return func(*args, **(kwargs or {}))


@pytest.fixture(params=["native", "wrapper"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "wrapper":
        monkeypatch.setattr(routing, "backward_reaches_modes", lambda: False)
    elif not routing.backward_reaches_modes():
        pytest.skip(f"torch {torch.__version__} does not route torch.autograd.backward itself")
    return request.param


def _loss() -> tuple[torch.Tensor, torch.Tensor]:
    w = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    return (w.tanh() * w).sum(), w


def _expected_grad() -> torch.Tensor:
    loss, w = _loss()
    loss.backward()
    assert w.grad is not None
    return w.grad


def test_every_backward_call_reaches_a_mode_once(path: str) -> None:
    expected = _expected_grad()
    seen = Seen()
    with routing.backward_through_modes(), seen:
        loss, w = _loss()
        torch.autograd.backward(loss)
        assert torch.equal(w.grad, expected)
        loss, w = _loss()
        torch.autograd.backward(t for t in [loss])  # any iterable of tensors, read once
        assert torch.equal(w.grad, expected)
        loss, w = _loss()
        loss.backward()  # Tensor.backward runs torch.autograd.backward inside: not seen again
        assert torch.equal(w.grad, expected)
        loss, w = _loss()
        (g,) = torch.autograd.grad(loss, [w])
        assert torch.equal(g, expected)
    assert seen.calls == [ORIGINAL, ORIGINAL, torch.Tensor.backward, torch.autograd.grad]


def test_the_function_is_put_back_after_the_block_and_after_an_error(path: str) -> None:
    with routing.backward_through_modes():
        with routing.backward_through_modes():  # nested: the outer block puts it back
            pass
        assert (torch.autograd.backward is ORIGINAL) == (path == "native")
    assert torch.autograd.backward is ORIGINAL
    with pytest.raises(ZeroDivisionError), routing.backward_through_modes():
        1 / 0  # noqa: B018
    assert torch.autograd.backward is ORIGINAL


def test_a_trace_of_torch_autograd_backward_has_autograds_gradient(path: str) -> None:
    expected = _expected_grad()
    w = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)

    def step() -> None:
        # The trace put the wrapper in place where torch needs it (here: where the test forces it).
        assert (torch.autograd.backward is routing.routed_backward) == (path == "wrapper")
        loss = (w.tanh() * w).sum()
        torch.autograd.backward([loss], grad_tensors=[torch.tensor(1.0)])

    g = build_graph(trace_call(step))
    [leaf] = [d for _, d in g.nodes(data=True) if d["kind"] in ("param", "leaf") and d["label"] == "w"]
    assert leaf["grad"] == expected.tolist()
    assert torch.equal(w.grad, expected)
    assert torch.autograd.backward is ORIGINAL
