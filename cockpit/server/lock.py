"""One engine per cockpit home: the lock that the server, or an in-process cockpit, holds.

Two engines on one database would hand out the same event numbers twice and fight over the
worktrees, so whoever opens the engine for real use (the server, or `cockpit --local`) first
takes an exclusive `flock` on `run/engine.lock` and writes who it is into it. The kernel drops
the lock when the process dies, even by `kill -9`, so a stale lock never blocks a restart; and
the file's text says whom to stop when the lock is taken.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass

from cockpit.errors import CockpitError
from cockpit.server.paths import ServerPaths, prepare_run_dir

SERVER = "server"
LOCAL = "local"
_DESCRIPTIONS = {SERVER: "the cockpit server", LOCAL: "an in-process cockpit (--local)"}


@dataclass(frozen=True)
class Holder:
    role: str
    pid: int

    def __str__(self) -> str:
        return f"{_DESCRIPTIONS.get(self.role, self.role)} (pid {self.pid})"


class HomeInUse(CockpitError):
    """Another process has the engine of this cockpit home open."""

    def __init__(self, message: str, holder: Holder | None):
        super().__init__(message)
        self.holder = holder


class EngineLock:
    def __init__(self, paths: ServerPaths):
        self.paths = paths
        self._fd: int | None = None

    def acquire(self, role: str) -> None:
        """Take the lock for `role` or raise `HomeInUse` naming who holds it."""
        prepare_run_dir(self.paths)
        fd = os.open(self.paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise HomeInUse(f"{self.paths.home} is in use by {holder or 'another cockpit'}", holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{role} {os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def lock_holder(paths: ServerPaths) -> Holder | None:
    """Who has the engine of this home open right now, or None."""
    try:
        fd = os.open(paths.lock, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd) or Holder("unknown", 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_holder(fd: int) -> Holder | None:
    role, _, pid = os.pread(fd, 100, 0).decode(errors="replace").strip().partition(" ")
    return Holder(role, int(pid)) if pid.isdigit() else None
