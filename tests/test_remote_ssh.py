"""`--remote` over a real OpenSSH: the test starts its own sshd on 127.0.0.1 with its own keys.

The "remote machine" is this one with another cockpit home, reached only through
`ssh HOST cockpit rpc --stdio`: the remote server is started on demand by that command, the UI
and the CLI run here. `authorized_keys` sets the remote session's environment (its cockpit home
and config), as a login shell's profile would on a real host.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from server_kit import Recorder, acockpit, model_config, until

from cockpit.client.multi import MultiClient
from cockpit.client.remote import RemoteClient, ssh_opener
from cockpit.config import load_config
from cockpit.core import events as ev
from cockpit.server.daemon import stop_server
from cockpit.server.lock import lock_holder
from cockpit.server.paths import ServerPaths
from cockpit.sim import ScriptedLLMServer
from cockpit.ui.app import CockpitApp

SSHD = shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if os.path.exists(p)), None)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(SSHD is None or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None,
                       reason="OpenSSH server not installed (apt-get install openssh-server): no real sshd to test "
                              "--remote against"),
]

HOST = "cockpit-test-host"
REFUSED = "cockpit-test-refused"
SCENARIO = {
    "name": "remote", "final": "Nothing more to do.", "tokens_per_s": 40,
    "steps": [
        {"text": "I will write hello.txt and then look at it.",
         "tool_calls": [{"name": "write_file", "arguments": {"path": "hello.txt", "content": "hi from afar\n"}}]},
        {"when": {"last_role": "tool"}, "text": "Checking it.",
         "tool_calls": [{"name": "run_shell", "arguments": {"command": "cat hello.txt"}}]},
        {"when": {"last_role": "tool", "contains": "hi from afar"}, "text": "Done: {last_tool_result_tail}"},
    ],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


@pytest.fixture
def remote_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "remote-home"
    yield home
    stop_server(ServerPaths(home))


@pytest.fixture
def sshd(tmp_path: Path, cockpit_env, remote_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private sshd on 127.0.0.1 and an ssh_config naming it `HOST`; COCKPIT_SSH uses that config."""
    folder = tmp_path / "ssh"
    folder.mkdir(mode=0o700)
    _keygen(folder / "host_key")
    client_key = _keygen(folder / "client_key")
    remote_env = {
        "COCKPIT_HOME": str(remote_home), "XDG_CONFIG_HOME": str(cockpit_env.config_home),
        "XDG_DATA_HOME": str(tmp_path / "remote-data"), "GIT_CONFIG_GLOBAL": str(tmp_path / "no-global-gitconfig"),
        "GIT_CONFIG_NOSYSTEM": "1", "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]),
    }
    options = ",".join(f'environment="{k}={v}"' for k, v in remote_env.items())
    (folder / "authorized_keys").write_text(f"{options} {client_key}\n")
    port = _free_port()
    (folder / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\nPidFile {folder / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPermitUserEnvironment yes\nStrictModes no\n"
        "UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        "PrintMotd no\nLogLevel ERROR\n")
    (folder / "ssh_config").write_text(
        f"Host {HOST}\n  HostName 127.0.0.1\n  Port {port}\n  User {getpass.getuser()}\n"
        f"  IdentityFile {folder / 'client_key'}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n"
        f"  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
        f"Host {REFUSED}\n  HostName 127.0.0.1\n  Port {_free_port()}\n")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    log = open(folder / "sshd.log", "wb")
    daemon = subprocess.Popen([SSHD, "-D", "-e", "-f", str(folder / "sshd_config")], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if daemon.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sshd did not start: {(folder / 'sshd.log').read_text()}")
            time.sleep(0.05)
        monkeypatch.setenv("COCKPIT_SSH", f"ssh -F {folder / 'ssh_config'}")
        yield folder
    finally:
        daemon.terminate()
        daemon.wait(10)
        log.close()


@pytest.fixture
async def sim() -> AsyncIterator[ScriptedLLMServer]:
    async with ScriptedLLMServer(SCENARIO) as server:
        yield server


async def test_a_whole_session_over_ssh_create_stream_approve_diff(cockpit_env, repo, sim, sshd, remote_home):
    cockpit_env.write_user_config(model_config(sim.url))
    client = MultiClient({HOST: RemoteClient(ssh_opener(HOST), host=HOST, reconnect=True)})
    watcher = RemoteClient(ssh_opener(HOST), host=HOST)  # a second connection records what streams
    await client.connect()
    await watcher.connect()
    try:
        assert client.clients[HOST].server["home"] == str(remote_home)  # the far side's server answered
        seen = Recorder(watcher)
        app = CockpitApp(client, load_config(), label=f"on {HOST}")
        async with app.run_test(size=(140, 40)) as pilot:
            (made,) = await app.run_command({"cmd": "create", "repo": str(repo), "name": "afar", "task": "go"})
            await until(lambda: app.sessions.get(made["id"], {}).get("state") == "waiting", "the approval request")
            pane = app.grid.panes[made["id"]]
            assert pane.session["host"] == HOST
            app.focus_session(made["id"])
            await pilot.press("a")  # approve, as on a local screen
            await until(lambda: app.sessions[made["id"]]["state"] == "idle", "the turn to finish")
        events = await seen.stop()
        streamed = [e.data["text"] for e in events if e.kind == ev.TEXT_DELTA]
        # over ssh, piece by piece (a worker sends what arrived within ~30 ms as one piece)
        assert len(streamed) > 3 and "I will write hello.txt and then look at it." in "".join(streamed)
        assert [e.data["approved"] for e in events if e.kind == ev.APPROVAL_RESOLVED] == [True]
        change = await client.execute({"cmd": "diff", "session": made["id"]})
        assert [(f["path"], f["status"]) for f in change["files"]] == [("hello.txt", "added")]
    finally:
        await client.close()
        await watcher.close()
    assert lock_holder(ServerPaths(remote_home)) is not None  # the remote server outlives the connection

    listed = await acockpit("--remote", HOST, "ls", "--json")  # the CLI over the same ssh
    assert listed.returncode == 0, listed.stderr
    assert [(s["name"], s["state"]) for s in json.loads(listed.stdout)] == [("afar", "idle")]


async def test_an_unreachable_host_is_one_line_naming_it(sshd):
    done = await acockpit("--remote", REFUSED, "ls")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"cockpit: lost the connection to ssh {REFUSED} (exit 255: ")
    assert "Connection refused" in done.stderr and done.stderr.count("\n") == 1
