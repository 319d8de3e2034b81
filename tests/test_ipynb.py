"""Notebooks as input: a Colab-style .ipynb runs as its code cells, IPython's own syntax never runs."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from conftest import EXAMPLES, run_cli
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from explainer.errors import ScriptSyntaxError
from explainer.ipynb import read_notebook


def _write(path: Path, *cells: nbformat.NotebookNode) -> Path:
    nb = new_notebook()
    nb.cells = list(cells)
    nbformat.write(nb, path)
    return path


def test_ipython_lines_are_skipped_only_where_a_statement_starts(tmp_path: Path) -> None:
    nb = _write(
        tmp_path / "n.ipynb",
        new_markdown_cell("# 손실 함수"),
        new_code_cell(
            "!pip install torch -q\n"
            "x = 5\n"
            "odd = (x\n"
            "   % 2)\n"
            "s = '''\n"
            "!not a shell line: inside a string\n"
            "'''\n"
            "if x:\n"
            "    %time y = 1\n"
            "files = !ls\n"
            "a = x != 3\n"
            "x?\n"
        ),
        new_code_cell("%%bash\necho hi\n"),
        new_code_cell("%%time\nz = x + 1\n"),
    )
    code = read_notebook(nb)
    assert [name.rsplit(" ", 2)[-2:] for name, _ in code.cells] == [["[cell", "1]"], ["[cell", "3]"]]
    ns: dict = {}
    for name, src in code.cells:
        exec(compile(src, name, "exec"), ns)
    assert ns["odd"] == 1 and ns["s"] == "\n!not a shell line: inside a string\n" and ns["z"] == 6 and ns["a"] is True
    assert "y" not in ns and "files" not in ns
    assert code.skipped == [
        "cell 1: !pip install torch -q",
        "cell 1: %time y = 1",
        "cell 1: files = !ls",
        "cell 1: x?",
        "cell 2: %%bash … (1 more lines)",
        "cell 3: %%time",
    ]


@pytest.mark.parametrize("text", ["{}", '{"cells": null}', "not json", '{"cells": 3}'])
def test_what_is_not_a_notebook_is_a_one_line_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.ipynb"
    path.write_text(text)
    with pytest.raises(ScriptSyntaxError, match="is not a Jupyter notebook"):
        read_notebook(path)


def test_the_lecture_notebook_gives_the_lecture_scripts_numbers(tmp_path: Path) -> None:
    r_nb = run_cli("--example", "lecture-notebook", "--out", str(tmp_path / "nb"), "--format", "svg", "--lang", "ko")
    r_py = run_cli(str(EXAMPLES / "linear_regression.py"), "--out", str(tmp_path / "py"), "--format", "svg")
    assert r_nb.returncode == 0 and r_py.returncode == 0, (r_nb.stderr, r_py.stderr)
    g_nb, g_py = (json.loads((tmp_path / d / "graph.json").read_text()) for d in ("nb", "py"))

    def numbers(g: dict) -> dict:
        return {n["label"]: (n["value"], n.get("grad"), n.get("update")) for n in g["nodes"]}

    assert numbers(g_nb) == numbers(g_py)
    assert "CE Loss:" in r_nb.stdout  # the notebook's first example ran too
    out = " ".join(r_nb.stdout.split())
    assert "IPython 줄은 실행하지 않고 건너뛰었습니다" in out and "!pip install torch torchvision -q" in out


def test_a_failing_cell_is_named(tmp_path: Path) -> None:
    nb = _write(
        tmp_path / "lab.ipynb",
        new_code_cell("import torch\nx = torch.ones(2)"),
        new_code_cell("y = x * 2\nraise ValueError('bad cell')"),
    )
    r = run_cli(str(nb), "--out", str(tmp_path / "o"))
    assert r.returncode == 3
    assert 'lab.ipynb [cell 2]", line 2' in r.stderr and "raise ValueError('bad cell')" in r.stderr
    assert "it names the cell" in " ".join(r.stderr.split())
    assert not (tmp_path / "o").exists()


def test_korean_without_a_cjk_font_fails_before_the_script(tmp_path: Path) -> None:
    fonts = tmp_path / "fonts.conf"  # a fontconfig that knows no fonts at all
    fonts.write_text(
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
        f"<cachedir>{tmp_path / 'cache'}</cachedir></fontconfig>"
    )
    import os
    import subprocess

    from conftest import CLI

    marker = tmp_path / "ran"
    script = tmp_path / "s.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\n" + (EXAMPLES / "linear_regression.py").read_text())
    r = subprocess.run(
        [*CLI, str(script), "--out", str(tmp_path / "o"), "--lang", "ko"],
        capture_output=True,
        text=True,
        env=dict(os.environ, FONTCONFIG_FILE=str(fonts)),
        timeout=120,
    )
    assert r.returncode == 5 and "fonts-noto-cjk" in r.stderr and not marker.exists(), r.stderr
