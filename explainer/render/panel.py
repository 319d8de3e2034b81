"""Where the focus panel's cards go: a pure layout shared by the video and the slides.

`pack(cards, width, height)` places a step's cards (`explainer.focus.Card`) in a
rectangle, in rows, in their order, and picks the number of rows that lets the
numbers be largest. Sizes are measured with the fonts the renderers use
(`explainer.render.measure`): numbers in the monospaced font, centred in cells of one
width per column, titles and notes in the diagram's font. Everything is returned in
the rectangle's units with y growing downwards from its top-left corner; the video
and the slides only draw what is placed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..focus import Card
from .measure import text_width

#: Sizes relative to the numbers' font size (1 em).
CELL_PAD = 0.35  # left and right of the widest entry of a column
ROW_H = 1.4  # one grid row
TITLE_SIZE = 0.72  # title font size
TITLE_H = 1.35  # the title's line
NOTE_SIZE = 0.9
NOTE_H = 1.3
CARD_PAD = 0.45  # inside a card's frame
GAP = 0.6  # between cards
#: Most cards a panel holds.
MAX_CARDS = 9
#: A title may shrink to this fraction to fit its card before the card widens for it
#: (titles of one panel stay within this ratio of each other).
TITLE_SHRINK = 0.85


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass(frozen=True)
class PlacedCard:
    """One card in the panel: its frame, title line, note lines and cells (row by row)."""

    card: Card
    frame: Box
    title: Box
    title_size: float  # font size of the title (the numbers' is `Layout.em`)
    notes: tuple[Box, ...]
    cells: tuple[tuple[Box, ...], ...]


@dataclass(frozen=True)
class PanelLayout:
    em: float  # the numbers' font size
    cards: tuple[PlacedCard, ...]
    width: float  # the space used (at most the rectangle's)
    height: float


@dataclass(frozen=True)
class _Measure:
    cols: tuple[float, ...]  # column widths, em
    rows: int
    notes_w: float
    title_w: float  # at TITLE_SIZE
    w: float  # card width, em
    h: float  # card height, em


def _measure(card: Card) -> _Measure:
    ncols = max((len(r) for r in card.cells), default=0)
    cols = []
    for j in range(ncols):
        widest = max((text_width(r[j], 1.0, mono=True) for r in card.cells if j < len(r)), default=0.0)
        cols.append(widest + 2 * CELL_PAD)
    grid_w = sum(cols)
    notes_w = max((text_width(n, NOTE_SIZE) for n in card.notes), default=0.0)
    title_w = text_width(card.title, TITLE_SIZE, bold=True)
    body = max(grid_w, notes_w)
    w = max(body, title_w * TITLE_SHRINK) + 2 * CARD_PAD
    h = TITLE_H + len(card.notes) * NOTE_H + len(card.cells) * ROW_H + 2 * CARD_PAD
    return _Measure(tuple(cols), len(card.cells), notes_w, title_w, w, h)


def _splits(n: int) -> list[list[list[int]]]:
    """Every way to cut the cards 0..n-1, in order, into rows (2^(n-1) of them; panels hold a few cards)."""
    out = []
    for mask in range(1 << max(n - 1, 0)):
        rows, row = [], [0]
        for i in range(1, n):
            if mask >> (i - 1) & 1:
                rows.append(row)
                row = []
            row.append(i)
        out.append(rows + [row])
    return out


def pack(cards: Sequence[Card], width: float, height: float, max_em: float) -> PanelLayout:
    """Place ``cards`` in a ``width`` × ``height`` rectangle with the largest numbers possible (≤ ``max_em``).

    At most `MAX_CARDS` cards are placed (an op with more inputs shows its first ones).
    """
    cards = list(cards)[:MAX_CARDS]
    if not cards:
        return PanelLayout(max_em, (), 0.0, 0.0)
    ms = [_measure(c) for c in cards]
    em, rows = -1.0, [list(range(len(cards)))]
    for split in _splits(min(len(cards), MAX_CARDS)):
        row_w = max(sum(ms[i].w for i in r) + GAP * (len(r) - 1) for r in split)
        col_h = sum(max(ms[i].h for i in r) for r in split) + GAP * (len(split) - 1)
        size = min(width / row_w, height / col_h, max_em)
        if size > em * 1.001:
            em, rows = size, split
    placed: list[PlacedCard] = []
    y = 0.0
    used_w = 0.0
    for r in rows:
        x = 0.0
        row_h = max(ms[i].h for i in r) * em
        for i in r:
            placed.append(_place(cards[i], ms[i], x, y, em))
            x += (ms[i].w + GAP) * em
        used_w = max(used_w, x - GAP * em)
        y += row_h + GAP * em
    return PanelLayout(em, tuple(placed), used_w, y - GAP * em)


def _place(card: Card, m: _Measure, x: float, y: float, em: float) -> PlacedCard:
    inner_w = (m.w - 2 * CARD_PAD) * em
    left, top = x + CARD_PAD * em, y + CARD_PAD * em
    title_size = TITLE_SIZE * em * min(1.0, inner_w / max(m.title_w * em, 1e-9))
    title = Box(left, top, inner_w, TITLE_H * em)
    top += TITLE_H * em
    notes = []
    for _ in card.notes:
        notes.append(Box(left, top, inner_w, NOTE_H * em))
        top += NOTE_H * em
    cells = []
    for r in card.cells:
        cx, row = left, []  # grids start at the card's left edge, under the title
        for j in range(len(r)):
            cw = m.cols[j] * em
            row.append(Box(cx, top, cw, ROW_H * em))
            cx += cw
        cells.append(tuple(row))
        top += ROW_H * em
    return PlacedCard(card, Box(x, y, m.w * em, m.h * em), title, title_size, tuple(notes), tuple(cells))


__all__ = ["Box", "PanelLayout", "PlacedCard", "pack"]
