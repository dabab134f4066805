"""Issue #13.2 attack replays: commands an agent or a config runs are confined by the file system.

Every test runs real processes in a real worktree of a real repository, through the very launch
paths the cockpit uses (the built-in agent's shell tool, a terminal session, set-up, verify),
with a fake home holding fake secrets. Each attack also runs unconfined once where that proves
the test could fail (the loopback server is reachable, the key is readable).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest
from web_helpers import answering

from cockpit.agents.llm import LLMAgent
from cockpit.agents.terminal import TerminalAgent
from cockpit.config import AgentConfig, Config, ModelConfig
from cockpit.core import events as ev
from cockpit.core.process import ShellResult
from cockpit.core.sandbox import availability, run_confined, sandbox_for, session_tmp

pytestmark = pytest.mark.skipif(not availability().ok, reason=availability().reason or "sandbox available")

KEY = "-----BEGIN OPENSSH PRIVATE KEY----- fake-key-for-tests"
SECRET = "sk-test-0123456789-secret"


@pytest.fixture
def fake_home(off_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME with an ssh key, cloud credentials and a token in ~/.config; a secret in our env."""
    home = off_tmp / "home"
    for rel, text in {".ssh/id_x": KEY, ".aws/credentials": SECRET, ".config/gh/hosts.yml": SECRET,
                      ".netrc": SECRET}.items():
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text(text)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MY_API_KEY", SECRET)
    return home


@pytest.fixture
def outside(off_tmp: Path) -> Path:
    """A folder outside every worktree (and /tmp), writable by us."""
    path = off_tmp / "outside"
    path.mkdir()
    return path


async def agent_shell(open_engine, repo: Path, config: Config | None = None):
    """A session of the built-in agent and a function running a command through its shell tool."""
    engine = await open_engine(config or Config())
    (session,) = await engine.create_sessions(repo, name="attacker")
    agent = LLMAgent(engine.hosts[session.id], ModelConfig())

    async def run(command: str) -> ShellResult:
        return await agent._shell_in_worktree(command, 30)

    return engine, session, agent, run


def unconfined(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=30)


async def test_shell_cannot_write_outside_the_worktree(open_engine, repo, fake_home, outside):
    """Attack row 13.2: `pytest > /outside/file` and `touch $HOME/x` wrote outside the worktree."""
    engine, session, _, run = await agent_shell(open_engine, repo)
    for command in [f"echo pwned > {outside}/file", "touch $HOME/x", f"mkdir {outside}/made"]:
        result = await run(command)
        assert result.exit_code != 0, (command, result.output)
    await run(f"cp README.md {repo}/planted")  # the main checkout (here under /tmp, so private)
    assert not (outside / "file").exists() and not (fake_home / "x").exists() and not (repo / "planted").exists()
    assert not (outside / "made").exists()
    marker = f"probe-{session.id}"
    inside = await run(f"echo ok > inside.txt && echo t > /tmp/{marker} && cat /tmp/{marker}")
    assert inside.ok and inside.output.strip() == "t", inside.output
    assert (session.path / "inside.txt").read_text() == "ok\n"
    assert not Path("/tmp", marker).exists()  # /tmp is the session's own
    assert (session_tmp(engine.home, session.id) / marker).read_text() == "t\n"


async def test_shell_cannot_read_secrets_of_the_home(open_engine, repo, fake_home):
    """Attack row 13.2: `cat ~/.ssh/id_x`, `~/.aws`, `~/.config`, `~/.netrc` are readable."""
    assert KEY in unconfined("cat ~/.ssh/id_x", repo).stdout  # the test can fail
    _, _, _, run = await agent_shell(open_engine, repo)
    result = await run("cat ~/.ssh/id_x ~/.aws/credentials ~/.config/gh/hosts.yml ~/.netrc")
    assert KEY not in result.output and SECRET not in result.output
    listed = await run("ls -A ~/.ssh ~/.aws ~/.config")
    assert listed.ok and "id_x" not in listed.output and "credentials" not in listed.output
    assert "gh" not in listed.output.split()


async def test_shell_cannot_see_the_cockpit_home(open_engine, repo, fake_home, cockpit_env):
    """Attack row 13.2: the database (every transcript) and other sessions' worktrees under
    $COCKPIT_HOME are readable from a command."""
    engine, session, _, run = await agent_shell(open_engine, repo)
    (other,) = await engine.create_sessions(repo, name="victim")
    (other.path / "secret.txt").write_text(SECRET)
    databases = [p.name for p in cockpit_env.home.iterdir() if p.name.startswith("cockpit.db")]
    assert databases  # there is something to hide
    result = await run(f"cat {other.path}/secret.txt; cat {cockpit_env.home}/cockpit.db | head -c 100")
    assert SECRET not in result.output and "SQLite" not in result.output
    listed = await run(f"ls -A {cockpit_env.home}")
    assert not any(name in listed.output for name in databases)
    assert session.path.name in (await run("pwd")).output  # its own worktree stays visible


async def test_a_cockpit_home_outside_tmp_is_covered(repo, off_tmp):
    """Attack row 13.2: $COCKPIT_HOME in its usual place (~/.local/share/cockpit, not under /tmp,
    which the private /tmp hides anyway) is readable from a command."""
    home = off_tmp / "cockpit-home"
    (home / "worktrees").mkdir(parents=True)
    (home / "cockpit.db").write_text(SECRET)
    worktree = home / "worktrees" / "wt"
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "-q", str(worktree)], check=True)
    sandbox = sandbox_for(Config().sandbox, worktree, home, "s1")
    assert sandbox is not None
    result = await run_confined(["bash", "-c", f"ls -A {home}; cat {home}/cockpit.db; touch ok"], worktree,
                                {"PATH": os.environ["PATH"]}, 30, sandbox=sandbox)
    assert SECRET not in result.output and "cockpit.db" not in result.output.replace(f"{home}/cockpit.db:", "")
    assert (worktree / "ok").exists()  # the worktree inside it is bound back


async def test_shell_has_no_network(open_engine, repo, fake_home):
    """Attack row 13.2: a command reaches a server (here one on loopback, outside the sandbox)."""
    with _listening() as port:
        probe = f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected"
        assert "connected" in unconfined(probe, repo).stdout  # the test can fail
        _, _, _, run = await agent_shell(open_engine, repo)
        result = await run(probe)
    assert result.exit_code != 0 and "connected" not in result.output


async def test_an_allowlist_opens_only_its_hosts_and_only_through_the_proxy(open_engine, repo, fake_home):
    """Attack row 13.2 (network allowlist): `allow_hosts = ["pypi.org"]` turned the whole network
    on, so a command could reach any host. Now the sandbox keeps no network of its own and the
    cockpit's proxy lets through only the listed hosts: `localhost` (on this server's port) is
    allowed, the same server as `127.0.0.1` is not, and a direct connection goes nowhere."""
    with answering(b"hello from outside\n") as port:
        config = Config()
        config.sandbox.allow_hosts = [f"localhost:{port}"]
        engine, session, _, run = await agent_shell(open_engine, repo, config)
        # NO_PROXY lists localhost (a program's own servers in the sandbox); here it is the outside one.
        direct = "--noproxy ''"
        plain = await run(f"curl -sS {direct} http://localhost:{port}/hello")
        tunnel = await run(f"curl -sS -p {direct} http://localhost:{port}/hello")  # CONNECT, as for https
        python = await run(f"NO_PROXY= no_proxy= python3 -c \"import urllib.request as u; "
                           f"print(u.urlopen('http://localhost:{port}/hello').read().decode())\"")
        refused = await run(f"curl -sS -w ' status=%{{http_code}}' {direct} http://127.0.0.1:{port}/hello")
        refused_tunnel = await run(f"curl -sS -p {direct} http://127.0.0.1:{port}/hello")
        raw = await run(f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected")
        other_port = await run(f"curl -sS -w ' status=%{{http_code}}' {direct} http://localhost:1/")
    for result in (plain, tunnel, python):
        assert result.ok and "hello from outside" in result.output, result.output
    assert "not in allow_hosts" in refused.output and "status=403" in refused.output, refused.output
    assert refused_tunnel.exit_code != 0 and "403" in refused_tunnel.output, refused_tunnel.output
    assert raw.exit_code != 0 and "connected" not in raw.output
    assert "status=403" in other_port.output  # a host:port entry allows that port only
    notes = [e.data["text"] for e in await engine.transcript(session.id) if e.kind == ev.NOTICE]
    assert f"sandbox: blocked a connection to 127.0.0.1:{port} (not in allow_hosts)" in notes
    assert sum(f"127.0.0.1:{port}" in note for note in notes) == 1  # said once per host


async def test_shell_cannot_see_secret_environment(open_engine, repo, fake_home):
    """Attack row 13.2: `echo $MY_API_KEY` put the key into cockpit.db-wal and the next model
    request; reading the cockpit's /proc/<pid>/environ would too."""
    _, _, _, run = await agent_shell(open_engine, repo)
    result = await run(f'echo "[$MY_API_KEY]"; env; cat /proc/{os.getpid()}/environ; cat /proc/*/environ')
    assert SECRET not in result.output
    assert "[]" in result.output


async def test_git_works_but_cannot_plant_code_the_cockpit_runs(open_engine, repo, fake_home, outside):
    """Attack row 13.2 (git common dir): git commit works in the worktree, but a command cannot
    set `core.fsmonitor`, add a hook or repoint the worktree's `.git`, which the cockpit's own
    next git call (unconfined) would obey."""
    _, session, _, run = await agent_shell(open_engine, repo)
    done = await run("echo new > new.txt && git add new.txt && git commit -qm 'from the sandbox' "
                     "&& git log --oneline -1")
    assert done.ok and "from the sandbox" in done.output, done.output
    pwned = outside / "pwned"
    hooks = repo / ".git" / "hooks"
    for command in [f"git config core.fsmonitor 'touch {pwned}'",
                    f"printf '#!/bin/sh\\ntouch {pwned}\\n' > {hooks}/post-checkout",
                    "echo 'gitdir: /elsewhere' > .git",
                    f"echo {outside} > $(git rev-parse --git-dir)/commondir"]:
        result = await run(command)
        assert result.exit_code != 0, (command, result.output)
    assert "fsmonitor" not in (repo / ".git" / "config").read_text()
    assert not (hooks / "post-checkout").exists()
    assert (session.path / ".git").read_text().startswith("gitdir: ")
    subprocess.run(["git", "status"], cwd=session.path, check=True, capture_output=True)
    assert not pwned.exists()


async def test_setup_and_verify_run_sandboxed(open_engine, repo, fake_home, outside):
    """Attack row 13.2 (set-up, verify): a repository's `.cockpit.toml` scripts ran unconfined."""
    config = Config()
    config.worktrees.setup = f"touch {outside}/setup; cat ~/.ssh/id_x; touch setup-ran"
    config.review.verify = f"touch {outside}/verify; cat ~/.ssh/id_x; echo $MY_API_KEY; touch verify-ran"
    engine = await open_engine(config)
    (session,) = await engine.create_sessions(repo, name="scripts")
    notices = [e.data for e in await engine.transcript(session.id) if e.kind == ev.NOTICE and e.data.get("setup")]
    assert notices and KEY not in notices[-1]["output"]
    result = await engine.landing.verify(session.id)
    assert KEY not in result["output_tail"] and SECRET not in result["output_tail"]
    assert (session.path / "setup-ran").exists() and (session.path / "verify-ran").exists()
    assert not (outside / "setup").exists() and not (outside / "verify").exists()


async def test_terminal_sessions_run_sandboxed(open_engine, repo, fake_home, outside):
    """Attack row 13.2 (terminal): a program in a terminal pane wrote outside its worktree."""
    config = Config()
    config.agents["sh"] = AgentConfig(kind="terminal", command=[
        "sh", "-c", f"touch {outside}/term; cat ~/.ssh/id_x; touch term-ran; sleep 30"])
    engine = await open_engine(config, lambda host: TerminalAgent(host, "sh", config.agents["sh"]))
    (session,) = await engine.create_sessions(repo, agent="sh", name="term")
    for _ in range(500):
        if (session.path / "term-ran").exists():
            break
        await asyncio.sleep(0.02)
    assert (session.path / "term-ran").exists()
    assert not (outside / "term").exists()
    async def screen() -> str:
        frame = await engine.hosts[session.id].backend.screen_frame()
        return "\n".join("".join(text for text, _ in runs) for _, runs in frame["rows"])

    for _ in range(500):  # both refusals shown: the output may trail the file
        shown = await screen()
        if shown.count("No such file") + shown.count("Read-only") >= 2:
            break
        await asyncio.sleep(0.02)
    shown = await screen()
    assert "Read-only" in shown and "No such file" in shown, shown
    assert "fake-key-for-tests" not in shown


async def test_terminal_sessions_cannot_see_secret_environment(open_engine, repo, fake_home):
    """Attack row 13.2 (terminal environment): a program in a terminal pane inherited the whole
    environment of the cockpit's server, so `echo $MY_API_KEY` showed the key on screen (and in
    the store). It gets the shell tool's trimmed environment, with its own session variables."""
    config = Config()
    config.sandbox.enabled = False  # the environment itself is trimmed, sandbox or not
    config.agents["sh"] = AgentConfig(kind="terminal", command=[
        "sh", "-c", 'echo "key=[$MY_API_KEY] session=[$COCKPIT_SESSION] term=[$TERM]"; sleep 30'])
    engine = await open_engine(config, lambda host: TerminalAgent(host, "sh", config.agents["sh"]))
    (session,) = await engine.create_sessions(repo, agent="sh", name="term")

    async def screen() -> str:
        frame = await engine.hosts[session.id].backend.screen_frame()
        return "\n".join("".join(text for text, _ in runs) for _, runs in frame["rows"])

    for _ in range(500):
        if "term=[" in await screen():
            break
        await asyncio.sleep(0.02)
    shown = await screen()
    assert f"key=[] session=[{session.id}] term=[xterm-256color]" in shown, shown
    assert SECRET not in shown and "MY_API_KEY" not in shown


async def test_without_a_sandbox_auto_asks_and_says_so(open_engine, repo, fake_home):
    """Attack row 13.2 (no sandbox): `auto` ran shell commands unconfined and unasked."""
    config = Config()
    config.approval.preset = "auto"
    config.sandbox.enabled = False
    engine, session, agent, run = await agent_shell(open_engine, repo, config)
    verdict = agent.gate.policy.decide("run_shell", {"command": "ls"})
    assert verdict.decision == "ask" and "no sandbox" in verdict.reason
    notes = [e.data["text"] for e in await engine.transcript(session.id) if e.kind == ev.NOTICE]
    assert any("no sandbox" in note and "unconfined" in note for note in notes)
    assert "[]" in (await run('echo "[$MY_API_KEY]"')).output  # the environment is trimmed all the same




class _listening:
    """A TCP server on loopback outside the sandbox, accepting connections until closed."""

    def __enter__(self) -> int:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self.sock.getsockname()[1]

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.close()

    def __exit__(self, *exc: object) -> None:
        # shutdown wakes the accepting thread; a bare close would leave it blocked in accept()
        # on a descriptor number the next test's server may be given, closing its connections
        self.sock.shutdown(socket.SHUT_RDWR)
        self.thread.join()
        self.sock.close()
