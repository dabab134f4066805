"""The leaderboard driven with Pilot on a real engine, real worktrees and scripted agents."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from experiment_helpers import experiment_repo, finished, idea, script, sim_config, until

from cockpit.agents.factory import make_agent
from cockpit.core import events as ev
from cockpit.experiment.loop import TURN
from cockpit.sim import ScriptedLLMServer
from cockpit.ui.app import CockpitApp
from cockpit.ui.leaderboard import LeaderboardScreen
from cockpit.ui.plot import BRAILLE_BASE

pytestmark = pytest.mark.asyncio
SIZE = (150, 45)


@pytest.fixture
async def server() -> AsyncIterator[ScriptedLLMServer]:
    async with ScriptedLLMServer() as srv:
        yield srv


async def open_app(engine: Any, **options: Any) -> tuple[CockpitApp, Any, contextlib.AsyncExitStack]:
    app = CockpitApp(engine, engine.config, **options)
    stack = contextlib.AsyncExitStack()
    pilot = await stack.enter_async_context(app.run_test(size=SIZE))
    await pilot.pause()
    return app, pilot, stack


async def pilot_until(pilot: Any, condition: Any, what: str, timeout: float = 20) -> None:
    import asyncio

    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for: {what}"
        await pilot.pause(0.05)


def board(app: CockpitApp) -> LeaderboardScreen:
    assert isinstance(app.screen, LeaderboardScreen), type(app.screen).__name__
    return app.screen


def widget_text(screen: LeaderboardScreen, selector: str) -> str:
    return str(screen.query_one(selector).render())


async def test_x_opens_the_leaderboard_with_each_agent_the_best_and_the_plot(open_engine, server, tmp_path):
    repo = experiment_repo(tmp_path / "exp", name="race", agents=2, budget_runs=2)
    engine = await open_engine(sim_config(server.url), make_agent)
    experiment = await engine.experiments.start(repo)
    first, second = experiment.state.sessions
    server.set_scenario(script(idea("VALUE = 3\n", "three"), idea("VALUE = 2\n", "two")), session=first)
    server.set_scenario(script(idea("VALUE = 9\n", "nine"), idea("VALUE = 'x'\n", "broken")), session=second)
    await finished(engine, "race")
    app, pilot, stack = await open_app(engine)
    async with stack:
        await pilot.press("X")
        screen = board(app)
        table = screen.query_one("#lb-table")
        await pilot_until(pilot, lambda: table.row_count == 2, "a row per agent")
        header = widget_text(screen, "#lb-header")
        assert header.startswith("Experiment race · finished (budget spent: 2 runs each) · min metric")
        assert f"best 0 by {experiment.agent_label(first)}" in header and "baseline 3" in header
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(2)]
        assert rows[0][:7] == [f"★{experiment.agent_label(first)}", "0", "-100.0%", "2", "100%", "0", "keep"]
        assert rows[1][:7] == [f" {experiment.agent_label(second)}", "3", "+0.0%", "2", "0%", "1", "crash"]
        plot = widget_text(screen, "#lb-plot")
        assert any(BRAILLE_BASE < ord(c) < BRAILLE_BASE + 256 for c in plot) and "run 2" in plot
        await pilot.press("escape")
        assert not isinstance(app.screen, LeaderboardScreen)


async def test_m_takes_the_global_best_to_the_merge_desk(open_engine, server, tmp_path):
    from cockpit.ui.merge_view import MergeScreen

    repo = experiment_repo(tmp_path / "exp", name="merge", agents=2, budget_runs=1)
    engine = await open_engine(sim_config(server.url), make_agent)
    experiment = await engine.experiments.start(repo)
    first, second = experiment.state.sessions
    server.set_scenario(script(idea("VALUE = 9\n", "nine")), session=first)
    server.set_scenario(script(idea("VALUE = 2.5\n", "two and a half")), session=second)
    await finished(engine, "merge")
    app, pilot, stack = await open_app(engine, experiment="merge")  # the leaderboard opens at start
    async with stack:
        await pilot_until(pilot, lambda: isinstance(app.screen, LeaderboardScreen) and app.screen.status, "the board")
        await pilot.press("m")
        await pilot_until(pilot, lambda: isinstance(app.screen, MergeScreen), "the merge desk")
        assert app.screen.session_id == second


async def test_notes_stop_and_resume_from_the_board(open_engine, server, tmp_path):
    repo = experiment_repo(tmp_path / "exp", name="steer", agents=2, budget_runs=3)
    server.set_scenario(script(idea("VALUE = 4\n", "four", stall=30)))
    engine = await open_engine(sim_config(server.url), make_agent)
    experiment = await engine.experiments.start(repo)
    first, second = experiment.state.sessions
    app, pilot, stack = await open_app(engine, experiment="steer")
    async with stack:
        await pilot_until(pilot, lambda: isinstance(app.screen, LeaderboardScreen)
                          and all(loop.phase == TURN for loop in experiment.loops.values()), "both agents at work")
        await pilot.press("down", "N")  # the second agent only
        await pilot.press(*"mind the sign", "enter")
        await until(lambda: engine.get(second).state.value == "running", "the second agent's turn")
        transcript = await engine.transcript(second)
        assert "Note from the person running the experiment: mind the sign" in [
            e.data["text"] for e in transcript if e.kind == ev.USER_MESSAGE]
        assert not any("mind the sign" in e.data.get("text", "") for e in await engine.transcript(first))
        await pilot.press("s")
        await pilot_until(pilot, lambda: board(app).status and board(app).status["status"] == "stopped", "stopped")
        assert engine.experiments.running == {}
        rows = engine.experiments.status("steer")["rows"]
        await pilot.press("r")  # the script is spent: the agents finish their runs making no change
        await pilot_until(pilot, lambda: board(app).status["status"] == "finished", "resumed and finished")
        assert board(app).status["rows"] == rows + 6


async def test_the_board_without_experiments_says_how_to_start_one(open_engine, server):
    engine = await open_engine(sim_config(server.url), make_agent)
    app, pilot, stack = await open_app(engine)
    async with stack:
        await pilot.press("X")
        screen = board(app)
        await pilot_until(pilot, lambda: "No experiments yet" in widget_text(screen, "#lb-header"), "the hint")
        assert widget_text(screen, "#lb-header").startswith("No experiments yet. Press S to start one")
        await pilot.press("m")
        await pilot.pause()
        assert isinstance(app.screen, LeaderboardScreen)  # nothing to merge, nothing happened
