"""The CLI as a script (or an agent) drives it: every step a real `cockpit` process, every fact
read from its `--json` output and exit code. The server starts on demand; the model is the
scripted one; git is real."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import run_git
from server_kit import acockpit, model_config

from cockpit.sim import ScriptedLLMServer

pytestmark = pytest.mark.slow

WRITE_THEN_SHELL = {
    "name": "write-then-shell",
    "final": "Nothing more to do.",
    "steps": [
        {"text": "Writing hello.txt.",
         "tool_calls": [{"name": "write_file",
                         "arguments": {"path": "hello.txt", "content": "hello from the agent\n"}}]},
        {"when": {"last_role": "tool"}, "text": "Let me look at it.",
         "tool_calls": [{"name": "run_shell", "arguments": {"command": "cat hello.txt"}}]},
        {"when": {"last_role": "tool", "contains": "hello from the agent"},
         "text": "All done: {last_tool_result_tail}"},
    ],
}


@pytest.fixture
async def sim() -> AsyncIterator[ScriptedLLMServer]:
    async with ScriptedLLMServer(WRITE_THEN_SHELL) as server:
        yield server


async def run_json(*args: str, cwd: Path, code: int = 0) -> Any:
    done = await acockpit(*args, "--json", cwd=cwd)
    assert done.returncode == code, f"cockpit {' '.join(args)}: exit {done.returncode}: {done.stderr}"
    return json.loads(done.stdout)


async def test_new_wait_approve_diff_merge_from_json_alone(cockpit_env, repo, sim):
    cockpit_env.write_user_config(model_config(sim.url))
    (made,) = await run_json("new", "--task", "write hello.txt and show it", cwd=repo)
    ref = made["id"]

    waited = await run_json("wait", ref, "--until", "waiting", "--timeout", "60", cwd=repo)
    assert (waited["result"], waited["sessions"][0]["state"]) == ("reached", "waiting")
    assert "cat hello.txt" in waited["sessions"][0]["state_detail"]
    assert (await run_json("approve", ref, cwd=repo)) == {"ok": True, "approve": [ref]}

    waited = await run_json("wait", ref, "--until", "idle", "--timeout", "60", cwd=repo)
    assert waited["sessions"][0]["state"] == "idle"

    change = await run_json("diff", ref, cwd=repo)
    assert [(f["path"], f["status"], f["added"]) for f in change["files"]] == [("hello.txt", "added", 1)]
    assert change["files"][0]["hunks"][0]["lines"][0]["text"] == "hello from the agent"

    merged = await run_json("merge", ref, "--message", "Add hello.txt", cwd=repo)
    assert merged["target"] == "main" and len(merged["commit"]) == 40
    assert run_git(repo, "show", "main:hello.txt") == "hello from the agent\n"
    assert run_git(repo, "log", "-1", "--format=%s", "main").strip() == "Add hello.txt"
    listed = await run_json("ls", "--all", cwd=repo)
    assert [(s["id"], s["state"]) for s in listed] == [(ref, "merged")]


async def test_wait_exit_codes_timeout_and_failure(cockpit_env, repo):
    failing = {"name": "broken", "steps": [{"status": 400, "error_message": "bad request", "times": 20}]}
    async with ScriptedLLMServer(WRITE_THEN_SHELL) as sim:
        cockpit_env.write_user_config(model_config(sim.url))
        (held,) = await run_json("new", "held", "--task", "write hello.txt", cwd=repo)
        await run_json("wait", held["id"], "--until", "waiting", "--timeout", "60", cwd=repo)
        timed_out = await run_json("wait", held["id"], "--until", "idle", "--timeout", "0.5", cwd=repo, code=1)
        assert (timed_out["result"], timed_out["sessions"][0]["state"]) == ("timed out", "waiting")
        denied = await acockpit("deny", held["id"], "--reason", "not now", cwd=repo)
        assert (denied.returncode, denied.stdout) == (0, "denied @1 held\n")

        sim.set_scenario(failing)
        (broken,) = await run_json("new", "broken", "--task", "anything", cwd=repo)
        done = await acockpit("wait", broken["id"], "--until", "idle", "--timeout", "60", "--json", cwd=repo)
        assert done.returncode == 3, done.stderr
        assert json.loads(done.stdout)["sessions"][0]["state"] == "error"
        assert done.stderr.startswith("cockpit: wait --until idle: @2 broken is error (")
        assert "bad request" in done.stderr
        assert done.stderr.count("\n") == 1

    usage = await acockpit("wait", "ghost", cwd=repo)
    assert (usage.returncode, usage.stderr) == (2, "cockpit: no session 'ghost' (see `cockpit ls`)\n")


async def test_fan_out_send_and_follow_logs_until_removed(cockpit_env, repo, sim):
    cockpit_env.write_user_config(model_config(sim.url))
    sim.set_scenario({"name": "chat", "final": "Noted: {last_user}", "steps": []})
    made = await run_json("new", "--task", "say hi", "--count", "3", "--tag", "fan", cwd=repo)
    ids = [s["id"] for s in made]
    assert [s["name"] for s in made] == ["say hi-1", "say hi-2", "say hi-3"]
    waited = await run_json("wait", *ids, "--until", "idle", "--timeout", "60", cwd=repo)
    assert [s["state"] for s in waited["sessions"]] == ["idle"] * 3

    follow = subprocess.Popen([sys.executable, "-m", "cockpit", "logs", ids[0], "--follow", "--json"], cwd=repo,
                              env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        sent = await run_json("send", "#fan", "carry on", cwd=repo)
        assert sorted(sent["sent"]) == sorted(ids)
        await run_json("wait", *ids, "--until", "idle", "--timeout", "60", cwd=repo)
        removed = await acockpit("rm", ids[0], "--yes", cwd=repo)
        assert removed.returncode == 0, removed.stderr
        out, err = await asyncio.to_thread(follow.communicate, timeout=60)
    finally:
        follow.kill()
    assert follow.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["data"]["text"] for e in events if e["kind"] == "message.user"] == ["say hi", "carry on"]
    assert "".join(e["data"]["text"] for e in events if e["kind"] in ("text", "text.delta")) == (
        "Noted: say hiNoted: carry on")
    assert events[-1]["kind"] == "session.removed"
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs))  # scrollback and live events joined without a repeat

    text = await acockpit("logs", ids[1], cwd=repo)
    assert text.returncode == 0 and "› say hi\n" in text.stdout and "› carry on\n" in text.stdout
    assert "Noted: carry on" in text.stdout
