"""The engine: events to subscribers, coalesced storage, restart, approvals, budgets, JSON
commands and several repositories at once — with a tiny backend written here against the
`AgentHost` contract (no LLM, no network)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from conftest import make_repo, run_git

from cockpit.config import parse_config_text
from cockpit.core import events as ev
from cockpit.core.agent_api import AgentHost, ApprovalDecision
from cockpit.core.commands import COMMANDS
from cockpit.core.events import Event
from cockpit.core.model import Usage
from cockpit.core.states import State
from cockpit.errors import CockpitError, NotFound, RouteError


class AskingBackend:
    """Each turn: go running, ask to run a shell command, report the answer, go idle."""

    instances: list[AskingBackend] = []

    def __init__(self, host: AgentHost):
        self.host = host
        self.decisions: list[ApprovalDecision] = []
        self.turns: list[asyncio.Task[None]] = []
        self.closed = False
        AskingBackend.instances.append(self)

    async def start(self) -> None:
        self.host.emit(ev.NOTICE, {"text": f"started in {self.host.worktree.name}"})

    async def send(self, text: str) -> None:
        self.turns.append(asyncio.create_task(self._turn(text)))

    async def _turn(self, text: str) -> None:
        self.host.set_state(State.RUNNING)
        decision = await self.host.request_approval("shell", f"run {text}", "$ " + text)
        self.decisions.append(decision)
        answer = "ran it" if decision.approved else f"did not run it: {decision.reason}"
        for word in answer.split(" "):
            self.host.emit(ev.TEXT_DELTA, {"text": word + " "})
        self.host.emit(ev.MESSAGE_END, {})
        self.host.set_state(State.IDLE)

    async def interrupt(self) -> None:
        for turn in self.turns:
            turn.cancel()

    async def close(self) -> None:
        self.closed = True
        await self.interrupt()


class BusyBackend:
    """Goes running (or waiting) and stays there: what a restart interrupts."""

    def __init__(self, host: AgentHost):
        self.host = host

    async def start(self) -> None:
        pass

    async def send(self, text: str) -> None:
        self.host.set_state(State.RUNNING, "thinking")
        if text == "wait":
            self.host.set_state(State.WAITING, "needs input")

    async def interrupt(self) -> None:
        pass

    async def close(self) -> None:
        pass


class FailingBackend:
    def __init__(self, host: AgentHost):
        self.host = host

    async def start(self) -> None:
        raise CockpitError("agent command 'nope' not found")

    async def send(self, text: str) -> None:  # pragma: no cover - never started
        raise AssertionError

    async def interrupt(self) -> None:  # pragma: no cover
        pass

    async def close(self) -> None:  # pragma: no cover
        pass


async def _until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


def _states(events: list[Event]) -> list[str]:
    return [e.data["state"] for e in events if e.kind == ev.SESSION_STATE]


# -- events and subscribers ---------------------------------------------------------------------


async def test_subscribers_receive_events_in_order(engine, repo):
    everything = engine.subscribe()
    only_notices = engine.subscribe(accept=lambda e: e.kind == ev.NOTICE)
    (session,) = await engine.create_sessions(repo, name="a")
    engine.emit(session.id, ev.NOTICE, {"text": "hello"})
    got = everything.get_nowait()
    assert [e.kind for e in got] == [ev.SESSION_CREATED, ev.SESSION_STATE, ev.NOTICE]
    assert got[0].data["session"] == session.to_dict() | {"state": "starting"}
    assert [e.seq for e in got] == [1, 2, 3] and {e.session for e in got} == {session.id}
    assert [e.data for e in only_notices.get_nowait()] == [{"text": "hello"}]
    engine.emit(session.id, ev.NOTICE, {"text": "again"})
    assert (await asyncio.wait_for(everything.get(), 1)).data == {"text": "again"}
    everything.close()
    engine.emit(session.id, ev.NOTICE, {"text": "not delivered after close"})
    assert everything.get_nowait() == []
    with pytest.raises(StopAsyncIteration):
        await everything.get()


async def test_a_slow_subscriber_gets_one_resync_and_stalls_nobody(engine, repo):
    (session,) = await engine.create_sessions(repo, name="a")
    stuck = engine.subscribe(maxsize=8)  # never reads
    live = engine.subscribe()
    received: list[Event] = []

    async def reader() -> None:
        async for event in live:
            received.append(event)

    task = asyncio.create_task(reader())
    started = time.perf_counter()
    for i in range(5_000):
        engine.emit(session.id, ev.TEXT_DELTA, {"text": f"{i} "})
        if i % 500 == 0:
            await asyncio.sleep(0)  # let the live reader run now and then
    elapsed = time.perf_counter() - started
    await _until(lambda: len(received) == 5_000)
    task.cancel()
    assert [e.data["text"] for e in received] == [f"{i} " for i in range(5_000)]
    assert elapsed < 2.0  # emission never waited for the stuck subscriber
    backlog = stuck.get_nowait()
    assert [e.kind for e in backlog] == [ev.RESYNC] and stuck.resyncs == 1
    assert backlog[0].data == {"reason": "subscriber fell behind"}
    # Having taken the resync, it is back in the stream.
    engine.emit(session.id, ev.NOTICE, {"text": "after"})
    assert [e.data for e in stuck.get_nowait()] == [{"text": "after"}]


async def test_text_deltas_are_coalesced_in_the_store(engine, repo):
    (session,) = await engine.create_sessions(repo, name="a")
    live = engine.subscribe()
    words = [f"w{i} " for i in range(600)]
    engine.emit(session.id, ev.USER_MESSAGE, {"text": "go"})
    for word in words[:300]:
        engine.emit(session.id, ev.TEXT_DELTA, {"text": word, "message": "m1"})
    engine.emit(session.id, ev.TOOL_CALL, {"id": "c1", "name": "shell"})
    for word in words[300:]:
        if word == "w450 ":  # a change of stream kind also ends the run
            engine.emit(session.id, ev.THOUGHT_DELTA, {"text": "?"})
        engine.emit(session.id, ev.TEXT_DELTA, {"text": word})
    engine.emit(session.id, ev.MESSAGE_END, {})
    assert sum(e.kind == ev.TEXT_DELTA for e in live.get_nowait()) == 600  # live: every delta

    stored = [e for e in await engine.transcript(session.id) if e.seq > 2]
    assert [e.kind for e in stored] == [
        ev.USER_MESSAGE, ev.TEXT, ev.TOOL_CALL, ev.TEXT, ev.THOUGHT, ev.TEXT, ev.MESSAGE_END,
    ]
    texts = [e for e in stored if e.kind == ev.TEXT]
    assert "".join(e.data["text"] for e in texts) == "".join(words)
    assert texts[0].data == {"message": "m1", "text": "".join(words[:300]), "first_seq": 4}
    assert [e.seq for e in stored] == sorted(e.seq for e in stored)
    assert stored[-1].seq == engine._seq[session.id]  # the store ends where the stream ended


async def test_streaming_is_persisted_every_half_second(engine, repo):
    (session,) = await engine.create_sessions(repo, name="a")
    for i in range(20):
        engine.emit(session.id, ev.TEXT_DELTA, {"text": f"{i},"})
        await asyncio.sleep(0.05)  # one second of streaming
    await engine.store.flush()
    # Without a message end, the timer flush made the text durable in a few rows.
    rows = [e for e in await engine.store.events(session.id) if e.kind == ev.TEXT]
    assert 1 <= len(rows) <= 3
    await engine.sync()
    rows = [e for e in await engine.store.events(session.id) if e.kind == ev.TEXT]
    assert "".join(e.data["text"] for e in rows) == "".join(f"{i}," for i in range(20))


# -- restart ----------------------------------------------------------------------------------------


async def test_restart_restores_sessions_and_transcripts(open_engine, repo):
    engine = await open_engine()
    first, second = await engine.create_sessions(repo, name="r", count=2, tags=["t"])
    engine.emit(first.id, ev.USER_MESSAGE, {"text": "hi"})
    for word in "hello there".split(" "):
        engine.emit(first.id, ev.TEXT_DELTA, {"text": word})
    await engine.rename(f"@{second.number}", "renamed")
    await engine.tag(first.id, add=["#x"], remove=["t"])
    engine.add_usage(first, "m", Usage(100, 20, 0.5))
    before = {s.id: s.to_dict() for s in engine.sessions.values()}
    transcripts = {s: await engine.transcript(s) for s in before}
    await engine.close()

    engine = await open_engine()
    assert {s.id: s.to_dict() for s in engine.sessions.values()} == before
    assert {s: await engine.transcript(s) for s in before} == transcripts
    assert engine.get("renamed").id == second.id and engine.sessions[first.id].tags == ["x"]
    assert engine.total_usage() == Usage(100, 20, 0.5)
    assert (await engine.store.total_usage()).cost_usd == 0.5
    # Numbering and per-session order continue where they stopped.
    event = engine.emit(first.id, ev.NOTICE, {"text": "later"})
    assert event.seq == transcripts[first.id][-1].seq + 1
    (third,) = await engine.create_sessions(repo, name="r-2")
    assert third.number == 3 and third.slug == "r-2-2"


async def test_a_restored_session_starts_its_agent_on_the_first_message(open_engine, repo):
    AskingBackend.instances.clear()
    engine = await open_engine(agent_factory=AskingBackend)
    (session,) = await engine.create_sessions(repo, name="again")
    await engine.close()
    engine = await open_engine(agent_factory=AskingBackend)
    assert engine.hosts[session.id].backend is None  # nothing started until it is needed
    await engine.send(f"@{session.number}", "test")
    await _until(lambda: engine.sessions[session.id].state == State.WAITING)
    assert len(AskingBackend.instances) == 2


async def test_live_sessions_become_idle_on_restart(open_engine, repo):
    engine = await open_engine(agent_factory=BusyBackend)
    running, waiting, idle = await engine.create_sessions(repo, name="b", count=3)
    await engine.send(running.id, "work")
    await engine.send(waiting.id, "wait")
    assert [s.state for s in (running, waiting, idle)] == [State.RUNNING, State.WAITING, State.IDLE]
    await engine.close()

    engine = await open_engine()
    restored = [engine.sessions[s.id] for s in (running, waiting, idle)]
    assert [(s.state, s.state_detail) for s in restored] == [
        (State.IDLE, "interrupted by restart"), (State.IDLE, "interrupted by restart"), (State.IDLE, ""),
    ]
    await engine.close()
    engine = await open_engine()  # and that is what was saved
    assert engine.sessions[running.id].state_detail == "interrupted by restart"


async def test_state_changes_are_durable_after_sync(open_engine, repo):
    engine = await open_engine(agent_factory=BusyBackend)
    (session,) = await engine.create_sessions(repo, name="s")
    await engine.send(session.id, "work")
    await engine.sync()
    assert [s.state for s in await engine.store.sessions()] == [State.RUNNING]


# -- approvals ---------------------------------------------------------------------------------------


async def test_approve_and_deny(open_engine, repo):
    AskingBackend.instances.clear()
    engine = await open_engine(agent_factory=AskingBackend)
    (session,) = await engine.create_sessions(repo, name="ask")
    (backend,) = AskingBackend.instances
    sub = engine.subscribe()

    await engine.send(session.id, "pytest")
    await _until(lambda: session.state == State.WAITING)
    assert session.state_detail == "approve shell: run pytest"
    (pending,) = engine.hosts[session.id].pending.values()
    await engine.approve(f"@{session.number}", pending.id, reason="fine", always=True)
    await _until(lambda: session.state == State.IDLE)
    assert backend.decisions == [ApprovalDecision(True, "fine", True)]

    await engine.send_line("rm -rf /", focused=session.id)
    await _until(lambda: session.state == State.WAITING)
    await engine.deny("ask", reason="too dangerous")  # oldest pending when no id is given
    await _until(lambda: session.state == State.IDLE)
    assert backend.decisions[-1] == ApprovalDecision(False, "too dangerous")

    seen = sub.get_nowait()
    assert _states(seen) == ["running", "waiting", "running", "idle"] * 2
    requests = [e.data for e in seen if e.kind == ev.APPROVAL_REQUEST]
    assert requests[0] == {"id": pending.id, "tool": "shell", "title": "run pytest", "detail": "$ pytest"}
    resolved = [e.data for e in seen if e.kind == ev.APPROVAL_RESOLVED]
    assert [(r["approved"], r["reason"], r["always"]) for r in resolved] == [
        (True, "fine", True), (False, "too dangerous", False),
    ]
    stored = await engine.transcript(session.id)
    assert [e.data["text"] for e in stored if e.kind == ev.TEXT] == ["ran it ", "did not run it: too dangerous "]

    with pytest.raises(NotFound) as caught:
        await engine.approve(session.id)
    assert str(caught.value) == f"session @{session.number} has no pending approval"
    with pytest.raises(NotFound) as caught:
        await engine.deny(session.id, "a999")
    assert str(caught.value) == f"session @{session.number} has no pending approval 'a999'"


async def test_interrupt_cancels_a_pending_approval(open_engine, repo):
    AskingBackend.instances.clear()
    engine = await open_engine(agent_factory=AskingBackend)
    (session,) = await engine.create_sessions(repo, name="ask")
    await engine.send(session.id, "make")
    await _until(lambda: session.state == State.WAITING)
    await engine.interrupt(session.id)
    assert (session.state, session.state_detail) == (State.IDLE, "interrupted")
    await asyncio.sleep(0.01)
    assert engine.hosts[session.id].pending == {}
    assert AskingBackend.instances[0].decisions == []


async def test_backend_start_failure_puts_the_session_in_error(open_engine, repo):
    engine = await open_engine(agent_factory=FailingBackend)
    (session,) = await engine.create_sessions(repo, name="f", task="do it")
    assert (session.state, session.state_detail) == (State.ERROR, "agent command 'nope' not found")


async def test_first_task_is_sent_and_archive_stops_the_agent(open_engine, repo):
    AskingBackend.instances.clear()
    engine = await open_engine(agent_factory=AskingBackend)
    (session,) = await engine.create_sessions(repo, name="t", task="lint")
    await _until(lambda: session.state == State.WAITING)
    assert [e.data for e in await engine.transcript(session.id) if e.kind == ev.USER_MESSAGE] == [{"text": "lint"}]
    await engine.archive(session.id)
    assert session.state == State.ARCHIVED and AskingBackend.instances[0].closed
    with pytest.raises(CockpitError) as caught:
        await engine.send(session.id, "more")
    assert str(caught.value) == f"session @{session.number} is archived; unarchive it first"
    await engine.unarchive(session.id)
    assert session.state == State.IDLE and len(AskingBackend.instances) == 2


# -- budgets -------------------------------------------------------------------------------------


async def test_budget_exceeded(open_engine, repo):
    config = parse_config_text("[budgets]\nsession_usd = 1.0\ntotal_usd = 1.5\ntotal_tokens = 1000\n")
    engine = await open_engine(config)
    a, b = await engine.create_sessions(repo, name="b", count=2)
    host = engine.hosts[a.id]
    assert await host.budget_exceeded() == ""
    host.add_usage("m", Usage(100, 50, 0.6))
    assert await host.budget_exceeded() == ""
    host.add_usage("m", Usage(100, 50, 0.4))
    assert await host.budget_exceeded() == "reached the session budget $1.00"
    assert engine.budget_exceeded(b) == ""
    engine.add_usage(b, "m", Usage(10, 10, 0.5))
    assert engine.budget_exceeded(b) == "reached the total budget $1.50"
    config.budgets.session_usd = config.budgets.total_usd = 0  # 0 = no cap
    engine.add_usage(b, "m", Usage(600, 100, 0.0))
    assert engine.budget_exceeded(b) == "reached the total budget of 1000 tokens"
    usage_events = [e for e in await engine.transcript(a.id) if e.kind == ev.USAGE]
    assert usage_events[-1].data["session"] == {"prompt_tokens": 200, "completion_tokens": 100,
                                                "cost_usd": 1.0, "cost_known": True}


# -- JSON commands and events ------------------------------------------------------------------------


async def test_execute_json_commands(engine, repo):
    created = await engine.execute({"cmd": "create", "repo": str(repo), "name": "j", "count": 2, "tags": ["api"]})
    assert [s["name"] for s in created] == ["j-1", "j-2"]
    assert json.loads(json.dumps(created)) == created
    first = created[0]["id"]
    assert await engine.execute({"cmd": "rename", "session": first, "name": "main-one"}) == {
        **engine.sessions[first].to_dict(), "name": "main-one"}
    tagged = await engine.execute({"cmd": "tag", "session": "@2", "add": ["ui"], "remove": ["api"]})
    assert tagged["tags"] == ["ui"]
    assert [s["name"] for s in await engine.execute({"cmd": "ls"})] == ["main-one", "j-2"]
    assert await engine.execute({"cmd": "send_line", "line": "#api hello", "marked": []}) == [first]
    transcript = await engine.execute({"cmd": "transcript", "session": "main-one"})
    assert transcript[-1]["kind"] == ev.USER_MESSAGE and transcript[-1]["data"] == {"text": "hello"}
    assert (await engine.execute({"cmd": "archive", "session": first}))["state"] == "archived"
    await engine.execute({"cmd": "remove", "session": "@2", "delete_branch": True})
    assert [s["number"] for s in await engine.execute({"cmd": "ls"})] == [1]


KNOWN_COMMANDS = ", ".join(sorted(COMMANDS))


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ({"cmd": "explode"}, f"unknown command 'explode' (known: {KNOWN_COMMANDS})"),
        ({}, f"unknown command None (known: {KNOWN_COMMANDS})"),
        ({"cmd": "send", "session": "1"}, "command 'send': missing a required argument: 'text'"),
        ({"cmd": "ls", "all": True}, "command 'ls': got an unexpected keyword argument 'all'"),
        ({"cmd": "create", "repo": ".", "colour": "red"}, "command 'create': got an unexpected keyword argument 'colour'"),
        ({"cmd": "create"}, "command 'create': missing a required argument: 'repo'"),
        ({"cmd": "send", "session": "nobody", "text": "x"}, "no session 'nobody' (see `cockpit ls`)"),
        ({"cmd": "send_line", "line": "@ghost hi"}, "unknown target: @ghost"),
    ],
)
async def test_bad_json_commands_say_what_is_wrong(engine, command, message):
    with pytest.raises(CockpitError) as caught:
        await engine.execute(command)
    assert str(caught.value) == message


async def test_events_round_trip_through_json(engine, repo):
    (session,) = await engine.create_sessions(repo, name="j")
    engine.emit(session.id, ev.TOOL_CALL, {"args": {"cmd": "grep -n 'ü' *.py", "n": [1, 2.5, None, True]}})
    for event in await engine.transcript(session.id):
        assert Event.from_dict(json.loads(event.to_json())) == event
    bare = Event.from_dict({"kind": ev.RESYNC})
    assert (bare.session, bare.data, bare.seq, bare.ts) == ("", {}, 0, 0.0)


# -- routing and repositories ---------------------------------------------------------------------


async def test_two_repositories_in_one_engine(engine, tmp_path, cockpit_env):
    one = make_repo(tmp_path / "a" / "app", {"a.txt": "a\n"})
    two = make_repo(tmp_path / "b" / "app", {"b.txt": "b\n"})  # same folder name
    (s1,) = await engine.create_sessions(one, name="fix", tags=["alpha"])
    (s2,) = await engine.create_sessions(two, name="fix", tags=["beta"])
    assert s1.repo_id != s2.repo_id
    assert s1.path == cockpit_env.home / "worktrees" / "app" / "fix"
    assert s2.path == cockpit_env.home / "worktrees" / "app-2" / "fix"
    assert (s1.path / "a.txt").exists() and (s2.path / "b.txt").exists()
    assert s1.branch == s2.branch == "cockpit/fix"  # branches live in different repositories
    assert s1.path in [Path(p.split(" ", 1)[1]) for p in run_git(one, "worktree", "list", "--porcelain").splitlines()
                       if p.startswith("worktree ")]
    assert [s["repo_id"] for s in await engine.execute({"cmd": "ls"})] == [s1.repo_id, s2.repo_id]
    assert [s.id for s in engine.route("@all go").targets] == [s1.id, s2.id]
    assert [s.id for s in engine.route("#beta go").targets] == [s2.id]
    assert [s.id for s in engine.route("@1 @2 go").targets] == [s1.id, s2.id]
    await engine.remove(s1.id)
    assert not s1.path.exists() and s2.path.exists()


async def test_remove_forgets_the_session(engine, repo):
    (session,) = await engine.create_sessions(repo, name="gone")
    engine.emit(session.id, ev.TEXT_DELTA, {"text": "unflushed"})
    await engine.remove(f"@{session.number}")
    assert engine.sessions == {} and not session.path.exists()
    assert await engine.store.events(session.id) == []
    assert await engine.store.sessions() == []
    assert "cockpit/gone" in run_git(repo, "branch", "--list", "cockpit/gone")
    with pytest.raises(NotFound):
        engine.get(session.id)


async def test_bad_arguments_to_create(engine, repo):
    with pytest.raises(CockpitError) as caught:
        await engine.create_sessions(repo, count=0)
    assert str(caught.value) == "count must be at least 1, got 0"
    with pytest.raises(CockpitError) as caught:
        await engine.create_sessions(repo, agent="ghost")
    assert str(caught.value) == ("unknown agent 'ghost' (configured agents: "
                                 "builtin, claude, codex, conductor, gemini, goose, opencode, shell)")
    assert engine.sessions == {}


async def test_route_errors_from_the_engine(engine, repo):
    await engine.create_sessions(repo, name="one")
    with pytest.raises(RouteError) as caught:
        await engine.send_line("@two hi")
    assert str(caught.value) == "unknown target: @two"
    with pytest.raises(RouteError) as caught:
        await engine.send_line("   ")
    assert str(caught.value) == "nothing to send: type an instruction after the targets"
    assert [s.name for s in await engine.send_line("@one hi")] == ["one"]
