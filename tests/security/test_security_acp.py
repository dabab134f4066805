"""Attack replays for issue #13.3 (ACP agents can freeze the server and run commands unseen) and
the ACP log rotation of #13.6.

Every test drives the real Engine with `tests/fake_acp_agent.py` (a real ACP agent process) or
the built-in agent against the scripted model server, on real git repositories; processes are
looked for in /proc, never assumed gone.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the helpers of tests/test_acp_agent.py

from conftest import make_repo  # noqa: E402
from proc_helpers import pids_of, unique_sleep  # noqa: E402
from test_acp_agent import TIMEOUT, approving, fake, record, said, turn, until  # noqa: E402, F401 - fixtures too

from cockpit.agents.acp_client import ConfinedFiles  # noqa: E402
from cockpit.agents.factory import make_agent  # noqa: E402
from cockpit.agents.file_io import read_regular  # noqa: E402
from cockpit.agents.log_pump import LOG_MAX_BYTES  # noqa: E402
from cockpit.agents.shell import ShellRunner  # noqa: E402
from cockpit.agents.tools import run_tool  # noqa: E402
from cockpit.agents.workspace import PathRefused, Workspace  # noqa: E402
from cockpit.config import Config, ModelConfig  # noqa: E402
from cockpit.core import containment  # noqa: E402
from cockpit.core import events as ev  # noqa: E402
from cockpit.core.containment import session_cgroup, session_key  # noqa: E402
from cockpit.core.process import (
    process_alive,  # noqa: E402
    run_process,  # noqa: E402
)
from cockpit.core.sandbox import availability  # noqa: E402
from cockpit.core.states import State  # noqa: E402
from cockpit.server.daemon import stop_server  # noqa: E402
from cockpit.server.paths import ServerPaths  # noqa: E402
from cockpit.sim import ScriptedLLMServer  # noqa: E402


def sleepers(token: str) -> list[int]:
    """Live (not zombie) processes running `sleep <token>`, from /proc."""
    return [pid for argv in (["sleep", token], ["/usr/bin/sleep", token]) for pid in pids_of(argv)
            if process_alive(pid)]


def escaping(token: str) -> str:
    """A shell line leaving `sleep <token>` behind in a session of its own: it returns only once
    the sleep has called setsid (else the command's group kill could catch it first)."""
    return (f"setsid sleep {token} >/dev/null 2>&1 & p=$!; "
            "until [ \"$(cut -d' ' -f6 /proc/$p/stat)\" = \"$p\" ]; do :; done")




# -- row: FIFO + concurrent reads froze the thread pool ---------------------------------------------


async def test_twelve_reads_of_a_fifo_fail_cleanly_and_the_engine_keeps_answering(
        fake: Any, record: Any, make_repo: Any, tmp_path: Path) -> None:
    """Attack row "FIFO + 12 concurrent fs/read_text_file": the agent makes a FIFO through
    terminal/create and reads it 12 times at once. Each read (and a write) is refused naming the
    FIFO, the turn ends, and the engine still creates a session in another repo and lists them,
    and the shared default thread pool still runs work."""
    engine, session = await fake(preset="auto")
    async with approving(engine, session):  # the mkfifo
        events = await turn(engine, session, "fifo 12 pipe")
    assert said(events) == "12 of 12 reads refused"
    (attack,) = [r for r in record() if r["method"] == "fifo"]
    assert all("pipe is a FIFO (named pipe), not a regular file" in error for error in attack["errors"])
    assert "pipe is a FIFO (named pipe), not a regular file" in attack["write"]
    assert (session.path / "pipe").exists()  # the FIFO is there: the refusal is not a missing file

    other = make_repo(tmp_path / "other")
    (created,) = await asyncio.wait_for(engine.create_sessions(other, name="after"), TIMEOUT)
    listed = await asyncio.wait_for(engine.execute({"cmd": "ls"}), TIMEOUT)
    assert created.id in str(listed)
    assert await asyncio.wait_for(asyncio.to_thread(lambda: "free"), TIMEOUT) == "free"
    assert said(await turn(engine, session, "read README.md")) == "read: hello\n"  # reads still work


def test_devices_sockets_and_fifos_are_refused_without_being_opened(tmp_path: Path) -> None:
    """Attack row "FIFO + concurrent reads", the other kinds: a FIFO with a writer attached,
    a socket and (as root) a character device in the worktree are refused by name for reading
    and writing, and a file over the read cap is refused; a regular file still reads."""
    worktree = make_repo(tmp_path / "wt")
    files = ConfinedFiles(worktree)
    os.mkfifo(worktree / "pipe")
    holder = os.open(worktree / "pipe", os.O_RDWR | os.O_NONBLOCK)  # a FIFO with both ends open
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(worktree / "sock"))
    kinds = {"pipe": "a FIFO (named pipe)", "sock": "a socket"}
    if os.geteuid() == 0:
        os.mknod(worktree / "tty", 0o600 | stat.S_IFCHR, os.makedev(5, 0))  # /dev/tty
        kinds["tty"] = "a character device"
    try:
        for name, kind in kinds.items():
            said_so = re.escape(f"{name} is {kind}, not a regular file")
            with pytest.raises(PathRefused, match=said_so):
                files.read(str(worktree / name), None, None)
            with pytest.raises(PathRefused, match=said_so):
                files.write(name, "x")
    finally:
        os.close(holder)
        server.close()
    assert files.read(str(worktree / "README.md"), None, None) == "hello\n"
    (worktree / "big.bin").write_bytes(b"x" * 11)
    with pytest.raises(PathRefused, match="larger than 10 bytes"):
        read_regular(worktree / "big.bin", "big.bin", 10)


async def test_the_built_in_agents_file_tools_refuse_a_fifo_too(tmp_path: Path) -> None:
    """Attack row "FIFO + concurrent reads", through the built-in agent's tools: read_file and
    write_file on a FIFO are refused by name (each blocked a pool thread for good before)."""
    workspace = Workspace(make_repo(tmp_path / "wt"))
    os.mkfifo(workspace.root / "pipe")
    runner = ShellRunner()
    for name, args in (("read_file", {"path": "pipe"}), ("write_file", {"path": "pipe", "content": "x"})):
        outcome = await asyncio.wait_for(run_tool(workspace, name, args, shell_runner=lambda cmd, t: runner.run(
            cmd, workspace.root, {}, t)), TIMEOUT)
        assert not outcome.ok and "pipe is a FIFO (named pipe), not a regular file" in outcome.output


# -- row: terminal/create ran any command with no approval and no transcript entry -----------------


async def test_terminal_create_asks_under_ask_shell_and_shows_in_the_transcript(fake: Any, record: Any) -> None:
    """Attack row "terminal/create runs any command unasked and unseen": under `ask-shell` the
    command waits for the person as a `run_shell` approval; denied, it never runs; approved, it
    runs and its output is in the transcript, though the agent reports no tool call."""
    engine, session = await fake()
    subscription = engine.subscribe(accept=lambda e: e.session == session.id)
    await engine.send(session.id, "spawn echo unseen > proof.txt")
    request = await asyncio.wait_for(_next(subscription, ev.APPROVAL_REQUEST), TIMEOUT)
    assert (request.data["tool"], request.data["title"]) == ("run_shell", "echo unseen > proof.txt")
    assert session.state == State.WAITING
    await engine.deny(session.id, reason="no")
    await asyncio.wait_for(_next(subscription, ev.TURN_END), TIMEOUT)
    assert not (session.path / "proof.txt").exists()
    assert "denied by the person: no" in [r for r in record() if r["method"] == "spawn"][0]["refused"]

    await engine.send(session.id, "spawn echo seen")
    await asyncio.wait_for(_next(subscription, ev.APPROVAL_REQUEST), TIMEOUT)
    await engine.approve(session.id)
    await asyncio.wait_for(_next(subscription, ev.TURN_END), TIMEOUT)
    subscription.close()
    transcript = await engine.transcript(session.id)
    calls = [e.data for e in transcript if e.kind == ev.TOOL_CALL]
    results = [e.data for e in transcript if e.kind == ev.TOOL_RESULT]
    assert [c["arguments"]["command"] for c in calls] == ["echo unseen > proof.txt", "echo seen"]
    assert {c["name"] for c in calls} == {"run_shell"}
    assert results[0]["denied"] is True and results[0]["output"] == "denied by the person: no"
    assert (results[1]["ok"], results[1]["output"]) == (True, "exit code 0\nseen\n")


@pytest.mark.skipif(not availability().ok, reason="no sandbox here")
async def test_terminal_create_runs_in_the_sessions_sandbox(fake: Any, record: Any, tmp_path: Path) -> None:
    """Attack row "terminal/create runs any command unseen", confinement: the command runs
    through the shell tool's launch path, so in the sandbox: it writes in the worktree, and a
    file it writes outside the worktree never reaches the real file system."""
    engine, session = await fake()
    outside = tmp_path / "outside.txt"
    async with approving(engine, session):
        await turn(engine, session, f"spawn touch inside.txt {outside}; echo done")
    (spawn,) = [r for r in record() if r["method"] == "spawn"]
    assert spawn["output"].endswith("done\n")
    assert (session.path / "inside.txt").exists() and not outside.exists()


async def test_terminal_create_is_refused_under_a_deny_policy(fake: Any, record: Any) -> None:
    """Attack row "terminal/create runs any command unasked": where the policy denies the shell
    (`read-only`), terminal/create is refused without asking, and the refusal is in the transcript."""
    engine, session = await fake(preset="read-only")
    events = await turn(engine, session, "spawn touch owned.txt")
    assert not [e for e in events if e.kind == ev.APPROVAL_REQUEST]
    assert not (session.path / "owned.txt").exists()
    (spawn,) = [r for r in record() if r["method"] == "spawn"]
    assert "denied by policy: run_shell is 'deny' under the 'read-only' preset" in spawn["refused"]
    (result,) = [e.data for e in events if e.kind == ev.TOOL_RESULT]
    assert result["denied"] is True and result["name"] == "run_shell"


# -- row: `setsid sleep 300` outlived the session's removal ------------------------------------------


async def test_setsid_processes_of_an_acp_session_die_with_its_removal(fake: Any) -> None:
    """Attack row "setsid sleep 300 outlived the session's removal": one started through
    terminal/create, one started by the agent itself (holding the agent's pipes); both run
    after their turns, and neither is left in /proc once the session is removed. Without the
    sandbox, whose own pid namespace would end the first with its command: this is the layer
    beneath it, and the only one for what the agent starts itself."""
    engine, session = await fake(sandbox=False)
    by_terminal, by_agent = unique_sleep(300), unique_sleep(300)
    async with approving(engine, session):
        await turn(engine, session, f"spawn {escaping(by_terminal)}")
    assert said(await turn(engine, session, f"escape {by_agent}")) == "escaped"
    await until(lambda: sleepers(by_terminal) and sleepers(by_agent))
    key = session_key(engine.hosts[session.id].env)
    assert key is not None
    cgroup = session_cgroup(key)
    assert cgroup is None or cgroup.is_dir()  # None: no writable cgroup v2 here, the /proc sweep does it
    await asyncio.wait_for(engine.remove(session.id), TIMEOUT)
    await until(lambda: not sleepers(by_terminal) and not sleepers(by_agent))
    assert cgroup is None or not cgroup.exists()  # and no empty cgroup is left behind


async def test_without_cgroups_the_proc_sweep_finds_escaped_processes_by_their_variables(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Attack row "setsid sleep 300 outlived the session's removal", where no cgroup v2 is
    writable: a `setsid` sleep (its variables intact) and one started with `env -i` by a
    process of the session that stays its parent are both found in /proc and killed; a process
    of another session is left alone."""
    monkeypatch.setattr(containment, "cgroup_base", lambda: None)
    ours = {**os.environ, "COCKPIT_SESSION": "s1", "COCKPIT_WORKTREE": str(tmp_path)}
    theirs = {**ours, "COCKPIT_SESSION": "s2"}
    escaped, wiped, other = unique_sleep(300), unique_sleep(300), unique_sleep(300)
    await run_process(["/bin/sh", "-c", escaping(escaped)], tmp_path, ours, TIMEOUT)
    parent = subprocess.Popen(["/bin/sh", "-c", f"env -i sleep {wiped}; :"], env=ours, start_new_session=True)
    bystander = subprocess.Popen(["sleep", other], env=theirs)
    try:
        await until(lambda: sleepers(escaped) and sleepers(wiped) and sleepers(other))
        assert await containment.end_session_processes(ours) >= 2
        await until(lambda: not sleepers(escaped) and not sleepers(wiped))
        parent.wait(TIMEOUT)
        assert sleepers(other)
    finally:
        bystander.kill()
        bystander.wait()


async def test_terminal_variables_are_approved_and_cannot_unmark_the_session(fake: Any) -> None:
    """Attack row "setsid sleep 300 outlived the session's removal", hiding: the agent passes
    ACP variables with its command, one overriding the session's marker. The person is asked
    about the whole line, variables included, and the sleep still dies with the session."""
    engine, session = await fake(sandbox=False)
    token = unique_sleep(300)
    subscription = engine.subscribe(accept=lambda e: e.session == session.id)
    await engine.send(session.id, f"spawn COCKPIT_SESSION=elsewhere HIDDEN=1 {escaping(token)}")
    request = await asyncio.wait_for(_next(subscription, ev.APPROVAL_REQUEST), TIMEOUT)
    assert request.data["title"] == f"COCKPIT_SESSION=elsewhere HIDDEN=1 {escaping(token)}"
    await engine.approve(session.id)
    await asyncio.wait_for(_next(subscription, ev.TURN_END), TIMEOUT)
    subscription.close()
    await until(lambda: sleepers(token))
    await asyncio.wait_for(engine.remove(session.id), TIMEOUT)
    await until(lambda: not sleepers(token))


async def test_setsid_processes_of_the_shell_tool_die_with_the_session(open_engine: Any, repo: Path) -> None:
    """Attack row "setsid sleep 300 outlived the session's removal", through the built-in
    agent's shell tool: the command's group ends with it, the `setsid` one with the session."""
    token = unique_sleep(300)
    async with ScriptedLLMServer() as server:
        config = Config()
        config.models["default"] = ModelConfig(model="openai/cockpit-sim", api_base=server.url,
                                               retry_base_s=0.05, stall_timeout_s=5)
        config.sandbox.enabled = False  # the layer beneath the sandbox, as in the test above
        engine = await open_engine(config, make_agent)
        (session,) = await engine.create_sessions(repo, name="shell")
        server.set_scenario({"steps": [{"tool_calls": [{"name": "run_shell", "arguments": {
            "command": escaping(token)}}]}]}, session=session.id)
        async with approving(engine, session):
            await engine.send(session.id, "go")
            await until(lambda: sleepers(token))
            await until(lambda: session.state == State.IDLE)
        assert sleepers(token)  # the command has ended; its setsid child has not
        await asyncio.wait_for(engine.remove(session.id), TIMEOUT)
        await until(lambda: not sleepers(token))


# -- row: ACP stderr logs had no size cap -----------------------------------------------------------


async def test_the_agents_stderr_log_is_rotated_at_its_cap(fake: Any, cockpit_env: Any) -> None:
    """Attack row "#13.6 ACP stderr logs grow without end": 10 MiB of stderr leave the log and
    one older file, each within the cap, and the agent still answers (the pipe kept flowing)."""
    engine, session = await fake("--spew-stderr", str(10 * 1024 * 1024))
    assert said(await turn(engine, session, "hello")) == "Hello, world"
    log = cockpit_env.home / "logs" / f"acp-{session.id}.log"
    old = log.with_name(log.name + ".1")
    assert 0 < log.stat().st_size <= LOG_MAX_BYTES and 0 < old.stat().st_size <= LOG_MAX_BYTES
    assert oct(log.stat().st_mode & 0o777) == oct(0o600)
    assert sorted(p.name for p in log.parent.iterdir() if p.name.startswith(log.name)) == [log.name, old.name]


# -- row: `server stop` said stopped while the process lived -----------------------------------------


def test_server_stop_returns_only_once_the_process_is_gone(cockpit_env: Any) -> None:
    """Attack row "server stop said stopped while the process lived": a server that lets go of
    its lock on SIGTERM but does not exit (as one with a thread stuck in a read) is killed, and
    stop returns only when its pid is gone."""
    paths = ServerPaths(cockpit_env.home)
    script = textwrap.dedent("""
        import signal, sys, time
        from cockpit.server.lock import SERVER, EngineLock
        from cockpit.server.paths import ServerPaths
        lock = EngineLock(ServerPaths.for_home())
        lock.acquire(SERVER)
        signal.signal(signal.SIGTERM, lambda *_: lock.release())
        print("locked", flush=True)
        while True:
            time.sleep(1)
    """)
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=os.environ.copy())
    try:
        assert server.stdout is not None and server.stdout.readline() == b"locked\n"
        holder = stop_server(paths, timeout=1.0)
        assert holder is not None and holder.pid == server.pid
        assert not process_alive(server.pid)
    finally:
        server.kill()
        server.wait()


async def _next(subscription: Any, kind: str) -> Any:
    while True:
        event = await subscription.get()
        if event.kind == kind:
            return event
