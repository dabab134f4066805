"""SVG snapshots of terminal panes (pytest-textual-snapshot; files under `snapshots/`).

Two terminal sessions run real programs in real pseudo-terminals: one prints a colour chart
with `printf`, the other a coloured test run; both then sleep, so the screens never change
again. The snapshot is taken once both screens show their last line, both terminals have the
size of their panes and both sessions are idle; the clock is frozen and output right after a
start never counts as work, so nothing depends on timing.
Refresh with `python -m pytest tests/test_snapshots_terminal.py --snapshot-update`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import test_snapshots  # noqa: F401  (points the snapshot extension at the top-level snapshots/ folder)

from cockpit.agents import terminal
from cockpit.agents.factory import make_agent
from cockpit.config import AgentConfig, Config
from cockpit.core.engine import Engine
from cockpit.ui.app import CockpitApp
from cockpit.ui.terminal_pane import TerminalPane

COLOURS = (
    r"printf 'colours: \033[31mred\033[0m \033[32mgreen\033[0m \033[33myellow\033[0m \033[34mblue\033[0m "
    r"\033[35mmagenta\033[0m \033[36mcyan\033[0m\n'; "
    r"printf '\033[1mbold\033[0m \033[4munderline\033[0m \033[7mreverse\033[0m "
    r"\033[38;5;208m256-orange\033[0m \033[38;2;120;80;255mtruecolor\033[0m\n'; "
    r"printf '\033[42;30m PASS \033[0m tests/test_api.py \033[41;97m FAIL \033[0m tests/test_db.py\n'; "
    "printf 'done\\n'; exec sleep 600"
)
BUILD = (
    r"printf '$ make test\n'; "
    r"printf '\033[1;34m==>\033[0m compiling 12 files\n'; "
    r"printf '\033[32m✓\033[0m unit      41 passed\n'; "
    r"printf '\033[31m✗\033[0m e2e        2 failed\n'; "
    r"printf '\033[33mwarning:\033[0m 3 deprecations\n'; "
    "printf 'finished\\n'; exec sleep 600"
)


class TerminalSnapshotApp(CockpitApp):
    """The cockpit with two real terminal sessions made before the screen loads."""

    def __init__(self, repo: Path):
        config = Config()
        config.agents["colours"] = AgentConfig(kind="terminal", command=["sh", "-c", COLOURS], env={"LC_ALL": "C.UTF-8"})
        config.agents["build"] = AgentConfig(kind="terminal", command=["sh", "-c", BUILD], env={"LC_ALL": "C.UTF-8"})
        super().__init__(None, config, frozen_clock=0.0)
        self.repo_path = repo

    async def on_mount(self) -> None:  # runs before CockpitApp.on_mount (Textual walks the MRO)
        self.client = engine = await Engine.open(None, self.config, make_agent)
        for agent in ("colours", "build"):
            await engine.create_sessions(self.repo_path, agent=agent, name=agent)

    async def on_unmount(self) -> None:
        await self.client.close()


async def settled(pilot: Any) -> None:
    """Until both screens show their last line at their pane's size and both sessions are idle."""
    app = pilot.app
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20

    def ready() -> bool:
        panes = list(app.grid.panes.values())
        return len(panes) == 2 and all(
            isinstance(p, TerminalPane) and p.view.size == p.wanted_size() and p.state == "idle"
            and any(line in ("done", "finished") for line in p.view.text())
            for p in panes
        )

    while not ready():
        assert loop.time() < deadline, "the terminals did not settle"
        await pilot.pause(0.05)
    await pilot.pause(0.3)


@pytest.fixture
def quiet_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the programs print counts as start-up output, never as work (no `running`)."""
    monkeypatch.setattr(terminal, "ECHO_GRACE_S", 600.0)


@pytest.mark.parametrize("size", [(80, 24), (200, 50)], ids=["80x24", "200x50"])
def test_terminal_panes(snap_compare, make_repo, tmp_path, quiet_start, size):
    app = TerminalSnapshotApp(make_repo(tmp_path / "repo"))
    assert snap_compare(app, terminal_size=size, run_before=settled)
