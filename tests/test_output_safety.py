"""The output-folder contract: a user's files are never replaced or removed unless --force names them.

Every case goes through the command line in a temporary folder, with real ``dot``,
``rsvg-convert`` and ``pdftoppm``; where a tool must misbehave, a small stand-in
script on ``PATH`` plays it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CLI, EXAMPLES, lecture_graph, run_cli, visible
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explainer import output
from explainer.errors import OutputConflictError
from explainer.output import (
    MANIFEST,
    OUTPUT_FILES,
    OutputFolder,
    SignalAfterCommit,
    open_output,
    planned_outputs,
    switch,
)
from explainer.pipeline import write_outputs
from explainer.render.graphviz import DiagramOptions

LECTURE = EXAMPLES / "linear_regression.py"
ALL_NAMES = sorted(OUTPUT_FILES) + [
    "slides/page-01.png",
    "slides/page-02.png",
    "slides/week01.pdf",
    "slides/week02.pdf",
]


def lecture_with_marker(tmp_path: Path) -> tuple[Path, Path]:
    """The lecture's script, which also leaves a marker file: did the script run at all?"""
    marker = tmp_path / "script-ran"
    script = tmp_path / "lecture.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\n" + LECTURE.read_text(encoding="utf-8"), encoding="utf-8")
    return script, marker


def plant(folder: Path, names: list[str], seed: int = 0) -> dict[str, bytes]:
    rng = random.Random(seed)
    planted = {}
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = f"the lecturer's own {name}\n".encode() + rng.randbytes(rng.randrange(0, 64))
        path.write_bytes(data)
        planted[name] = data
    return planted


def unchanged(folder: Path, planted: dict[str, bytes]) -> list[str]:
    return [n for n, data in planted.items() if not (folder / n).is_file() or (folder / n).read_bytes() != data]


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line_error(r: subprocess.CompletedProcess, code: int, *fragments: str) -> str:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    err = " ".join(r.stderr.split())
    assert err.startswith("error:") and err.count("error:") == 1, r.stderr
    for f in fragments:
        assert f in err, (f, r.stderr)
    assert "Traceback" not in r.stderr
    return err


def hidden_leftovers(folder: Path) -> list[str]:
    return [
        p.name
        for p in folder.iterdir()
        if p.name.startswith(".explain-graph-") and p.name != ".explain-graph.lock" or p.name == output.JOURNAL
    ]


# --------------------------------------------------------------------------- the user's files


def test_user_files_with_output_names_stop_the_run_before_the_script(tmp_path: Path) -> None:
    script, marker = lecture_with_marker(tmp_path)
    course = tmp_path / "course"
    planted = plant(course, ALL_NAMES)
    r = run_cli(str(script), "--out", str(course), "--slides", "--html", "--run-to-end")
    one_line_error(r, 2, "did not write", "--force", "another --out")
    assert not marker.exists(), "the script ran although the folder was not usable"
    assert unchanged(course, planted) == []
    assert sorted(p.name for p in course.iterdir()) == sorted(
        {n.split("/")[0] for n in ALL_NAMES} | {".explain-graph.lock"}
    )


def test_empty_out_like_an_unset_variable_is_a_bad_option(tmp_path: Path) -> None:
    script, marker = lecture_with_marker(tmp_path)
    planted = plant(tmp_path, ["index.html", "graph.svg"])
    r = run_cli(str(script), "--out", "", cwd=tmp_path)
    one_line_error(r, 2, "--out is empty")
    assert not marker.exists() and unchanged(tmp_path, planted) == []


def test_force_replaces_just_those_names(tmp_path: Path) -> None:
    course = tmp_path / "course"
    planted = plant(course, ["graph.svg", "index.html", "slides/week01.pdf", "slides/week02.pdf", "notes.md"])
    r = run_cli(str(LECTURE), "--out", str(course), "--slides", "--html", "--force")
    assert r.returncode == 0, r.stderr
    assert unchanged(course, planted) == ["graph.svg", "index.html"]
    assert (course / "graph.svg").read_bytes().rstrip().endswith(b"</svg>")
    # The lecturer's decks stay beside the pages, also when a later run makes no slides.
    r = run_cli(str(LECTURE), "--out", str(course), "--format", "svg")
    assert r.returncode == 0, r.stderr
    assert unchanged(course, {k: v for k, v in planted.items() if k.startswith(("slides/", "notes"))}) == []
    assert sorted(p.name for p in (course / "slides").iterdir()) == ["week01.pdf", "week02.pdf"]
    assert visible(course) == ["graph.json", "graph.svg", "notes.md", "slides"]


def test_a_rerun_replaces_its_own_files_but_not_ones_the_user_edited(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_cli(str(LECTURE), "--out", str(out), "--format", "svg", "--html").returncode == 0
    assert run_cli(str(LECTURE), "--out", str(out), "--format", "svg,png").returncode == 0
    assert visible(out) == ["graph.json", "graph.png", "graph.svg"]  # its own old page removed
    manifest = json.loads((out / MANIFEST).read_text())
    assert sorted(manifest["files"]) == ["graph.json", "graph.png", "graph.svg"]
    (out / "graph.svg").write_text("<svg>my annotated version</svg>")  # the lecturer edits an output
    r = run_cli(str(LECTURE), "--out", str(out), "--format", "svg")
    one_line_error(r, 2, "graph.svg", "changed since")
    assert (out / "graph.svg").read_text() == "<svg>my annotated version</svg>"
    # An edited output the run no longer makes is the user's now: left alone, not removed.
    r = run_cli(str(LECTURE), "--out", str(out), "--format", "pdf")
    assert r.returncode == 0, r.stderr
    assert (out / "graph.svg").read_text() == "<svg>my annotated version</svg>"
    assert "graph.png" not in visible(out)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    names=st.lists(st.sampled_from(ALL_NAMES), unique=True, max_size=6),
    forced=st.booleans(),
    slides=st.booleans(),
    html=st.booleans(),
    seed=st.integers(0, 100),
)
def test_planted_files_never_change_unless_forced(
    tmp_path_factory: pytest.TempPathFactory, names: list[str], forced: bool, slides: bool, html: bool, seed: int
) -> None:
    folder = tmp_path_factory.mktemp("planted")
    planted = plant(folder, names, seed)
    formats = ("svg",)
    would_write = {
        n
        for n in names
        if n in planned_outputs(formats, slides=slides, html=html) or (slides and n.startswith("slides/page-"))
    }
    try:
        write_outputs(lecture_graph(), folder, DiagramOptions(), formats, slides=slides, html=html, force=forced)
        wrote = True
    except OutputConflictError:
        wrote = False
    changed = set(unchanged(folder, planted))
    if forced:
        assert wrote and changed <= would_write
    else:
        assert changed == set() and wrote == (not would_write)
    assert hidden_leftovers(folder) == []


# --------------------------------------------------------------------------- the folder itself


def test_out_below_a_file_fails_before_the_script(tmp_path: Path) -> None:
    script, marker = lecture_with_marker(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    r = run_cli(str(script), "--out", str(tmp_path / "notes.txt" / "out"))
    one_line_error(r, 2, "notes.txt, which is a file")
    r = run_cli(str(script), "--out", str(tmp_path / "notes.txt"))
    one_line_error(r, 2, "is a file, not a folder")
    assert not marker.exists() and (tmp_path / "notes.txt").read_text() == "mine"


def test_a_folder_that_cannot_be_created_fails_before_the_script(tmp_path: Path) -> None:
    script, marker = lecture_with_marker(tmp_path)
    r = run_cli(str(script), "--out", "/proc/explain-graph-out")
    one_line_error(r, 2, "cannot create the output folder /proc/explain-graph-out")
    assert not marker.exists()


def test_a_failed_run_leaves_no_folder_it_made(tmp_path: Path) -> None:
    script = tmp_path / "bad.py"
    script.write_text("raise ValueError('broken')\n")
    r = run_cli(str(script), "--out", str(tmp_path / "a" / "b" / "out"))
    assert r.returncode == 3
    assert not (tmp_path / "a").exists()


def _mount(target: Path, *opts: str) -> bool:
    target.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", *opts, "tmpfs", str(target)], capture_output=True).returncode == 0


def _umount(target: Path) -> None:
    subprocess.run(["umount", "-l", str(target)], capture_output=True)


@pytest.fixture
def mounts(tmp_path: Path):  # noqa: ANN201
    made: list[Path] = []

    def mount(target: Path, *opts: str) -> Path:
        if not _mount(target, *opts):
            pytest.skip("mounting a tmpfs needs root (or CAP_SYS_ADMIN): not available here")
        made.append(target)
        return target

    yield mount
    for t in reversed(made):
        _umount(t)


def test_a_read_only_folder_fails_before_the_script(tmp_path: Path, mounts) -> None:  # noqa: ANN001
    script, marker = lecture_with_marker(tmp_path)
    ro = mounts(tmp_path / "ro", "-o", "ro,size=1m")
    r = run_cli(str(script), "--out", str(ro))
    one_line_error(r, 2, "cannot write into", "Read-only file system")
    assert not marker.exists()


def test_a_full_disk_is_named_plainly_and_keeps_the_earlier_files(tmp_path: Path, mounts) -> None:  # noqa: ANN001
    disk = mounts(tmp_path / "small", "-o", "size=150k")
    out = disk / "out"
    assert run_cli(str(LECTURE), "--out", str(out), "--format", "svg").returncode == 0
    before = files_of(out)
    r = run_cli(str(LECTURE), "--out", str(out), "--format", "svg,png,pdf", "--html")
    one_line_error(r, 1, "no space left on the device", "keeps its earlier files")
    assert files_of(out) == before and hidden_leftovers(out) == []


def test_other_filesystems_symlinks_and_a_read_only_parent(tmp_path: Path, mounts) -> None:  # noqa: ANN001
    # The output lies on another filesystem than the working folder, behind a symlink.
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        target = shm / f"explain-graph-test-{os.getpid()}"
        link = tmp_path / "link"
        link.symlink_to(target, target_is_directory=True)
        target.mkdir()
        try:
            r = run_cli(str(LECTURE), "--out", str(link), "--format", "svg")
            assert r.returncode == 0, r.stderr
            assert visible(target) == ["graph.json", "graph.svg"] and link.is_symlink()
        finally:
            subprocess.run(["rm", "-rf", str(target)])
    # A mount point whose parent is read-only: staging never touches the parent.
    parent = mounts(tmp_path / "parent", "-o", "size=1m")
    (parent / "out").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(parent)], check=True)
    inner = mounts(parent / "out", "-o", "size=4m")
    r = run_cli(str(LECTURE), "--out", str(inner), "--format", "svg")
    assert r.returncode == 0, r.stderr
    assert visible(inner) == ["graph.json", "graph.svg"]


# --------------------------------------------------------------------------- external tools


def fake_tool(folder: Path, name: str, body: str) -> dict[str, str]:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return {"PATH": f"{folder}:{os.environ['PATH']}"}


def run_with(env: dict[str, str], *args: str, **kw) -> subprocess.CompletedProcess:  # noqa: ANN003
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS="1", **env),
        **kw,
    )


@pytest.mark.parametrize("tool, args", [("dot", ()), ("rsvg-convert", ("--slides",)), ("pdftoppm", ("--slides",))])
def test_a_tool_that_succeeds_without_writing_fails_the_run(tmp_path: Path, tool: str, args: tuple[str, ...]) -> None:
    out = tmp_path / "out"
    assert run_cli(str(LECTURE), "--out", str(out), "--slides").returncode == 0
    before = files_of(out)
    env = fake_tool(tmp_path / "bin", tool, "exit 0")
    r = run_with(env, str(LECTURE), "--out", str(out), *args)
    one_line_error(r, 5, tool, "reported success but wrote")
    assert files_of(out) == before and hidden_leftovers(out) == []


def test_a_truncated_file_is_caught(tmp_path: Path) -> None:
    # A dot that writes half of each file it was asked for (as a full disk would).
    real = subprocess.run(["sh", "-c", "command -v dot"], capture_output=True, text=True).stdout.strip()
    body = (
        f'{real} "$@" || exit $?\n'
        'for a in "$@"; do case "$a" in -o*) f="${a#-o}"; head -c 200 "$f" > "$f.x" && mv "$f.x" "$f";; esac; done'
    )
    env = fake_tool(tmp_path / "bin", "dot", body)
    r = run_with(env, str(LECTURE), "--out", str(tmp_path / "out"), "--format", "png")
    # (the first file it truncates may be a layout: the diagram tries both directions first)
    one_line_error(r, 5, "reported success but wrote an incomplete")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- signals


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_run_outlives_its_test():  # noqa: ANN202
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:  # a failed assertion left it running: stop it and its children
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _start(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [*CLI, *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1", **env),
        start_new_session=True,
    )
    _STARTED.append(proc)
    return proc


def _slow_dot(tmp_path: Path) -> tuple[dict[str, str], Path]:
    pid_file = tmp_path / "dot.pid"
    env = fake_tool(tmp_path / "bin", "dot", f"echo $$ > {pid_file}\nexec sleep 120")
    return env, pid_file


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> int:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("the run never reached dot")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too, only not yet collected by its parent.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


@pytest.mark.parametrize(
    "sig, code, times", [(signal.SIGTERM, 143, 1), (signal.SIGINT, 130, 1), (signal.SIGINT, 130, 2)]
)
def test_signals_end_the_run_cleanly(tmp_path: Path, sig: int, code: int, times: int) -> None:
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    assert run_cli(str(LECTURE), "--out", str(out), "--format", "svg").returncode == 0
    before = files_of(out)
    env, pid_file = _slow_dot(tmp_path)
    proc = _start(tmp_path, dict(env, TMPDIR=str(tmp)), str(LECTURE), "--out", str(out), "--format", "svg")
    dot = _wait_for(pid_file, proc)
    for _ in range(times):
        proc.send_signal(sig)
        time.sleep(0.05)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Aborted" not in err and "Traceback" not in err
    time.sleep(0.2)
    assert not _alive(dot), "dot was left running"
    assert files_of(out) == before and hidden_leftovers(out) == []
    assert [p.name for p in tmp.iterdir() if "explain-graph" in p.name] == []


def test_ctrl_c_works_although_the_script_caught_sigint(tmp_path: Path) -> None:
    script = tmp_path / "stubborn.py"
    script.write_text(
        "import signal\nsignal.signal(signal.SIGINT, lambda *a: print('ignored'))\n"
        + LECTURE.read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    env, pid_file = _slow_dot(tmp_path)
    proc = _start(tmp_path, env, str(script), "--out", str(tmp_path / "out"), "--format", "svg")
    _wait_for(pid_file, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert not (tmp_path / "out").exists()


def test_two_runs_into_one_folder_never_mix(tmp_path: Path) -> None:
    started = tmp_path / "started"
    slow = tmp_path / "slow.py"
    slow.write_text(
        f"import time\nopen({str(started)!r}, 'w').write('1')\ntime.sleep(8)\n" + LECTURE.read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    first = _start(tmp_path, {}, str(slow), "--out", str(out), "--format", "svg", "--html")
    _wait_for(started, first)  # the first run holds the folder while its script runs
    second = _start(tmp_path, {}, str(LECTURE), "--out", str(out), "--format", "png", "--theme", "dark")
    _, err1 = first.communicate(timeout=120)
    _, err2 = second.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, (err1, err2)
    assert "waiting for it to finish" in " ".join(err2.split())
    # The second run came last: only its files, each the one its manifest recorded.
    assert visible(out) == ["graph.json", "graph.png"]
    manifest = json.loads((out / MANIFEST).read_text())["files"]
    assert {n: output.file_digest(out / n) for n in manifest} == manifest


# --------------------------------------------------------------------------- interrupted switches


class Killed(BaseException):
    """The process dying at this point: nothing after it runs (no rollback)."""


def _moves_failing_at(monkeypatch: pytest.MonkeyPatch, k: int, error: BaseException) -> list[Path]:
    real, calls = switch.move, []

    def move(src: Path, dst: Path) -> None:
        calls.append(dst)
        if len(calls) == k:
            raise error
        real(src, dst)

    monkeypatch.setattr(switch, "move", move)
    return calls


@pytest.mark.parametrize("theme", ["dark", "light"])  # light: the same bytes as the run before
@pytest.mark.parametrize("k", [1, 3, 4, 6])  # of 6 moves: 3 aside, 3 in
def test_a_switch_that_fails_part_way_restores_the_previous_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, theme: str, k: int
) -> None:
    out = tmp_path / "out"
    write_outputs(lecture_graph(), out, DiagramOptions(), ("svg", "png"))
    before = files_of(out)
    _moves_failing_at(monkeypatch, k, OSError(28, "No space left on device"))
    with pytest.raises(OSError):
        write_outputs(lecture_graph(), out, DiagramOptions(theme=theme), ("svg", "pdf"))
    assert files_of(out) == before and hidden_leftovers(out) == []


@pytest.mark.parametrize("theme", ["dark", "light"])
@pytest.mark.parametrize("k", [2, 4, 6])
def test_the_next_run_repairs_a_run_killed_during_its_switch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, theme: str, k: int
) -> None:
    out = tmp_path / "out"
    write_outputs(lecture_graph(), out, DiagramOptions(), ("svg", "png"))
    before = files_of(out)
    _moves_failing_at(monkeypatch, k, Killed())
    monkeypatch.setattr(switch, "roll_back", lambda *a: None)
    with pytest.raises(Killed):
        write_outputs(lecture_graph(), out, DiagramOptions(theme=theme), ("svg", "pdf"))
    (out / ".explain-graph-staging-999-deadbeef").mkdir()  # and a staging folder of another killed run
    monkeypatch.undo()
    with open_output(out, planned_outputs(("svg",))):
        assert files_of(out) == before  # rolled back before anything else happens
    assert hidden_leftovers(out) == []


def test_a_rollback_killed_part_way_is_finished_by_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    write_outputs(lecture_graph(), out, DiagramOptions(), ("svg", "png"))
    before = files_of(out)
    # The switch fails at its 5th move; the rollback dies after undoing one move.
    real, calls = switch.move, []

    def move(src: Path, dst: Path) -> None:
        calls.append(dst)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        if len(calls) == 7:
            raise Killed
        real(src, dst)

    monkeypatch.setattr(switch, "move", move)
    with pytest.raises(Killed):
        write_outputs(lecture_graph(), out, DiagramOptions(), ("svg", "pdf"))
    monkeypatch.undo()
    for _ in range(2):  # and once more: a finished recovery has nothing left to do
        with open_output(out, planned_outputs(("svg",))):
            assert files_of(out) == before
    assert hidden_leftovers(out) == []


def test_a_journal_the_tool_did_not_write_is_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    planted = plant(out, ["index.html", "None/notes.md"])
    for journal in (
        '{"place": ["graph.svg"]}',
        '{"backup": "", "staging": "", "moves": [], "done": 0, "manifest_sha256": ""}',
        '{"backup": "None", "staging": "None", "moves": [["place", "index.html"]], "done": 1, "manifest_sha256": "x"}',
    ):
        (out / output.JOURNAL).write_text(journal)
        r = run_cli(str(LECTURE), "--out", str(out), "--format", "svg")
        one_line_error(r, 2, "is not a journal explain-graph wrote", "touched nothing")
        assert unchanged(out, planted) == [] and (out / output.JOURNAL).read_text() == journal


def test_a_symlinked_slides_folder_is_never_emptied(tmp_path: Path) -> None:
    out, course = tmp_path / "out", tmp_path / "course"
    assert run_cli(str(LECTURE), "--out", str(out), "--slides", "--format", "svg").returncode == 0
    (out / "slides").rename(course)  # the lecturer keeps the pages in the course folder, linked back
    (out / "slides").symlink_to(course, target_is_directory=True)
    pages = files_of(course)
    r = run_cli(str(LECTURE), "--out", str(out), "--format", "svg")
    assert r.returncode == 0, r.stderr
    assert files_of(course) == pages and (out / "slides").is_symlink()


def test_a_file_saved_during_the_run_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    write_outputs(lecture_graph(), out, DiagramOptions(), ("svg", "png"))
    before = files_of(out)
    real, checks = OutputFolder.check_conflicts, []

    def then_the_user_saves(self: OutputFolder, planned: frozenset[str]) -> None:
        real(self, planned)
        checks.append(planned)
        if len(checks) == 2:  # the check right before the switch passed; now the user saves
            (self.path / "graph.png").write_bytes(b"my edited picture")

    monkeypatch.setattr(OutputFolder, "check_conflicts", then_the_user_saves)
    with pytest.raises(OutputConflictError, match="changed while explain-graph ran"):
        write_outputs(lecture_graph(), out, DiagramOptions(theme="dark"), ("svg", "png"))
    assert (out / "graph.png").read_bytes() == b"my edited picture"
    assert (out / "graph.svg").read_bytes() == before["graph.svg"] and hidden_leftovers(out) == []


def test_ctrl_c_during_the_switch_is_reported_after_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    real, calls = switch.move, []

    def move(src: Path, dst: Path) -> None:
        calls.append(dst)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # held until the switch is done
        real(src, dst)

    monkeypatch.setattr(switch, "move", move)
    with pytest.raises(SignalAfterCommit) as exc:
        write_outputs(lecture_graph(), out, DiagramOptions(), ("svg",))
    assert exc.value.signum == signal.SIGINT
    assert visible(out) == ["graph.json", "graph.svg"]  # the switch completed
    manifest = json.loads((out / MANIFEST).read_text())["files"]
    assert {n: output.file_digest(out / n) for n in manifest} == manifest


def test_a_broken_manifest_is_no_crash(tmp_path: Path) -> None:
    out = tmp_path / "out"
    planted = plant(out, ["graph.svg"])
    (out / MANIFEST).write_text('{"files": ["graph.svg"]}')
    r = run_cli(str(LECTURE), "--out", str(out), "--format", "svg")
    one_line_error(r, 2, "graph.svg", "did not write")
    assert unchanged(out, planted) == []


def test_page_names_in_any_letter_case_are_the_users(tmp_path: Path) -> None:
    out = tmp_path / "out"
    planted = plant(out, ["slides/Page-01.png"])
    r = run_cli(str(LECTURE), "--out", str(out), "--slides", "--format", "svg")
    one_line_error(r, 2, "slides/Page-01.png")
    assert unchanged(out, planted) == []


# --------------------------------------------------------------------------- how the script ends


def test_os_exit_before_the_step_is_a_clear_failure(tmp_path: Path) -> None:
    script = tmp_path / "quits.py"
    script.write_text("import os\nimport torch\nx = torch.ones(2, requires_grad=True)\nos._exit(0)\n")
    r = run_cli(str(script), "--out", str(tmp_path / "out"))
    one_line_error(r, 4, "os._exit(0) at quits.py:4", "before the traced step")
    assert not (tmp_path / "out").exists()


def test_an_exit_after_the_traced_step_is_reported(tmp_path: Path) -> None:
    for how in ("sys.exit(3)", "os._exit(3)"):
        script = tmp_path / "ends.py"
        script.write_text("import os, sys\n" + LECTURE.read_text(encoding="utf-8") + how + "\n", encoding="utf-8")
        r = run_cli(str(script), "--out", str(tmp_path / "out"), "--run-to-end", "--format", "svg")
        assert r.returncode == 0, r.stderr
        assert f"ends.py ended with {how.split('(')[0]}(3)" in " ".join(r.stdout.split())
        assert visible(tmp_path / "out") == ["graph.json", "graph.svg", "loss_curve.png"]


def test_bad_seeds_closed_stdout(tmp_path: Path) -> None:
    r = run_cli(str(LECTURE), "--seed", "-5", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "--seed" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(
        [*CLI, str(LECTURE), "--out", str(tmp_path / "o")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.close(1),
    )
    one_line_error(r, 2, "standard output is closed")
    assert not (tmp_path / "o").exists()


def test_warnings_point_at_the_users_line(tmp_path: Path) -> None:
    script = tmp_path / "warns.py"
    script.write_text(
        "import torch\nx = torch.ones(2)\nw = torch.tensor(torch.ones(2), requires_grad=True)\n"
        "loss = (w * x).sum()\nloss.backward()\n"
    )
    r = run_cli(str(script), "--out", str(tmp_path / "o"), "--format", "svg")
    assert r.returncode == 0, r.stderr
    assert f"{script}:3: UserWarning: To copy construct" in r.stderr, r.stderr
    assert "explainer" not in r.stderr


# --------------------------------------------------------------------------- byte-identical outputs


def test_graph_pdf_is_the_same_bytes_every_run(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_outputs(lecture_graph(), tmp_path / name, DiagramOptions(), ("pdf",))
        time.sleep(1.1)  # the creation date would differ by a second
    assert (tmp_path / "a" / "graph.pdf").read_bytes() == (tmp_path / "b" / "graph.pdf").read_bytes()


def test_page_script_survives_a_name_that_opens_a_comment(tmp_path: Path) -> None:
    from explainer.render.html import build_html
    from explainer.story import build_story

    g = lecture_graph()
    first = next(iter(g.nodes))
    g.nodes[first]["label"] = "x<!--<script>"
    page = build_html(build_story(g, DiagramOptions()))
    data = page.split('<script type="application/json" id="eg-data">')[1].split("</script>")[0]
    assert "<" not in data
    assert json.loads(data)["nodes"][first]["label"] == "x<!--<script>"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
