"""Pane layouts as pure functions: (size, pane count, layout name) → rectangles.

The names and shapes follow tmux. Panes never shrink below a readable minimum: `capacity`
says how many fit on one page, and the cockpit pages the rest. No Textual here, so the
geometry is tested without a screen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LAYOUTS = ("tiled", "even-horizontal", "even-vertical", "main-vertical", "main-horizontal")
_CELL_ASPECT = 2.5  # a terminal cell is about 2.5 times taller than wide; square-ish panes read best


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int


def split(total: int, parts: int) -> list[int]:
    """`parts` sizes adding up to `total`, the remainder spread over the first ones."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _offsets(sizes: list[int], start: int = 0) -> list[int]:
    out, pos = [], start
    for size in sizes:
        out.append(pos)
        pos += size
    return out


def capacity(width: int, height: int, layout: str, min_width: int, min_height: int, main_size: int = 60) -> int:
    """How many panes fit on one page at no less than min_width × min_height (at least 1)."""
    cols, rows = max(1, width // min_width), max(1, height // min_height)
    if layout == "even-horizontal":
        return cols
    if layout == "even-vertical":
        return rows
    if layout == "main-vertical":
        rest = width - width * main_size // 100
        return 1 + (rows if rest >= min_width else 0)
    if layout == "main-horizontal":
        rest = height - height * main_size // 100
        return 1 + (cols if rest >= min_height else 0)
    return cols * rows


def tiled_grid(width: int, height: int, count: int, min_width: int = 1, min_height: int = 1) -> tuple[int, int]:
    """(columns, rows) for `count` panes, keeping panes as close to square as the screen allows.

    Grids whose panes would fall below the minimum size are used only when no other grid fits.
    """
    max_cols, max_rows = max(1, width // min_width), max(1, height // min_height)
    grids = [(cols, math.ceil(count / cols)) for cols in range(1, count + 1)]
    fitting = [(c, r) for c, r in grids if c <= max_cols and r <= max_rows] or grids

    def quality(grid: tuple[int, int]) -> tuple[float, int, int]:
        cols, rows = grid
        return (min(width / cols / _CELL_ASPECT, height / rows), -(cols * rows - count), -cols)

    return max(fitting, key=quality)


def arrange(
    width: int, height: int, count: int, layout: str = "tiled", main_size: int = 60,
    min_width: int = 1, min_height: int = 1,
) -> list[Rect]:
    """Rectangles for `count` panes that exactly cover width × height."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r} (one of: {', '.join(LAYOUTS)})")
    if count <= 0:
        return []
    if count == 1:
        return [Rect(0, 0, width, height)]
    if layout == "even-horizontal":
        widths = split(width, count)
        return [Rect(x, 0, w, height) for x, w in zip(_offsets(widths), widths)]
    if layout == "even-vertical":
        heights = split(height, count)
        return [Rect(0, y, width, h) for y, h in zip(_offsets(heights), heights)]
    if layout == "main-vertical":
        main_w = max(1, min(width - 1, width * main_size // 100))
        heights = split(height, count - 1)
        side = [Rect(main_w, y, width - main_w, h) for y, h in zip(_offsets(heights), heights)]
        return [Rect(0, 0, main_w, height), *side]
    if layout == "main-horizontal":
        main_h = max(1, min(height - 1, height * main_size // 100))
        widths = split(width, count - 1)
        side = [Rect(x, main_h, w, height - main_h) for x, w in zip(_offsets(widths), widths)]
        return [Rect(0, 0, width, main_h), *side]
    cols, rows = tiled_grid(width, height, count, min_width, min_height)
    heights = split(height, rows)
    rects: list[Rect] = []
    for row, (y, h) in enumerate(zip(_offsets(heights), heights)):
        in_row = min(cols, count - row * cols)  # the last row stretches to fill the width
        widths = split(width, in_row)
        rects.extend(Rect(x, y, w, h) for x, w in zip(_offsets(widths), widths))
    return rects


def paginate(count: int, per_page: int) -> list[range]:
    """Index ranges of the panes on each page."""
    per_page = max(1, per_page)
    return [range(start, min(count, start + per_page)) for start in range(0, count, per_page)] or [range(0)]
