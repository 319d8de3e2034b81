"""Layout stage: positions from Graphviz's ``dot``, shared by every renderer.

`run_dot` lays the DOT source out once and, in the same process call, writes any
image formats asked for (the static diagram). `lay_out` lays out several graphs in
one ``dot`` process and returns each one's positions (`Layout`) with its SVG, both
from the very same layout: the frame that the video, the slides and the page draw
(`explainer.story`) comes from one such call. `layouts_of` gives only the positions of a few
candidates (the diagram both ways, to choose its direction).
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .tools import check_file, find_tool, run_tool, undate_pdf

POINTS_PER_INCH = 72.0
_CLUSTER_G = re.compile(
    r'<g id="clust\d+" class="cluster">(?P<rest>\s*<title>(?P<name>[^<]*)</title>.*?</g>)', re.DOTALL
)


@dataclass(frozen=True)
class Box:
    """Centre ``(x, y)`` and size in points; y grows upwards (Graphviz's convention)."""

    x: float
    y: float
    width: float
    height: float


@dataclass
class Layout:
    """Positions of nodes, edge splines and cluster boxes, in points."""

    width: float
    height: float
    nodes: dict[str, Box] = field(default_factory=dict)
    edges: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)
    clusters: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class LaidOut:
    """One graph laid out by `lay_out`: its positions and dot's SVG of the same layout."""

    layout: Layout
    svg: str


def run_dot(
    source: str, outputs: dict[str, Path] | None = None, timeout: float = 600.0, positions: bool = True
) -> Layout | None:
    """Lay out ``source`` once; write ``outputs`` ({format: path}) from the same layout.

    Returns the positions, unless ``positions`` is False (only files wanted: writing and
    reading them back costs a sixth of dot's time on a large graph); then None.
    Raises `GraphvizError` with dot's own message when it fails, and when it exits 0
    without writing a complete file.
    """
    outputs = outputs or {}
    with tempfile.TemporaryDirectory(prefix="explain-graph-") as tmp:
        layout_path = Path(tmp) / "layout.json"
        cmd = [find_tool("dot")] + (["-Tjson0", f"-o{layout_path}"] if positions else [])
        for fmt, path in outputs.items():
            cmd += [f"-T{fmt}", f"-o{path}"]
        writes = next(iter(outputs.values())).parent if outputs else None
        run_tool(
            cmd,
            "dot",
            stdin=source.encode("utf-8"),
            timeout=timeout,
            writes=writes,
            timeout_hint=" to lay out this graph: fold it with --depth to draw fewer nodes",
        )
        for fmt, path in outputs.items():
            check_file(path, fmt, "dot")
            if fmt == "pdf":
                undate_pdf(path)
        if not positions:
            return None
        check_file(layout_path, "json", "dot")
        return parse_layout(json.loads(layout_path.read_text(encoding="utf-8")))


def lay_out(sources: list[str], timeout: float = 600.0) -> list[LaidOut]:
    """Lay out every DOT source in ``sources`` in ONE ``dot`` process; positions and SVG of each.

    Raises `GraphvizError` when dot fails or leaves a file incomplete.
    """
    with tempfile.TemporaryDirectory(prefix="explain-graph-") as tmp:
        each = _dot_each(sources, ("svg",), Path(tmp), timeout)
        return [LaidOut(layout, canonical_svg(files["svg"].read_text(encoding="utf-8"))) for layout, files in each]


def layouts_of(sources: list[str], timeout: float = 600.0) -> list[Layout]:
    """Positions of every DOT source in ``sources``, from ONE ``dot`` process (no image files)."""
    with tempfile.TemporaryDirectory(prefix="explain-graph-") as tmp:
        return [layout for layout, _ in _dot_each(sources, (), Path(tmp), timeout)]


def canonical_svg(text: str) -> str:
    """``dot``'s SVG with its cluster groups in the order the DOT source declared them.

    Graphviz (2.43) emits the clusters of every graph after the first of one process in an
    order that varies from run to run (positions do not): sorted here by their names,
    numbered in declaration order by `explainer.render.graphviz`, so that outer frames are
    painted before inner ones and the file is the same bytes on every run.
    """
    blocks = list(_CLUSTER_G.finditer(text))
    if len(blocks) < 2:
        return text
    ordered = sorted(blocks, key=lambda m: [int(x) for x in re.findall(r"\d+", m.group("name"))])
    out, pos = [], 0
    for k, (slot, block) in enumerate(zip(blocks, ordered), 1):
        out += [text[pos : slot.start()], f'<g id="clust{k}" class="cluster">', block.group("rest")]
        pos = slot.end()
    return "".join(out) + text[pos:]


def _dot_each(
    sources: list[str], formats: tuple[str, ...], tmp: Path, timeout: float
) -> list[tuple[Layout, dict[str, Path]]]:
    """Run one ``dot -O`` over ``sources``: each graph's layout and its files in ``tmp``.

    ``dot -O`` names its outputs after the input file, one set per graph (``g.gv.json0``,
    ``g.gv.svg``, then ``g.gv.2.json0`` ...), so each graph's files are told apart without
    parsing concatenated output.
    """
    if not sources:
        return []
    src = tmp / "g.gv"
    src.write_text("".join(sources), encoding="utf-8")
    run_tool(
        [find_tool("dot"), "-Tjson0", *(f"-T{fmt}" for fmt in formats), "-O", str(src)],
        "dot",
        timeout=timeout,
        writes=tmp,
        timeout_hint=" to lay out this graph: fold it with --depth to draw fewer nodes",
    )
    out = []
    for i in range(len(sources)):
        stem = src.name if i == 0 else f"{src.name}.{i + 1}"
        files = {fmt: tmp / f"{stem}.{fmt}" for fmt in formats}
        json_path = tmp / f"{stem}.json0"
        for fmt, path in [("json", json_path), *files.items()]:
            check_file(path, fmt, "dot")
        if "pdf" in files:
            undate_pdf(files["pdf"])
        out.append((parse_layout(json.loads(json_path.read_text(encoding="utf-8"))), files))
    return out


def parse_layout(data: dict) -> Layout:
    """Read ``dot -Tjson0`` output into a `Layout`."""
    x0, y0, x1, y1 = (float(v) for v in data.get("bb", "0,0,0,0").split(","))
    layout = Layout(width=x1 - x0, height=y1 - y0)
    by_gvid: dict[int, str] = {}
    for obj in data.get("objects", []):
        name = obj.get("name", "")
        if "nodes" in obj or name.startswith("cluster"):
            if "bb" in obj:
                bx0, by0, bx1, by1 = (float(v) for v in obj["bb"].split(","))
                layout.clusters[name] = (bx0, by0, bx1, by1)
            continue
        by_gvid[obj["_gvid"]] = name
        if "pos" in obj:
            px, py = (float(v) for v in obj["pos"].split(","))
            layout.nodes[name] = Box(
                px, py, float(obj.get("width", 0)) * POINTS_PER_INCH, float(obj.get("height", 0)) * POINTS_PER_INCH
            )
    for edge in data.get("edges", []):
        tail, head = by_gvid.get(edge["tail"]), by_gvid.get(edge["head"])
        if tail is None or head is None or "pos" not in edge:
            continue
        points = []
        for part in edge["pos"].split():
            if part.startswith(("e,", "s,")):
                continue
            px, py = part.split(",")
            points.append((float(px), float(py)))
        layout.edges[(tail, head)] = points
    return layout
