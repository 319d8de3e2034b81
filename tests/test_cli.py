"""The command line, through a subprocess, as a lecturer uses it."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import EXAMPLES, ROOT, run_cli, visible


def test_lecture_example_writes_four_files_and_summary(tmp_path) -> None:
    r = run_cli(str(EXAMPLES / "linear_regression.py"), "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert visible(tmp_path / "out") == ["graph.json", "graph.pdf", "graph.png", "graph.svg"]
    g = json.loads((tmp_path / "out" / "graph.json").read_text())
    labels = {n["label"] for n in g["nodes"]}
    assert {"model.weight", "model.bias", "x", "y", "pred", "loss"} <= labels
    loss = next(n for n in g["nodes"] if n["kind"] == "loss")
    out = r.stdout
    assert "loss (mse_loss)" in out and "model.weight" in out and "update (SGD)" in out
    assert "backward: loss → pred" in out
    assert f"{loss['value']:.4g}" in out
    # stopped after the first step: the script's epoch-20 print never ran
    assert "Epoch" not in out


def test_default_out_dir_and_run_to_end(tmp_path) -> None:
    r = run_cli(str(EXAMPLES / "linear_regression.py"), "--run-to-end", "--format", "svg", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "explained" / "linear_regression"
    assert visible(out) == ["graph.json", "graph.svg", "loss_curve.png"]
    assert "Epoch 200" in r.stdout  # the script ran to its end
    g = json.loads((out / "graph.json").read_text())
    assert len(g["graph"]["losses"]) == 200
    assert g["graph"]["losses"][0] > g["graph"]["losses"][-1]


def test_same_script_same_bytes(tmp_path) -> None:
    for name in ("a", "b"):
        r = run_cli(str(EXAMPLES / "linear_regression.py"), "--out", str(tmp_path / name), "--format", "svg")
        assert r.returncode == 0, r.stderr
    for f in ("graph.svg", "graph.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_cross_entropy_example_is_explained_without_backward(tmp_path) -> None:
    r = run_cli(str(EXAMPLES / "cross_entropy.py"), "--out", str(tmp_path), "--lang", "ko", "--theme", "dark")
    assert r.returncode == 0, r.stderr
    assert "CE Loss:" in r.stdout  # the script's own output
    g = json.loads((tmp_path / "graph.json").read_text())
    ops = [n["op"] for n in g["nodes"] if n["kind"] in ("op", "loss")]
    assert ops == ["log_softmax", "nll_loss"]
    assert any("never calls backward" in n for n in g["graph"]["notes"])
    assert "손실" in r.stdout
    assert "참고: 스크립트가 backward()를 호출하지 않아" in r.stdout  # the note, in the labels' language


def test_bad_option_is_a_usage_error(tmp_path) -> None:
    r = run_cli(str(EXAMPLES / "linear_regression.py"), "--format", "gif", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "--format" in r.stderr
    assert not (tmp_path / "o").exists()


def test_help_is_fast_and_does_not_import_torch() -> None:
    code = "import sys, explainer.cli; print('torch' in sys.modules, 'manim' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.strip() == "False False"
    r = run_cli("--help")
    assert r.returncode == 0 and "--step" in r.stdout and "--run-to-end" in r.stdout


def test_stale_outputs_are_removed_and_chdir_does_not_move_output(tmp_path) -> None:
    out = tmp_path / "out"
    r = run_cli(str(EXAMPLES / "linear_regression.py"), "--out", str(out), "--format", "svg", "--html")
    assert r.returncode == 0, r.stderr
    (out / "notes.txt").write_text("mine")
    script = tmp_path / "wanders.py"
    sub = tmp_path / "elsewhere"
    sub.mkdir()
    script.write_text(
        "import os, torch\n"
        f"os.chdir({str(sub)!r})\n"
        "w = torch.tensor([2.0], requires_grad=True)\n"
        "loss = (w * 3).sum()\n"
        "loss.backward()\n"
    )
    r = run_cli(str(script), "--out", "out", "--format", "svg", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert visible(out) == ["graph.json", "graph.svg", "notes.txt"]  # the earlier run's page gone, the user's file kept
    assert not (sub / "out").exists()


def test_error_text_with_brackets_is_printed_verbatim(tmp_path) -> None:
    script = tmp_path / "bad.py"
    script.write_text("raise ValueError('expected input[batch, features] got [/x]')\n")
    r = run_cli(str(script), "--out", str(tmp_path / "o"))
    assert r.returncode == 3
    assert "expected input[batch, features] got [/x]" in r.stderr.replace("\n", "")
    assert "MarkupError" not in r.stderr


def test_python_api_draw_and_fold_module() -> None:
    code = (
        "import tempfile, torch, explainer, explainer.fold\n"
        "a = torch.tensor(2.0, requires_grad=True)\n"
        "g = explainer.build_graph(explainer.trace_call(lambda: a * a))\n"
        "for _ in range(2):\n"
        "    files = explainer.draw(g, tempfile.mkdtemp(), theme='dark')\n"
        "print(sorted(f.name for f in files), callable(explainer.fold.fold))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['graph.json', 'graph.pdf', 'graph.png', 'graph.svg'] True"


GC_PROBE = """\
import gc
import torch

print("frozen", gc.get_freeze_count())
w = torch.ones(2, requires_grad=True)
(w * 3).sum().backward()
"""


def test_the_command_freezes_imported_objects_only_in_a_process_of_its_own(tmp_path) -> None:
    """``explain-graph`` keeps torch's objects out of the collector's walks (a speed-up measured
    by bench/process_bench.py); the command called inside someone else's process does not
    touch that process's heap."""
    import gc
    import re

    from explainer.cli import command

    script = tmp_path / "probe.py"
    script.write_text(GC_PROBE, encoding="utf-8")
    r = run_cli(str(script), "--out", str(tmp_path / "own"), "--format", "svg")
    assert r.returncode == 0, r.stderr
    frozen = re.search(r"frozen (\d+)", r.stdout)
    assert frozen is not None and int(frozen.group(1)) > 50_000  # torch's modules, classes and functions

    before = gc.get_freeze_count()
    command.main(args=[str(script), "--out", str(tmp_path / "caller"), "--format", "svg"], standalone_mode=False)
    assert gc.get_freeze_count() == before
    assert (tmp_path / "caller" / "graph.svg").is_file()
