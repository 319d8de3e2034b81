"""The plain-PyTorch oracle for the corpus: run a script as ``__main__`` and record its first step.

Independent of explain-graph's trace code: it wraps PyTorch's own backward entry points
(``Tensor.backward``, ``torch.autograd.backward``, ``torch.autograd.grad``) in this
process only, and uses the public global optimizer step hooks. It records, for the
script's first backward call (the step ``explain-graph`` explains by default):

* the loss;
* every parameter (each ``nn.Module``'s ``named_parameters`` and every leaf tensor that
  requires grad, found in the script's own frames at that moment, named by the
  variable and path: ``model.fc1.weight``), its value before the call, the gradient
  this call added to it (``.grad`` after minus before, or what ``autograd.grad``
  returned), and its value after the update: at the next backward call outside an
  optimizer step once an update has happened (an optimizer stepped or a value
  changed), or when the script ends.

A script that never calls backward (an evaluation under ``torch.no_grad()`` or
``torch.inference_mode()``) is run with both turned into plain blocks, so it builds a
graph, and its final ``loss`` is back-propagated at the end: the gradients autograd
gives for the loss the script computed.

Usage: ``python tests/corpus_oracle.py SCRIPT OUT.json`` (seeds as explain-graph does:
Python, NumPy and torch with 0).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import runpy
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)


class Done(BaseException):
    """Stops the script once the update is known."""


class Oracle:
    def __init__(self, script: str) -> None:
        self.script = os.path.abspath(script)
        self.calls = 0
        self.depth = 0  # inside a backward entry point (Tensor.backward calls autograd.backward)
        self.stepping = 0  # inside optimizer.step()
        self.steps_since = 0
        self.stepped: set[int] = set()  # optimizers that stepped since the first backward
        self.loss: float | None = None
        self.params: dict[int, dict[str, Any]] = {}  # id -> names, tensor, value, grad, after
        self.closed = False

    # -- the script's frames: its parameters by name

    def find_params(self, frame: types.FrameType | None) -> dict[int, tuple[list[str], torch.Tensor]]:
        found: dict[int, tuple[list[str], torch.Tensor]] = {}
        while frame is not None:
            if os.path.abspath(frame.f_code.co_filename) == self.script:
                for scope in (frame.f_locals, frame.f_globals):
                    for var, obj in list(scope.items()):
                        if var.startswith("_"):
                            continue
                        if isinstance(obj, torch.nn.Module):
                            for path, p in obj.named_parameters(remove_duplicate=False):
                                entry = found.setdefault(id(p), ([], p))
                                entry[0].append(f"{var}.{path}")
                        elif isinstance(obj, torch.Tensor) and obj.is_leaf and obj.requires_grad:
                            found.setdefault(id(obj), ([], obj))[0].append(var)
            frame = frame.f_back
        return found

    # -- backward entry points

    def wrap(self, fn: Any, kind: str) -> Any:
        oracle = self

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if oracle.depth:
                return fn(*args, **kwargs)
            oracle.depth += 1
            try:
                return oracle.on_backward(fn, kind, args, kwargs)
            finally:
                oracle.depth -= 1

        return wrapper

    def on_backward(self, fn: Any, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.calls >= 1 and not self.stepping and (self.steps_since or self.changed()):
            self.close()
        self.calls += 1
        if self.calls != 1:
            return fn(*args, **kwargs)
        root = args[0] if kind == "method" else (args[0] if args else kwargs.get("outputs", kwargs.get("tensors")))
        if isinstance(root, (list, tuple)):
            root = root[0]
        self.loss = float(root.detach())
        found = self.find_params(sys._getframe(2))
        for key, (names, p) in found.items():
            self.params[key] = {
                "names": names,
                "tensor": p,
                "value": p.detach().clone(),
                "pre": None if p.grad is None else p.grad.detach().clone(),
            }
        out = fn(*args, **kwargs)
        if kind == "grad":
            inputs = args[1] if len(args) > 1 else kwargs["inputs"]
            inputs = [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)
            for t, g in zip(inputs, out):
                if id(t) in self.params and g is not None:
                    self.params[id(t)]["grad"] = g.detach().clone()
        else:
            for entry in self.params.values():
                p, pre = entry["tensor"], entry["pre"]
                if p.grad is not None:
                    entry["grad"] = p.grad.detach().clone() - (pre if pre is not None else 0)
        return out

    def changed(self) -> bool:
        return any(not torch.equal(e["tensor"].detach(), e["value"]) for e in self.params.values())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for entry in self.params.values():
            entry["after"] = entry["tensor"].detach().clone()
        raise Done

    # -- optimizer hooks

    def pre(self, optimizer: Any, *_: Any) -> None:
        if self.calls >= 1 and id(optimizer) in self.stepped:
            self.close()  # the same optimizer again: the next step (LBFGS's closure runs inside it)
        self.stepping += 1

    def post(self, optimizer: Any, *_: Any) -> None:
        self.stepping -= 1
        if self.calls >= 1:
            self.steps_since += 1
            self.stepped.add(id(optimizer))

    def result(self) -> dict[str, Any]:
        out = []
        for entry in self.params.values():
            updated = "after" in entry and not torch.equal(entry["after"], entry["value"])
            out.append(
                {
                    "names": entry["names"],
                    "value": entry["value"].tolist(),
                    "grad": entry["grad"].tolist() if "grad" in entry else None,
                    "after": entry["after"].tolist() if updated else None,
                }
            )
        return {"loss": self.loss, "params": out, "backward_calls": self.calls}


def _plain_in(script: str, real: Any) -> Any:
    """``torch.no_grad`` / ``torch.inference_mode`` that is a plain block in the script's own
    lines (so its loss gets a graph) and itself everywhere else (``nn.init`` uses it)."""

    def make(*args: Any, **kwargs: Any) -> Any:
        if os.path.abspath(sys._getframe(1).f_code.co_filename) == script:
            return contextlib.nullcontext()
        return real(*args, **kwargs)

    return make


def run(script: str) -> dict[str, Any]:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    oracle = Oracle(script)
    backward = torch.Tensor.backward
    torch.Tensor.backward = oracle.wrap(torch.Tensor.backward, "method")  # type: ignore[method-assign]
    torch.autograd.backward = oracle.wrap(torch.autograd.backward, "function")
    torch.autograd.grad = oracle.wrap(torch.autograd.grad, "grad")
    text = Path(script).read_text(encoding="utf-8")
    uses_backward = "backward(" in text or "autograd.grad" in text
    if not uses_backward:
        torch.no_grad = _plain_in(oracle.script, torch.no_grad)  # type: ignore[misc,assignment]
        torch.inference_mode = _plain_in(oracle.script, torch.inference_mode)  # type: ignore[misc,assignment]
    hooks = [register_optimizer_step_pre_hook(oracle.pre), register_optimizer_step_post_hook(oracle.post)]
    sys.argv = [script]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    namespace: dict[str, Any] = {}
    try:
        namespace = runpy.run_path(script, run_name="__main__")
    except Done:
        pass
    finally:
        for h in hooks:
            h.remove()
    if oracle.calls == 0:
        # No backward: the final loss, now with a graph, back-propagated as autograd does.
        for var, module in namespace.items():
            if isinstance(module, torch.nn.Module) and not var.startswith("_"):
                for path, p in module.named_parameters(remove_duplicate=False):
                    entry = oracle.params.setdefault(id(p), {"names": [], "tensor": p, "value": p.detach().clone()})
                    entry["names"].append(f"{var}.{path}")
        loss = namespace["loss"]
        oracle.loss = float(loss.detach())
        oracle.depth += 1  # not a call of the script's
        backward(loss)
        for entry in oracle.params.values():
            if entry["tensor"].grad is not None:
                entry["grad"] = entry["tensor"].grad.detach().clone()
    elif not oracle.closed:
        for entry in oracle.params.values():
            entry["after"] = entry["tensor"].detach().clone()
    return oracle.result()


if __name__ == "__main__":
    script_path, out_path = sys.argv[1], sys.argv[2]
    with contextlib.redirect_stdout(sys.stderr):
        data = run(script_path)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(data, f)
