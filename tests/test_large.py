"""Large models: light blocks traced by their outputs, the CLI paths.

The light trace of a large model must give the same graph structure, the same
backward order and the same numbers wherever it keeps numbers as the full trace
(every op recorded), and the same default picture.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import ROOT, run_cli

from explainer.fold import fold_for_display
from explainer.graph import build_graph
from explainer.trace import LARGE_MODEL_MODULES, RecordOptions, Session, trace_call

sys.path.insert(0, str(ROOT / "bench"))
import models  # noqa: E402

FULL = 10**9


# ------------------------------------------------------------------ light vs full


@pytest.fixture(scope="module")
def transformer_traces():
    """Transformer-6 (above the large-model threshold) traced light (default) and in full."""
    graphs = {}
    for mode, options in (("light", RecordOptions()), ("full", RecordOptions(everything=True))):
        case = models.transformer(6)
        session = Session(record=options)
        with session.active():
            case.step()
        graphs[mode] = build_graph(session.finish({"model": case.model}), max_elements=FULL)
    return graphs["light"], graphs["full"]


def test_transformer_is_large_and_its_layers_are_light(transformer_traces) -> None:
    light, full = transformer_traces
    assert len(list(models.transformer(6).model.modules())) > LARGE_MODEL_MODULES
    assert light.graph["light"] == [f"model.encoder.layers.{i}" for i in range(6)]
    assert full.graph["light"] == []
    assert any("repeated blocks" in n for n in light.graph["notes"])
    inside = [n for n, d in light.nodes(data=True) if (d["module"] or "").startswith("model.encoder.layers.")]
    ops = [n for n in inside if light.nodes[n]["kind"] == "op"]
    assert ops and sum(light.nodes[n]["value"] is None for n in ops) > 0.9 * len(ops)
    # their parameters have every number: autograd leaves .grad there at no cost
    params = [n for n in inside if light.nodes[n]["kind"] == "param"]
    assert params and all(light.nodes[n][k] is not None for n in params for k in ("value", "grad"))


def test_light_trace_has_the_full_structure_and_order(transformer_traces) -> None:
    light, full = transformer_traces
    assert list(light.nodes) == list(full.nodes)
    assert sorted(light.edges) == sorted(full.edges)
    assert light.graph["backward_order"] == full.graph["backward_order"]
    blocks = set(light.graph["light"])
    for n in full.nodes:
        a, b = light.nodes[n], full.nodes[n]
        for key in ("kind", "op", "autograd", "shape", "dtype", "backward_step", "label"):
            assert a[key] == b[key], (n, key, a[key], b[key])
        # inside a block, a node's module is the block (its submodules ran without hooks)
        assert a["module"] == b["module"] or (a["module"] in blocks and b["module"].startswith(a["module"] + ".")), n
    for u, v in full.edges:
        assert light.edges[u, v]["backward_step"] == full.edges[u, v]["backward_step"], (u, v)


def test_light_trace_numbers_equal_the_full_trace(transformer_traces) -> None:
    light, full = transformer_traces
    kept = 0
    for n, d in light.nodes(data=True):
        for key in ("value", "grad"):
            if d[key] is not None:
                kept += 1
                np.testing.assert_array_equal(np.asarray(d[key]), np.asarray(full.nodes[n][key]), err_msg=f"{n} {key}")
        if d["update"] is not None:
            assert d["update"] == full.nodes[n]["update"]
    for u, v, d in light.edges(data=True):
        if d["grad"] is not None:
            np.testing.assert_array_equal(np.asarray(d["grad"]), np.asarray(full.edges[u, v]["grad"]))
    assert kept > 30
    # Every node outside the blocks keeps its numbers.
    for n, d in light.nodes(data=True):
        if d["kind"] in ("op", "loss") and not (d["module"] or "").startswith("model.encoder.layers."):
            assert d["value"] is not None and d["grad"] is not None, n


def test_light_trace_draws_the_same_default_picture(transformer_traces) -> None:
    light, full = transformer_traces
    a, b = fold_for_display(light), fold_for_display(full)
    assert a.depth == b.depth == 3
    assert list(a.graph.nodes) == list(b.graph.nodes)
    for n in a.graph.nodes:
        for key in ("label", "value", "grad", "backward_step", "repeat"):
            assert a.graph.nodes[n].get(key) == b.graph.nodes[n].get(key), (n, key)
    for u, v in a.graph.edges:
        assert a.graph.edges[u, v]["grad"] == b.graph.edges[u, v]["grad"], (u, v)


def test_block_outputs_match_autograd() -> None:
    """The value and gradient kept for each block are its output's, as autograd computes them."""
    case = models.transformer(6)
    g = build_graph(trace_call(case.step), max_elements=FULL)
    outs: list[torch.Tensor] = []

    def keep(module: nn.Module, args: object, out: torch.Tensor) -> None:
        out.retain_grad()
        outs.append(out)

    handles = [layer.register_forward_hook(keep) for layer in case.model.encoder.layers]
    case.step()
    for h in handles:
        h.remove()
    from explainer.fold import fold

    view = fold(g, 3, repeats=False)
    for i, out in enumerate(outs):
        d = view.nodes[f"m:model.encoder.layers.{i}"]
        np.testing.assert_array_equal(np.asarray(d["value"], dtype=np.float32), out.detach().numpy())
        np.testing.assert_array_equal(np.asarray(d["grad"], dtype=np.float32), out.grad.numpy())


def test_small_models_are_traced_in_full() -> None:
    case = models.resnet18()  # a Sequential of 2 identical blocks: not a run of REPEAT_MIN
    g = build_graph(trace_call(case.step))
    assert g.graph["light"] == []
    assert all(d["value"] is not None for _, d in g.nodes(data=True) if d["kind"] in ("op", "loss", "param"))


def test_modes_are_restored_when_a_block_raises() -> None:
    class Boom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[0] == 3:
                raise ValueError("bad batch")
            return self.fc(x)

    model = nn.Sequential(*[Boom() for _ in range(30)])
    assert len(list(model.modules())) > LARGE_MODEL_MODULES

    def step() -> None:
        try:
            model(torch.randn(3, 4))
        except ValueError:
            pass
        model(torch.randn(2, 4)).sum().backward()

    g = build_graph(trace_call(step))
    assert torch._C._len_torch_dispatch_stack() == 0
    assert torch._C._len_torch_function_stack() == 0
    assert len(g.graph["light"]) == 30
    # The failed call left nothing open: the next forward was traced as usual.
    assert g.nodes[g.graph["loss"]]["value"] is not None


# ------------------------------------------------------------------ the command line


def test_cli_records_what_the_diagram_opens(tmp_path) -> None:
    script = ROOT / "bench" / "transformer_step.py"
    runs = {
        "default": (),
        "expand": ("--expand", "model.encoder.layers.2"),
        "depth": ("--depth", "4"),
        "full": ("--full-trace",),
    }
    graphs = {}
    for name, opts in runs.items():
        out = tmp_path / name
        proc = run_cli(str(script), "--out", str(out), "--format", "svg", *opts, "--", "--layers", "6")
        assert proc.returncode == 0, proc.stderr
        graphs[name] = json.loads((out / "graph.json").read_text())["graph"]
        if name == "default":
            assert "repeated blocks" in proc.stdout and "--full-trace" in proc.stdout
            assert "inside the repeated blocks" not in proc.stdout  # every parameter has its numbers
    assert graphs["default"]["light"] == [f"model.encoder.layers.{i}" for i in range(6)]
    assert graphs["expand"]["light"] == [f"model.encoder.layers.{i}" for i in (0, 1, 3, 4, 5)]
    assert graphs["depth"]["light"] == []
    assert graphs["full"]["light"] == []
    # The expanded block is drawn with its numbers.
    svg = (tmp_path / "expand" / "graph.svg").read_text()
    assert "self_attn" in svg and "layers.3–5" in svg and "layers.0–1" in svg


def test_notebook_show_records_what_it_opens(capsys) -> None:
    import explainer

    case = models.transformer(6)
    model, criterion, tokens, labels = case.model, case.criterion, case.x, case.y
    with explainer.show(expand=["model.encoder.layers.2"]) as s:
        loss = criterion(model(tokens), labels)
        loss.backward()
    assert s.graph.graph["light"] == [f"model.encoder.layers.{i}" for i in (0, 1, 3, 4, 5)]
    opened = [d for _, d in s.diagram.shown.nodes(data=True) if d.get("module") == "model.encoder.layers.2"]
    assert opened and all(d["value"] is not None for d in opened)
    with explainer.show(full_trace=True) as s:
        loss = criterion(model(tokens), labels)
        loss.backward()
    assert s.graph.graph["light"] == []
    assert "explainer.Diagram" in capsys.readouterr().out  # outside a notebook: printed


# ------------------------------------------------------------------ memory


def _held_bytes(session: Session) -> int:
    from explainer.trace.records import tensors_in

    seen: dict[int, int] = {}
    for rec in session.records.ops:
        for t in [*rec.outs, *tensors_in((rec.args, rec.kwargs))]:
            seen[id(t)] = t.numel() * t.element_size()
    return sum(seen.values())


@pytest.mark.parametrize("rounds", [20, 200])
def test_data_preparation_before_training_is_not_kept(rounds) -> None:
    """A preprocessing loop's intermediates are let go: what the trace holds stays bounded."""
    session = Session()
    with session.active():
        rows = []
        for _ in range(rounds):
            x = torch.randn(256, 256)  # 256 KiB each, several per round
            x = (x - x.mean()) / x.std()
            rows.append(x[:1, :4].clone())
        held = _held_bytes(session)
        data = torch.cat(rows)
        model = nn.Linear(4, 1)
        loss = nn.functional.mse_loss(model(data), data.sum(dim=1, keepdim=True))
        loss.backward()
    assert held < 80 * 2**20  # SWEEP_BYTES plus the newest records, not rounds x 1 MiB
    g = build_graph(session.finish({"model": model, "data": data}), max_elements=FULL)
    d = g.nodes[next(n for n, d in g.nodes(data=True) if d["label"] == "data")]
    np.testing.assert_array_equal(np.asarray(d["value"], dtype=np.float32), data.numpy())
    w = g.nodes[next(n for n, d in g.nodes(data=True) if d["label"] == "model.weight")]
    np.testing.assert_array_equal(np.asarray(w["grad"], dtype=np.float32), model.weight.grad.numpy())


def test_loss_without_backward_keeps_its_whole_chain() -> None:
    """No backward, more ops after the loss: the replay still goes back to the named data."""
    torch.manual_seed(0)
    x, w, y = torch.randn(8, 3), torch.randn(3, 1), torch.randn(8, 1)

    def step() -> torch.Tensor:
        h = x @ w
        acc = torch.zeros(())
        for i in range(300):  # per-sample metrics: many ops, several sweeps
            acc = acc + x[i % 8].abs().sum()
        return ((h - y) ** 2).mean()

    g = build_graph(trace_call(step), max_elements=FULL)
    ops = [d["op"] for _, d in g.nodes(data=True) if d["kind"] in ("op", "loss")]
    assert ops == ["mm", "sub", "pow", "mean"]
    assert sorted(d["label"] for _, d in g.nodes(data=True) if d["kind"] == "leaf") == ["w", "x", "y"]
    assert g.nodes[g.graph["loss"]]["value"] == pytest.approx(float(((x @ w - y) ** 2).mean()))


def test_loss_without_backward_from_large_data_that_is_gone() -> None:
    """No backward, large intermediates long gone: the replay starts from the last one kept."""
    target = torch.tensor([0, 2, 1, 0])

    def step() -> torch.Tensor:
        torch.manual_seed(0)
        x = torch.randn(256, 256)  # 256 KiB: held weakly by old records
        for _ in range(200):
            x = x * 1.0
        logits = x[:4, :3].clone()
        return nn.functional.cross_entropy(logits, target)

    g = build_graph(trace_call(step), max_elements=FULL)
    loss = g.nodes[g.graph["loss"]]
    torch.manual_seed(0)
    assert loss["value"] == pytest.approx(float(nn.functional.cross_entropy(torch.randn(256, 256)[:4, :3], target)))
    assert any("require grad" in n for n in g.graph["notes"])
    assert g.number_of_nodes() < 200  # from a kept intermediate, not all 200 multiplications back


# ------------------------------------------------------------------ found in review


class _Blocks(nn.Module):
    """Twenty identical blocks (a large model) after a recorded input layer."""

    def __init__(self, block: type[nn.Module]) -> None:
        super().__init__()
        self.inp = nn.Linear(3, 4)
        self.token = nn.Parameter(torch.randn(4))
        self.layers = nn.ModuleList([block() for _ in range(20)])
        self.out = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.zeros(x.shape[0] + 1, 4)
        h[0] = self.token  # CopySlices: a node no recorded op made, outside the blocks
        h[1:] = self.inp(x)
        for layer in self.layers:
            h = layer(h)
        return self.out(h)


class _InPlaceFirst(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.act, self.fc = nn.ReLU(inplace=True), nn.Linear(4, 4)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(self.act(h))  # overwrites its input, made outside the block, first


def _light_and_full(block: type[nn.Module]):  # noqa: ANN202
    graphs = {}
    for mode, options in (("light", RecordOptions()), ("full", RecordOptions(everything=True))):
        torch.manual_seed(0)
        model = _Blocks(block)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        x, y = torch.randn(5, 3), torch.randn(6, 1)
        session = Session(record=options)
        with session.active():
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
        graphs[mode] = build_graph(session.finish({"model": model}), max_elements=FULL)
    return graphs["light"], graphs["full"]


def test_nodes_outside_blocks_keep_their_numbers_and_inplace_inputs_their_values() -> None:
    light, full = _light_and_full(_InPlaceFirst)
    assert len(light.graph["light"]) == 20
    assert light.graph["optimizer"] == full.graph["optimizer"]

    def outside(g):  # noqa: ANN001, ANN202
        return {
            (d["label"], d["autograd"]): (d["value"], d["grad"], d["update"], d["backward_step"])
            for _, d in g.nodes(data=True)
            if not (d["module"] or "").startswith("model.layers.")
        }

    a, b = outside(light), outside(full)
    assert a == b
    assert a[("model.token", "AccumulateGrad")][2] is not None  # value, grad and update
    addmm = next(
        d for _, d in light.nodes(data=True) if d["autograd"] == "AddmmBackward0" and d["module"] == "model.inp"
    )
    assert min(np.ravel(addmm["value"])) < 0  # the value before the block's in-place relu


def test_interrupt_inside_a_block_leaves_the_modes_as_they_were() -> None:
    from torch.utils._python_dispatch import TorchDispatchMode

    class Stop(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.stop = nn.Linear(4, 4), False

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.stop:
                raise KeyboardInterrupt  # Ctrl-C in a notebook: module hooks do not run for it
            return self.fc(x)

    class Mine(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN202
            return func(*args, **(kwargs or {}))

    model = nn.Sequential(*[Stop() for _ in range(30)])
    model[5].stop = True
    with Mine() as mine:
        with pytest.raises(KeyboardInterrupt):
            trace_call(lambda: model(torch.randn(2, 4)))
        assert torch._C._len_torch_dispatch_stack() == 1
        assert torch._C._get_dispatch_stack_at(0) is mine
    assert torch._C._len_torch_dispatch_stack() == 0 and torch._C._len_torch_function_stack() == 0


def test_constant_pulled_into_the_graph_in_place() -> None:
    w = torch.randn(3, requires_grad=True)

    def step() -> None:
        c = torch.ones(3) * 2
        c.add_(w)
        (c**2).sum().backward()

    g = build_graph(trace_call(step), max_elements=FULL)
    add = next(d for _, d in g.nodes(data=True) if d["autograd"] == "AddBackward0")
    assert add["op"] == "add_"
    np.testing.assert_allclose(add["value"], (2 + w.detach()).numpy())


def test_reentrant_checkpoint_leaf_grads_are_the_totals() -> None:
    import torch.utils.checkpoint as checkpoint

    torch.manual_seed(0)
    w, b, x = torch.randn(4, 4, requires_grad=True), torch.randn(4, requires_grad=True), torch.randn(3, 4)

    def step() -> None:
        h = checkpoint.checkpoint(lambda t: torch.tanh(t @ w) + b, x @ w, use_reentrant=True)
        (h * b).sum().backward()

    tr = trace_call(step)
    g = build_graph(tr, max_elements=FULL)
    for name, t in (("w", w), ("b", b)):
        d = next(d for _, d in g.nodes(data=True) if d["label"] == name)
        np.testing.assert_allclose(np.asarray(d["grad"]), t.grad.numpy(), rtol=1e-6)
    assert len(g.graph["backward_order"]) == len(set(g.graph["backward_order"]))
    assert tr.step == 1  # the nested backward is no backward call of the script's


def test_no_grad_forwards_before_training_keep_nothing() -> None:
    session = Session()
    model = nn.Sequential(*[nn.Sequential(nn.Linear(8, 8), nn.ReLU()) for _ in range(30)])
    x = torch.randn(4, 8)
    with session.active():
        for _ in range(300):  # evaluation before training
            with torch.no_grad():
                model(x)
        held = len(session.records.ops), len(session.blocks.calls.spans)
        model(x).sum().backward()
    assert held[0] < 600 and held[1] == 0
    assert build_graph(session.finish({"model": model})).graph["light"] == [f"model.{i}" for i in range(30)]


def test_every_note_reads_in_both_languages() -> None:
    from explainer.text import STRINGS, note_text
    from explainer.trace import Note

    params = {
        "made": "pred",
        "root": "loss",
        "names": "w.grad",
        "count": 24,
        "span": "model.layers.0 … 23",
        "first": "model.layers.0",
        "n": 2,
        "script": 1.5,
        "replay": 1.5,
        "where": "train.py:7",
    }
    keys = [k for k in STRINGS["en"] if k.startswith("note_")]
    assert len(keys) >= 8
    for key in keys:
        assert key in STRINGS["ko"]
        en, ko = note_text({"key": key, "params": params}), note_text({"key": key, "params": params}, "ko")
        assert "{" not in en and "{" not in ko and en != ko
    note = Note("note_no_backward", {"root": ""})  # as the trace makes it: worded by explainer.text
    assert "from the loss (" in note_text({"key": note.key, "params": note.params})


class ResNet34(nn.Module):
    """ResNet-34's shape (stages of 3, 4, 6, 3 basic blocks), narrow: runs of identical blocks."""

    def __init__(self, w: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, w, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)

        def stage(c_in: int, c_out: int, n: int, stride: int) -> nn.Sequential:
            return nn.Sequential(
                models.BasicBlock(c_in, c_out, stride), *[models.BasicBlock(c_out, c_out) for _ in range(n - 1)]
            )

        self.layer1, self.layer2 = stage(w, w, 3, 1), stage(w, 2 * w, 4, 2)
        self.layer3, self.layer4 = stage(2 * w, 4 * w, 6, 2), stage(4 * w, 8 * w, 3, 2)
        self.fc = nn.Linear(8 * w, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


def test_resnet34_blocks_light_and_full_agree() -> None:
    """Batch norm inside light blocks (buffers updated in place); the picture is the same."""
    graphs = {}
    for mode, options in (("light", RecordOptions()), ("full", RecordOptions(everything=True))):
        torch.manual_seed(0)
        model, x, y = ResNet34(), torch.randn(2, 3, 32, 32), torch.randint(0, 10, (2,))
        session = Session(record=options)
        with session.active():
            nn.CrossEntropyLoss()(model(x), y).backward()
        graphs[mode] = build_graph(session.finish({"model": model}), max_elements=FULL)
    light, full = graphs["light"], graphs["full"]
    # layer4 has 3 blocks but its first differs (stride 2): its run is 2, below REPEAT_MIN
    assert light.graph["light"] == [f"model.layer1.{i}" for i in range(3)] + [
        f"model.layer2.{i}" for i in (1, 2, 3)
    ] + [f"model.layer3.{i}" for i in range(1, 6)]

    def autograd_nodes(g):  # noqa: ANN001, ANN202  (light blocks leave out their buffers, not their ops)
        return [
            (d["kind"], d["op"], d["shape"], d["backward_step"], d["module"])
            for _, d in g.nodes(data=True)
            if d["kind"] in ("op", "loss", "param")
        ]

    a, b = autograd_nodes(light), autograd_nodes(full)
    assert [n[:4] for n in a] == [n[:4] for n in b]
    blocks = set(light.graph["light"])
    for (*_, ma), (*_, mb) in zip(a, b):  # inside a block, the block is the module
        assert ma == mb or (ma in blocks and mb.startswith(ma + "."))

    def view(g):  # noqa: ANN001, ANN202
        return {
            (d["label"], d.get("path")): (d["value"], d["grad"], d["backward_step"])
            for _, d in fold_for_display(g).graph.nodes(data=True)
        }

    assert view(light) == view(full)


def test_off_cpu_the_blocks_still_get_their_steps(monkeypatch, transformer_traces) -> None:
    """Off the CPU the engine's order is not simulated: nodes inside blocks get no step,
    the folded picture is the same (a block's step is its output's, which is hooked)."""
    import explainer.trace.build as build_module

    monkeypatch.setattr(build_module, "ran_on_cpu", lambda fn: False)  # as if the model ran on a GPU
    case = models.transformer(6)
    g = build_graph(trace_call(case.step), max_elements=FULL)
    assert "note_order_unknown" in [n["key"] for n in g.graph["note_data"]]
    inside = [d for _, d in g.nodes(data=True) if d["kind"] == "op" and d["value"] is None]
    assert inside and all(d["backward_step"] is None for d in inside)
    light, _ = transformer_traces

    def view(g):  # noqa: ANN001, ANN202
        return {
            (d["label"], d.get("path")): (d["value"], d["grad"], d["backward_step"])
            for _, d in fold_for_display(g).graph.nodes(data=True)
        }

    assert view(g) == view(light)
