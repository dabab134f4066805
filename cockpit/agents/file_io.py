"""Reading and writing an agent's files so that no file can stall the process doing it.

A plain `open()` of a FIFO blocks until a writer appears, and a read of a character device can
block for ever; an agent that can make such a file in its worktree (any shell can `mkfifo`) could
then park every thread that serves file requests, and with them the server. So a file is opened
with `O_NONBLOCK` (opening a FIFO returns at once, or fails with ENXIO for writing) and
`O_NOFOLLOW` (the last name cannot have been swapped for a symlink since it was checked), then
`fstat`-ed: anything but a regular file is refused before a byte is read or written. Regular
files never block on read, and reads are capped in size.

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
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))
_CHUNK = 1 << 20


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _open_regular(real: Path, shown: str, flags: int, mode: int = 0o666) -> int:
    """An fd on `real`, which must be a regular file; PathRefused for anything else."""
    try:
        fd = os.open(real, flags | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PathRefused(f"refused: {shown} became a symlink; name the file it points to") from None
        if exc.errno == errno.ENXIO:  # a FIFO without a reader
            raise PathRefused(f"refused: {shown} is a FIFO (named pipe), not a regular file") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise PathRefused(f"refused: {shown} is {_kind(info.st_mode)}, not a regular file")
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
    fd = _open_regular(real, shown, os.O_WRONLY | os.O_CREAT)
    try:
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
