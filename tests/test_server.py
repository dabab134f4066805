"""The server process: start on demand, one per home, private socket, versioned hello, stop.

Every server here is the real `cockpit server` process; clients are the real CLI or real
socket connections.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest
from server_kit import acockpit, attached, cockpit, server_pid, start_server, until

from cockpit.client.remote import RemoteClient, socket_opener
from cockpit.errors import CockpitError
from cockpit.server import protocol
from cockpit.server.lock import lock_holder
from cockpit.server.paths import ServerPaths, socket_address

pytestmark = pytest.mark.slow


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2 and done.stdout == "", (done.returncode, done.stdout, done.stderr)
    assert done.stderr.startswith("cockpit: ") and done.stderr.count("\n") == 1, done.stderr
    return done.stderr


def test_the_cli_starts_a_private_server_once_and_stops_it(repo, cockpit_env):
    paths = ServerPaths(cockpit_env.home)
    assert cockpit("server", "status").returncode == 1  # none yet

    made = cockpit("new", "one", "--json", cwd=repo)
    assert made.returncode == 0, made.stderr
    pid = server_pid(paths)
    assert stat.S_IMODE(os.stat(paths.run_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(paths.socket).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(paths.log).st_mode) == 0o600

    listed = cockpit("ls", "--json", cwd=repo)
    assert [s["name"] for s in json.loads(listed.stdout)] == ["one"]
    assert server_pid(paths) == pid  # the same server answered

    status = cockpit("server", "status", "--json")
    assert status.returncode == 0
    assert {k: json.loads(status.stdout)[k] for k in ("running", "pid", "sessions", "protocol")} == {
        "running": True, "pid": pid, "sessions": 1, "protocol": protocol.PROTOCOL_VERSION}
    workers = json.loads(status.stdout)["workers"]  # the session's agent runs in a worker process
    assert [w["sessions"] for w in workers if w["pid"]] == [1] and pid not in {w["pid"] for w in workers}
    assert "agent workers: pid " in cockpit("server", "status").stdout

    again = cockpit("server", "run", cwd=repo)  # a second server on the same home
    assert _one_line_error(again) == f"cockpit: {cockpit_env.home} is in use by the cockpit server (pid {pid})\n"
    local = cockpit("--local", "ls", cwd=repo)  # and no in-process engine beside it
    assert _one_line_error(local).startswith(
        f"cockpit: {cockpit_env.home} is in use by the cockpit server (pid {pid}): ")

    stopped = cockpit("server", "stop")
    assert (stopped.returncode, stopped.stdout) == (0, f"stopped the cockpit server (pid {pid})\n")
    assert lock_holder(paths) is None and not paths.socket.exists()
    assert cockpit("server", "stop").stdout.startswith("no cockpit server was running")
    assert json.loads(cockpit("--local", "ls", "--json", cwd=repo).stdout)[0]["name"] == "one"


def test_a_stale_socket_after_kill_9_is_replaced(repo, cockpit_env):
    paths = ServerPaths(cockpit_env.home)
    assert cockpit("new", "one", cwd=repo).returncode == 0
    old = server_pid(paths)
    os.kill(old, signal.SIGKILL)
    while lock_holder(paths) is not None:  # the kernel drops the lock with the process
        time.sleep(0.01)
    assert paths.socket.is_socket()  # left behind: nobody answers on it

    listed = cockpit("ls", "--json", cwd=repo)
    assert listed.returncode == 0, listed.stderr
    assert [s["name"] for s in json.loads(listed.stdout)] == ["one"]
    assert server_pid(paths) != old


def test_a_run_folder_or_socket_others_can_reach_is_refused(repo, cockpit_env):
    paths = ServerPaths(cockpit_env.home)
    assert cockpit("ls", cwd=repo).returncode == 0
    os.chmod(paths.socket, 0o666)
    assert _one_line_error(cockpit("ls", cwd=repo)) == (
        f"cockpit: {paths.socket}: this socket is mode 666, open to others; refusing to use it "
        f"(run `chmod 600 {paths.socket}`)\n")
    os.chmod(paths.socket, 0o600)
    os.chmod(paths.run_dir, 0o755)
    assert _one_line_error(cockpit("ls", cwd=repo)) == (
        f"cockpit: {paths.run_dir}: this folder is mode 755, open to others; refusing to use it "
        f"(run `chmod 700 {paths.run_dir}`)\n")
    os.chmod(paths.run_dir, 0o700)
    assert cockpit("ls", cwd=repo).returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")
def test_a_run_folder_owned_by_someone_else_is_refused(repo, cockpit_env):
    paths = ServerPaths(cockpit_env.home)
    paths.run_dir.mkdir(parents=True, mode=0o700)
    os.chown(paths.run_dir, 65534, 65534)
    error = _one_line_error(cockpit("ls", cwd=repo))
    assert error.startswith(f"cockpit: {paths.run_dir}: this folder belongs to uid 65534, not you (0); refusing")
    assert lock_holder(paths) is None  # nothing was started


async def test_a_client_of_another_protocol_version_is_refused_in_one_line(repo, cockpit_env, monkeypatch):
    paths = await start_server(cockpit_env.home, repo)
    monkeypatch.setattr(protocol, "PROTOCOL_VERSION", "2.0")  # this test process plays a newer client
    client = RemoteClient(socket_opener(paths))
    with pytest.raises(CockpitError) as refused:
        await client.connect()
    await client.close()
    assert str(refused.value) == (f"the cockpit server at {paths.socket}: protocol version mismatch: the client "
                                  "speaks '2.0', this server speaks '1.1' (run the same major version of cockpit "
                                  "on both ends)")
    monkeypatch.undo()

    # A raw connection that skips the hello is told what to send, and nothing else is served.
    with socket.socket(socket.AF_UNIX) as raw, socket_address(paths.socket) as address:
        raw.connect(address)
        raw.sendall(b'{"jsonrpc": "2.0", "id": 1, "method": "ls"}\n')
        answer = json.loads(raw.makefile("rb").readline())
    assert answer["error"]["code"] == protocol.HELLO_FIRST and "say hello first" in answer["error"]["message"]

    client = await attached(paths)  # the right version still gets in
    assert client.server["protocol"] == protocol.PROTOCOL_VERSION
    await client.close()


async def test_errors_come_back_as_the_same_one_line_errors(repo, cockpit_env):
    paths = await start_server(cockpit_env.home, repo)
    client = await attached(paths)
    try:
        with pytest.raises(CockpitError, match=r"^no session 'ghost' \(see `cockpit ls`\)$"):
            await client.execute({"cmd": "send", "session": "ghost", "text": "hi"})
        with pytest.raises(CockpitError, match="^create: 'repo' must be an absolute path on the server's machine"):
            await client.execute({"cmd": "create", "repo": "relative/path"})
        with pytest.raises(CockpitError, match="^unknown command 'nope'"):
            await client.execute({"cmd": "nope"})
        assert await client.execute({"cmd": "ls"}) == []  # the connection survived them all
    finally:
        await client.close()


async def test_rpc_stdio_relays_the_protocol(repo, cockpit_env):
    """What `ssh host cockpit rpc --stdio` runs: the protocol on stdin/stdout, server started on demand."""
    assert (await acockpit("new", "one", cwd=repo)).returncode == 0
    requests = [protocol.request(1, "hello", {"protocol": protocol.PROTOCOL_VERSION}), protocol.request(2, "ls")]
    done = subprocess.run([sys.executable, "-m", "cockpit", "rpc", "--stdio"], cwd=repo, env=dict(os.environ),
                          input=b"".join(protocol.encode(r) for r in requests), capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    hello, listed = (json.loads(line) for line in done.stdout.splitlines())
    assert hello["result"]["protocol"] == protocol.PROTOCOL_VERSION
    assert [s["name"] for s in listed["result"]] == ["one"]


async def test_server_stop_ends_attached_clients_cleanly(repo, cockpit_env):
    paths = await start_server(cockpit_env.home, repo)
    client = await attached(paths)
    feed = client.subscribe()
    assert (await acockpit("server", "stop")).returncode == 0
    with pytest.raises(CockpitError, match="^lost the connection to the cockpit server at "):
        await feed.get()
    await until(lambda: lock_holder(paths) is None, "the lock to be released")
    await client.close()
