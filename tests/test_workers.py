"""Agents in worker processes: the real engine, real worker processes, the scripted model server.

The engine runs here; each session's backend (litellm loop, tools, terminal emulation) runs in
a `cockpit.workers.worker` process the pool started, and everything crosses the socket between
them: events, state, usage, approvals, history, terminal keys and screens.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from cockpit.config import AgentConfig, ApprovalConfig, Config, ModelConfig, WorkersConfig
from cockpit.core import events as ev
from cockpit.core.states import State
from cockpit.sim import ScriptedLLMServer
from cockpit.workers.pool import RemoteBackend, WorkerPool

pytestmark = pytest.mark.asyncio
FAKE_ACP_AGENT = Path(__file__).with_name("fake_acp_agent.py")


@pytest.fixture
async def server():
    async with ScriptedLLMServer() as srv:
        yield srv


def sim_config(url: str) -> Config:
    config = Config()
    config.models["default"] = ModelConfig(model="openai/cockpit-sim", api_base=url, retry_base_s=0.05,
                                           stall_timeout_s=10)
    # Not niced: on a CI box busy with other test files, niced workers wait behind all of them.
    config.workers = WorkersConfig(count=2, nice=0)
    return config


async def until(condition, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.02)
    return value


async def turns_ended(subscription, count: int, timeout: float = 60.0) -> None:
    """Wait for `count` turn ends on a subscription taken before the sends (a send only hands
    the text to the worker: the session is still idle right after it)."""
    async with asyncio.timeout(timeout):
        for _ in range(count):
            await subscription.get()


def turn_ends(engine):
    return engine.subscribe(accept=lambda e: e.kind == ev.TURN_END)


def settled(engine, *sessions) -> bool:
    return all(engine.sessions[s.id].state in (State.IDLE, State.ERROR) for s in sessions)


async def texts(engine, session_id: str) -> str:
    return "".join(e.data["text"] for e in await engine.transcript(session_id) if e.kind == ev.TEXT)


async def test_agents_stream_from_niced_worker_processes_spread_over_the_workers(open_engine, repo, server):
    config = sim_config(server.url)
    config.workers.nice = 10
    pool = WorkerPool()
    engine = await open_engine(config, pool)
    sessions = await engine.create_sessions(repo, name="w", count=4)
    ends = turn_ends(engine)
    for session in sessions:
        server.set_scenario({"steps": [{"text": f"hello from {session.id}"}]}, session=session.id)
        await engine.send(session.id, "go")
    await turns_ended(ends, 4)
    for session in sessions:
        assert engine.sessions[session.id].state == State.IDLE
        assert await texts(engine, session.id) == f"hello from {session.id}"
        assert isinstance(engine.hosts[session.id].backend, RemoteBackend)
        assert engine.sessions[session.id].usage.total_tokens > 0  # usage crossed over too
    pids = {worker.pid for worker in pool.workers}
    assert len(pool.workers) == 2 and None not in pids and os.getpid() not in pids
    assert sorted(len(worker.backends) for worker in pool.workers) == [2, 2]
    for pid in pids:
        assert os.getpriority(os.PRIO_PROCESS, pid) - os.getpriority(os.PRIO_PROCESS, 0) == 10


async def test_an_approval_is_asked_in_the_engine_and_answered_in_the_worker(open_engine, repo, server):
    config = sim_config(server.url)
    config.approval = ApprovalConfig(preset="ask-shell")
    config.sandbox.enabled = False
    engine = await open_engine(config, WorkerPool())
    (session,) = await engine.create_sessions(repo, name="asker")
    server.set_scenario({"steps": [
        {"text": "making it", "tool_calls": [{"name": "run_shell", "arguments": {"command": "touch made.txt"}}]},
        {"when": {"last_role": "tool"}, "text": "made"},
    ]}, session=session.id)
    await engine.send(session.id, "make it")
    await until(lambda: engine.hosts[session.id].pending, "the agent asked")
    assert engine.sessions[session.id].state == State.WAITING
    assert not (session.path / "made.txt").exists()
    ends = turn_ends(engine)
    await engine.approve(session.id)
    await turns_ended(ends, 1)
    assert (session.path / "made.txt").exists()
    assert (await texts(engine, session.id)).endswith("made")


async def test_a_terminal_session_takes_keys_and_shows_its_screen_from_a_worker(open_engine, repo):
    config = Config()
    config.workers = WorkersConfig(count=1)
    config.sandbox.enabled = False
    config.agents["sh"] = AgentConfig(kind="terminal", command=["bash", "--norc", "--noprofile"],
                                      env={"PS1": "$ ", "LC_ALL": "C.UTF-8"})
    engine = await open_engine(config, WorkerPool())
    (session,) = await engine.create_sessions(repo, name="term", agent="sh")
    await engine.execute({"cmd": "term_input", "session": session.id, "data": "echo worker-$((6*7))\r"})

    async def shown() -> bool:
        frame = await engine.execute({"cmd": "term_screen", "session": session.id})
        return any("worker-42" in "".join(text for text, _ in runs) for _, runs in frame["rows"])

    deadline = time.monotonic() + 20
    while not await shown():
        assert time.monotonic() < deadline, "the screen never showed the command's output"
        await asyncio.sleep(0.05)
    assert await engine.execute({"cmd": "term_resize", "session": session.id, "cols": 60, "rows": 10}) is True


@pytest.mark.slow
async def test_a_killed_worker_takes_only_its_sessions_down_and_they_resume(open_engine, repo, server):
    pool = WorkerPool()
    engine = await open_engine(sim_config(server.url), pool)
    sessions = await engine.create_sessions(repo, name="k", count=4)
    words = " ".join(f"w{i}" for i in range(240))  # 6 s at 40 tokens/s
    arrivals: dict[str, list[float]] = defaultdict(list)
    subscription = engine.subscribe(maxsize=1_000_000)

    async def note_arrivals() -> None:
        while True:
            event = await subscription.get()
            if event.kind == ev.TEXT_DELTA:
                arrivals[event.session].append(time.monotonic())

    noting = asyncio.create_task(note_arrivals())
    for session in sessions:
        server.set_scenario({"tokens_per_s": 40, "steps": [{"text": words}, {"text": "resumed fine"}]},
                            session=session.id)
        await engine.send(session.id, "stream")
    await until(lambda: all(len(arrivals[s.id]) >= 10 for s in sessions), "every agent streams", timeout=60)
    victim = pool.workers[0]
    doomed = set(victim.backends)
    survivors = [s for s in sessions if s.id not in doomed]
    assert len(doomed) == 2 and len(survivors) == 2
    os.kill(victim.pid, signal.SIGKILL)
    await until(lambda: all(engine.sessions[sid].state == State.ERROR for sid in doomed), "its sessions errored")
    await until(lambda: settled(engine, *survivors), "the other worker's sessions finished", timeout=60)
    noting.cancel()
    for session in survivors:
        assert engine.sessions[session.id].state == State.IDLE
        assert await texts(engine, session.id) == words
        times = arrivals[session.id]
        assert max(b - a for a, b in zip(times, times[1:])) < 1.0, "the other worker's agent paused"
    for sid in doomed:
        assert engine.sessions[sid].state_detail == "agent worker died (killed by SIGKILL)"
        before = await texts(engine, sid)
        assert before and words.startswith(before)  # what arrived before the kill was kept
    ends = turn_ends(engine)
    for sid in doomed:
        await engine.resume(sid)
    await turns_ended(ends, 2)
    for sid in doomed:
        assert (await texts(engine, sid)).endswith("resumed fine")
    assert victim.pid is not None and victim.pid != os.getpid()  # a new worker took its place


async def test_an_acp_agent_runs_under_a_worker_and_edits_after_approval(open_engine, repo):
    """An ACP agent program is the worker's child; its permission request and file write cross
    to the engine and back."""
    config = Config()
    config.workers = WorkersConfig(count=1)
    config.sandbox.enabled = False
    config.agents["fake"] = AgentConfig(kind="acp", command=[sys.executable, str(FAKE_ACP_AGENT)])
    pool = WorkerPool()
    engine = await open_engine(config, pool)
    (session,) = await engine.create_sessions(repo, name="acp", agent="fake")
    ends = turn_ends(engine)
    await engine.send(session.id, "hello")
    await turns_ended(ends, 1)
    assert "Hello, world" in await texts(engine, session.id)
    await engine.send(session.id, "edit notes.txt written-by-acp")
    await until(lambda: engine.hosts[session.id].pending, "the agent asked to edit")
    await engine.approve(session.id)
    await until(lambda: (session.path / "notes.txt").is_file()
                and (session.path / "notes.txt").read_text() == "written-by-acp", "the file was written")
    agent_pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == pool.workers[0].pid]
    assert agent_pids, "the ACP agent runs as the worker's child"


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0
