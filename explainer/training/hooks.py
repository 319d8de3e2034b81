"""Recording a whole training run with cheap hooks, and swapping its optimizer.

`StepRecorder` uses PyTorch's global optimizer step hooks
(`torch.optim.optimizer.register_optimizer_step_pre_hook` / ``_post_hook``) and a
`TorchFunctionMode` that only notes each ``backward()``'s loss; both are removed
when the run ends. The first optimizer whose ``step()`` runs is the script's.

The swap, exact and scoped: at that optimizer's first step the recorder builds
the other optimizer from its ``param_groups`` (the same parameter objects, in the
same order, with the script's learning rate or ``--lr``). On every step the
pre-hook copies the parameters and their gradients, the script's own step runs,
the post-hook copies both back (``Tensor.copy_`` under ``no_grad``: bit for bit)
and calls the swapped optimizer's ``step()`` instead. The script never sees a
difference except in the numbers the swapped optimizer computes, which are those
of the script with its one optimizer line edited. A learning-rate scheduler on the
script's optimizer is followed: without ``--lr`` the swapped groups take the
script's current learning rates before each step.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from torch.overrides import TorchFunctionMode

from ..errors import TrainingOptionError
from ..trace.naming import is_user_file
from ..trace.routing import backward_through_modes
from .record import ParamUpdate, Run
from .spec import IMPL_FLAGS, SLICE_MAX_PARAMS, RunSpec

_TENSOR_BACKWARD = torch.Tensor.backward
_AUTOGRAD_BACKWARD = torch.autograd.backward
#: Full values of a large parameter are kept at about this many steps (doubling the stride as a run grows).
SAMPLES = 24


class BackwardWatch(TorchFunctionMode):
    """Passes every call through; tells ``on_backward`` the root of each ``backward()``."""

    def __init__(self, on_backward: Callable[[torch.Tensor], None]) -> None:
        super().__init__()
        self.on_backward = on_backward

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is _TENSOR_BACKWARD and args:
            self.on_backward(args[0])
        elif func is _AUTOGRAD_BACKWARD:
            roots = args[0] if args else kwargs.get("tensors")
            if isinstance(roots, torch.Tensor):
                self.on_backward(roots)
            elif isinstance(roots, (list, tuple)) and len(roots) == 1 and isinstance(roots[0], torch.Tensor):
                self.on_backward(roots[0])
        return func(*args, **kwargs)


def param_names(params: list[torch.Tensor]) -> list[str]:
    """Names for the optimizer's parameters, from the user's frames: ``model.weight``, ``w``.

    Modules and tensors visible in the user's frames (innermost first, then the
    script's globals) name them; a parameter found nowhere is ``param[i]``.
    """
    wanted = {id(p): i for i, p in enumerate(params)}
    names: dict[int, str] = {}
    frame = sys._getframe(1)
    while frame is not None and len(names) < len(wanted):
        if is_user_file(frame.f_code.co_filename):
            for scope in (frame.f_locals, frame.f_globals):
                for var, value in list(scope.items()):
                    if var.startswith("_"):
                        continue
                    if isinstance(value, torch.nn.Module):
                        for pname, p in value.named_parameters():
                            if id(p) in wanted and id(p) not in names:
                                names[id(p)] = f"{var}.{pname}"
                    elif isinstance(value, torch.Tensor) and id(value) in wanted and id(value) not in names:
                        names[id(value)] = var
        frame = frame.f_back  # type: ignore[assignment]
    out = []
    for i, param in enumerate(params):
        name = names.get(id(param), f"param[{i}]")
        out.append(name if name not in out else f"{name}#{i}")
    return out


def hyper_of(opt: torch.optim.Optimizer) -> dict[str, Any]:
    """The first group's hyperparameters, JSON-ready (no implementation flags)."""
    group = opt.param_groups[0]
    out: dict[str, Any] = {}
    for key in opt.defaults:
        if key in IMPL_FLAGS or key == "params":
            continue
        v = group.get(key, opt.defaults[key])
        if isinstance(v, torch.Tensor):
            v = v.item()
        if isinstance(v, tuple):
            v = list(v)
        if v is None or isinstance(v, (bool, int, float, str, list)):
            out[key] = v
    return out


def _has_closure(args: tuple, kwargs: dict) -> bool:
    """Was ``step()`` given a closure? (The hooks' ``args`` start with the optimizer itself.)"""
    return any(a is not None for a in args[1:]) or kwargs.get("closure") is not None


def _first(t: Any) -> float:
    if isinstance(t, torch.Tensor):
        return float(t.detach().reshape(-1)[0]) if t.numel() else math.nan
    return float(t)


class StepRecorder:
    """Records the loss and every parameter at each step of the script's optimizer."""

    def __init__(self, spec: RunSpec, on_step: Callable[[int], None] | None = None) -> None:
        self.spec = spec
        self.on_step = on_step
        self.opt: torch.optim.Optimizer | None = None
        self.swapped: torch.optim.Optimizer | None = None
        self.params: list[torch.Tensor] = []
        self.run = Run(label=spec.label, optimizer="", lr=spec.lr)
        self.pending: list[float | None] = []
        self.saved: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        self.closure = False
        self.first: list[tuple[float, float]] = []
        self.stride = 1
        self.vectors: list[tuple[int, Any]] = []  # (step, flat numpy vector) for a 2-D slice
        self.keep_vectors = spec.vectors is not None
        self.first_backward: Callable[[torch.Tensor], None] | None = None  # called once, at the first backward

    # -- hooks -----------------------------------------------------------------
    @contextmanager
    def active(self) -> Iterator[StepRecorder]:
        handles = [register_optimizer_step_pre_hook(self._pre), register_optimizer_step_post_hook(self._post)]
        try:
            with backward_through_modes(), BackwardWatch(self._backward):
                yield self
        finally:
            for h in handles:
                h.remove()

    def _backward(self, root: torch.Tensor) -> None:
        if self.first_backward is not None:
            callback, self.first_backward = self.first_backward, None
            callback(root)
        self.pending.append(float(root.detach().reshape(-1)[0]) if root.numel() == 1 else None)

    def _pre(self, opt: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        if self.opt is None:
            if opt is self.swapped:
                return
            self._start(opt, args, kwargs)
        if opt is not self.opt:
            return
        self.closure = _has_closure(args, kwargs)
        if len(self.run.loss) == 0:
            self.first = [(_first(p), _first(p.grad) if p.grad is not None else math.nan) for p in self.params]
        if self.swapped is not None:
            self.saved = [
                (p.detach().clone(), None if p.grad is None else p.grad.detach().clone()) for p in self.params
            ]

    def _post(self, opt: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        if opt is not self.opt:
            return
        if self.swapped is not None:
            with torch.no_grad():
                for p, (value, grad) in zip(self.params, self.saved):
                    p.copy_(value)
                    if grad is not None and p.grad is not None:
                        p.grad.copy_(grad)
            self.saved = []
            if self.spec.lr is None:  # follow the script's learning rate (a scheduler may change it)
                for mine, theirs in zip(self.swapped.param_groups, opt.param_groups):
                    mine["lr"] = theirs["lr"]
            self.swapped.step()
        self._record()

    # -- the first step: names, the swap ----------------------------------------
    def _start(self, opt: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        self.opt = opt
        self.params = [p for g in opt.param_groups for p in g["params"]]
        names = param_names(self.params)
        self.swapped = self._build_swap(opt, _has_closure(args, kwargs))
        used = self.swapped or opt
        run = self.run
        run.optimizer = type(used).__name__
        run.hyper = hyper_of(used)
        run.lr = run.hyper.get("lr") if isinstance(run.hyper.get("lr"), (int, float)) else None
        if not run.label:
            run.label = run.optimizer if self.spec.lr is None else f"{run.optimizer} lr={self.spec.lr:g}"
        run.shapes = {n: list(p.shape) for n, p in zip(names, self.params)}
        run.params = {n: [] for n in names}
        run.initial = {n: self._value(p) for n, p in zip(names, self.params)}
        numel = sum(p.numel() for p in self.params)
        self.keep_vectors = self.spec.vectors is not None and 2 < numel <= SLICE_MAX_PARAMS
        if self.keep_vectors:
            self.vectors.append((0, self._vector()))

    def _build_swap(self, opt: torch.optim.Optimizer, closure: bool) -> torch.optim.Optimizer | None:
        spec = self.spec
        if spec.optimizer is None and spec.lr is None:
            return None
        cls = type(opt) if spec.optimizer is None else getattr(torch.optim, spec.optimizer)
        if closure:
            raise TrainingOptionError(
                f"the script calls {type(opt).__name__}.step(closure): swapping such an optimizer is not supported; "
                "use --train without --lr"
            )
        groups = []
        for g in opt.param_groups:
            if spec.optimizer is None:  # --lr-sweep / --lr: the script's optimizer with all its settings
                keep = {k: v for k, v in g.items() if k != "params" and k in opt.defaults}
            else:
                keep = dict(spec.kwargs)
            keep["lr"] = spec.lr if spec.lr is not None else g["lr"]
            groups.append({"params": list(g["params"]), **keep})
        try:
            swapped = cls(groups)  # type: ignore[call-arg]  # a subclass: its own defaults
        except (TypeError, ValueError) as exc:
            raise TrainingOptionError(f"cannot build {cls.__name__} from the script's parameters: {exc}") from None
        same = cls is type(opt) and all(
            {k: v for k, v in a.items() if k != "params"} == {k: v for k, v in b.items() if k != "params"}
            for a, b in zip(swapped.param_groups, opt.param_groups)
        )
        if same:  # the script's own optimizer: nothing to swap, the numbers are the script's
            return None
        self.run.origin = "lr" if spec.optimizer is None else "swapped"
        if spec.optimizer is not None:
            given = {"lr", *spec.kwargs}
            self.run.defaulted = [k for k in swapped.defaults if k not in given and k not in IMPL_FLAGS]
        return swapped

    # -- every step --------------------------------------------------------------
    def _value(self, p: torch.Tensor) -> Any:
        d = p.detach()
        if d.numel() == 1:
            return float(d.reshape(-1)[0])
        if d.numel() <= self.spec.max_elements:
            return d.tolist()
        f = d.double()
        return {
            "summary": True,
            "shape": list(d.shape),
            "mean": float(f.mean()),
            "norm": float(f.norm()),
            "min": float(f.min()),
            "max": float(f.max()),
            "head": d.reshape(-1)[:6].tolist(),
        }

    def _vector(self) -> Any:
        return torch.cat([p.detach().reshape(-1).float().cpu() for p in self.params]).numpy().copy()

    def _record(self) -> None:
        run = self.run
        losses, self.pending = self.pending, []
        if not losses or any(v is None for v in losses):
            loss = None
        else:
            loss = losses[0] if self.closure else math.fsum(losses)  # type: ignore[arg-type]
        run.loss.append(loss)
        for name, p in zip(run.params, self.params):
            run.params[name].append(self._value(p))
        step = len(run.loss)
        if step == 1:
            self._first_step()
        if step % self.stride == 0:
            self._sample(step)
        if self.on_step is not None:
            self.on_step(step)

    def _sample(self, step: int, thin: bool = True) -> None:
        large = [(n, p) for n, p in zip(self.run.params, self.params) if p.numel() > self.spec.max_elements]
        if large:
            samples = self.run.samples.setdefault("steps", [])
            samples.append(step)
            store = self.run.samples.setdefault("params", {})
            for n, p in large:
                if p.numel() <= 4096:
                    store.setdefault(n, []).append(p.detach().tolist())
        if self.keep_vectors:
            self.vectors.append((step, self._vector()))
        if thin and max(len(self.vectors), len(self.run.samples.get("steps", []))) > 2 * SAMPLES:
            self._thin()

    def _thin(self) -> None:
        """Keep every other sample and double the stride, so samples stay spread over the run."""
        self.stride *= 2
        keep = [i for i, s in enumerate(self.run.samples.get("steps", [])) if s % self.stride == 0]
        if keep or self.run.samples.get("steps"):
            self.run.samples["steps"] = [self.run.samples["steps"][i] for i in keep]
            for n, values in self.run.samples.get("params", {}).items():
                self.run.samples["params"][n] = [values[i] for i in keep]
        self.vectors = [(s, v) for s, v in self.vectors if s == 0 or s % self.stride == 0]

    def _first_step(self) -> None:
        used = self.swapped or self.opt
        updates = []
        for name, p, (before, grad) in zip(self.run.params, self.params, self.first):
            state = {}
            for key, v in (used.state.get(p) or {}).items():  # type: ignore[union-attr]
                if isinstance(v, (torch.Tensor, int, float)):
                    state[key] = _first(v)
            updates.append(ParamUpdate(name, before, grad, _first(p), state))
        self.run.first_step = updates

    def finish(self) -> Run:
        """The run as recorded; the last step joins the samples if the thinning skipped it."""
        run = self.run
        last = max(run.samples.get("steps") or [0], default=0)
        if self.keep_vectors and self.vectors:
            last = min(last, self.vectors[-1][0]) if run.samples.get("steps") else self.vectors[-1][0]
        if run.steps and last != run.steps:
            self._sample(run.steps, thin=False)
        return run


__all__ = ["SAMPLES", "BackwardWatch", "StepRecorder", "hyper_of", "param_names"]
