"""Where a server keeps its socket, pid, lock and log, and the checks that keep them private.

Whoever can connect to the socket can drive every agent (and so run commands as you), so the
folder must be yours and closed to everybody else (0700) and the socket mode 0600. A folder or
socket that is not is refused with one line saying how to fix it, never silently used.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cockpit.config import cockpit_home
from cockpit.errors import CockpitError

#: Unix socket paths longer than this (108 bytes with the NUL on Linux) cannot be bound as is.
_SUN_PATH_MAX = 107


@dataclass(frozen=True)
class ServerPaths:
    home: Path

    @classmethod
    def for_home(cls, home: Path | None = None) -> ServerPaths:
        return cls(Path(home) if home is not None else cockpit_home())

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def socket(self) -> Path:
        return self.run_dir / "server.sock"

    @property
    def lock(self) -> Path:
        return self.run_dir / "engine.lock"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "server.pid"

    @property
    def log(self) -> Path:
        return self.home / "logs" / "server.log"


def prepare_run_dir(paths: ServerPaths) -> Path:
    """Make the run folder (0700) if it is missing; refuse one that others could reach."""
    paths.home.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        paths.run_dir.mkdir(mode=0o700)
    check_private(paths.run_dir, "folder")
    return paths.run_dir


def check_private(path: Path, what: str) -> None:
    """`path` must be owned by this user and closed to group and others."""
    info = os.lstat(path)
    kind_ok = stat.S_ISDIR(info.st_mode) if what == "folder" else stat.S_ISSOCK(info.st_mode)
    if not kind_ok:
        raise CockpitError(f"{path}: expected a {what}; remove it and try again")
    if info.st_uid != os.geteuid():
        raise CockpitError(f"{path}: this {what} belongs to uid {info.st_uid}, not you ({os.geteuid()}); "
                           "refusing to use it (remove it or set COCKPIT_HOME)")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        wanted = "700" if what == "folder" else "600"
        raise CockpitError(f"{path}: this {what} is mode {mode:o}, open to others; refusing to use it "
                           f"(run `chmod {wanted} {path}`)")


@contextlib.contextmanager
def socket_address(path: Path) -> Iterator[str]:
    """A path to bind or connect `path` by, even when it is too long for a Unix socket address.

    A long one goes through `/proc/self/fd/N/<name>` with N a descriptor of its folder, which
    reaches the same inode (deep `COCKPIT_HOME`s, test folders).
    """
    text = str(path)
    if len(os.fsencode(text)) <= _SUN_PATH_MAX:
        yield text
        return
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{folder}/{path.name}"
    finally:
        os.close(folder)


def bind_private(path: Path) -> socket.socket:
    """A listening Unix socket at `path` that nobody else could ever reach, even for an instant.

    Binding creates the socket file with the umask's mode (often 0755) and only a chmod makes
    it 0600: a client looking in between would see it open and refuse it. So it is bound
    inside a fresh 0700 folder next to `path` (reachable by nobody else), made 0600 there and
    only then renamed into place, which also replaces a stale socket atomically.
    """
    staging = Path(tempfile.mkdtemp(prefix=".bind-", dir=path.parent))  # mkdtemp makes it 0700
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        staged = staging / path.name
        with socket_address(staged) as address:
            sock.bind(address)
        os.chmod(staged, 0o600)
        check_private(staged, "socket")
        sock.listen(128)
        sock.setblocking(False)
        os.rename(staged, path)
    except BaseException:
        sock.close()
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging / path.name)
        os.rmdir(staging)
    return sock
