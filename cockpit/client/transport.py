"""Byte pipes to a cockpit server: its Unix socket, or `ssh host cockpit rpc --stdio`.

For ssh, OpenSSH does the transport and the authentication; the ssh command comes from
`$COCKPIT_SSH` (default `ssh`, so `~/.ssh/config` applies) and the remote command from
`$COCKPIT_REMOTE_COMMAND` (default `cockpit rpc --stdio`). ssh runs in batch mode in its own
session: it never prompts on the cockpit's screen, and a failure is reported as its last line of
stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
from collections import deque
from dataclasses import dataclass, field

from cockpit.errors import CockpitError
from cockpit.server.paths import ServerPaths, check_private, socket_address
from cockpit.server.protocol import MAX_LINE

DEFAULT_REMOTE_COMMAND = "cockpit rpc --stdio"
#: Options every ssh gets: no prompts on our screen, and a dead link noticed within a minute.
SSH_OPTIONS = ("-T", "-o", "BatchMode=yes", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4")
_STDERR_LINES = 20


@dataclass
class Transport:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    where: str  # for messages: "the cockpit server at …", "ssh devbox"
    process: asyncio.subprocess.Process | None = None
    stderr: deque[str] = field(default_factory=lambda: deque(maxlen=_STDERR_LINES))
    stderr_task: asyncio.Task[None] | None = None  # reads ssh's stderr into `stderr`

    def failure(self) -> str:
        """What went wrong on the far side, as one line (ssh's last words, its exit code)."""
        if self.process is None:
            return ""
        said = self.stderr[-1] if self.stderr else ""
        code = self.process.returncode
        status = f"exit {code}" if code is not None else "still running"
        return f"{status}: {said}" if said else status

    async def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
        if self.process is not None:
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self.stderr_task is not None:
            await self.stderr_task


async def open_socket(paths: ServerPaths) -> Transport:
    where = f"the cockpit server at {paths.socket}"
    try:
        check_private(paths.run_dir, "folder")
        check_private(paths.socket, "socket")
        with socket_address(paths.socket) as address:
            reader, writer = await asyncio.open_unix_connection(address, limit=MAX_LINE)
    except (FileNotFoundError, ConnectionRefusedError):
        raise CockpitError(f"no cockpit server answers at {paths.socket} (start one: `cockpit server start`)") from None
    return Transport(reader, writer, where)


def ssh_argv(destination: str) -> list[str]:
    ssh = shlex.split(os.environ.get("COCKPIT_SSH") or "ssh")
    remote = os.environ.get("COCKPIT_REMOTE_COMMAND") or DEFAULT_REMOTE_COMMAND
    return [*ssh, *SSH_OPTIONS, destination, remote]


async def open_ssh(destination: str) -> Transport:
    argv = ssh_argv(destination)
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, limit=MAX_LINE, start_new_session=True,
        )
    except FileNotFoundError:
        raise CockpitError(f"cannot run {argv[0]!r} for --remote {destination} (set COCKPIT_SSH)") from None
    assert process.stdout is not None and process.stdin is not None and process.stderr is not None
    transport = Transport(process.stdout, process.stdin, f"ssh {destination}", process)
    transport.stderr_task = asyncio.create_task(_keep_tail(process.stderr, transport.stderr), name="cockpit-ssh-stderr")
    return transport


async def _keep_tail(stream: asyncio.StreamReader, tail: deque[str]) -> None:
    """Read ssh's stderr to the end (an unread pipe would stall it), keeping the last lines."""
    while line := await stream.readline():
        text = line.decode(errors="replace").strip()
        if text:
            tail.append(text)
