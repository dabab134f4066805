"""Sessions of two repositories on one screen: headers name each session's repository, `R`
(and the palette) shows one repository's sessions at a time. SVG snapshots at 80×24 and 200×50
(`snapshots/test_snapshots_repos/`), built like `test_snapshots` on a pre-filled store.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_snapshots import SnapshotApp, session, settle, transcript

from cockpit.core import events as ev
from cockpit.core.store import Store

#: Session n belongs to `api` when odd, `web` when even; one `web` session is read-only.
REPOS = {1: ("/nonexistent/api", "api"), 2: ("/nonexistent/web", "web")}


async def fill_two_repos(home: Path, count: int) -> None:
    store = await Store.open(home / "cockpit.db")
    ids = {slug: (await store.add_repo(path, slug)).id for path, slug in REPOS.values()}
    for n in range(1, count + 1):
        made = session(n)
        made.repo = "api" if n % 2 else "web"
        made.repo_id = ids[made.repo]
        made.read_only = n == 4
        await store.save_session(made)
        events = [ev.Event(kind, made.id, data, seq, 0.0) for seq, (kind, data) in enumerate(transcript(n), 1)]
        await store.append_many(events)
    await store.close()


def two_repo_app(tmp_path: Path, count: int = 4) -> SnapshotApp:
    home = tmp_path / "home"
    asyncio.run(fill_two_repos(home, count))
    return SnapshotApp(home)


def test_two_repositories_80x24(snap_compare, tmp_path):
    assert snap_compare(two_repo_app(tmp_path), terminal_size=(80, 24), run_before=settle)


def test_two_repositories_200x50(snap_compare, tmp_path):
    assert snap_compare(two_repo_app(tmp_path, 6), terminal_size=(200, 50), run_before=settle)


@pytest.mark.asyncio
async def test_the_repository_filter_pages_one_repository_at_a_time(tmp_path):
    home = tmp_path / "home"
    await fill_two_repos(home, 6)
    app = SnapshotApp(home)
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(pilot)
        assert sorted(app.grid.visible_ids()) == [f"s{n:02d}" for n in range(1, 7)]
        assert all(pane.show_repo for pane in app.grid.panes.values())
        await pilot.press("R")
        await pilot.pause()
        assert app.grid.visible_ids() == ["s01", "s03", "s05"] and "repo api" in app._status_text
        assert app.focused_id == "s01"
        await pilot.press("R")
        await pilot.pause()
        assert app.grid.visible_ids() == ["s02", "s04", "s06"]
        app.focus_session("s01")  # going to a session the filter hides shows everyone again
        await pilot.pause()
        assert app.grid.repo_filter == "" and len(app.grid.visible_ids()) == 6
        await pilot.press("R", "R", "R")
        await pilot.pause()
        assert app.grid.repo_filter == "" and "repo " not in app._status_text
