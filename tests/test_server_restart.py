"""`kill -9` of the server while agents stream: the next server restores every session.

The store must pass SQLite's integrity check, every session must come back with its in-flight
turn marked interrupted, worktrees and branches must be intact, and one command resumes a turn.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import run_git
from server_kit import Recorder, acockpit, attached, model_config, server_pid, start_server, streaming, until

from cockpit.core import events as ev
from cockpit.core.store import Store
from cockpit.server.lock import lock_holder
from cockpit.sim import ScriptedLLMServer

pytestmark = pytest.mark.slow


@pytest.fixture
async def sim() -> AsyncIterator[ScriptedLLMServer]:
    async with ScriptedLLMServer(streaming(words=600, rate=40)) as server:
        yield server


async def test_kill_9_while_streaming_then_restart_restores_every_session(cockpit_env, repo, sim):
    cockpit_env.write_user_config(model_config(sim.url))
    paths = await start_server(cockpit_env.home, repo)
    client = await attached(paths)
    seen = Recorder(client)
    created = await client.execute({"cmd": "create", "repo": str(repo), "name": "k", "task": "stream", "count": 4})
    await until(lambda: seen.count(ev.TEXT_DELTA) >= 120 and all(s["state"] == "running" for s in client.snapshot()),
                "all four agents streaming")
    os.kill(server_pid(paths), signal.SIGKILL)
    await until(lambda: lock_holder(paths) is None, "the killed server's lock to go")
    await seen.stop()
    await client.close()

    listed = await acockpit("ls", "--json", cwd=repo)  # starts a new server over the stale socket
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["state"], r["state_detail"]) for r in rows] == [
        (s["id"], "idle", "interrupted by restart") for s in created]

    store = await Store.open(cockpit_env.home / "cockpit.db")
    try:
        assert await store.integrity_check() == "ok"
        for row in rows:
            events = await store.events(row["id"])
            assert [e.data["text"] for e in events if e.kind == ev.USER_MESSAGE] == ["stream"]
            assert "".join(e.data["text"] for e in events if e.kind == ev.TEXT).startswith("w0 w1")
    finally:
        await store.close()
    worktrees = run_git(repo, "worktree", "list", "--porcelain")
    for row in rows:
        assert Path(row["worktree"]).is_dir() and f"worktree {row['worktree']}\n" in worktrees
        assert run_git(row["worktree"], "rev-parse", "--abbrev-ref", "HEAD").strip() == row["branch"]

    resumed = await acockpit("resume", "1", "--json", cwd=repo)
    assert resumed.returncode == 0, resumed.stderr
    waited = await acockpit("wait", "1", "--until", "idle", "--timeout", "60", "--json", cwd=repo)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert json.loads(waited.stdout)["sessions"][0]["state"] == "idle"
    logs = await acockpit("logs", "1", "--json", cwd=repo)
    kinds = [json.loads(line)["kind"] for line in logs.stdout.splitlines()]
    assert kinds.count(ev.TURN_START) == 2 and kinds[-1] != ev.TURN_START  # the resumed turn ran
    assert ev.TURN_END in kinds[kinds.index(ev.TURN_START, kinds.index(ev.TURN_START) + 1):]
