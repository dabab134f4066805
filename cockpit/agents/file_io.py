"""Reading and writing an agent's files so that no file can stall the process doing it.

A plain `open()` of a FIFO blocks until a writer appears, and a read of a character device can
block for ever; an agent that can make such a file in its worktree (any shell can `mkfifo`) could
then park every thread that serves file requests, and with them the server. So a file is opened
with `O_NONBLOCK` (opening a FIFO returns at once, or fails with ENXIO for writing) and
`O_NOFOLLOW` (the last name cannot have been swapped for a symlink since it was checked), but only
after an `lstat` said it is a regular file (opening a device can have effects of its own), and
`fstat`-ed once open: anything but that same regular file is refused before a byte is read or
written. Regular files never block on read, and reads are capped in size.

These are blocking calls on purpose: callers run them on an executor of their own (see
`acp_client.CockpitClient`), never on the event loop's shared default pool.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from cockpit.agents.workspace import PathRefused

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"),
          (stat.S_ISLNK, "a symlink"))
_CHUNK = 1 << 20


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _refused(shown: str, mode: int) -> PathRefused:
    return PathRefused(f"refused: {shown} is {_kind(mode)}, not a regular file")


def _open_regular(real: Path, shown: str, flags: int, *, create: bool = False) -> int:
    """An fd on `real`, which must be a regular file (or missing, with `create`); PathRefused
    for anything else. FileNotFoundError when it is missing and not to be created."""
    try:
        before: os.stat_result | None = os.lstat(real)
    except FileNotFoundError:
        if not create:
            raise
        before = None
    if before is not None and not stat.S_ISREG(before.st_mode):
        raise _refused(shown, before.st_mode)
    flags |= os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        fd = os.open(real, flags, 0o666)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):  # swapped since the lstat: a symlink, a FIFO
            raise PathRefused(f"refused: {shown} changed while it was opened; try again") from None
        raise
    info = os.fstat(fd)
    same = before is None or (info.st_dev, info.st_ino) == (before.st_dev, before.st_ino)
    if not stat.S_ISREG(info.st_mode) or not same:
        os.close(fd)
        raise _refused(shown, info.st_mode) if same else PathRefused(
            f"refused: {shown} changed while it was opened; try again")
    return fd


def read_regular(real: Path, shown: str, cap: int) -> bytes:
    """The bytes of the regular file `real`; PathRefused when it is another kind or over `cap`."""
    fd = _open_regular(real, shown, os.O_RDONLY)
    try:
        if os.fstat(fd).st_size > cap:
            raise PathRefused(f"refused: {shown} is larger than {cap} bytes")
        parts: list[bytes] = []
        size = 0
        while chunk := os.read(fd, _CHUNK):
            size += len(chunk)
            if size > cap:  # it grew while we read
                raise PathRefused(f"refused: {shown} is larger than {cap} bytes")
            parts.append(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


def write_regular(real: Path, shown: str, data: bytes) -> None:
    """Replace the content of `real` (created if missing, folders too); only a regular file."""
    real.parent.mkdir(parents=True, exist_ok=True)
    # No O_TRUNC: it would act before the check; the file is truncated once it is known regular.
    fd = _open_regular(real, shown, os.O_WRONLY, create=True)
    try:
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
