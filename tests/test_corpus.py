"""The corpus: training programs in the shapes real code takes, each against a plain-PyTorch oracle.

Every program in ``tests/corpus/`` runs twice: through ``explain-graph`` as a user runs it
(default options, a wide terminal so each table row is one line), and under
``tests/corpus_oracle.py``, which runs the same script in plain PyTorch and records the
loss of the first step, every parameter's value before it, the gradient it got and its
value after the update (see that module). The tests compare:

* numbers: the loss, and for every parameter the loss reaches its value, gradient and
  update in graph.json (summaries of large tensors by their statistics and first
  entries) and in the terminal table;
* the picture: the default (folded) view has no cycle; no input is named by an op or a
  module where the script has a name (the names listed below appear); a parameter sits
  in the frame of the module its ops ran in; and the default diagram fits a 16:9 budget.

The 16:9 budget: the PNG at the default theme's resolution (144 dpi) has an aspect
ratio between 1:3 and 3:1 (no strips) and a long side of at most 5,760 px: three 1080p
screens' widths (40 inches at 144 dpi). So on a 16:9 page the whole diagram shows at a
third of its size or more, or in at most three pans, and never as a thin strip.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pytest
from conftest import CLI, ROOT

from explainer.fold import FoldOptions, fold_for_display
from explainer.graph import loads
from explainer.text import value_inline

# Runs 17 programs twice each: ./dev.sh test -m "not slow" skips them.
pytestmark = pytest.mark.slow

CORPUS = ROOT / "tests" / "corpus"
ORACLE = ROOT / "tests" / "corpus_oracle.py"
PROGRAMS = sorted(p.stem for p in CORPUS.glob("*.py"))

#: The budget (see the module docstring).
MAX_ASPECT = 3.0
MAX_SIDE_PX = 3 * 1920

#: Labels an input must not have: an op's or a call's name where the script had a name.
GENERIC = {"input", "getitem", "lstm", "gru", "detach", "alias", "select", "slice", "view", "clone", "to_copy"}

#: Inputs each program names (their labels in graph.json), and inputs allowed a generic
#: label because the script gives them none it keeps (a literal rebound in a loop).
NAMED_INPUTS: dict[str, set[str]] = {
    "autograd_grad_loop": {"x", "y"},
    "custom_function": {"x", "y"},
    "dcgan": {"real_cpu", "label"},
    "dynamic_net": {"x", "y"},
    "evaluate_inference_mode": {"X_test", "y_test"},
    "evaluate_no_grad": {"data", "target"},
    "gcn": {"features", "adj", "idx_train", "labels[idx_train]"},
    "gru_char_rnn": {"x[:, 0]", "x[:, 3]", "y[:, 0]"},
    "handwritten_sgd_large": {"x", "y"},
    "korean_mnist_bn": {"X", "Y"},
    "lstm_classifier": {"data", "target"},
    "mnist_cnn": {"data", "target"},
    "seq2seq_two_optimizers": {"input_tensor[0]", "input_tensor[7]", "target_tensor[3]"},
    "small_gpt": {"X"},
    "time_sequence_lbfgs": {"input[:, :1]", "input[:, 28:]", "target"},
    "vae": {"data"},
    "word_language_model": {"data", "targets"},
}
ALLOWED_GENERIC: dict[str, set[str]] = {"seq2seq_two_optimizers": {"input"}}  # decoder_input's first value


@dataclass
class Run:
    name: str
    graph: nx.DiGraph
    stdout: str
    out: Path
    oracle: dict[str, Any]
    seconds: float


_RUNS: dict[str, Run] = {}


def run(name: str, tmp_root: Path) -> Run:
    """The program through the CLI and through the oracle, once per session."""
    if name not in _RUNS:
        out = tmp_root / name
        env = dict(os.environ, OMP_NUM_THREADS="1", COLUMNS="400", PYTHONUNBUFFERED="1")
        start = time.perf_counter()
        proc = subprocess.run(
            [*CLI, str(CORPUS / f"{name}.py"), "--out", str(out), "--format", "png,svg"],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
            cwd=tmp_root,
            check=False,
        )
        seconds = time.perf_counter() - start
        assert proc.returncode == 0, proc.stderr[-3000:]
        oracle_json = tmp_root / f"{name}.oracle.json"
        done = subprocess.run(
            [sys.executable, str(ORACLE), str(CORPUS / f"{name}.py"), str(oracle_json)],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
            cwd=tmp_root,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        graph = loads((out / "graph.json").read_text(encoding="utf-8"))
        _RUNS[name] = Run(name, graph, proc.stdout, out, json.loads(oracle_json.read_text()), seconds)
    return _RUNS[name]


@pytest.fixture(scope="module")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus")


# --------------------------------------------------------------------------- comparing values


def _numbers(v: Any) -> np.ndarray:
    def conv(x: Any) -> Any:
        return [conv(e) for e in x] if isinstance(x, list) else float(x)

    return np.asarray(conv(v), dtype=np.float64)


def assert_same(shown: Any, want: Any, what: str) -> None:
    """A graph.json value (a number, nested lists or a summary) against the oracle's numbers."""
    w = np.asarray(want, dtype=np.float64)
    assert shown is not None, f"{what}: missing"
    scale = max(1.0, float(np.max(np.abs(w)))) if w.size else 1.0
    if isinstance(shown, dict):
        assert shown["shape"] == list(w.shape), what
        for key, ref in (("min", w.min()), ("max", w.max()), ("mean", w.mean()), ("norm", np.linalg.norm(w))):
            assert shown[key] == pytest.approx(float(ref), rel=1e-4, abs=1e-6 * scale), f"{what} {key}"
        head = w.reshape(-1)[: len(shown["head"])]
        np.testing.assert_allclose(_numbers(shown["head"]), head, rtol=1e-5, atol=1e-7 * scale, err_msg=what)
        return
    np.testing.assert_allclose(_numbers(shown).reshape(w.shape), w, rtol=1e-5, atol=1e-7 * scale, err_msg=what)


def leaves_by_label(g: nx.DiGraph) -> dict[str, dict[str, Any]]:
    return {d["label"]: d for _, d in g.nodes(data=True) if d["kind"] in ("param", "leaf")}


def reached(oracle: dict[str, Any]) -> list[dict[str, Any]]:
    """The oracle's parameters the loss reached (they got a gradient)."""
    return [p for p in oracle["params"] if p["grad"] is not None]


def node_of(g: nx.DiGraph, names: list[str]) -> dict[str, Any]:
    by = leaves_by_label(g)
    hits = [by[n] for n in names if n in by]
    assert hits, f"no node for {names}: parameters shown are {sorted(by)}"
    return hits[0]


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("name", PROGRAMS)
def test_numbers_match_plain_pytorch(name: str, tmp_root: Path) -> None:
    r = run(name, tmp_root)
    g, oracle = r.graph, r.oracle
    assert g.nodes[g.graph["loss"]]["value"] == pytest.approx(oracle["loss"], rel=1e-6), "loss"
    params = reached(oracle)
    assert params, "the oracle saw no parameter the loss reaches"
    for p in params:
        d = node_of(g, p["names"])
        what = d["label"]
        assert_same(d["value"], p["value"], f"{what} value")
        assert_same(d["grad"], p["grad"], f"{what} grad")
        if p["after"] is not None:
            assert d["update"] is not None, f"{what}: the script updated it, graph.json shows no update"
            assert_same(d["update"]["before"], p["value"], f"{what} before")
            assert_same(d["update"]["after"], p["after"], f"{what} after")
        else:
            assert d["update"] is None or d["update"]["after"] == d["update"]["before"], f"{what}: no update expected"
    # graph.json holds every parameter the loss reaches, and nothing the oracle does not know
    shown = {d["label"] for _, d in g.nodes(data=True) if d["kind"] == "param"}
    known = {n for p in oracle["params"] for n in p["names"]}
    assert shown <= known, f"parameters the script does not have: {sorted(shown - known)}"


@pytest.mark.parametrize("name", PROGRAMS)
def test_terminal_table_shows_the_same_numbers(name: str, tmp_root: Path) -> None:
    r = run(name, tmp_root)
    g = r.graph
    lines = r.stdout.splitlines()
    loss = g.nodes[g.graph["loss"]]
    assert any(line.startswith("loss (") and f"= {value_inline(loss['value'])}" in line for line in lines), r.stdout
    params = [d for _, d in g.nodes(data=True) if d["kind"] in ("param", "leaf") and d["value"] is not None]
    rows = {line.split()[0]: line for line in lines if line.split() and line.split()[0] in {d["label"] for d in params}}
    shown = [d for d in params if d["label"] in rows]
    assert len(shown) == min(len(params), 11 if len(params) > 12 else 12), (len(shown), len(params), r.stdout)
    if len(params) > 12:
        assert f"… {len(params) - 11} more (all in graph.json)" in r.stdout
    for d in shown:
        row = rows[d["label"]]
        for v in (d["value"], d["grad"]):
            assert value_inline(v) in row, (d["label"], value_inline(v), row)
        if d["update"]:
            assert value_inline(d["update"]["after"]) in row, (d["label"], row)
        assert d["grad"] is not None, f"{d['label']}: no gradient in the table"
    opt = g.graph["optimizer"]
    if any(p["after"] is not None for p in reached(r.oracle)):
        assert opt is not None and f"update ({opt['name']})" in r.stdout


# --------------------------------------------------------------------------- the picture


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


@pytest.mark.parametrize("name", PROGRAMS)
def test_picture_is_readable(name: str, tmp_root: Path) -> None:
    r = run(name, tmp_root)
    g = r.graph
    view = fold_for_display(g, FoldOptions()).graph
    assert nx.is_directed_acyclic_graph(view), f"cycle in the default view: {nx.find_cycle(view)}"
    inputs = {d["label"] for _, d in g.nodes(data=True) if d["kind"] == "input"}
    assert NAMED_INPUTS[name] <= inputs, (NAMED_INPUTS[name] - inputs, sorted(inputs))
    # An input labelled by its op is drawn with the data it came from (data -> view); one
    # with no such edge would be a name lost.
    unexplained = {
        d["label"]
        for n, d in g.nodes(data=True)
        if d["kind"] == "input" and d["label"] in GENERIC and not any(True for _ in g.predecessors(n))
    }
    generic = unexplained - ALLOWED_GENERIC.get(name, set())
    assert not generic, f"inputs named by an op where the script has a name: {generic}"
    # one module, one frame: each parameter's module is one its ops ran in (or encloses them)
    # (inside a light block, the block stands for its submodules' ops)
    op_modules = {d["module"] for _, d in g.nodes(data=True) if d["kind"] in ("op", "loss") and d["module"]}
    light = set(g.graph.get("light") or ())
    for _, d in g.nodes(data=True):
        if d["kind"] == "param" and d["module"]:
            m_ = d["module"]
            assert any(
                m == m_ or m.startswith(m_ + ".") or (m in light and m_.startswith(m + ".")) for m in op_modules
            ), f"{d['label']} sits in {d['module']}, where no op ran: {sorted(op_modules)}"
    w, h = png_size(r.out / "graph.png")
    assert 1 / MAX_ASPECT <= w / h <= MAX_ASPECT, f"{w}x{h}: a strip"
    assert max(w, h) <= MAX_SIDE_PX, f"{w}x{h}: larger than the 16:9 budget"
    # the SVG is the same picture
    assert (r.out / "graph.svg").read_text(encoding="utf-8").lstrip().startswith(("<?xml", "<svg", "<!--"))


def test_corpus_is_every_program_in_the_folder() -> None:
    assert set(NAMED_INPUTS) == set(PROGRAMS)
    assert len(PROGRAMS) >= 15
    for p in PROGRAMS:
        first = (CORPUS / f"{p}.py").read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith('"""') and first.endswith('"""'), f"{p}: a one-line docstring first"


# --------------------------------------------------------------------------- what each program got wrong before


def _notes(g: nx.DiGraph) -> set[str]:
    return {n["key"] for n in g.graph.get("note_data", [])}


def _check_dcgan(g: nx.DiGraph, r: Run) -> None:
    [label] = [d for _, d in g.nodes(data=True) if d["label"] == "label"]
    assert label["value"] == [1.0] * 6  # what errD_real saw, not the label.fill_(0) after it
    assert g.graph["optimizer"]["name"] == "Adam" and "note_more_backward" in _notes(g)


def _check_lbfgs(g: nx.DiGraph, r: Run) -> None:
    assert g.graph["optimizer"]["name"] == "LBFGS" and "note_closure" in _notes(g)
    ops = [d for _, d in g.nodes(data=True) if d["kind"] == "op"]
    assert len(ops) > 500 and all(d["value"] is not None and d["module"] for d in ops)
    assert fold_for_display(g, FoldOptions()).nodes <= 30


def _check_seq2seq(g: nx.DiGraph, r: Run) -> None:
    assert g.graph["optimizer"]["name"] == "SGD + Adam"
    params = [d for _, d in g.nodes(data=True) if d["kind"] == "param"]
    assert params and all(d["update"] is not None for d in params)
    view = fold_for_display(g, FoldOptions()).graph
    runs = {d["label"] for _, d in view.nodes(data=True) if d["kind"] == "module" and d["repeat"] > 1}
    assert {"encoder#1–8", "decoder#1–4"} <= runs, runs


def _check_gpt(g: nx.DiGraph, r: Run) -> None:
    assert g.graph["light"] == [f"model.transformer.h.{i}" for i in range(4)]
    # recorded in full (--full-trace), the causal mask's -inf is data, not an alarm, in strict JSON
    from explainer.graph import build_graph, dumps
    from explainer.run import RunOptions, run_script
    from explainer.trace import RecordOptions

    full = build_graph(run_script(CORPUS / "small_gpt.py", [], RunOptions(record=RecordOptions(everything=True))).trace)
    masked = [d for _, d in full.nodes(data=True) if d["intended_inf"]]
    assert len(masked) >= 4 and not any(d["nonfinite"] for _, d in full.nodes(data=True))
    json.loads(dumps(full), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    params = [d for _, d in g.nodes(data=True) if d["kind"] == "param"]
    assert len(params) == 52 and all(d["grad"] is not None and d["update"] is not None for d in params)


def _check_word_lm(g: nx.DiGraph, r: Run) -> None:
    drops = sorted(d["calls"].get("model.drop") for _, d in g.nodes(data=True) if d["module"] == "model.drop")
    assert set(drops) == {1, 2}  # one Dropout, two calls, two frames
    assert [d["label"] for _, d in g.nodes(data=True) if d["kind"] == "param"].count("model.encoder.weight") == 1
    # p.data.add_(p.grad, alpha=-lr) after clip_grad_norm_: the script's lr, and a note on the clipping
    assert g.graph["optimizer"] == {"name": "manual update", "hyper": {"lr": 20.0}}
    assert "note_grads_changed_manual" in _notes(g)


def _check_korean(g: nx.DiGraph, r: Run) -> None:
    labels = {d["label"] for _, d in g.nodes(data=True) if d["kind"] == "param"}
    assert "bn_model.0.weight" in labels and "linear1.weight" not in labels


def _check_gcn(g: nx.DiGraph, r: Run) -> None:
    [adj] = [d for _, d in g.nodes(data=True) if d["label"] == "adj"]
    assert adj["value"]["sparse"] and adj["value"]["nnz"] == 40


def _check_dynamic(g: nx.DiGraph, r: Run) -> None:
    powers = [(n, d) for n, d in g.nodes(data=True) if d["kind"] == "input" and d["op"] == "pow"]
    assert sorted(d["scalars"][0] for _, d in powers) == [2, 3, 4]
    assert all([g.nodes[u]["label"] for u in g.predecessors(n)] == ["x"] for n, _ in powers)


def _check_custom(g: nx.DiGraph, r: Run) -> None:
    [swish] = [n for n, d in g.nodes(data=True) if d["op"] == "Swish"]
    assert all(g.nodes[u]["kind"] != "input" for u in g.predecessors(swish))


def _check_no_grad(g: nx.DiGraph, r: Run) -> None:
    assert "note_replayed_params" in _notes(g) and "note_replay_differs" not in _notes(g)


def _check_manual(lr: float) -> Any:
    def check(g: nx.DiGraph, r: Run) -> None:
        assert g.graph["optimizer"] == {"name": "manual update", "hyper": {"lr": lr}}

    return check


CHECKS = {
    "dcgan": _check_dcgan,
    "time_sequence_lbfgs": _check_lbfgs,
    "seq2seq_two_optimizers": _check_seq2seq,
    "small_gpt": _check_gpt,
    "word_language_model": _check_word_lm,
    "korean_mnist_bn": _check_korean,
    "gcn": _check_gcn,
    "dynamic_net": _check_dynamic,
    "custom_function": _check_custom,
    "evaluate_no_grad": _check_no_grad,
    "evaluate_inference_mode": _check_no_grad,
    "handwritten_sgd_large": _check_manual(1e-6),
    "autograd_grad_loop": _check_manual(0.1),
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_what_was_wrong_before_is_right_now(name: str, tmp_root: Path) -> None:
    r = run(name, tmp_root)
    CHECKS[name](r.graph, r)
