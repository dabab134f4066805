"""SVG snapshots of the main screens (pytest-textual-snapshot; files under `snapshots/`).

The app runs on a real Engine whose store is filled with fixed sessions and events, so ids,
names, numbers and transcripts are the same on every run; the spinner clock is frozen.
Refresh after an intended change with `python -m pytest tests/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import pytest_textual_snapshot

from cockpit.config import Config
from cockpit.core import events as ev
from cockpit.core.engine import Engine
from cockpit.core.model import Session, Usage
from cockpit.core.states import State
from cockpit.core.store import Store
from cockpit.ui.app import CockpitApp

SNAPSHOTS = Path(__file__).resolve().parent.parent / "snapshots"
NAMES = ["fix-flaky-test", "api-pagination", "docs-usage", "refactor-db", "bump-deps", "perf-cache",
         "login-bug", "i18n", "ci-speed", "typing", "cli-help", "search"]
STATES = [State.RUNNING, State.WAITING, State.IDLE, State.ERROR, State.RUNNING, State.IDLE]


def _snapshot_dir(cls, *, test_location) -> str:  # noqa: ANN001 - syrupy's signature
    return str(SNAPSHOTS / Path(test_location.filepath).stem)


# Snapshots live in the top-level snapshots/ folder, not in tests/__snapshots__/.
pytest_textual_snapshot.SVGImageExtension.dirname = classmethod(_snapshot_dir)


def session(n: int) -> Session:
    name = NAMES[(n - 1) % len(NAMES)] + ("" if n <= len(NAMES) else f"-{n}")
    return Session(
        id=f"s{n:02d}", number=n, name=name, slug=name, repo_id=1, branch=f"cockpit/{name}",
        base_ref="main", base_commit="0" * 40, worktree=f"/nonexistent/{name}", tags=["api"] if n % 3 == 0 else [],
        state=State.IDLE, created_at=0.0, usage=Usage(1200 * n, 300 * n, 0.01 * n, True),
    )


def transcript(n: int) -> list[tuple[str, dict]]:
    return [
        (ev.USER_MESSAGE, {"text": f"Task {n}: make the tests in module {n} pass"}),
        (ev.TEXT, {"text": "I'll look at the failing test first, then fix the code it exercises."}),
        (ev.TOOL_CALL, {"id": f"c{n}", "name": "run_shell", "arguments": {"command": "pytest -q tests/"}}),
        (ev.TOOL_RESULT, {"id": f"c{n}", "name": "run_shell", "ok": False, "output": "exit code 1\n1 failed, 12 passed"}),
        (ev.TEXT, {"text": "One failure: the cache key ignores the page size. Fixing it in `cache.py`."}),
        (ev.TOOL_CALL, {"id": f"d{n}", "name": "edit_file", "arguments": {"path": "cache.py", "search": "a", "replace": "b"}}),
        (ev.TOOL_RESULT, {"id": f"d{n}", "name": "edit_file", "ok": True, "output": "edited cache.py at line 12"}),
    ]


async def fill_store(home: Path, count: int) -> None:
    store = await Store.open(home / "cockpit.db")
    await store.add_repo("/nonexistent/repo", "repo")
    for n in range(1, count + 1):
        await store.save_session(session(n))
        events = [ev.Event(kind, f"s{n:02d}", data, seq, 0.0) for seq, (kind, data) in enumerate(transcript(n), 1)]
        await store.append_many(events)
    await store.close()


class SnapshotApp(CockpitApp):
    """The cockpit on a pre-filled store; live states are set before the screen subscribes."""

    def __init__(self, home: Path, *, theme: str = "", layout: str = ""):
        config = Config()
        if theme:
            config.theme = theme
        super().__init__(None, config, frozen_clock=0.0)
        self.home = home
        self.start_layout = layout

    async def on_mount(self) -> None:  # runs before CockpitApp.on_mount (Textual walks the MRO)
        self.client = engine = await Engine.open(self.home, self.config)
        for s in sorted(engine.sessions.values(), key=lambda s: s.number):
            state = STATES[(s.number - 1) % len(STATES)]
            if state == State.WAITING:
                engine.set_state(s, State.RUNNING)
                engine.emit(s.id, ev.APPROVAL_REQUEST, {"id": "a1", "tool": "run_shell", "title": "pytest -q"})
            if state != State.IDLE:
                engine.set_state(s, state, "rate limited: gave up after 5 tries" if state == State.ERROR else "")
        if self.start_layout:
            self.grid.layout_name = self.start_layout

    async def on_unmount(self) -> None:
        await self.client.close()


def make_app(tmp_path: Path, count: int, **kwargs) -> SnapshotApp:
    home = tmp_path / "home"
    asyncio.run(fill_store(home, count))
    return SnapshotApp(home, **kwargs)


async def settle(pilot) -> None:
    await pilot.pause(0.3)


def test_empty_cockpit_80x24(snap_compare, tmp_path):
    assert snap_compare(make_app(tmp_path, 0), terminal_size=(80, 24), run_before=settle)


def test_empty_cockpit_200x50(snap_compare, tmp_path):
    assert snap_compare(make_app(tmp_path, 0), terminal_size=(200, 50), run_before=settle)


def test_six_panes_tiled_120x40(snap_compare, tmp_path):
    assert snap_compare(make_app(tmp_path, 6), terminal_size=(120, 40), run_before=settle)


def test_twenty_four_panes_200x50(snap_compare, tmp_path):
    assert snap_compare(make_app(tmp_path, 24), terminal_size=(200, 50), run_before=settle)


def test_six_panes_80x24_pages(snap_compare, tmp_path):
    assert snap_compare(make_app(tmp_path, 6), terminal_size=(80, 24), run_before=settle)


@pytest.mark.parametrize("layout", ["even-horizontal", "even-vertical", "main-vertical", "main-horizontal"])
def test_layouts(snap_compare, tmp_path, layout):
    assert snap_compare(make_app(tmp_path, 4, layout=layout), terminal_size=(120, 40), run_before=settle)


def test_pane_waiting_for_approval_focused(snap_compare, tmp_path):
    async def focus_waiting(pilot) -> None:
        await settle(pilot)
        await pilot.press("n")  # the attention queue goes to the approval first
        await pilot.pause(0.2)

    assert snap_compare(make_app(tmp_path, 3), terminal_size=(120, 40), run_before=focus_waiting)


def test_zoomed_pane(snap_compare, tmp_path):
    async def zoom(pilot) -> None:
        await settle(pilot)
        await pilot.press("z")
        await pilot.pause(0.5)

    assert snap_compare(make_app(tmp_path, 2), terminal_size=(120, 40), run_before=zoom)


def test_help_screen(snap_compare, tmp_path):
    async def help_(pilot) -> None:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.3)

    assert snap_compare(make_app(tmp_path, 2), terminal_size=(120, 40), run_before=help_)


@pytest.mark.parametrize("theme", ["cockpit-light", "cockpit-high-contrast"])
def test_themes(snap_compare, tmp_path, theme):
    assert snap_compare(make_app(tmp_path, 6, theme=theme), terminal_size=(120, 40), run_before=settle)
