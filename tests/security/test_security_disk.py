"""Issue #13, attack row "a full disk silently loses a turn": `COCKPIT_HOME` on a real, full
2 MB tmpfs, a real turn of the built-in agent against the scripted model server over HTTP.

The turn must pause (no model request or tool call starts while nothing can be recorded), say
why on every screen and in `ls`, and once the filler is deleted every event of the turn lands in
order, the agent finishes its turn, and usage (what budgets count) is all on disk.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from cockpit.agents.factory import make_agent
from cockpit.client.cli import ls_lines
from cockpit.config import AgentConfig, Config, ModelConfig
from cockpit.core import events as ev
from cockpit.core import store as store_module
from cockpit.core.engine import Engine
from cockpit.core.events import Event
from cockpit.core.states import State
from cockpit.server.daemon import stop_server
from cockpit.sim import ScriptedLLMServer
from cockpit.errors import CockpitError
from cockpit.ui.app import CockpitApp
from server_kit import Recorder, all_idle, assert_same_as_store, attached, cockpit, model_config, start_server
from tinyfs import TinyFS, tiny_fs  # noqa: F401  (the fixture)

pytestmark = pytest.mark.asyncio

FAKE_ACP_AGENT = Path(__file__).resolve().parent.parent / "fake_acp_agent.py"

SCENARIO = {"steps": [
    {"text": "Writing the file.", "tool_calls": [
        {"name": "write_file", "arguments": {"path": "out/hello.txt", "content": "hi\n"}}]},
    {"when": {"last_role": "tool"}, "text": "Done: {last_tool_result}"},
]}


@pytest.fixture
async def server() -> AsyncIterator[ScriptedLLMServer]:
    async with ScriptedLLMServer() as srv:
        yield srv


@pytest.fixture
async def full_home(tiny_fs: TinyFS) -> AsyncIterator[Callable[..., Any]]:
    """`await open_on_tiny(config, factory)`: an engine whose home is on the tiny file system."""
    opened: list[Engine] = []

    async def open_on_tiny(config: Config, agent_factory: Any = None) -> Engine:
        engine = await Engine.open(tiny_fs.root / "home", config, agent_factory)
        opened.append(engine)
        return engine

    yield open_on_tiny
    if tiny_fs.filler.exists():
        tiny_fs.free()
    for engine in opened:
        await engine.close()


def agent_config(url: str) -> Config:
    config = Config()
    config.models["default"] = ModelConfig(model="openai/cockpit-sim", api_base=url, retry_base_s=0.05,
                                           stall_timeout_s=5)
    return config


async def until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        await asyncio.sleep(0.02)


def stored(db: Path, session_id: str) -> list[tuple[int, str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT seq, kind, data FROM events WHERE session = ? ORDER BY id",
                            (session_id,)).fetchall()


async def test_a_full_disk_pauses_the_turn_and_loses_none_of_it(full_home, tiny_fs, repo, server):
    """Attack row: full disk under COCKPIT_HOME mid-turn → pause, visible reason, nothing lost."""
    engine = await full_home(agent_config(server.url), make_agent)
    (session,) = await engine.create_sessions(repo, name="agent")
    server.set_scenario(SCENARIO, session=session.id)
    screen = engine.subscribe()
    tiny_fs.fill()

    await engine.send(session.id, "write the file")
    await until(lambda: session.state_detail.startswith("agents paused:"), "the agent held")
    db = tiny_fs.root / "home" / "cockpit.db"
    reason = f"agents paused: database or disk is full (cannot write {db})"
    assert engine.paused == reason and session.state_detail == reason
    told = [e.data for e in screen.get_nowait() if e.kind == ev.STORAGE]
    assert told == [{"paused": True, "reason": reason, "folder": str(engine.home)}]
    rows = await engine.execute({"cmd": "ls"})
    assert [(r["state"], r["paused"]) for r in rows] == [("running", reason)]
    assert ls_lines(rows)[0] == f"PAUSED  {reason}"
    requests = len(server.requests)
    await asyncio.sleep(0.5)  # the store retries several times meanwhile, all refused
    assert engine.paused and len(server.requests) == requests, "a model request started while paused"
    assert not (session.path / "out" / "hello.txt").exists(), "a tool ran while paused"

    tiny_fs.free()
    await until(lambda: session.state == State.IDLE, "the turn to finish")
    assert session.state_detail == "" and engine.paused == ""
    assert (session.path / "out" / "hello.txt").read_text() == "hi\n"
    assert {"paused": False, "reason": "", "folder": str(engine.home)} in [
        e.data for e in screen.get_nowait() if e.kind == ev.STORAGE]

    await engine.sync()
    rows = stored(db, session.id)
    seqs = [seq for seq, _, _ in rows]
    assert seqs == sorted(seqs), "events landed out of order"
    covered = set(seqs)
    for seq, kind, data in rows:  # a stored text run stands for the deltas first_seq..seq
        if kind in (ev.TEXT, ev.THOUGHT):
            covered.update(range(json.loads(data)["first_seq"], seq + 1))
    assert covered == set(range(1, engine._seq[session.id] + 1)), "events of the turn are missing"
    kinds = [kind for _, kind, _ in rows]
    for kind in (ev.USER_MESSAGE, ev.TURN_START, ev.TOOL_CALL, ev.TOOL_RESULT, ev.TURN_END):
        assert kind in kinds, f"{kind} was lost"
    assert kinds.count(ev.USAGE) == 2
    with sqlite3.connect(db) as conn:
        spent = conn.execute("SELECT COUNT(*), SUM(prompt_tokens + completion_tokens) FROM usage "
                             "WHERE session = ?", (session.id,)).fetchone()
    assert spent == (2, session.usage.total_tokens) and session.usage.total_tokens > 0
    restored = {s.id: s for s in await engine.store.sessions()}[session.id]
    assert restored.usage.total_tokens == session.usage.total_tokens  # budgets count it after a restart


async def test_interrupting_and_quitting_while_paused_do_not_hang(full_home, tiny_fs, repo, server, monkeypatch):
    """Attack row: full disk → the person can still stop the agent and quit; quitting says how
    many writes were only in memory (the events whose append was confirmed are on disk)."""
    monkeypatch.setattr(store_module, "CLOSE_GRACE_S", 0.5)
    engine = await full_home(agent_config(server.url), make_agent)
    (session,) = await engine.create_sessions(repo, name="agent")
    server.set_scenario(SCENARIO, session=session.id)
    tiny_fs.fill()
    await engine.send(session.id, "write the file")
    await until(lambda: session.state_detail.startswith("agents paused:"), "the agent held")
    interrupting = asyncio.ensure_future(engine.interrupt(session.id))
    done, _ = await asyncio.wait([interrupting], timeout=30)  # not wait_for: its cancel would unstick it
    assert done, "interrupt hung on the full disk"
    assert (session.state, session.state_detail) == (State.IDLE, "interrupted")
    lost = r"cockpit.db: database or disk is full; closed with \d+ queued writes not saved"
    with pytest.raises(CockpitError, match=lost):
        await asyncio.wait_for(engine.close(), 30)


async def test_an_acp_agent_is_held_before_it_writes_a_file(full_home, tiny_fs, repo):
    """Attack row: full disk → an ACP agent's file write (its tool call) waits for space."""
    config = Config()
    config.agents["fake"] = AgentConfig(kind="acp", command=[sys.executable, str(FAKE_ACP_AGENT)])
    config.defaults.agent = "fake"
    engine = await full_home(config, make_agent)
    (session,) = await engine.create_sessions(repo, name="acp")
    await until(lambda: engine.hosts[session.id].backend is not None and session.state == State.IDLE, "the agent")
    tiny_fs.fill()
    await engine.send(session.id, "write out.txt written")
    await until(lambda: session.state_detail.startswith("agents paused:"), "the agent held")
    await asyncio.sleep(0.3)
    assert not (session.path / "out.txt").exists(), "the agent wrote while paused"
    tiny_fs.free()
    await until(lambda: session.state == State.IDLE and session.state_detail == "", "the turn to finish")
    assert (session.path / "out.txt").read_text() == "written"
    kinds = [e.kind for e in await engine.transcript(session.id)]
    assert kinds.count(ev.TURN_START) == kinds.count(ev.TURN_END) == 1


async def test_the_status_bar_shows_the_disk_full_banner(full_home, tiny_fs, repo):
    """Attack row: full disk → every screen says agents are paused, why, and which folder."""
    engine = await full_home(Config())
    (session,) = await engine.create_sessions(repo, name="agent")
    app = CockpitApp(engine, engine.config)
    async with app.run_test(size=(320, 30)) as pilot:  # wide: the test's tmp paths are long
        await until(lambda: session.id in app.grid.panes, "the pane")
        tiny_fs.fill()
        engine.emit(session.id, ev.NOTICE, {"text": "a write the disk cannot take"})

        def bar() -> str:
            return str(app.status.render())

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while "agents paused" not in bar():
            assert loop.time() < deadline, f"no banner; status bar: {bar()!r}"
            await pilot.pause(0.05)
        db = engine.home / "cockpit.db"
        assert bar().startswith(f"⏸ agents paused: database or disk is full (cannot write {db})")
        assert any("on red" in str(span.style) for span in app.status.render().spans)

        tiny_fs.free()
        while "agents paused" in bar():
            assert loop.time() < deadline, "the banner stayed after space returned"
            await pilot.pause(0.05)


async def test_through_the_server_the_attached_screen_and_the_cli_say_paused(tiny_fs, cockpit_env, repo, server,
                                                                             monkeypatch):
    """Attack row: full disk under a background server → the screen attached to it gets the
    pause, a screen attaching meanwhile is let in (not kept waiting for the disk) with the pause
    and every event so far, `cockpit ls` prints it (`--json` carries it), and the turn finishes."""
    home = tiny_fs.root / "home"
    monkeypatch.setenv("COCKPIT_HOME", str(home))
    cockpit_env.write_user_config(model_config(server.url))
    paths = await start_server(home, repo)
    client = late = None
    try:
        client = await attached(paths)
        screen = Recorder(client)
        (made,) = await client.execute({"cmd": "create", "repo": str(repo), "name": "agent"})
        server.set_scenario(SCENARIO, session=made["id"])
        await until(lambda: all_idle(client, 1), "the session")
        tiny_fs.fill()
        await client.execute({"cmd": "send", "session": made["id"], "text": "write the file"})

        def storage() -> list[dict[str, Any]]:
            return [e.data for e in screen.events if e.kind == ev.STORAGE]

        await until(lambda: storage(), "the pause to reach the attached screen")
        reason = storage()[0]["reason"]
        assert storage()[0]["paused"]
        assert reason == f"agents paused: database or disk is full (cannot write {home / 'cockpit.db'})"
        human = await asyncio.to_thread(cockpit, "ls", cwd=repo)
        assert human.returncode == 0, human.stderr
        assert human.stdout.splitlines()[0] == f"PAUSED  {reason}"
        listed = json.loads((await asyncio.to_thread(cockpit, "ls", "--json", cwd=repo)).stdout)
        assert [row["paused"] for row in listed] == [reason]
        assert not (Path(made["worktree"]) / "out" / "hello.txt").exists()
        late = await asyncio.wait_for(attached(paths), 30)
        late_screen = Recorder(late)
        assert late.paused == reason
        scrollback = await late.transcript(made["id"], tail=400)
        assert "write the file" in [e.data.get("text") for e in scrollback if e.kind == ev.USER_MESSAGE]

        tiny_fs.free()
        await until(lambda: len(storage()) == 2, "the all-clear")
        assert storage()[1] == {"paused": False, "reason": "", "folder": str(home)}
        await until(lambda: all_idle(client, 1) and (Path(made["worktree"]) / "out" / "hello.txt").exists(),
                    "the turn to finish")
        assert "PAUSED" not in (await asyncio.to_thread(cockpit, "ls", cwd=repo)).stdout
        seen = [*scrollback, *(e for e in await late_screen.stop() if e.session == made["id"])]
        stored = [Event.from_dict(raw) for raw in
                  await client.execute({"cmd": "transcript", "session": made["id"]})]
        assert_same_as_store(seen, stored, made["id"])  # the late screen missed nothing, twice nothing
    finally:
        for opened in (client, late):
            if opened is not None:
                await opened.close()
        if tiny_fs.filler.exists():
            tiny_fs.free()
        await asyncio.to_thread(stop_server, paths)
