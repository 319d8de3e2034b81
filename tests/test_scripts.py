"""Ordinary PyTorch scripts a new user brings (tests/scripts/), explained end to end.

Each CLI run happens once, all of them in parallel (module fixture ``runs``), and the
tests read its graph.json. Numbers are checked against autograd run independently
on the values the graph recorded. Small scripts run in-process with `run_script`.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
import torch
import torch.nn.functional as F
from conftest import EXAMPLES, run_cli

from explainer.errors import NoLossError, NonScalarLossError, StepNotReachedError, UserScriptError
from explainer.graph import build_graph, dumps, load_graph, loads
from explainer.run import RunOptions, run_script

SCRIPTS = Path(__file__).parent / "scripts"
FULL = 100_000  # --max-elements: keep every number in graph.json

#: name -> CLI arguments (the --out folder is added). All run once, in parallel.
CLI_RUNS: dict[str, tuple[str, ...]] = {
    "mlp": (str(SCRIPTS / "mlp_adam.py"), "--format", "png"),
    "cnn": (str(SCRIPTS / "cnn.py"), "--format", "svg"),
    "argparse": (str(SCRIPTS / "argparse_main.py"), "--format", "svg", "--", "--lr", "0.1", "--hidden", "2"),
    "lr_step2": (str(EXAMPLES / "linear_regression.py"), "--format", "svg", "--step", "2"),
    # error paths
    "missing": (str(SCRIPTS / "no_such_script.py"),),
    "syntax": (str(SCRIPTS / "syntax_error.py"),),
    "raises": (str(SCRIPTS / "raises.py"),),
    "nonscalar": (str(SCRIPTS / "nonscalar.py"),),
    "step5": (str(SCRIPTS / "retain_twice.py"), "--step", "5"),
    "no_loss": (str(SCRIPTS / "no_loss.py"),),
}


class Run:
    def __init__(self, proc: Any, out: Path) -> None:
        self.proc, self.out = proc, out

    @property
    def graph(self) -> nx.DiGraph:
        assert self.proc.returncode == 0, self.proc.stderr
        return load_graph(self.out / "graph.json")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    base = tmp_path_factory.mktemp("scripts")

    def one(name: str) -> Run:
        out = base / name / "out"
        out.parent.mkdir()
        args = list(CLI_RUNS[name])
        cut = args.index("--") if "--" in args else len(args)
        args[cut:cut] = ["--out", str(out), "--max-elements", str(FULL)]
        return Run(run_cli(*args), out)

    with ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2))) as pool:
        return dict(zip(CLI_RUNS, pool.map(one, CLI_RUNS)))


# --------------------------------------------------------------------------- helpers


def T(v: Any) -> torch.Tensor:
    """A graph.json value as a float64 tensor ("nan"/"inf" strings become numbers)."""

    def conv(x: Any) -> Any:
        return [conv(e) for e in x] if isinstance(x, list) else float(x)

    assert not isinstance(v, dict), "a summary: raise --max-elements"
    return torch.tensor(conv(v), dtype=torch.float64)


def node(g: nx.DiGraph, label: str) -> dict[str, Any]:
    hits = [d for _, d in g.nodes(data=True) if d["label"] == label]
    assert len(hits) == 1, f"{label!r}: {len(hits)} nodes; labels: {sorted(d['label'] for _, d in g.nodes(data=True))}"
    return hits[0]


def node_id(g: nx.DiGraph, label: str) -> str:
    [nid] = [n for n, d in g.nodes(data=True) if d["label"] == label]
    return nid


def by_autograd(g: nx.DiGraph, cls: str) -> list[str]:
    return [n for n, d in g.nodes(data=True) if d["autograd"] == cls]


def close(got: Any, want: torch.Tensor, what: str, tol: float = 1e-5) -> None:
    got_t = T(got)
    want = want.detach().to(torch.float64)
    assert got_t.shape == want.shape, f"{what}: shape {tuple(got_t.shape)} != {tuple(want.shape)}"
    assert torch.allclose(got_t, want, rtol=tol, atol=tol, equal_nan=True), f"{what}: {got_t} != {want}"


def leaf(v: Any) -> torch.Tensor:
    return T(v).requires_grad_(True)


def trace(script: str, *argv: str, step: int = 1) -> nx.DiGraph:
    result = run_script(SCRIPTS / script, list(argv), RunOptions(step=step))
    return build_graph(result.trace, max_elements=FULL)


def assert_failed_cleanly(run: Run, code: int, *fragments: str) -> None:
    """Non-zero exit, a one-line error saying what to do, nothing written."""
    r = run.proc
    assert r.returncode == code, (r.returncode, r.stderr)
    err = " ".join(r.stderr.split())  # rich may wrap long lines
    assert "error:" in err
    for f in fragments:
        assert f in err, f"{f!r} not in {r.stderr!r}"
    assert "explainer/" not in r.stderr and "site-packages" not in r.stderr, r.stderr
    assert not run.out.exists(), list(run.out.iterdir())
    assert list(run.out.parent.iterdir()) == [], "temporary files left behind"


# --------------------------------------------------------------------------- 1. MLP + Adam


def test_mlp_sequential_adam(runs: dict[str, Run]) -> None:
    g = runs["mlp"].graph
    assert (runs["mlp"].out / "graph.png").stat().st_size > 10_000
    for label, module in (
        ("model.0.weight", "model.0"),
        ("model.0.bias", "model.0"),
        ("model.2.weight", "model.2"),
        ("model.2.bias", "model.2"),
    ):
        d = node(g, label)
        assert d["kind"] == "param" and d["module"] == module
    assert {"model": "Sequential", "model.0": "Linear", "model.1": "ReLU", "model.2": "Linear"}.items() <= g.graph[
        "modules"
    ].items()
    [relu] = by_autograd(g, "ReluBackward0")
    assert g.nodes[relu]["module"] == "model.1"

    # autograd, independently, on the recorded numbers
    w0, b0, w2, b2 = (
        leaf(node(g, n)["value"]) for n in ("model.0.weight", "model.0.bias", "model.2.weight", "model.2.bias")
    )
    x, y = T(node(g, "x")["value"]), T(node(g, "y")["value"])
    pred = F.relu(x @ w0.T + b0) @ w2.T + b2
    loss = F.mse_loss(pred, y)
    loss.backward()
    close(node(g, "loss")["value"], loss, "loss")
    close(node(g, "pred")["value"], pred, "pred")
    params = {"model.0.weight": w0, "model.0.bias": b0, "model.2.weight": w2, "model.2.bias": b2}
    for name, p in params.items():
        close(node(g, name)["grad"], p.grad, f"{name} grad")

    # the update is what torch's Adam does with these gradients
    assert g.graph["optimizer"]["name"] == "Adam" and g.graph["optimizer"]["hyper"]["lr"] == 0.01
    ref = {n: p.detach().clone().requires_grad_(True) for n, p in params.items()}
    for n, p in ref.items():
        p.grad = params[n].grad.clone()
    torch.optim.Adam(ref.values(), lr=0.01).step()
    for name, p in ref.items():
        upd = node(g, name)["update"]
        close(upd["before"], params[name], f"{name} before")
        close(upd["after"], p, f"{name} after", tol=1e-4)
    assert "update (Adam)" in runs["mlp"].proc.stdout


# --------------------------------------------------------------------------- 2. CNN


def test_cnn_conv_batchnorm_inplace_relu_dropout(runs: dict[str, Run]) -> None:
    g = runs["cnn"].graph
    labels = {d["label"] for _, d in g.nodes(data=True)}
    assert {
        "net.conv.weight",
        "net.conv.bias",
        "net.bn.weight",
        "net.bn.bias",
        "net.fc.weight",
        "net.fc.bias",
        "images",
        "labels",
        "logits",
        "loss",
        "dropout mask",
    } <= labels
    assert {
        "net": "Net",
        "net.conv": "Conv2d",
        "net.bn": "BatchNorm2d",
        "net.relu": "ReLU",
        "net.drop": "Dropout",
        "net.fc": "Linear",
    }.items() <= g.graph["modules"].items()

    # buffers show what batch norm read, before its in-place update of the running stats
    for name, want in (("net.bn.running_mean", [0.0, 0.0]), ("net.bn.running_var", [1.0, 1.0])):
        d = node(g, name)
        assert d["kind"] == "buffer" and d["module"] == "net.bn" and d["value"] == want

    # nn.ReLU(inplace=True): batch norm keeps its own (negative) output, ReLU its own
    [bn] = by_autograd(g, "NativeBatchNormBackward0")
    [relu] = by_autograd(g, "ReluBackward0")
    assert g.nodes[bn]["module"] == "net.bn" and g.nodes[bn]["op"] == "native_batch_norm"
    assert g.nodes[relu]["module"] == "net.relu" and g.nodes[relu]["op"] == "relu_"
    assert g.has_edge(bn, relu)
    bn_out = T(g.nodes[bn]["value"])
    assert bn_out.min() < 0
    close(g.nodes[relu]["value"], bn_out.clamp(min=0), "relu = max(bn, 0)")
    relu_grad = T(g.nodes[relu]["grad"])
    close(g.nodes[bn]["grad"], relu_grad * (bn_out > 0), "bn grad = relu grad where bn > 0")
    [pool] = by_autograd(g, "MaxPool2DWithIndicesBackward0")
    assert g.has_edge(relu, pool)

    # dropout's mask: an input inside the Dropout cluster, 0 or 1/(1-p)
    mask = node(g, "dropout mask")
    assert mask["kind"] == "input" and mask["module"] == "net.drop"
    m = T(mask["value"])
    assert torch.all((m == 0) | torch.isclose(m, torch.tensor(4.0 / 3.0, dtype=torch.float64)))

    # cross-entropy and the last layer, by hand
    logits, labels_t = T(node(g, "logits")["value"]), T(node(g, "labels")["value"]).long()
    close(node(g, "loss")["value"], F.cross_entropy(logits, labels_t), "loss")
    dlogits = (logits.softmax(1) - F.one_hot(labels_t, 3)) / 4
    close(node(g, "logits")["grad"], dlogits, "logits grad")
    [view] = by_autograd(g, "ViewBackward0")
    close(node(g, "net.fc.weight")["grad"], dlogits.T @ T(g.nodes[view]["value"]), "fc.weight grad")
    close(node(g, "net.fc.bias")["grad"], dlogits.sum(0), "fc.bias grad")
    upd = node(g, "net.fc.bias")["update"]  # SGD with momentum, first step: p - lr * g
    close(upd["after"], T(upd["before"]) - 0.1 * dlogits.sum(0), "fc.bias after")


# --------------------------------------------------------------------------- 3-5. small scripts, in-process


def test_tensor_used_twice_accumulates() -> None:
    g = trace("reuse.py")
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    (x * x + x).sum().backward()
    close(node(g, "x")["grad"], x.grad, "x grad")
    mul, y = node_id(g, "mul"), node_id(g, "y")
    xid = node_id(g, "x")
    assert g.edges[xid, mul]["slots"] == [0, 1]
    close(g.edges[xid, mul]["grad"], 2 * x.detach(), "grad along x -> x*x (both uses)")
    close(g.edges[xid, y]["grad"], torch.ones(3), "grad along x -> + x")
    total = T(g.edges[xid, mul]["grad"]) + T(g.edges[xid, y]["grad"])
    close(node(g, "x")["grad"], total, "x grad is the sum of its edges")


def test_custom_autograd_function() -> None:
    g = trace("custom_function.py")
    h = node(g, "h")
    assert (h["op"], h["autograd"], h["call"]) == ("Square", "SquareBackward", "Square.apply")
    w = torch.tensor([0.5, -1.5], requires_grad=True)
    hv = (w * torch.tensor([2.0, 3.0])) ** 2
    hv.mean().backward()
    close(h["value"], hv, "h")
    close(node(g, "w")["grad"], w.grad, "w grad")
    assert g.nodes[g.graph["loss"]]["label"] == "loss"


def test_torch_autograd_backward() -> None:
    g = trace("autograd_backward.py")
    w = leaf([[1.0, 2.0], [3.0, 4.0]])
    b = leaf([0.5, -0.5])
    out = torch.tanh(T([[1.0, -1.0]]) @ w + b)
    loss = (out**2).sum()
    loss.backward()
    assert g.nodes[g.graph["loss"]]["label"] == "loss"
    close(node(g, "loss")["value"], loss, "loss")
    close(node(g, "out")["value"], out, "out")
    assert node(g, "out")["op"] == "tanh"
    close(node(g, "w")["grad"], w.grad, "w grad")
    close(node(g, "b")["grad"], b.grad, "b grad")
    assert g.graph["backward_order"][0] == g.graph["loss"]


# --------------------------------------------------------------------------- 6. argparse, main()


def test_argparse_after_double_dash_and_locals_of_main(runs: dict[str, Run]) -> None:
    g = runs["argparse"].graph
    assert g.graph["optimizer"]["name"] == "SGD" and g.graph["optimizer"]["hyper"]["lr"] == 0.1
    assert node(g, "model.0.weight")["shape"] == [2, 2]  # --hidden 2 reached the script
    # locals of train() (called from main()) still name the tensors and the model
    for name in ("inputs", "targets", "scores", "loss"):
        node(g, name)
    assert g.graph["modules"].get("model") == "Sequential"
    for name in ("model.0.weight", "model.0.bias", "model.2.weight", "model.2.bias"):
        d = node(g, name)
        close(d["update"]["after"], T(d["value"]) - 0.1 * T(d["grad"]), f"{name} after")


def test_bad_script_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UserScriptError, match="exited with status 2 .*arguments you pass after --"):
        run_script(SCRIPTS / "argparse_main.py", ["--no-such-option"])
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


# --------------------------------------------------------------------------- 7. micrograd


def test_micrograd_manual_update() -> None:
    g = trace("micrograd.py")
    assert g.graph["optimizer"] == {"name": "manual update", "hyper": {"lr": 0.01}}
    a, b, c = leaf(2.0), leaf(-3.0), leaf(10.0)
    L = (F.relu(a * b + c) - 1.0) ** 2
    L.backward()
    for name, t in (("a", a), ("b", b), ("c", c)):
        d = node(g, name)
        assert d["kind"] == "leaf" and d["shape"] == []
        assert math.isclose(d["grad"], float(t.grad))
        assert d["update"]["before"] == t.item()
        assert math.isclose(d["update"]["after"], (t - 0.01 * t.grad).item(), rel_tol=1e-6)
        assert d["update"]["lr"] == 0.01
    for name, value in (("e", -6.0), ("d", 4.0), ("f", 4.0), ("L", 9.0)):
        assert node(g, name)["value"] == value
    assert node(g, "L")["kind"] == "loss"
    assert node(g, "sub")["scalars"] == [1.0]
    assert g.graph["losses"][0] == 9.0


# --------------------------------------------------------------------------- 8. NaN / Inf


def test_nan_from_log_is_flagged() -> None:
    g = loads(dumps(trace("nan_log.py")))  # strict JSON: NaN is stored as "nan"
    z = node(g, "z")
    assert z["value"][1] == "nan" and z["nonfinite"]
    assert g.graph["first_nonfinite"] == node_id(g, "z")
    assert node(g, "loss")["value"] == "nan" and node(g, "loss")["nonfinite"]
    assert node(g, "w")["nonfinite"] and node(g, "w")["grad"][1] == "nan"
    assert g.graph["losses"] == ["nan"]


def test_inf_gradient_from_sqrt_at_zero() -> None:
    g = trace("inf_sqrt.py")
    x = node(g, "x")
    assert x["grad"] == ["inf", 0.75] and x["nonfinite"]
    assert not node(g, "r")["nonfinite"]  # sqrt(0) = 0 is finite; its gradient is not
    assert g.graph["first_nonfinite"] == node_id(g, "x")
    assert loads(dumps(g)).graph == g.graph  # strict JSON round trip


# --------------------------------------------------------------------------- 9. errors


def test_missing_script(runs: dict[str, Run]) -> None:
    assert_failed_cleanly(runs["missing"], 2, "no such script", "check the path")


def test_syntax_error(runs: dict[str, Run]) -> None:
    assert_failed_cleanly(runs["syntax"], 2, "syntax_error.py:2: syntax error", "fix the script")
    assert "Traceback" not in runs["syntax"].proc.stderr


def test_script_that_raises_shows_only_its_own_frames(runs: dict[str, Run]) -> None:
    run = runs["raises"]
    assert_failed_cleanly(run, 3, "raises.py raised RuntimeError", "Fix the script")
    err = run.proc.stderr
    assert err.startswith("Traceback (most recent call last):")
    assert 'raises.py", line 10, in <module>' in err and 'raises.py", line 6, in helper' in err
    assert "torch/" not in err and "runpy" not in err


def test_non_scalar_backward(runs: dict[str, Run]) -> None:
    assert_failed_cleanly(runs["nonscalar"], 4, "out has shape [2], not a scalar", "out.mean()")


def test_step_beyond_the_last_backward(runs: dict[str, Run]) -> None:
    assert_failed_cleanly(runs["step5"], 4, "called backward() 2 time(s)", "no step 5", "--step 2 or lower")


def test_script_without_a_loss(runs: dict[str, Run]) -> None:
    assert_failed_cleanly(runs["no_loss"], 4, "never calls backward()", "add loss.backward()")


def test_error_types_in_process() -> None:
    with pytest.raises(NonScalarLossError):
        run_script(SCRIPTS / "nonscalar.py")
    with pytest.raises(StepNotReachedError):
        run_script(SCRIPTS / "retain_twice.py", options=RunOptions(step=3))
    with pytest.raises(NoLossError):
        run_script(SCRIPTS / "no_loss.py")


# --------------------------------------------------------------------------- 10. later steps


def test_retain_graph_twice() -> None:
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    x = torch.tensor([3.0, -1.0])
    once = torch.autograd.grad(((w * x).sum() ** 2), w)[0]
    for step in (1, 2):
        g = trace("retain_twice.py", step=step)
        assert g.graph["step"] == step
        assert g.graph["losses"][:step] == [1.0] * step
        # the forward ran before the first backward; step 2 still shows its values
        [mul] = by_autograd(g, "MulBackward0")
        [total] = by_autograd(g, "SumBackward0")
        assert g.nodes[mul]["value"] == [3.0, -2.0] and g.nodes[total]["value"] == 1.0
        assert node(g, "loss")["value"] == 1.0
        # grad = ∂loss/∂w of this backward, though w.grad has accumulated to 2x at step 2
        close(node(g, "w")["grad"], once, f"w grad at step {step}")
        notes = " ".join(g.graph["notes"])
        assert ("w.grad already held gradients" in notes) == (step == 2)


def test_lecture_script_step_two(runs: dict[str, Run]) -> None:
    g = runs["lr_step2"].graph
    assert g.graph["step"] == 2
    torch.manual_seed(0)  # the CLI seeds 0 before the script builds its model
    model = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x = torch.tensor([[1.0], [2.0], [3.0]])
    y = torch.tensor([[3.0], [6.0], [9.0]])
    losses = []
    for _ in range(2):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        losses.append(loss.item())
        before = {"model.weight": model.weight.detach().clone(), "model.bias": model.bias.detach().clone()}
        grads = {"model.weight": model.weight.grad.clone(), "model.bias": model.bias.grad.clone()}
        opt.step()
    assert g.graph["losses"] == pytest.approx(losses)
    close(node(g, "loss")["value"], torch.tensor(losses[1]), "step-2 loss")
    for name, p in (("model.weight", model.weight), ("model.bias", model.bias)):
        d = node(g, name)
        close(d["value"], before[name], f"{name} at step 2")
        close(d["grad"], grads[name], f"{name} grad at step 2")
        close(d["update"]["after"], p, f"{name} after step 2")


# --------------------------------------------------------------------------- more scripts


def test_trainer_class_names_self_attributes_and_notes_clipping() -> None:
    g = trace("trainer_class.py")
    assert {
        "model": "Sequential",
        "model.0": "Embedding",
        "model.2": "Linear",
        "crit": "CrossEntropyLoss",
    }.items() <= g.graph["modules"].items()
    for name in ("model.0.weight", "model.2.weight", "model.2.bias"):
        assert node(g, name)["kind"] == "param"
    for name in ("xb", "yb", "out", "loss"):
        node(g, name)
    notes = " ".join(g.graph["notes"])
    assert "changed between backward() and optimizer.step()" in notes
    d = node(g, "model.2.bias")  # the update used the clipped gradient, smaller than the one shown
    step = T(d["update"]["before"]) - T(d["update"]["after"])
    assert step.norm() < 0.1 * T(d["grad"]).norm()


def test_unnamed_constants_say_where_they_came_from() -> None:
    g = trace("two_losses.py")
    for label in ("ones", "zeros"):
        assert node(g, label)["kind"] == "input"
    assert "input" not in {d["label"] for _, d in g.nodes(data=True)}
    z = node(g, "z")
    zid = node_id(g, "z")
    grads = [T(g.edges[zid, v]["grad"]) for v in g.successors(zid)]
    assert len(grads) == 2
    close(z["grad"], grads[0] + grads[1], "z grad = sum over both heads")
