"""Layout geometry: every layout tiles the screen exactly and respects the pane minimum."""

import pytest

from cockpit.ui.layout import LAYOUTS, Rect, arrange, capacity, paginate, split, tiled_grid


def covered(rects: list[Rect]) -> set[tuple[int, int]]:
    cells: set[tuple[int, int]] = set()
    for r in rects:
        block = {(x, y) for x in range(r.x, r.x + r.width) for y in range(r.y, r.y + r.height)}
        assert not cells & block, f"{r} overlaps another pane"
        cells |= block
    return cells


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("count", [1, 2, 3, 5, 8, 13])
@pytest.mark.parametrize("size", [(80, 21), (200, 47), (250, 67)])
def test_layouts_cover_the_screen_without_overlap(layout, count, size):
    width, height = size
    rects = arrange(width, height, count, layout)
    assert len(rects) == count
    assert covered(rects) == {(x, y) for x in range(width) for y in range(height)}


def test_split_spreads_the_remainder():
    assert split(10, 3) == [4, 3, 3]
    assert sum(split(201, 7)) == 201


def test_tmux_shapes():
    main_v = arrange(100, 40, 4, "main-vertical", main_size=60)
    assert main_v[0] == Rect(0, 0, 60, 40)
    assert all(r.x == 60 and r.width == 40 for r in main_v[1:])
    main_h = arrange(100, 40, 3, "main-horizontal", main_size=50)
    assert main_h[0] == Rect(0, 0, 100, 20)
    assert [r.y for r in main_h[1:]] == [20, 20]
    assert [r.x for r in arrange(90, 10, 3, "even-horizontal")] == [0, 30, 60]
    assert [r.y for r in arrange(90, 12, 3, "even-vertical")] == [0, 4, 8]


def test_tiled_prefers_readable_shapes():
    assert tiled_grid(200, 50, 4) == (2, 2)
    assert tiled_grid(200, 50, 6) == (3, 2)
    assert tiled_grid(80, 24, 2) == (2, 1)
    # the last row stretches to fill the width
    rects = arrange(120, 40, 5, "tiled")
    last_row = [r for r in rects if r.y == max(r.y for r in rects)]
    assert sum(r.width for r in last_row) == 120


def test_capacity_and_paging():
    assert capacity(200, 48, "tiled", 40, 8) == 5 * 6
    assert capacity(80, 21, "tiled", 40, 8) == 2 * 2
    assert capacity(80, 21, "even-vertical", 40, 8) == 2
    assert capacity(80, 21, "main-vertical", 30, 6, main_size=60) == 1 + 3
    assert [list(p) for p in paginate(5, 2)] == [[0, 1], [2, 3], [4]]
    assert [list(p) for p in paginate(0, 4)] == [[]]


def test_unknown_layout_is_refused():
    with pytest.raises(ValueError, match="unknown layout 'grid'"):
        arrange(10, 10, 2, "grid")


def test_tiled_respects_the_minimum_pane_size_when_it_can():
    assert tiled_grid(80, 20, 6) == (3, 2)  # squarest, but 26 columns wide
    assert tiled_grid(80, 20, 6, min_width=30, min_height=6) == (2, 3)
    rects = arrange(80, 20, 6, "tiled", min_width=30, min_height=6)
    assert min(r.width for r in rects) >= 30
