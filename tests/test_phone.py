"""Phone notifications: the engine itself POSTs to a webhook and an ntfy-compatible URL (a real
loopback HTTP server here), naming the session, the reason and the command that answers it.

The agent is the real built-in one talking to the scripted model server; it asks to run a shell
command, which waits for approval, and nobody is attached.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from experiment_helpers import sim_config
from server_kit import acockpit, model_config
from turn_backend import wait_for
from web_helpers import receiving

from cockpit.agents.factory import make_agent
from cockpit.alerts import phone
from cockpit.alerts.phone import compose
from cockpit.config import Config, load_config_report
from cockpit.core import events as ev
from cockpit.core.attention import Attention
from cockpit.sim import ScriptedLLMServer
from cockpit.trust import TrustStore

SECRET = "s3cr3t-value-42"
COMMAND = f'echo {SECRET} && curl -H "Authorization: Bearer abcdef123456789" http://localhost/'


def _phone(config: Config, base: str, coalesce_s: float = 0.2) -> Config:
    config.notify.webhook = f"{base}/hook/tok3n"
    config.notify.ntfy = f"{base}/cockpit-topic"
    config.notify.phone_coalesce_s = coalesce_s
    return config


async def test_an_approval_reaches_the_phone_naming_session_reason_and_command(open_engine, repo, monkeypatch):
    monkeypatch.setenv("DEPLOY_TOKEN", SECRET)
    scenario = {"name": "ask", "final": "Done.",
                "steps": [{"text": "Running it.", "tool_calls": [{"name": "run_shell", "arguments": {"command": COMMAND}}]}]}
    async with ScriptedLLMServer(scenario) as sim:
        with receiving() as (base, received):
            engine = await open_engine(config=_phone(sim_config(sim.url), base), agent_factory=make_agent)
            (session,) = await engine.create_sessions(repo, name="deploy", task="deploy it")
            await wait_for(lambda: len(received) == 2, timeout=60)
            assert session.state.value == "waiting"

    hook = next(r for r in received if r.path == "/hook/tok3n")
    sent = json.loads(hook.body)
    assert hook.headers["Content-Type"] == "application/json"
    assert sent["title"] == "@1 deploy needs approval"
    (row,) = sent["sessions"]
    assert (row["number"], row["name"], row["event"], row["command"]) == (1, "deploy", "approval", "cockpit approve 1")
    assert row["reason"].startswith("approve run_shell: echo ••• && curl -H \"Authorization: Bearer •••\"")
    assert sent["message"] == f"{row['reason']}\n→ cockpit approve 1"

    ntfy = next(r for r in received if r.path == "/cockpit-topic")
    assert (ntfy.headers["Title"], ntfy.headers["Priority"], ntfy.headers["Tags"]) == (
        "@1 deploy needs approval", "high", "warning")
    assert ntfy.body.decode() == sent["message"]
    for request in received:
        assert SECRET not in request.body.decode() and "abcdef123456789" not in request.body.decode()


@pytest.mark.slow
async def test_the_background_server_sends_them_with_nobody_attached(cockpit_env, repo):
    """The CLI's own server process (started on demand, no screen anywhere) reads the user's
    config.toml and sends the message."""
    scenario = {"name": "ask", "final": "Done.",
                "steps": [{"text": "Testing.", "tool_calls": [{"name": "run_shell", "arguments": {"command": "pytest -q"}}]}]}
    async with ScriptedLLMServer(scenario) as sim:
        with receiving() as (base, received):
            cockpit_env.write_user_config(model_config(sim.url, f'[notify]\nntfy = "{base}/topic"\nphone_coalesce_s = 0.1\n'))
            done = await acockpit("new", "tests", "--task", "run the tests", cwd=repo)
            assert done.returncode == 0, done.stderr
            await wait_for(lambda: received, timeout=60)
    assert received[0].headers["Title"] == "@1 tests needs approval"
    assert received[0].body.decode() == "approve run_shell: pytest -q\n→ cockpit approve 1"


async def test_a_burst_is_one_message_and_an_approval_answered_meanwhile_is_left_out(open_engine, repo):
    with receiving() as (base, received):
        engine = await open_engine(config=_phone(Config(), base, coalesce_s=0.5))
        sessions = await engine.create_sessions(repo, name="task", count=4)
        for session in sessions:
            engine.emit(session.id, ev.APPROVAL_REQUEST, {"id": "a1", "tool": "run_shell", "title": "pytest -q"})
        engine.emit(sessions[2].id, ev.ERROR, {"text": "model said 500"})
        engine.emit(sessions[2].id, ev.APPROVAL_REQUEST, {"id": "a1", "tool": "run_shell", "title": "pytest -q"})
        engine.emit(sessions[3].id, ev.APPROVAL_RESOLVED, {"id": "a1", "approved": True})  # answered at the desk
        await wait_for(lambda: len(received) == 2)
        await asyncio.sleep(1.0)  # two more windows: nothing else goes out
        assert len(received) == 2

        sent = json.loads(next(r for r in received if r.path.startswith("/hook")).body)
        assert sent["title"] == "3 sessions need you"
        assert sent["message"].splitlines() == [
            "@1 task-1: approve run_shell: pytest -q → cockpit approve 1",
            "@2 task-2: approve run_shell: pytest -q → cockpit approve 2",
            "@3 task-3: approve run_shell: pytest -q → cockpit approve 3",
            "@3 task-3: model said 500 → cockpit resume 3",
        ]
        ntfy = next(r for r in received if r.path == "/cockpit-topic")
        assert (ntfy.headers["Title"], ntfy.headers["Priority"], ntfy.headers["Tags"]) == (
            "3 sessions need you", "high", "rotating_light")

        engine.emit(sessions[0].id, ev.SESSION_STATE, {"state": "running"})  # not in phone_events: nothing
        engine.emit(sessions[0].id, ev.SESSION_STATE, {"state": "idle"})
        engine.emit(sessions[3].id, ev.APPROVAL_REQUEST, {"id": "a2", "tool": "write_file", "title": "a.py"})
        await wait_for(lambda: len(received) == 4)
        assert json.loads(received[-1].body if received[-1].path.startswith("/hook") else received[-2].body)[
            "title"] == "@4 task-4 needs approval"


async def test_failures_and_timeouts_are_one_log_line_and_never_hold_the_engine(open_engine, repo, caplog,
                                                                              monkeypatch):
    monkeypatch.setattr(phone, "SEND_TIMEOUT_S", 0.3)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{closed.getsockname()[1]}/topic-secret"
    with receiving(status=500) as (failing, _), receiving(answer_after=3.0) as (slow, _):
        config = Config()
        config.notify.webhook, config.notify.ntfy, config.notify.phone_coalesce_s = f"{failing}/x", refused, 0.0
        engine = await open_engine(config=config)
        (session,) = await engine.create_sessions(repo, name="one")
        with caplog.at_level(logging.WARNING, logger="cockpit.phone"):
            engine.emit(session.id, ev.ERROR, {"text": "boom"})
            await wait_for(lambda: len(caplog.records) == 2)
            config.notify.webhook, config.notify.ntfy = f"{slow}/y", ""
            engine.emit(session.id, ev.ERROR, {"text": "boom again"})
            await wait_for(lambda: len(caplog.records) == 3)
            lines = sorted(r.getMessage() for r in caplog.records)
        assert "phone notification to 127.0.0.1 failed: HTTP 500" in lines
        assert "phone notification to 127.0.0.1 failed: no answer within 0.3 s" in lines
        assert any("Cannot connect to host 127.0.0.1" in line for line in lines)
        assert all(line.startswith("phone notification to 127.0.0.1 failed: ") for line in lines)
        assert not any("secret" in line or "\n" in line for line in lines)
        assert (await engine.execute({"cmd": "ls"}))[0]["name"] == "one"  # the engine went on meanwhile


async def test_only_the_users_own_config_says_where_messages_go(open_engine, cockpit_env, tmp_path: Path, make_repo):
    repo = make_repo(tmp_path / "repo")
    with receiving() as (mine, to_me), receiving() as (theirs, to_them):
        (repo / ".cockpit.toml").write_text(
            f'[notify]\nwebhook = "{theirs}/steal"\nntfy = "{theirs}/steal"\nphone_events = ["finished"]\n')
        _, report = load_config_report(repo, base=Config())
        assert report.ignored == ["notify.webhook", "notify.ntfy", "notify.phone_events"]
        TrustStore().trust(repo)  # even a trusted repository's file does not redirect them
        engine = await open_engine(config=_phone(Config(), mine))
        (session,) = await engine.create_sessions(repo, name="one")
        assert engine.config_for(session).notify.webhook == f"{theirs}/steal"
        engine.emit(session.id, ev.APPROVAL_REQUEST, {"id": "a1", "tool": "run_shell", "title": "ls"})
        await wait_for(lambda: len(to_me) == 2)
        await asyncio.sleep(0.3)
        assert to_them == []


def test_long_batches_and_names_outside_ascii():
    items = [Attention(f"s{n}", n, f"tâche-{n}", "finished", "finished its turn") for n in range(1, 14)]
    message = compose(items)
    assert message.title == "13 sessions finished" and message.priority == "default"
    assert message.body.splitlines()[-1] == "… and 3 more (cockpit ls)"
    assert message.body.splitlines()[0] == "@1 tâche-1: finished its turn → cockpit diff 1"
    encoded = phone._header("@1 tâche-1 finished")  # RFC 2047, as ntfy reads a non-ASCII title
    assert encoded.isascii() and str(make_header(decode_header(encoded))) == "@1 tâche-1 finished"
    assert phone._header("@1 task finished") == "@1 task finished"
