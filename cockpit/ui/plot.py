"""A small line plot in braille characters: several series, one colour each, with axis labels.

Each character cell holds 2×4 dots, so a 60×12 plot has 120×48 points, enough to see a
best-so-far curve step down run by run. The output is plain (text, series index) segments, so
the plot is testable without a screen and any widget can colour it. Metrics that span orders of
magnitude (a loss from 0.2 to 0.003) are drawn on a log scale, or the interesting end would be
one flat line at the bottom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

BRAILLE_BASE = 0x2800
#: The dot bit for (row, column) inside a cell.
_DOT_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
LOG_SPREAD = 50.0  # positive values spanning this ratio or more are plotted on a log scale
LABEL_WIDTH = 10
AXIS = -1  # the "series" of labels and axis lines

Segment = tuple[str, int]  # (text, series index or AXIS)
Series = Sequence[float | None]


class BrailleCanvas:
    """Character cells of braille dots; a cell takes the colour of the last series drawn in it."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self._bits = [[0] * width for _ in range(height)]
        self._owner = [[AXIS] * width for _ in range(height)]

    def dot(self, x: int, y: int, series: int) -> None:
        if 0 <= x < self.width * 2 and 0 <= y < self.height * 4:
            row, col = y // 4, x // 2
            self._bits[row][col] |= _DOT_BITS[y % 4][x % 2]
            self._owner[row][col] = series

    def line(self, x0: int, y0: int, x1: int, y1: int, series: int) -> None:
        """Bresenham's line, both ends included."""
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        error = dx + dy
        while True:
            self.dot(x0, y0, series)
            if x0 == x1 and y0 == y1:
                return
            double = 2 * error
            if double >= dy:
                error += dy
                x0 += sx
            if double <= dx:
                error += dx
                y0 += sy

    def rows(self) -> list[list[Segment]]:
        """Each row as runs of (characters, series) with equal series merged."""
        out = []
        for bits, owners in zip(self._bits, self._owner):
            row: list[Segment] = []
            for bit, owner in zip(bits, owners):
                char = chr(BRAILLE_BASE + bit) if bit else " "
                owner = owner if bit else AXIS
                if row and row[-1][1] == owner:
                    row[-1] = (row[-1][0] + char, owner)
                else:
                    row.append((char, owner))
            out.append(row)
        return out


def _scale(values: list[float]) -> tuple[float, float, bool]:
    low, high = min(values), max(values)
    log = low > 0 and high / low >= LOG_SPREAD
    return (math.log10(low), math.log10(high), True) if log else (low, high, False)


def _label(value: float) -> str:
    return f"{value:.4g}"[:LABEL_WIDTH - 1].rjust(LABEL_WIDTH - 1)


def plot_lines(series: Sequence[Series], width: int, height: int) -> list[list[Segment]]:
    """`series[k][i]` is series k's value after run i (None: no value yet), drawn as steps.

    Returns `height` plot rows plus an x-axis row, each `LABEL_WIDTH + width` characters wide.
    """
    width, height = max(4, width - LABEL_WIDTH), max(2, height - 1)
    values = [v for s in series for v in s if v is not None]
    if not values:
        return [[(" " * LABEL_WIDTH + "no results yet".ljust(width), AXIS)]]
    low, high, log = _scale(values)
    runs = max(len(s) for s in series)
    canvas = BrailleCanvas(width, height)
    dots_x, dots_y = width * 2 - 1, height * 4 - 1

    def x_of(run: int) -> int:
        return round(run * dots_x / max(1, runs - 1))

    def y_of(value: float) -> int:
        v = math.log10(value) if log else value
        return dots_y // 2 if high == low else round((high - v) / (high - low) * dots_y)

    for index, values_of in enumerate(series):
        previous: tuple[int, int] | None = None
        for run, value in enumerate(values_of):
            if value is None:
                continue
            point = (x_of(run), y_of(value))
            if previous is not None:
                canvas.line(previous[0], previous[1], point[0], previous[1], index)
                canvas.line(point[0], previous[1], point[0], point[1], index)
            canvas.dot(*point, index)
            previous = point
    top, bottom = (10**high, 10**low) if log else (high, low)
    labels = {0: _label(top), height - 1: _label(bottom)} if high != low else {dots_y // 2 // 4: _label(top)}
    rows = []
    for number, row in enumerate(canvas.rows()):
        rows.append([(labels.get(number, "").ljust(LABEL_WIDTH - 1) + "│", AXIS), *row])
    last = f"run {runs - 1}" if runs > 1 else ""
    axis = "log " if log else ""
    rows.append([(axis.rjust(LABEL_WIDTH - 1) + "└" + "0".ljust(width - len(last), "─") + last, AXIS)])
    return rows
