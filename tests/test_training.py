"""Training over time (--train, --compare, --lr-sweep) against plain PyTorch.

The oracle runs the lecture's script with plain PyTorch, its one optimizer line
edited, recording every step's loss, w and b; explain-graph runs the unmodified
script with the optimizer swapped by hooks. Every number must be the same.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import EXAMPLES, ROOT, run_cli

from explainer.training.explain import run_training, write_training
from explainer.training.record import load_training
from explainer.training.spec import TrainingOptions, parse_compare, parse_lrs

LECTURE = EXAMPLES / "linear_regression.py"
LINE = "optimizer = optim.SGD(model.parameters(), lr=0.05)"
STEP = "    optimizer.step()       # θ 업데이트\n"
COMPARE = {"SGD": "optim.SGD", "Adam": "optim.Adam", "RMSprop": "optim.RMSprop", "Adagrad": "optim.Adagrad"}
SWEEP = (0.01, 0.1, 0.5)  # 0.5 diverges: the loss overflows to inf, then NaN

ORACLE = """
import json, random, runpy, sys
import numpy, torch
out = {}
for name, path in json.loads(sys.argv[1]).items():
    random.seed(0); numpy.random.seed(0); torch.manual_seed(0)   # as explain-graph's --seed 0
    out[name] = runpy.run_path(path, run_name="__main__")["_oracle"]
json.dump(out, open(sys.argv[2], "w"))
"""


def edited(tmp: Path, name: str, line: str) -> Path:
    """The lecture's script with its optimizer line replaced and every step recorded."""
    text = LECTURE.read_text(encoding="utf-8")
    assert LINE in text and STEP in text
    text = text.replace(LINE, line).replace(
        STEP, STEP + "    _oracle.append([loss.item(), model.weight.item(), model.bias.item()])\n"
    )
    path = tmp / f"{name}.py"
    path.write_text("_oracle = []\n" + text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[list[float]]]:
    tmp = tmp_path_factory.mktemp("oracle")
    scripts = {
        name: str(edited(tmp, name, f"optimizer = {cls}(model.parameters(), lr=0.05)")) for name, cls in COMPARE.items()
    }
    scripts |= {
        f"lr={lr}": str(edited(tmp, f"lr{i}", f"optimizer = optim.SGD(model.parameters(), lr={lr})"))
        for i, lr in enumerate(SWEEP)
    }
    out = tmp / "oracle.json"
    subprocess.run(
        [sys.executable, "-c", ORACLE, json.dumps(scripts), str(out)], check=True, capture_output=True, timeout=300
    )
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def compared():
    return run_training(LECTURE, [], TrainingOptions(compare=parse_compare("sgd,adam,rmsprop,adagrad")), progress=False)


@pytest.fixture(scope="module")
def swept():
    return run_training(LECTURE, [], TrainingOptions(lr_sweep=SWEEP, surface=True), progress=False)


def same(a: float | None, b: float) -> bool:
    if a is None:
        return False
    if math.isnan(b):
        return math.isnan(a)
    return a == b or abs(a - b) <= 1e-6 * abs(b)


def check_against(run, rows: list[list[float]]) -> None:
    assert run.steps == len(rows) == 200
    for i, (loss, w, b) in enumerate(rows):
        assert same(run.loss[i], loss), (run.label, i, run.loss[i], loss)
        assert same(run.params["model.weight"][i], w), (run.label, i)
        assert same(run.params["model.bias"][i], b), (run.label, i)


def test_compare_equals_editing_the_optimizer_line(compared, oracle) -> None:
    for run, name in zip(compared.runs, COMPARE):
        assert run.optimizer == name and run.lr == 0.05
        check_against(run, oracle[name])
        # not only within 1e-6: bit for bit
        assert [run.loss[i] for i in range(200)] == [r[0] for r in oracle[name]]
    sgd, adam = compared.runs[0], compared.runs[1]
    assert sgd.origin == "script" and not sgd.defaulted  # the script's own optimizer: nothing swapped
    assert adam.origin == "swapped" and {"betas", "eps"} <= set(adam.defaulted)
    assert adam.hyper["betas"] == [0.9, 0.999]
    assert any(n["key"] == "tr_note_swapped" and n["params"]["label"] == "Adam" for n in compared.notes)


def test_lr_sweep_equals_editing_the_lr_and_marks_divergence(swept, oracle) -> None:
    for run, lr in zip(swept.runs, SWEEP):
        assert run.optimizer == "SGD" and run.lr == lr
        check_against(run, oracle[f"lr={lr}"])
    ok, fast, wild = swept.runs
    assert ok.diverged_at is None and fast.diverged_at is None
    losses = [r[0] for r in oracle["lr=0.5"]]
    first_bad = next(i for i, v in enumerate(losses, 1) if not math.isfinite(v) or v > 1e6 * losses[0])
    assert wild.diverged_at == first_bad
    assert any(math.isnan(v) for v in losses)  # the rate really ends in NaN, which the plots must survive
    assert fast.reached_at(swept.threshold) is not None and ok.reached_at(swept.threshold) is None  # 0.01 crawls


def test_first_step_numbers_are_the_optimizers_own(compared) -> None:
    from explainer.training.update_rules import first_step_rules

    sgd, adam, rms, ada = compared.runs
    w = sgd.first_step[0]
    assert w.name == "model.weight" and math.isclose(w.after, w.before - 0.05 * w.grad, rel_tol=1e-6)
    m = adam.first_step[0].state
    assert math.isclose(m["exp_avg"], 0.1 * w.grad, rel_tol=1e-6)
    assert math.isclose(m["exp_avg_sq"], 0.001 * w.grad**2, rel_tol=1e-5)
    assert math.isclose(rms.first_step[0].state["square_avg"], 0.01 * w.grad**2, rel_tol=1e-5)
    assert math.isclose(ada.first_step[0].state["sum"], w.grad**2, rel_tol=1e-5)
    text = " ".join(first_step_rules(adam)[0].lines)
    assert "m̂ = m/(1−β₁)" in text and "= 0.04251" in text  # w: −0.007487 − 0.05·(−1)
    assert "0.05·(−10) = 0.4925" in " ".join(first_step_rules(rms)[0].lines)


def test_surface_is_the_scripts_loss_with_its_least_squares_minimum(compared) -> None:
    s = compared.surface
    assert s.kind == "params" and s.axes == ["model.weight", "model.bias"] and s.matches_script
    # the minimum comes from the data (least squares), not from knowing the lecture
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([3.0, 6.0, 9.0])
    (w, b), *_ = np.linalg.lstsq(np.column_stack([x, np.ones(3)]), y, rcond=None)
    assert s.minimum["kind"] == "quadratic"
    assert math.isclose(s.minimum["x"], w, abs_tol=1e-9) and math.isclose(s.minimum["y"], b, abs_tol=1e-9)
    # contour values equal the loss evaluated directly with the parameters set to the grid point
    model, loss_fn = torch.nn.Linear(1, 1), torch.nn.MSELoss()
    xt, yt = torch.tensor([[1.0], [2.0], [3.0]]), torch.tensor([[3.0], [6.0], [9.0]])
    rng = np.random.default_rng(0)
    for j, i in [(0, 0), (len(s.y) - 1, len(s.x) - 1), *rng.integers(0, len(s.x), size=(8, 2)).tolist()]:
        with torch.no_grad():
            model.weight.fill_(s.x[i])
            model.bias.fill_(s.y[j])
            direct = loss_fn(model(xt), yt).item()
        assert math.isclose(s.loss[j][i], direct, rel_tol=1e-6), (i, j)
    # every path starts at the script's initial parameters and ends at its final ones
    for run, path in zip(compared.runs, s.paths):
        assert path[0] == [run.initial["model.weight"], run.initial["model.bias"]]
        assert path[-1] == [run.params["model.weight"][-1], run.params["model.bias"][-1]]
    # the grid covers the runs that did not diverge, and the minimum
    xs, ys = np.array(s.x), np.array(s.y)
    for path in s.paths:
        p = np.array(path)
        assert xs[0] <= p[:, 0].min() and p[:, 0].max() <= xs[-1]
        assert ys[0] <= p[:, 1].min() and p[:, 1].max() <= ys[-1]


def svg_ids(path: Path) -> list[str]:
    return [e.get("id") for e in ET.parse(path).iter() if e.get("id")]


def test_plots_one_path_per_run_minimum_marked_deterministic(swept, tmp_path) -> None:
    files = write_training(swept, tmp_path / "a")
    assert [f.name for f in files] == ["training.json", "training.svg", "training.png"]
    ids = svg_ids(tmp_path / "a" / "training.svg")
    for i in range(3):
        assert ids.count(f"path-{i}") == 1 and ids.count(f"loss-{i}") == 1
    assert "path-3" not in ids
    assert ids.count("minimum") == 1 and ids.count("start") == 1
    assert "diverged-2" in ids and "exit-2" in ids  # the diverging path leaves the surface, marked where
    assert "end-0" in ids and "end-2" not in ids
    text = (tmp_path / "a" / "training.svg").read_text(encoding="utf-8")
    assert f"diverged at step {swept.runs[2].diverged_at}" in text and "minimum (3, 0)" in text
    write_training(swept, tmp_path / "b")
    for name in ("training.svg", "training.png", "training.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    back = load_training(tmp_path / "a" / "training.json")
    assert back.runs[2].diverged_at == swept.runs[2].diverged_at
    assert any(v is not None and math.isnan(v) for v in back.runs[2].loss)  # "nan" in the file, NaN back


def test_slice_of_a_larger_model(tmp_path) -> None:
    rec = run_training(ROOT / "tests" / "scripts" / "mlp_adam.py", [], TrainingOptions(), progress=False)
    run = rec.runs[0]
    assert (
        run.optimizer == "Adam"
        and run.steps == 3
        and set(run.params) == {"model.0.weight", "model.0.bias", "model.2.weight", "model.2.bias"}
    )
    assert isinstance(run.params["model.0.weight"][0], list)  # 12 entries: stored whole
    s = rec.surface
    assert s is not None and s.kind in ("pca", "random") and s.matches_script
    assert len(s.paths[0]) == 4  # the start and every step
    write_training(rec, tmp_path)
    assert "path-0" in svg_ids(tmp_path / "training.svg")


def test_cli_compare_korean_html_slides_pptx(tmp_path) -> None:
    out = tmp_path / "out"
    r = run_cli(
        str(LECTURE),
        "--compare",
        "sgd,adam",
        "--lang",
        "ko",
        "--out",
        str(out),
        "--html",
        "--pptx",
        "--format",
        "svg",
    )
    assert r.returncode == 0, r.stderr
    names = {p.name for p in out.iterdir()}
    assert {"training.json", "training.svg", "training.png", "index.html", "slides.pdf", "slides.pptx"} <= names
    svg = (out / "training.svg").read_text(encoding="utf-8")
    assert "옵티마이저 비교" in svg and "스텝별 손실" in svg
    assert "옵티마이저 비교" in r.stdout
    page = (out / "index.html").read_text(encoding="utf-8")
    assert 'id="training"' in page and 'href="#training"' in page and "path-1" in page
    pngs = sorted((out / "slides").glob("page-*.png"))
    assert len(pngs) >= 5 and pngs[-1].name == f"page-{len(pngs):02d}.png"
    # --pptx: the training pages join the PowerPoint deck as well, picture for picture, their words as notes
    from pptx import Presentation

    slides = list(Presentation(str(out / "slides.pptx")).slides)
    assert len(slides) == len(pngs)
    for slide, png in zip(slides[-3:], pngs[-3:]):
        (picture,) = [s for s in slide.shapes if s.shape_type == 13]
        assert picture.image.blob == png.read_bytes()
    notes = [s.notes_slide.notes_text_frame.text for s in slides[-3:]]
    assert "옵티마이저 비교" in notes[0].splitlines()[0] and "SGD" in notes[1] and "Adam" in notes[2]
    data = json.loads((out / "training.json").read_text())
    assert data["schema"] == "explain-graph-training/1" and [r["optimizer"] for r in data["runs"]] == ["SGD", "Adam"]


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("--compare", "sgd,nope"), 2, "unknown optimizer 'nope'"),
        (("--lr", "0.1"), 2, "--lr applies to training runs"),
        (("--compare", "sgd", "--lr-sweep", "0.1"), 2, "separate experiments"),
        (("--lr-sweep", "0.1,x"), 2, "is not a number"),
    ],
)
def test_cli_bad_training_options(tmp_path, args, code, words) -> None:
    out = tmp_path / "out"
    r = run_cli(str(LECTURE), "--out", str(out), *args)
    assert r.returncode == code and words in r.stderr
    assert not out.exists()


def test_cli_script_without_optimizer_step(tmp_path) -> None:
    out = tmp_path / "out"
    r = run_cli(str(ROOT / "tests" / "scripts" / "two_losses.py"), "--train", "--out", str(out))
    assert r.returncode == 4 and "never called optimizer.step()" in r.stderr, r.stderr
    assert not out.exists()


def test_parse_options() -> None:
    choices = parse_compare("SGD, adam ,sgd:momentum=0.9:nesterov=true")
    assert [c.name for c in choices] == ["SGD", "Adam", "SGD"]
    assert dict(choices[2].kwargs) == {"momentum": 0.9, "nesterov": True}
    assert choices[2].label == "SGD (momentum=0.9, nesterov=True)"
    assert parse_lrs("0.01,0.1") == (0.01, 0.1)


def test_training_video_decoded(swept, tmp_path) -> None:
    import av

    from explainer.training.video import CLOSE_SECONDS, OPEN_SECONDS, RUN_SECONDS, render_training_video

    path = render_training_video(swept, tmp_path, "low", lang="ko")
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(stream)]
    assert frames[0].shape == (480, 854, 3)
    seconds = len(frames) / 15
    expected = OPEN_SECONDS + len(swept.runs) * (RUN_SECONDS + 0.4) + 0.6 + CLOSE_SECONDS
    assert abs(seconds - expected) < 1.0, (seconds, expected)
    # the paths grow: frames within a run differ, and each run adds its colour to the picture
    first_run = int(OPEN_SECONDS * 15)
    a, b = frames[first_run + 5], frames[first_run + 40]
    assert np.abs(a.astype(int) - b.astype(int)).sum() > 1000
    blue = np.array([0x00, 0x72, 0xB2])
    green = np.array([0x00, 0x9E, 0x73])

    def pixels(frame: np.ndarray, rgb: np.ndarray) -> int:
        return int((np.abs(frame.astype(int) - rgb).sum(axis=2) < 40).sum())

    assert pixels(frames[1], blue) < pixels(frames[-1], blue)
    assert pixels(frames[1], green) < 50 < pixels(frames[-1], green)  # the diverging run (lr 0.5), drawn last


def test_same_script_same_record(compared) -> None:
    again = run_training(
        LECTURE, [], TrainingOptions(compare=parse_compare("sgd,adam,rmsprop,adagrad"), jobs=1), progress=False
    )
    assert json.dumps(again.to_json()) == json.dumps(compared.to_json())  # whatever the order runs finish in
