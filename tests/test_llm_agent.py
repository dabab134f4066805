"""The built-in agent end to end: engine → LLMAgent → litellm → local scripted server → tools.

Nothing here is mocked: the model is `cockpit.sim` over real HTTP, tools touch a real git
worktree, shell commands are real processes and events land in a real SQLite store.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from proc_helpers import pids_of, unique_sleep

from cockpit.agents.factory import make_agent
from cockpit.config import BudgetConfig, Config, ModelConfig
from cockpit.core import events as ev
from cockpit.core.engine import Engine
from cockpit.core.process import process_alive
from cockpit.core.states import State
from cockpit.sim import ScriptedLLMServer

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def server() -> AsyncIterator[ScriptedLLMServer]:
    async with ScriptedLLMServer() as srv:
        yield srv


def agent_config(url: str, **model: Any) -> Config:
    config = Config()
    config.models["default"] = ModelConfig(
        model="openai/cockpit-sim", api_base=url, retry_base_s=0.05, stall_timeout_s=5, **model
    )
    return config


async def new_session(engine: Engine, repo: Path, server: ScriptedLLMServer, scenario: dict, task: str = "go"):
    (session,) = await engine.create_sessions(repo, name="agent")
    server.set_scenario(scenario, session=session.id)
    await engine.send(session.id, task)
    return session


async def wait_state(engine: Engine, session_id: str, *states: State, timeout: float = 15) -> State:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = engine.sessions[session_id].state
        if state in states and (state == State.WAITING or not _turn_running(engine, session_id)):
            return state
        await asyncio.sleep(0.02)
    raise AssertionError(f"session stayed {engine.sessions[session_id].state}, wanted {states}")


async def wait_for(condition, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.02)


def _turn_running(engine: Engine, session_id: str) -> bool:
    backend = engine.hosts[session_id].backend
    turn = getattr(backend, "_turn", None)
    return turn is not None and not turn.done()


async def kinds(engine: Engine, session_id: str) -> list[Any]:
    return await engine.transcript(session_id)


def of(events: list[Any], kind: str) -> list[dict[str, Any]]:
    return [e.data for e in events if e.kind == kind]


async def test_a_turn_streams_text_runs_a_tool_and_ends(open_engine, repo, server):
    engine = await open_engine(agent_config(server.url), make_agent)
    scenario = {"steps": [
        {"text": "Writing the file.", "tool_calls": [{"name": "write_file", "arguments": {"path": "out/hello.txt", "content": "hi\n"}}]},
        {"when": {"last_role": "tool"}, "text": "Done: {last_tool_result}"},
    ]}
    sub = engine.subscribe()
    session = await new_session(engine, repo, server, scenario)
    assert await wait_state(engine, session.id, State.IDLE) == State.IDLE
    assert (session.path / "out" / "hello.txt").read_text() == "hi\n"
    events = await kinds(engine, session.id)
    texts = "".join(d["text"] for d in of(events, ev.TEXT))
    assert texts.startswith("Writing the file.") and "Done: created out/hello.txt" in texts
    assert of(events, ev.TOOL_CALL)[0]["arguments"] == {"path": "out/hello.txt", "content": "hi\n"}
    assert of(events, ev.TOOL_RESULT)[0]["ok"] is True
    live = [e for e in sub.get_nowait() if e.session == session.id]
    assert sum(1 for e in live if e.kind == ev.TEXT_DELTA) > 3  # streamed, not delivered whole
    usage = engine.sessions[session.id].usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.cost_known is False and usage.cost_usd == 0  # litellm has no price for it


async def test_approval_granted_runs_the_command_and_denial_reaches_the_model(open_engine, repo, server):
    engine = await open_engine(agent_config(server.url), make_agent)
    scenario = {"steps": [
        {"text": "Testing.", "tool_calls": [{"name": "run_shell", "arguments": {"command": "echo ran > marker.txt"}}]},
        {"when": {"last_role": "tool"}, "text": "Again.", "tool_calls": [{"name": "run_shell", "arguments": {"command": "echo again > second.txt"}}]},
        {"when": {"last_role": "tool"}, "text": "I saw: {last_tool_result}"},
    ]}
    session = await new_session(engine, repo, server, scenario)
    await wait_state(engine, session.id, State.WAITING)
    (first,) = engine.hosts[session.id].pending
    assert not (session.path / "marker.txt").exists()  # nothing ran before approval
    await engine.approve(session.id)
    await wait_for(lambda: set(engine.hosts[session.id].pending) - {first})
    assert (session.path / "marker.txt").read_text() == "ran\n"
    await engine.deny(session.id, reason="not that file")
    await wait_state(engine, session.id, State.IDLE)
    assert not (session.path / "second.txt").exists()
    events = await kinds(engine, session.id)
    results = of(events, ev.TOOL_RESULT)
    assert results[1]["denied"] is True and results[1]["output"] == "denied by the person: not that file"
    assert "denied by the person: not that file" in server.requests[-1]["messages"][-1]["content"]
    states = [d["state"] for d in of(events, ev.SESSION_STATE)]
    assert states.count("waiting") == 2


@pytest.mark.parametrize("path", ["../outside.txt", "/etc/hostname", "link/secret.txt", ".git/config"])
async def test_path_escapes_are_refused_and_the_model_is_told(open_engine, repo, server, tmp_path, path):
    engine = await open_engine(agent_config(server.url), make_agent)
    outside = tmp_path / "outside-dir"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    (session,) = await engine.create_sessions(repo, name="agent")
    (session.path / "link").symlink_to(outside)  # planted by a previous command, say
    server.set_scenario({"steps": [
        {"tool_calls": [{"name": "write_file", "arguments": {"path": path, "content": "pwned"}}]},
        {"when": {"last_role": "tool"}, "text": "ok"},
    ]}, session=session.id)
    await engine.send(session.id, "go")
    await wait_state(engine, session.id, State.IDLE)
    result = of(await kinds(engine, session.id), ev.TOOL_RESULT)[0]
    assert result["ok"] is False and "refused" in result["output"]
    assert (outside / "secret.txt").read_text() == "secret\n"
    assert not (tmp_path / "outside.txt").exists()
    assert "refused" in server.requests[-1]["messages"][-1]["content"]


async def test_429_then_success_is_retried_with_a_notice(open_engine, repo, server):
    engine = await open_engine(agent_config(server.url), make_agent)
    session = await new_session(engine, repo, server, {"steps": [{"status": 429, "retry_after": 0}, {"text": "made it"}]})
    await wait_state(engine, session.id, State.IDLE)
    events = await kinds(engine, session.id)
    assert any("retry 1/4" in d["text"] for d in of(events, ev.NOTICE))
    assert "made it" in "".join(d["text"] for d in of(events, ev.TEXT))


async def test_500_until_give_up_then_resume(open_engine, repo, server):
    engine = await open_engine(agent_config(server.url, retries=2), make_agent)
    session = await new_session(engine, repo, server, {"steps": [{"status": 500, "times": 3}, {"text": "back again"}]})
    await wait_state(engine, session.id, State.ERROR)
    assert "gave up after 3 tries" in engine.sessions[session.id].state_detail
    await engine.send(session.id, "try again")  # resume
    await wait_state(engine, session.id, State.IDLE)
    assert "back again" in "".join(d["text"] for d in of(await kinds(engine, session.id), ev.TEXT))


async def test_disconnect_mid_stream_discards_the_partial_answer_and_retries(open_engine, repo, server):
    engine = await open_engine(agent_config(server.url), make_agent)
    session = await new_session(engine, repo, server, {"steps": [
        {"text": "this answer breaks off half way through", "disconnect": 3},
        {"text": "complete answer"},
    ]})
    await wait_state(engine, session.id, State.IDLE)
    events = await kinds(engine, session.id)
    assert of(events, ev.MESSAGE_END)[0].get("discarded") is True
    # the model's history holds only the complete answer
    backend = engine.hosts[session.id].backend
    assistant = [m["content"] for m in backend._messages if m["role"] == "assistant"]
    assert assistant == ["complete answer"]


async def test_malformed_tool_arguments_go_back_to_the_model(open_engine, repo, server):
    engine = await open_engine(agent_config(server.url), make_agent)
    session = await new_session(engine, repo, server, {"steps": [
        {"tool_calls": [{"name": "read_file", "arguments": {"path": "README.md"}}], "malformed_tool_args": True},
        {"when": {"last_role": "tool"}, "text": "sorry: {last_tool_result}"},
    ]})
    await wait_state(engine, session.id, State.IDLE)
    result = of(await kinds(engine, session.id), ev.TOOL_RESULT)[0]
    assert result["ok"] is False and "not valid JSON" in result["output"]
    assert "not valid JSON" in server.requests[-1]["messages"][-1]["content"]


async def test_interrupt_kills_a_running_command(open_engine, repo, server):
    config = agent_config(server.url)
    config.approval.preset = "auto"
    engine = await open_engine(config, make_agent)
    duration = unique_sleep()
    session = await new_session(engine, repo, server, {"steps": [
        {"tool_calls": [{"name": "run_shell", "arguments": {"command": f"sleep {duration} & touch started; wait"}}]},
    ]})
    deadline = time.monotonic() + 10
    while not (session.path / "started").exists():  # the sandbox lets it write the worktree only
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    (pid,) = pids_of(["sleep", duration])  # its pid outside the sandbox's pid namespace
    started = time.monotonic()
    await engine.interrupt(session.id)
    assert engine.sessions[session.id].state == State.IDLE
    while process_alive(pid):
        # generous (the machine is shared), yet far below the 60 s the sleep would live on its own
        assert time.monotonic() - started < 15.0, "sleep 60 survived the interrupt"
        await asyncio.sleep(0.02)
    events = await kinds(engine, session.id)
    assert of(events, ev.TURN_END)[-1].get("interrupted") is True




async def test_the_api_key_never_lands_in_the_database_or_logs(open_engine, repo, server, monkeypatch, cockpit_env):
    secret = "sk-test-" + "k3y" * 10
    monkeypatch.setenv("COCKPIT_TEST_KEY", secret)
    engine = await open_engine(agent_config(server.url, api_key_env="COCKPIT_TEST_KEY"), make_agent)
    session = await new_session(engine, repo, server, {"steps": [
        {"tool_calls": [{"name": "read_file", "arguments": {"path": "README.md"}}]},
        {"when": {"last_role": "tool"}, "text": "ok"},
    ]})
    await wait_state(engine, session.id, State.IDLE)
    await engine.close()
    leaked = [p for p in cockpit_env.home.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert leaked == []


async def test_memory_file_goes_into_the_system_prompt_and_history_survives_restart(open_engine, make_repo, tmp_path, server):
    repo = make_repo(tmp_path / "mem", {"AGENTS.md": "Always answer in haiku.\n"})
    config = agent_config(server.url)
    engine = await open_engine(config, make_agent)
    session = await new_session(engine, repo, server, {"steps": [{"text": "first answer"}, {"text": "second answer"}]}, task="first question")
    await wait_state(engine, session.id, State.IDLE)
    assert "Always answer in haiku." in server.requests[-1]["messages"][0]["content"]
    await engine.close()
    engine = await open_engine(config, make_agent)
    await engine.send(session.id, "second question")
    await wait_state(engine, session.id, State.IDLE)
    sent = [(m["role"], m["content"]) for m in server.requests[-1]["messages"][1:]]
    assert sent == [("user", "first question"), ("assistant", "first answer"), ("user", "second question")]


async def test_context_is_trimmed_near_the_window_and_the_transcript_says_so(open_engine, repo, server):
    engine = await open_engine(agent_config(server.url, context_window=3000, max_output_tokens=200), make_agent)
    big = " ".join(f"w{i:04d}" for i in range(1500))  # ~2200 tokens each (varied: litellm flags repeats)
    session = await new_session(engine, repo, server, {"steps": [{"text": big}, {"text": big}, {"text": "short"}]}, task="one")
    await wait_state(engine, session.id, State.IDLE)
    for question in ("two", "three"):
        await engine.send(session.id, question)
        await wait_state(engine, session.id, State.IDLE)
    notices = [d["text"] for d in of(await kinds(engine, session.id), ev.NOTICE)]
    assert any(n.startswith("context nearly full: dropped") for n in notices), (notices, [len(str(r["messages"])) for r in server.requests])
    contents = [m.get("content") or "" for m in server.requests[-1]["messages"]]
    assert "one" not in contents and contents[-1] == "three"


async def test_budget_cap_stops_the_agent_before_it_spends_more(open_engine, repo, server):
    config = agent_config(server.url)
    config.budgets = BudgetConfig(session_tokens=50)
    engine = await open_engine(config, make_agent)
    session = await new_session(engine, repo, server, {"steps": [{"text": "a b c d " * 20}, {"text": "never"}]})
    await wait_state(engine, session.id, State.IDLE)
    calls = len(server.requests)
    await engine.send(session.id, "more please")
    await wait_state(engine, session.id, State.IDLE)
    assert len(server.requests) == calls  # no new model call
    errors = of(await kinds(engine, session.id), ev.ERROR)
    assert errors and "session budget of 50 tokens" in errors[-1]["text"]


async def test_one_agents_fault_never_touches_another(open_engine, repo, server):
    engine = await open_engine(agent_config(server.url, retries=0), make_agent)
    bad = await new_session(engine, repo, server, {"steps": [{"status": 500, "times": 5}]})
    good = await new_session(engine, repo, server, {"steps": [{"text": "fine here"}]})
    assert await wait_state(engine, bad.id, State.ERROR) == State.ERROR
    assert await wait_state(engine, good.id, State.IDLE) == State.IDLE
    assert os.path.isdir(good.worktree)


async def test_a_task_recorded_without_agents_runs_on_resume(open_engine, repo, server):
    config = agent_config(server.url)
    cli_engine = await open_engine(config)  # like `cockpit new --task`: no agents in that process
    (session,) = await cli_engine.create_sessions(repo, name="later", task="do the thing")
    assert session.state == State.IDLE and "resume" in session.state_detail
    await cli_engine.close()
    engine = await open_engine(config, make_agent)
    server.set_scenario({"steps": [{"text": "doing the thing"}]}, session=session.id)
    await engine.resume(session.id)
    await wait_state(engine, session.id, State.IDLE)
    assert server.requests[-1]["messages"][-1] == {"role": "user", "content": "do the thing"}
    assert "doing the thing" in "".join(d["text"] for d in of(await kinds(engine, session.id), ev.TEXT))


async def test_after_a_turn_the_engine_reports_what_the_session_changed(open_engine, repo, server):
    engine = await open_engine(agent_config(server.url), make_agent)
    scenario = {"steps": [
        {"tool_calls": [{"name": "write_file", "arguments": {"path": "new.txt", "content": "a\nb\nc\n"}}]},
        {"when": {"last_role": "tool"}, "tool_calls": [{"name": "edit_file", "arguments": {"path": "README.md", "search": "hello\n", "replace": "hi\nthere\n"}}]},
        {"when": {"last_role": "tool"}, "text": "done"},
    ]}
    session = await new_session(engine, repo, server, scenario)
    await wait_state(engine, session.id, State.IDLE)
    await wait_for(lambda: engine._tasks == set())
    stats = of(await kinds(engine, session.id), ev.DIFF_STAT)
    assert stats[-1] == {"files": 2, "added": 5, "removed": 1}  # new.txt +3; README -1 +2


async def test_no_api_key_says_which_variable_to_set_and_where(open_engine, repo, monkeypatch):
    """Issue #12.5: without a key the pane showed litellm's message cut mid-word ("…ANTHROP")."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    config = Config()
    config.models["default"] = ModelConfig(model="anthropic/claude-sonnet-4-5")
    engine = await open_engine(config=config, agent_factory=make_agent)
    (session,) = await engine.create_sessions(repo, name="agent")
    await engine.send(session.id, "go")
    await wait_state(engine, session.id, State.ERROR)
    (error,) = of(await kinds(engine, session.id), ev.ERROR)
    assert error["text"] == (
        "no API key for anthropic/claude-sonnet-4-5: set ANTHROPIC_API_KEY in the environment the cockpit runs "
        "in, or choose another model (model, api_key_env) under [models.default] in config.toml; "
        "`cockpit demo` needs no key")
    assert engine.sessions[session.id].state_detail == error["text"]


async def test_a_long_provider_message_is_cut_between_words() -> None:
    from cockpit.agents.llm_client import classify

    reason = str(classify(ValueError("Please set the variable " + "ANTHROPIC_API_KEY " * 40)))
    assert reason.endswith("ANTHROPIC_API_KEY …") and len(reason) < 330
