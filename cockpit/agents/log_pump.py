"""An agent's stderr, read without pause and kept in a log file of bounded size.

An unread stderr pipe freezes an agent that writes more than the pipe holds (64 KiB), so the pipe
is read by a task for as long as it is open, whatever the file does; a file handed to the agent
directly would grow without end instead. The log is rotated like `logging.handlers.
RotatingFileHandler`, but for raw bytes: past `max_bytes` the file becomes `<name>.1` (the older
`.1` is dropped) and a new one starts, so at most twice the cap is kept. Files are private
(0600): an agent may print what it should not, a key in an error message.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

#: Size at which an agent's log is rotated; one older file is kept beside it.
LOG_MAX_BYTES = 4 * 1024 * 1024
_READ_SIZE = 65_536


class RotatingLog:
    """Appends bytes to `path`, moving it to `path.1` when it would grow past `max_bytes`."""

    def __init__(self, path: Path, max_bytes: int = LOG_MAX_BYTES):
        self.path = path
        self.max_bytes = max_bytes
        self._fd = -1

    def _open(self) -> int:
        if self._fd < 0:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        return self._fd

    def write(self, data: bytes) -> None:
        while data:
            fd = self._open()
            size = os.fstat(fd).st_size
            if size and size + len(data) > self.max_bytes:
                self._rotate()
                continue
            part, data = data[:self.max_bytes], data[self.max_bytes:]
            os.write(fd, part)

    def _rotate(self) -> None:
        self.close()
        os.replace(self.path, self.path.with_name(self.path.name + ".1"))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


async def start_log_pump(log: RotatingLog, name: str) -> tuple[int, asyncio.Task[None]]:
    """A pipe whose every byte goes to `log`: (its writing end, for the child; the pump task).

    The caller closes the writing end once the child has it. The task ends when every holder of
    that end has closed it, or when it is cancelled (a process the agent started may keep it).
    """
    read_fd, write_fd = os.pipe()
    os.set_inheritable(write_fd, False)
    reader = asyncio.StreamReader()
    try:
        transport, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0))
    except BaseException:
        os.close(write_fd)
        raise
    return write_fd, asyncio.create_task(_pump(reader, transport, log), name=name)


async def _pump(reader: asyncio.StreamReader, transport: asyncio.BaseTransport, log: RotatingLog) -> None:
    try:
        while chunk := await reader.read(_READ_SIZE):
            with contextlib.suppress(OSError):  # a full disk loses log lines, never freezes the agent
                log.write(chunk)
    finally:
        transport.close()
        log.close()
