"""SVG snapshots of the merge desk: the merge view (unified, side by side) and the merge dialog
showing a conflict, at 80×24 and 200×50 (files under `snapshots/test_snapshots_review/`).

The app runs on a real Engine with a real repository and session worktree whose content is
fixed (tests/review_helpers.py); nothing in the frame depends on ids, hashes or the clock.
Refresh after an intended change with
`python -m pytest tests/test_snapshots_review.py --snapshot-update`, then look at the SVGs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import test_snapshots  # noqa: F401  (points the snapshot extension at the top-level snapshots/ folder)
from review_helpers import conflict_on_main, review_repo, review_session, until

from cockpit.config import Config
from cockpit.core.engine import Engine
from cockpit.ui.app import CockpitApp
from cockpit.ui.merge_view import MergeScreen
from cockpit.ui.review_dialogs import MergeDialog

SIZES = [(80, 24), (200, 50)]


class ReviewApp(CockpitApp):
    """The cockpit on a fresh engine with one session whose worktree holds the fixed change."""

    def __init__(self, home: Path, repo: Path):
        super().__init__(None, Config(), frozen_clock=0.0, repo=str(repo))
        self.home = home

    async def on_mount(self) -> None:  # runs before CockpitApp.on_mount (Textual walks the MRO)
        self.client = engine = await Engine.open(self.home, self.config)
        await review_session(engine, Path(self.repo))

    async def on_unmount(self) -> None:
        await self.client.close()


async def open_merge_view(pilot: Any) -> MergeScreen:
    app = pilot.app
    await until(pilot, lambda: app.focused_pane is not None)
    await pilot.press("M")
    await until(pilot, lambda: isinstance(app.screen, MergeScreen) and app.screen.change is not None
                and app.screen.preview is not None)
    return app.screen


async def coloured(pilot: Any) -> None:
    """Wait for the frame with syntax colours (lines are painted plain first, lexed after)."""
    await pilot.pause(0.1)
    await until(pilot, lambda: not pilot.app.screen.diff_view.highlighting)
    await pilot.pause(0.1)


async def at_cache_py(pilot: Any) -> None:
    screen = await open_merge_view(pilot)
    while screen.current.path != "src/cache.py":
        await pilot.press("]")
    await pilot.press("n")  # the cursor on the first hunk
    await coloured(pilot)


async def side_by_side(pilot: Any) -> None:
    await at_cache_py(pilot)
    await pilot.press("s")
    await coloured(pilot)


async def conflict_dialog(pilot: Any) -> None:
    await open_merge_view(pilot)
    await pilot.press("m")
    await until(pilot, lambda: isinstance(pilot.app.screen, MergeDialog))
    await pilot.pause(0.3)


def make_app(tmp_path: Path) -> ReviewApp:
    return ReviewApp(tmp_path / "home", review_repo(tmp_path / "repo"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_merge_view_unified(snap_compare, tmp_path, size):
    assert snap_compare(make_app(tmp_path), terminal_size=size, run_before=at_cache_py)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_merge_view_side_by_side(snap_compare, tmp_path, size):
    assert snap_compare(make_app(tmp_path), terminal_size=size, run_before=side_by_side)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_merge_dialog_conflict(snap_compare, tmp_path, size):
    app = make_app(tmp_path)

    async def conflicting(pilot: Any) -> None:
        await until(pilot, lambda: pilot.app.focused_pane is not None)
        conflict_on_main(Path(app.repo))  # main moves on after the session was made from it
        await conflict_dialog(pilot)

    assert snap_compare(app, terminal_size=size, run_before=conflicting)
