"""ACP agents end to end: the engine hosting `tests/fake_acp_agent.py`, a real ACP agent program.

Every test drives the real Engine on a real git repository; the agent is a separate process
speaking ACP over stdio, so the prompts, streamed updates, permission requests, file writes,
terminals, cancellation and restarts all cross a real process boundary. The fake agent records
what it received (`--record`), so the agent's side of each exchange is checked too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from acp import schema
from textual.widgets import Input, Select
from textual.widgets._select import SelectOverlay

from cockpit.agents import acp_agent
from cockpit.agents.acp_client import permission_outcome
from cockpit.agents.acp_terminals import ExitStatus, Terminals, UnknownTerminal
from cockpit.agents.factory import make_agent
from cockpit.config import AgentConfig, Config, load_config
from cockpit.core import events as ev
from cockpit.core.agent_api import ApprovalDecision
from cockpit.core.engine import Engine
from cockpit.core.events import Event
from cockpit.core.model import Session
from cockpit.core.process import process_alive
from cockpit.core.states import State
from cockpit.ui.app import CockpitApp
from cockpit.ui.dialogs import NewSessionDialog

FAKE_AGENT = Path(__file__).with_name("fake_acp_agent.py")
TIMEOUT = 30.0


def fake_config(*args: str, pass_env: tuple[str, ...] = (), base: Config | None = None,
                preset: str = "ask-shell", sandbox: bool = True) -> Config:
    config = base or Config()
    config.approval.preset = preset  # type: ignore[assignment]
    config.sandbox.enabled = sandbox
    # The agent runs sandboxed: its --record file's folder is its own state, as ~/.claude is Claude's.
    writable = [str(Path(args[args.index("--record") + 1]).parent)] if "--record" in args else []
    config.agents["fake"] = AgentConfig(kind="acp", command=[sys.executable, str(FAKE_AGENT), *args],
                                        pass_env=list(pass_env), writable=writable)
    config.defaults.agent = "fake"
    return config


@pytest.fixture
def record(tmp_path: Path) -> Callable[[], list[dict[str, Any]]]:
    """What the fake agent received, one dict per request (it appends to a file as it goes)."""
    path = tmp_path / "agent-state" / "agent-record.jsonl"  # its folder: writable to the sandboxed agent
    path.parent.mkdir()

    def read() -> list[dict[str, Any]]:
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    read.path = str(path)  # type: ignore[attr-defined]
    return read


@pytest.fixture
async def fake(open_engine: Any, repo: Path, record: Any) -> Any:
    """`await fake(*agent_args)` → (engine, session) with the fake agent's session created."""

    async def _make(*args: str, pass_env: tuple[str, ...] = (), ready: bool = True,
                    preset: str = "ask-shell", sandbox: bool = True) -> tuple[Engine, Session]:
        engine = await open_engine(config=fake_config("--record", record.path, *args, pass_env=pass_env,
                                                      preset=preset, sandbox=sandbox), agent_factory=make_agent)
        (session,) = await engine.create_sessions(repo, name="acp")
        if ready:
            await agent_ready(engine, session)
        return engine, session

    return _make


@contextlib.asynccontextmanager
async def approving(engine: Engine, session: Session) -> AsyncIterator[None]:
    """While inside, every approval the session asks for is granted (a person saying yes to all:
    `auto` still asks for commands it cannot read for sure, or when there is no sandbox)."""
    subscription = engine.subscribe(accept=lambda e: e.session == session.id and e.kind == ev.APPROVAL_REQUEST)

    async def approve_all() -> None:
        while True:
            event = await subscription.get()
            await engine.approve(session.id, event.data["id"])

    task = asyncio.create_task(approve_all())
    try:
        yield
    finally:
        task.cancel()
        subscription.close()


async def until(predicate: Callable[[], Any], timeout: float = TIMEOUT) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


async def agent_ready(engine: Engine, session: Session) -> Event:
    """The notice saying the agent's ACP session is open (the backend connects in the background)."""

    async def poll() -> Event:
        while True:
            for event in await engine.transcript(session.id):
                if event.data.get("acp_session"):
                    return event
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), TIMEOUT)


async def next_event(subscription: Any, kind: str, seen: list[Event]) -> Event:
    """Read live events (collecting them in `seen`) until one of `kind` arrives."""

    async def read() -> Event:
        while True:
            event = await subscription.get()
            seen.append(event)
            if event.kind == kind:
                return event

    return await asyncio.wait_for(read(), TIMEOUT)


async def turn(engine: Engine, session: Session, text: str) -> list[Event]:
    """Send `text` and return the live events of the turn, up to its end."""
    subscription = engine.subscribe(accept=lambda e: e.session == session.id)
    seen: list[Event] = []
    await engine.send(session.id, text)
    await next_event(subscription, ev.TURN_END, seen)
    subscription.close()
    return seen


def kinds(events: list[Event]) -> list[str]:
    return [e.kind for e in events if e.kind != ev.SESSION_STATE]


def said(events: list[Event]) -> str:
    return "".join(e.data["text"] for e in events if e.kind in (ev.TEXT_DELTA, ev.TEXT))


# -- a turn: chunks, thoughts, usage ----------------------------------------------------------------


async def test_a_turn_streams_thought_text_and_usage(fake: Any, record: Any) -> None:
    engine, session = await fake()
    events = await turn(engine, session, "hello")
    assert kinds(events) == [
        ev.USER_MESSAGE, ev.TURN_START, ev.THOUGHT_DELTA, ev.TEXT_DELTA, ev.TEXT_DELTA, ev.TEXT_DELTA,
        ev.USAGE, ev.MESSAGE_END, ev.USAGE, ev.TURN_END,
    ]
    assert said(events) == "Hello, world"
    assert events[-1].data == {"stop_reason": "end_turn"}
    assert session.state == State.IDLE
    usage = session.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cost_usd, usage.cost_known) == (100, 50, 0.25, True)
    stored = await engine.transcript(session.id)
    assert [e.data["text"] for e in stored if e.kind == ev.TEXT] == ["Hello, world"]
    assert [e.data["text"] for e in stored if e.kind == ev.THOUGHT] == ["The person greets me."]
    (ready,) = [e for e in stored if e.data.get("acp_session")]
    assert ready.data["text"] == "Fake ACP ready (new ACP session)"
    initialize = next(r for r in record() if r["method"] == "initialize")
    assert initialize["capabilities"]["fs"] == {"readTextFile": True, "writeTextFile": True}
    assert initialize["capabilities"]["terminal"] is True and initialize["client"] == "cockpit"
    (new,) = [r for r in record() if r["method"] == "new_session"]
    assert new["cwd"] == str(session.path) and new["session"] == ready.data["acp_session"]


async def test_a_plan_becomes_a_notice(fake: Any) -> None:
    engine, session = await fake()
    events = await turn(engine, session, "plan")
    (plan,) = [e for e in events if e.data.get("plan")]
    assert plan.data["text"] == "plan: 1/3 done, now: write the fix"
    assert plan.data["output"] == "☑ read the code\n◐ write the fix\n☐ run the tests"


# -- permissions and files --------------------------------------------------------------------------


async def ask_and_answer(engine: Engine, session: Session, text: str, answer: Callable[[str], Any]) -> list[Event]:
    subscription = engine.subscribe(accept=lambda e: e.session == session.id)
    seen: list[Event] = []
    await engine.send(session.id, text)
    request = await next_event(subscription, ev.APPROVAL_REQUEST, seen)
    assert session.state == State.WAITING
    await answer(request.data["id"])
    await next_event(subscription, ev.TURN_END, seen)
    subscription.close()
    return seen


async def test_permission_granted_writes_the_file_in_the_worktree(fake: Any, record: Any) -> None:
    engine, session = await fake()
    events = await ask_and_answer(engine, session, "edit notes/todo.txt buy milk",
                                  lambda request: engine.approve(session.id, request))
    assert (session.path / "notes" / "todo.txt").read_text() == "buy milk"
    shown = [e for e in events if e.kind != ev.SESSION_STATE]
    assert kinds(shown)[:4] == [ev.USER_MESSAGE, ev.TURN_START, ev.TOOL_CALL, ev.APPROVAL_REQUEST]
    call, request = shown[2], shown[3]
    assert (call.data["name"], call.data["title"], call.data["kind"]) == ("edit", "Write notes/todo.txt", "edit")
    assert call.data["arguments"] == {"path": "notes/todo.txt", "content": "buy milk"}
    assert request.data["tool"] == "edit" and request.data["title"] == "Write notes/todo.txt"
    assert "options: Allow / Always allow / Reject" in request.data["detail"]
    (result,) = [e for e in events if e.kind == ev.TOOL_RESULT]
    assert result.data["ok"] is True and result.data["output"] == "notes/todo.txt: +1 −0\n@@ -0,0 +1 @@\n+buy milk"
    assert said(events) == "permission: yes; written"
    assert session.state == State.IDLE

    await ask_and_answer(engine, session, "edit again.txt more",
                         lambda request: engine.approve(session.id, request, always=True))
    assert [r["outcome"] for r in record() if r["method"] == "permission"] == ["yes", "always"]


async def test_permission_denied_writes_nothing(fake: Any, record: Any) -> None:
    engine, session = await fake()
    events = await ask_and_answer(engine, session, "edit secret.txt nope",
                                  lambda request: engine.deny(session.id, request, reason="not now"))
    assert not (session.path / "secret.txt").exists()
    (result,) = [e for e in events if e.kind == ev.TOOL_RESULT]
    assert result.data == {"id": result.data["id"], "name": "edit", "ok": False,
                           "output": "not allowed (no)"}
    assert [r["outcome"] for r in record() if r["method"] == "permission"] == ["no"]
    # ACP has no field for the reason: it follows as the turn's next prompt.
    assert [r["text"] for r in record() if r["method"] == "prompt"] == [
        "edit secret.txt nope", "I did not allow “Write secret.txt”: not now"]


async def test_writes_and_reads_outside_the_worktree_are_refused(fake: Any, record: Any, tmp_path: Path) -> None:
    engine, session = await fake()
    outside = tmp_path / "outside"
    outside.mkdir()
    (session.path / "link").symlink_to(outside)
    for target in ("../escape.txt", str(outside / "abs.txt"), "link/through-symlink.txt", ".git/hooks/pre-commit"):
        events = await turn(engine, session, f"write {target} gotcha")
        assert said(events).startswith("write refused: refused: "), target
        assert any(e.kind == ev.NOTICE and e.data.get("refused") for e in events)
    assert list(outside.iterdir()) == [] and not (session.path.parent / "escape.txt").exists()
    refusals = [r for r in record() if r["method"] == "write_refused"]
    assert len(refusals) == 4 and {r["code"] for r in refusals} == {-32602}
    assert "outside the worktree" in refusals[1]["message"]

    events = await turn(engine, session, "write inside.txt fine")
    assert said(events) == "written" and (session.path / "inside.txt").read_text() == "fine"
    assert said(await turn(engine, session, "read inside.txt")) == "read: fine"
    assert said(await turn(engine, session, f"read {tmp_path / 'agent-record.jsonl'}")).startswith("read refused:")


# -- terminals --------------------------------------------------------------------------------------


async def test_terminal_commands_run_in_the_worktree(fake: Any, record: Any) -> None:
    """Under the `auto` preset a command runs unasked; the cockpit shows it as a `run_shell` call
    of its own (with its exit code and output) besides the agent's own report of it."""
    engine, session = await fake(preset="auto")
    events = await turn(engine, session, "run pwd && echo $COCKPIT_SESSION")
    assert said(events) == f"exit 0: {session.path}\n{session.id}"
    calls = {e.data["name"]: e.data["arguments"] for e in events if e.kind == ev.TOOL_CALL}
    assert calls == {"run_shell": {"command": "pwd && echo $COCKPIT_SESSION"},
                     "execute": {"command": "pwd && echo $COCKPIT_SESSION"}}
    results = {e.data["name"]: e.data for e in events if e.kind == ev.TOOL_RESULT}
    assert results["execute"]["ok"] is True and results["execute"]["output"] == f"{session.path}\n{session.id}\n"
    assert results["run_shell"]["output"] == f"exit code 0\n{session.path}\n{session.id}\n"

    events = await turn(engine, session, "run echo failing >&2; exit 7")
    assert said(events) == "exit 7: failing"
    assert [e.data["ok"] for e in events if e.kind == ev.TOOL_RESULT] == [False, False]


async def test_terminals_keep_the_tail_and_end_their_process_group(tmp_path: Path) -> None:
    terminals = Terminals({"PATH": os.environ["PATH"]})
    long = terminals.create(sys.executable, ["-c", "print('é' * 100, end='')"], {}, tmp_path, 51)
    assert await terminals.wait(long) == ExitStatus(0, None)
    output, truncated, status = terminals.output(long)
    assert (output, truncated) == ("é" * 25, True)  # the half character at the cut is dropped

    slow = terminals.create("sleep 30 & sleep 31; echo never", [], {}, tmp_path, None)
    await asyncio.sleep(0.2)
    await terminals.kill(slow)
    assert terminals.output(slow)[2] == ExitStatus(None, "SIGTERM")
    await terminals.release(slow)
    with pytest.raises(UnknownTerminal):
        terminals.output(slow)
    assert terminals.output_text(slow) == ""  # still shown by the tool call that refers to it
    assert terminals.output_text("term-none") is None
    missing = terminals.create("no-such-program-here", ["x"], {}, tmp_path, None)
    assert (await terminals.wait(missing)).exit_code == 127
    assert "no-such-program-here" in terminals.output(missing)[0]
    await terminals.close()


# -- interrupt --------------------------------------------------------------------------------------


async def test_interrupt_sends_session_cancel_and_ends_the_turn(fake: Any, record: Any) -> None:
    engine, session = await fake()
    subscription = engine.subscribe(accept=lambda e: e.session == session.id)
    seen: list[Event] = []
    await engine.send(session.id, "sleep")
    await next_event(subscription, ev.TOOL_CALL, seen)
    await engine.interrupt(session.id)
    end = await next_event(subscription, ev.TURN_END, seen)
    assert end.data == {"interrupted": True, "stop_reason": "cancelled"}  # the agent's own answer
    assert [r["method"] for r in record()].count("cancel") == 1
    (result,) = [e for e in seen if e.kind == ev.TOOL_RESULT]
    assert result.data["ok"] is False and result.data["name"] == "Think hard"
    assert (session.state, session.state_detail) == (State.IDLE, "interrupted")
    assert said(await turn(engine, session, "hello")) == "Hello, world"  # the same process goes on


async def test_interrupt_answers_a_pending_permission_with_cancelled(fake: Any, record: Any) -> None:
    engine, session = await fake()
    subscription = engine.subscribe(accept=lambda e: e.session == session.id)
    seen: list[Event] = []
    await engine.send(session.id, "edit never.txt x")
    await next_event(subscription, ev.APPROVAL_REQUEST, seen)
    await engine.interrupt(session.id)
    await next_event(subscription, ev.TURN_END, seen)
    assert [r["outcome"] for r in record() if r["method"] == "permission"] == ["cancelled"]
    assert engine.hosts[session.id].pending == {} and not (session.path / "never.txt").exists()
    assert session.state == State.IDLE


async def test_an_agent_that_ignores_cancel_is_stopped_and_restarted(fake: Any, record: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(acp_agent, "CANCEL_GRACE_S", 0.3)
    engine, session = await fake()
    subscription = engine.subscribe(accept=lambda e: e.session == session.id)
    seen: list[Event] = []
    await engine.send(session.id, "stubborn")
    await next_event(subscription, ev.TEXT_DELTA, seen)
    await engine.interrupt(session.id)
    await next_event(subscription, ev.TURN_END, seen)
    assert any("did not stop within" in e.data.get("text", "") for e in seen)
    assert session.state == State.IDLE
    assert said(await turn(engine, session, "hello")) == "Hello, world"
    assert [r["method"] for r in record()].count("new_session") == 2  # a new process, a new session


async def test_closing_the_engine_ends_the_agent_process_mid_turn(fake: Any, record: Any) -> None:
    engine, session = await fake()
    subscription = engine.subscribe(accept=lambda e: e.session == session.id)
    await engine.send(session.id, "sleep")
    await next_event(subscription, ev.TOOL_CALL, [])
    running = processes_with(record.path)  # seen from here: the agent's own pid is its sandbox's
    assert running
    await engine.close()
    assert not [pid for pid in running if process_alive(pid)]


def processes_with(word: str) -> list[int]:
    """The pids (in our pid namespace) of the processes whose command line holds `word`."""
    found = []
    for entry in os.listdir("/proc"):
        with contextlib.suppress(OSError):
            if entry.isdigit() and word.encode() in Path("/proc", entry, "cmdline").read_bytes():
                found.append(int(entry))
    return found


# -- failures ---------------------------------------------------------------------------------------


async def test_an_agent_dying_mid_turn_is_an_error_naming_its_log(fake: Any, cockpit_env: Any) -> None:
    engine, session = await fake()
    events = await turn(engine, session, "crash")
    log = cockpit_env.home / "logs" / f"acp-{session.id}.log"
    message = f"agent 'fake' exited with code 3 during the turn; see {log}"
    assert [e.data["text"] for e in events if e.kind == ev.ERROR] == [message]
    assert events[-1].data == {"error": message}
    assert (session.state, session.state_detail) == (State.ERROR, message)
    assert said(await turn(engine, session, "hello")) == "Hello, world"  # the next instruction restarts it
    assert session.state == State.IDLE


async def test_an_agent_exiting_while_idle_is_noticed_and_restarted(fake: Any, record: Any) -> None:
    engine, session = await fake()
    subscription = engine.subscribe(accept=lambda e: e.session == session.id)
    await engine.send(session.id, "quit")
    notice = await next_event(subscription, ev.NOTICE, [])
    assert notice.data["text"].startswith("fake exited with code 0; the next instruction starts it again (log: ")
    assert session.state == State.IDLE
    assert said(await turn(engine, session, "hello")) == "Hello, world"
    assert [r["method"] for r in record()].count("initialize") == 2


async def test_the_budget_stops_a_turn_before_its_prompt(open_engine: Any, repo: Path, record: Any) -> None:
    config = fake_config("--record", record.path)
    config.budgets.session_tokens = 100
    engine = await open_engine(config=config, agent_factory=make_agent)
    (session,) = await engine.create_sessions(repo, name="acp")
    await turn(engine, session, "hello")  # 150 tokens
    events = await turn(engine, session, "hello")
    assert [e.data["text"] for e in events if e.kind == ev.ERROR] == [
        "stopped: reached the session budget of 100 tokens"]
    assert [r["method"] for r in record()].count("prompt") == 1
    assert session.state == State.IDLE


async def test_resume_sends_a_recorded_task_then_asks_to_continue(open_engine: Any, repo: Path, record: Any) -> None:
    config = fake_config("--record", record.path)
    cli = await open_engine(config=config)  # no agents in this process, as in `cockpit new --task`
    (session,) = await cli.create_sessions(repo, name="acp", task="hello")
    await cli.close()
    engine = await open_engine(config=config, agent_factory=make_agent)
    for _ in range(2):
        subscription = engine.subscribe(accept=lambda e: e.session == session.id)
        await engine.resume(session.id)
        await next_event(subscription, ev.TURN_END, [])
        subscription.close()
    assert [r["text"] for r in record() if r["method"] == "prompt"] == ["hello", "Continue where you left off."]


async def test_two_megabytes_of_stderr_do_not_freeze_the_agent(fake: Any, cockpit_env: Any) -> None:
    engine, session = await fake("--spew-stderr", str(2 * 1024 * 1024))
    assert said(await turn(engine, session, "hello")) == "Hello, world"
    assert (cockpit_env.home / "logs" / f"acp-{session.id}.log").stat().st_size > 2 * 1024 * 1024


async def test_a_missing_program_is_one_line_naming_the_command(open_engine: Any, repo: Path,
                                                                tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    config = load_config()
    config.agents["claude"].env["PATH"] = str(empty)  # the agent's PATH is where its program is looked up
    config.agents["mine"] = AgentConfig(kind="acp", command=["my-acp-agent", "--stdio"])
    engine = await open_engine(config=config, agent_factory=make_agent)
    (claude,) = await engine.create_sessions(repo, name="c", agent="claude")
    assert (claude.state, claude.state_detail) == (
        State.ERROR, "agent 'claude': command not found: npx (install Node.js for npx or change "
                     "[agents.claude] command)")
    (mine,) = await engine.create_sessions(repo, name="m", agent="mine")
    assert mine.state_detail == ("agent 'mine': command not found: my-acp-agent (install it or change "
                                 "[agents.mine] command)")


async def test_an_agent_that_wants_a_login_says_so(fake: Any) -> None:
    login = ("agent 'fake' needs authentication: set its API key (listed in [agents.fake] pass_env) or log in "
             "with its own CLI")
    engine, session = await fake("--auth", "new", ready=False)  # when the session is opened
    await until(lambda: session.state == State.ERROR)
    assert session.state_detail == login
    await engine.close()
    engine, session = await fake("--auth", "prompt")  # or only when asked to work, as Claude Code does
    events = await turn(engine, session, "hello")
    assert [e.data["text"] for e in events if e.kind == ev.ERROR] == [login]


async def test_only_listed_variables_reach_the_agent(fake: Any, monkeypatch: pytest.MonkeyPatch,
                                                     cockpit_env: Any) -> None:
    monkeypatch.setenv("FAKE_API_KEY", "sk-very-secret-value")
    monkeypatch.setenv("UNLISTED_TOKEN", "also-secret")
    engine, session = await fake(pass_env=("FAKE_API_KEY",))
    events = await turn(engine, session, "env FAKE_API_KEY UNLISTED_TOKEN COCKPIT_SESSION")
    assert json.loads(said(events)) == {"COCKPIT_SESSION": "set", "FAKE_API_KEY": "set", "UNLISTED_TOKEN": "unset"}
    await engine.close()
    for path in cockpit_env.home.rglob("*"):
        if path.is_file():
            assert b"sk-very-secret-value" not in path.read_bytes(), path


# -- restart ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("restore", ["resume", "load"])
async def test_a_restarted_cockpit_continues_the_agents_session(open_engine: Any, repo: Path, record: Any,
                                                                restore: str) -> None:
    config = fake_config("--record", record.path, "--restore", restore)
    engine = await open_engine(config=config, agent_factory=make_agent)
    (session,) = await engine.create_sessions(repo, name="acp")
    await turn(engine, session, "hello")
    (first,) = [r["session"] for r in record() if r["method"] == "new_session"]
    await engine.close()

    engine = await open_engine(config=config, agent_factory=make_agent)
    session = engine.get(session.id)
    events = await turn(engine, session, "hello")
    restored = [r for r in record() if r["method"] == f"{restore}_session"]
    assert [r["session"] for r in restored] == [first]
    assert [r["method"] for r in record()].count("new_session") == 1
    ready = [e for e in events if e.data.get("acp_session")]
    how = {"resume": "resumed", "load": "loaded"}[restore]
    assert [e.data["text"] for e in ready] == [f"Fake ACP ready ({how} ACP session)"]
    stored = await engine.transcript(session.id)
    assert not any("replayed" in e.data.get("text", "") for e in stored)  # history is not stored twice
    assert session.usage.cost_usd == 0.25  # the agent's running total is not counted again


# -- forks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("restore", ["fork", "none"])
async def test_a_fork_forks_the_agents_session_when_the_agent_can(open_engine: Any, repo: Path, record: Any,
                                                                  restore: str) -> None:
    engine = await open_engine(config=fake_config("--record", record.path, "--restore", restore),
                               agent_factory=make_agent)
    (source,) = await engine.create_sessions(repo, name="acp")
    await turn(engine, source, "hello")
    (first,) = [r["session"] for r in record() if r["method"] == "new_session"]
    (fork,) = await engine.create_sessions(repo, fork_of=source.id)
    ready = await agent_ready(engine, fork)
    forked = [r for r in record() if r["method"] == "fork_session"]
    notices = [e.data["text"] for e in await engine.transcript(fork.id) if e.kind == ev.NOTICE]
    if restore == "fork":
        assert [(r["session"], r["cwd"]) for r in forked] == [(first, str(fork.path))]
        assert ready.data["acp_session"] == forked[0]["forked"]
        assert ready.data["text"] == "Fake ACP ready (forked ACP session)"
    else:
        assert forked == [] and ready.data["text"] == "Fake ACP ready (new ACP session)"
        assert "fake cannot fork its sessions: this fork starts a new conversation" in notices
    await turn(engine, fork, "hello")  # the fork's own session, not its source's
    prompted = [r for r in record() if r["method"] == "prompt"]
    assert prompted[-1]["session"] == ready.data["acp_session"]


# -- units ------------------------------------------------------------------------------------------


def test_permission_answers_pick_the_option_the_person_chose() -> None:
    options = [schema.PermissionOption(option_id=k, name=k, kind=k)
               for k in ("allow_once", "allow_always", "reject_once", "reject_always")]

    def chosen(opts: list[Any], decision: ApprovalDecision) -> str:
        outcome = permission_outcome(opts, decision).outcome
        return getattr(outcome, "option_id", outcome.outcome)

    assert chosen(options, ApprovalDecision(True)) == "allow_once"
    assert chosen(options, ApprovalDecision(True, always=True)) == "allow_always"
    assert chosen(options, ApprovalDecision(False)) == "reject_once"
    assert chosen(options[1:2], ApprovalDecision(True)) == "allow_always"  # nothing narrower offered
    assert chosen(options[3:], ApprovalDecision(False)) == "reject_always"
    assert chosen(options[:2], ApprovalDecision(False)) == "cancelled"  # no way to say no but cancelling


def test_presets_are_acp_agents_with_their_keys() -> None:
    config = load_config()
    assert config.agents == Config().agents
    presets = {name: (a.command, a.pass_env) for name, a in config.agents.items() if a.kind == "acp"}
    assert presets == {
        "claude": (["npx", "--yes", "@zed-industries/claude-agent-acp"], ["ANTHROPIC_API_KEY"]),
        "gemini": (["gemini", "--acp"], ["GEMINI_API_KEY", "GOOGLE_API_KEY"]),
        "codex": (["npx", "--yes", "@zed-industries/codex-acp"], ["OPENAI_API_KEY"]),
        "goose": (["goose", "acp"], config.agents["goose"].pass_env),
        "opencode": (["opencode", "acp"], config.agents["opencode"].pass_env),
    }


# -- the new-session dialog --------------------------------------------------------------------------


async def test_the_new_session_dialog_offers_the_presets_and_starts_the_one_picked(
        open_engine: Any, repo: Path, record: Any) -> None:
    config = fake_config("--record", record.path, base=load_config())
    config.defaults.agent = "builtin"
    engine = await open_engine(config=config, agent_factory=make_agent)
    app = CockpitApp(engine, config, repo=str(repo), frozen_clock=0.0)
    app.animation_level = "none"
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("c")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, NewSessionDialog)
        await pilot.press(*"hosted")
        agent = dialog.query_one("#new-agent", Select)
        agent.focus()
        await pilot.press("enter")  # open the list
        await pilot.pause()
        overlay = agent.query_one(SelectOverlay)
        offered = [str(overlay.get_option_at_index(i).prompt) for i in range(overlay.option_count)]
        assert offered == ["builtin", "claude", "codex", "fake", "gemini", "goose", "opencode", "shell"]
        await pilot.press("f", "enter")  # type to find, enter to pick
        await pilot.pause()
        assert agent.value == "fake"
        dialog.query_one("#new-tags", Input).focus()
        await pilot.press("enter")
        await until(lambda: any(s.name == "hosted" for s in engine.sessions.values()))
        (session,) = [s for s in engine.sessions.values() if s.name == "hosted"]
        assert (session.agent, session.kind) == ("fake", "acp")
        await until(lambda: any(r["method"] == "new_session" for r in record()))
        await pilot.pause()


async def test_the_agent_log_lives_in_the_engines_own_home(repo: Path, record: Any, tmp_path: Path) -> None:
    """An engine opened on another home (the demo's) keeps its agents' logs there too."""
    other = tmp_path / "other-home"
    engine = await Engine.open(other, fake_config("--record", record.path), make_agent)
    try:
        (session,) = await engine.create_sessions(repo, name="acp")
        await agent_ready(engine, session)
        assert (other / "logs" / f"acp-{session.id}.log").is_file()
    finally:
        await engine.close()


async def test_a_red_pane_shows_why_the_agent_did_not_start(fake: Any, open_engine: Any, repo: Path,
                                                             tmp_path: Path) -> None:
    """Issue #12.5: a missing program or a login the agent wants showed only in `ls --json`;
    on the screen the pane was red and empty."""
    engine, login = await fake("--auth", "new", ready=False)
    await until(lambda: login.state == State.ERROR)
    config = engine.config
    config.agents["mine"] = AgentConfig(kind="acp", command=["my-acp-agent", "--stdio"])
    (missing,) = await engine.create_sessions(repo, name="m", agent="mine")
    assert missing.state == State.ERROR
    app = CockpitApp(engine, config)
    async with app.run_test(size=(200, 40)) as pilot:
        await pilot.pause(0.2)
        for session in (login, missing):
            pane = app.grid.panes[session.id]
            shown = " ".join(text for _, text in pane.tail.rows)
            assert session.state_detail.split(":")[0] in shown, (session.state_detail, shown)
            assert "✗ " + session.state_detail[:30] in shown
