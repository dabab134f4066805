"""The screen attached to servers: detaching leaves agents running, several hosts in one screen.

The app runs under Pilot on real clients of real background servers; the last test runs the
real `cockpit` in tmux and closes the terminal under it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from server_kit import (
    acockpit,
    attached,
    model_config,
    server_pid,
    start_server,
    streaming,
    until,
)

from cockpit.client.multi import MultiClient
from cockpit.client.remote import RemoteClient, socket_opener
from cockpit.config import load_config
from cockpit.core import events as ev
from cockpit.core.process import process_alive
from cockpit.server.daemon import stop_server
from cockpit.server.paths import ServerPaths
from cockpit.sim import ScriptedLLMServer
from cockpit.ui.app import CockpitApp
from cockpit.ui.text import header_text

pytestmark = pytest.mark.slow


@pytest.fixture
async def sim() -> AsyncIterator[ScriptedLLMServer]:
    async with ScriptedLLMServer(streaming(words=1200, rate=40)) as server:  # 30 s: never over mid-test
        yield server


async def pilot_until(pilot: Any, condition: Callable[[], Any], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


@pytest.mark.parametrize("key", ["ctrl+d", "q"])
async def test_detaching_leaves_the_agents_streaming(cockpit_env, repo, sim, key):
    cockpit_env.write_user_config(model_config(sim.url))
    paths = await start_server(cockpit_env.home, repo)
    pid = server_pid(paths)
    client = RemoteClient(socket_opener(paths), reconnect=True)
    await client.connect()
    app = CockpitApp(client, load_config())
    async with app.run_test(size=(120, 40)) as pilot:
        await app.run_command({"cmd": "create", "repo": str(repo), "name": "long", "task": "stream"})
        await pilot_until(pilot, lambda: app.sessions and next(iter(app.sessions.values()))["state"] == "running",
                          "the agent streaming on screen")
        await pilot.press(key)
        await pilot_until(pilot, lambda: not app.is_running, "the screen to close")
    await client.close()

    watcher = await attached(paths)  # the agent went on without a screen, in the same server
    assert server_pid(paths) == pid
    (session,) = watcher.snapshot()
    assert session["state"] == "running"
    seen = watcher.subscribe()
    deltas = 0
    while deltas < 5:
        deltas += sum(1 for e in seen.get_nowait() if e.kind == ev.TEXT_DELTA)
        await asyncio.sleep(0.05)
    await watcher.close()


async def test_an_in_process_screen_has_nothing_to_detach_from(engine):
    app = CockpitApp(engine, engine.config)
    async with app.run_test() as pilot:
        await pilot.press("ctrl+d")
        await pilot.pause(0.1)
        assert app.is_running  # the agents live in this process: ctrl+d only says so
        assert any("--local" in str(n.message) for n in app._notifications)


async def test_several_hosts_in_one_screen_labelled_and_routed(cockpit_env, tmp_path, make_repo, sim):
    """Two cockpit homes play two machines (the transport differs from ssh only in how bytes move)."""
    cockpit_env.write_user_config(model_config(sim.url))
    sim.set_scenario({"name": "chat", "final": "Noted: {last_user}", "steps": []})
    repos = {name: make_repo(tmp_path / f"{name}-repo") for name in ("alpha", "beta")}
    servers = {name: await start_server(tmp_path / name, repo) for name, repo in repos.items()}
    clients = {name: RemoteClient(socket_opener(paths), host=name, reconnect=True) for name, paths in servers.items()}
    multi = MultiClient(clients)
    try:
        await multi.connect()
        for name, repo in repos.items():
            await multi.execute({"cmd": "create", "host": name, "repo": str(repo), "name": "work"})
        app = CockpitApp(multi, load_config(), label="on alpha, beta")
        async with app.run_test(size=(160, 40)) as pilot:
            await pilot_until(pilot, lambda: len(app.grid.panes) == 2, "a pane per host")
            by_host = {pane.session["host"]: pane for pane in app.grid.panes.values()}
            assert sorted(by_host) == ["alpha", "beta"]
            assert [pane.session["number"] for pane in by_host.values()] == [1, 1]  # each host numbers its own
            assert "beta" in header_text(by_host["beta"].session, marked=False, spinner="", stats={})

            sent = await app.run_command({"cmd": "send_line", "line": "@beta:1 only to beta"})
            assert sent == [by_host["beta"].session_id]
            sent = await app.run_command({"cmd": "send_line", "line": "@1 to every first session"})
            assert sorted(sent) == sorted(pane.session_id for pane in by_host.values())
            await pilot.press("ctrl+d")
        for name, client in clients.items():
            (session,) = client.snapshot()
            messages = [e.data["text"] for e in await client.transcript(session["id"]) if e.kind == ev.USER_MESSAGE]
            assert messages == {"alpha": ["to every first session"],
                                "beta": ["only to beta", "to every first session"]}[name]
    finally:
        await multi.close()
        for paths in servers.values():
            await asyncio.to_thread(stop_server, paths)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed: cannot drive a real terminal")
async def test_detach_key_and_a_closed_terminal_leave_the_agents_running(cockpit_env, repo, sim, tmp_path):
    """The real `cockpit` in tmux: ctrl+d detaches (exit 0); closing the terminal (SIGHUP) kills
    the screen only; the agent streams on in the server and finishes its turn."""
    from test_ui_tmux import Tmux

    cockpit_env.write_user_config(model_config(sim.url))
    sim.set_scenario(streaming(words=800, rate=40))  # 20 s: still streaming when the terminal closes
    made = await acockpit("new", "long", "--task", "stream", "--json", cwd=repo)
    assert made.returncode == 0, made.stderr
    paths = ServerPaths(cockpit_env.home)
    pid = server_pid(paths)
    passed = {k: v for k, v in os.environ.items() if k.startswith(("COCKPIT_", "XDG_", "GIT_"))}
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(passed.items()))
    app_pid = tmp_path / "app.pid"
    screen = "sh -c " + shlex.quote(f"echo $$ > {shlex.quote(str(app_pid))}; exec env {env} "
                                    f"{shlex.quote(sys.executable)} -m cockpit --repo {shlex.quote(str(repo))}")
    socket_dir = Path("/tmp") / f"cockpit-tmux-{os.getpid()}-{time.monotonic_ns()}"
    socket_dir.mkdir()
    tmux = Tmux(socket_dir / "sock")
    try:
        tmux.start(f"sh -c {shlex.quote(screen + '; echo cockpit-exited-$?; sleep 60')}", 100, 30)
        await asyncio.to_thread(tmux.wait, lambda s: "@1 long" in s, "the pane", 60)
        tmux.keys("C-d")
        shown = await asyncio.to_thread(tmux.wait, lambda s: "cockpit-exited-" in s, "the screen to detach", 60)
        assert "cockpit-exited-0" in shown and "detached: the agents keep running" in shown
        tmux.kill()

        tmux.start(f"sh -c {shlex.quote(screen)}", 100, 30)  # attach again, then close the terminal under it
        await asyncio.to_thread(tmux.wait, lambda s: "@1 long" in s, "the pane again", 60)
        screen_pid = int(app_pid.read_text())
        tmux.kill()  # the terminal goes away: SIGHUP
        await until(lambda: not process_alive(screen_pid), "the screen process to end")
    finally:
        tmux.kill()
        shutil.rmtree(socket_dir, ignore_errors=True)

    assert server_pid(paths) == pid  # the same server, never restarted
    listed = await acockpit("ls", "--json", cwd=repo)
    assert json.loads(listed.stdout)[0]["state"] == "running"  # the screen is gone, the agent is not
    waited = await acockpit("wait", "1", "--until", "idle", "--timeout", "90", "--json", cwd=repo)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    logs = await acockpit("logs", "1", "--json", cwd=repo)
    text = "".join(json.loads(line)["data"].get("text", "") for line in logs.stdout.splitlines()
                   if json.loads(line)["kind"] == ev.TEXT)
    assert text.startswith("w0 w1 w2") and text.endswith("w799")  # the whole answer, streamed while unattended


