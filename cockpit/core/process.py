"""Running a command so that nothing it starts can outlive the call.

Each command runs in a new session, hence a new process group, and the whole group is ended when
the command finishes, times out, is interrupted or its awaiting task is cancelled: background
jobs (`server &`) would otherwise outlive the turn, pile up over a working day and keep our output
pipe open. A command started with a session's variables also joins that session's cgroup
(`containment`), so what escapes its group by `setsid` still ends with the session. Output is
captured as the head and tail of the stream, since a runaway command can print without end while
the start (what ran) and the end (the error) are what matter.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cockpit.core.containment import contained

#: Characters kept from one process's output; bounds memory, not what the model reads.
DEFAULT_CAPTURE_CHARS = 200_000
#: How long a group gets to exit after SIGTERM before it is sent SIGKILL.
KILL_GRACE_S = 0.5
_POLL_S = 0.02
_READ_SIZE = 65_536


@dataclass(frozen=True)
class ShellResult:
    exit_code: int | None  # negative: killed by that signal
    output: str  # stdout and stderr merged, head and tail when too long
    timed_out: bool = False
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not (self.timed_out or self.interrupted)


def elide(text: str, limit: int) -> str:
    """`text` cut to about `limit` characters, keeping its head and tail around a note."""
    if len(text) <= limit:
        return text
    head, tail = _halves(limit)
    return _joined(text[:head], text[len(text) - tail:], len(text))


def _halves(limit: int) -> tuple[int, int]:
    tail = limit // 2
    return limit - tail, tail


def _joined(head: str, tail: str, total: int) -> str:
    shown = len(head) + len(tail)
    if shown >= total:
        return head + tail
    return f"{head}\n[output truncated: {shown} of {total} chars shown]\n{tail}"


class _Capture:
    """The first and last characters of a byte stream decoded as UTF-8, and its length."""

    def __init__(self, limit: int):
        self._head_limit, self._tail_limit = _halves(limit)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._head = ""
        self._tail = ""
        self._total = 0

    def feed(self, data: bytes, *, final: bool = False) -> None:
        text = self._decoder.decode(data, final)
        self._total += len(text)
        room = self._head_limit - len(self._head)
        if room > 0:
            self._head += text[:room]
            text = text[room:]
        if text and self._tail_limit:
            self._tail = (self._tail + text)[-self._tail_limit:]

    async def pump(self, stream: asyncio.StreamReader, tap: Callable[[bytes], None] | None = None) -> None:
        while chunk := await stream.read(_READ_SIZE):
            if tap is not None:
                tap(chunk)
            self.feed(chunk)
        self.feed(b"", final=True)

    def text(self) -> str:
        return _joined(self._head, self._tail, self._total)


async def run_process(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None,
    timeout: float | None,
    *,
    capture_chars: int = DEFAULT_CAPTURE_CHARS,
    stop: asyncio.Event | None = None,
    on_output: Callable[[bytes], None] | None = None,
) -> ShellResult:
    """Run `argv` in its own process group; end the group when it exits, times out or `stop` is set.

    `env=None` inherits ours. Cancelling the awaiting task ends the group too (within
    `KILL_GRACE_S` and a little) and then re-raises `CancelledError`. `on_output` sees every
    chunk of output as it arrives, for callers that show a command's output while it runs.
    """
    # Our own pipe rather than asyncio's: Process.wait() waits for its pipes to close, which a
    # background job holding stdout would delay until the timeout. It is connected before the
    # spawn so that no await stands between the spawn and the `finally` that ends the group.
    read_fd, write_fd = os.pipe()
    reader = asyncio.StreamReader()
    try:
        transport, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
        )
        try:
            proc = await asyncio.create_subprocess_exec(
                *contained(argv, env), cwd=cwd, env=None if env is None else dict(env),
                stdin=asyncio.subprocess.DEVNULL, stdout=write_fd, stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except BaseException:
            transport.close()
            raise
    finally:
        os.close(write_fd)
    capture = _Capture(capture_chars)
    pump = asyncio.create_task(capture.pump(reader, on_output))
    exited = asyncio.create_task(proc.wait())
    stopped = asyncio.create_task(stop.wait()) if stop is not None else None
    waiters = {exited} if stopped is None else {exited, stopped}
    try:
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        # Shielded so that a second cancel cannot leave the group running.
        await asyncio.shield(_end_group(proc, pump, transport))
    interrupted = stopped in done and exited not in done
    return ShellResult(proc.returncode, capture.text(), timed_out=not done, interrupted=interrupted)


async def _end_group(
    proc: asyncio.subprocess.Process, pump: asyncio.Task[None], transport: asyncio.BaseTransport
) -> None:
    """SIGTERM whatever is left of the group, SIGKILL it after a grace, then collect the output."""
    await terminate_group(proc)
    # A process that left the group (setsid) may still hold the pipe: stop reading then.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(pump, KILL_GRACE_S)
    transport.close()


async def terminate_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the group `proc` leads (it was started with `start_new_session`), SIGKILL what is
    left after `KILL_GRACE_S`, and reap `proc`."""
    pgid = proc.pid  # start_new_session made the child its group's leader
    if _signal_group(pgid, signal.SIGTERM):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + KILL_GRACE_S
        while _signal_group(pgid, 0) and loop.time() < deadline:
            await asyncio.sleep(_POLL_S)
        _signal_group(pgid, signal.SIGKILL)
    await proc.wait()


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to the group; False when no process is left in it."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member changed its user: it is alive, but not ours to end
        return True
    return True


def process_alive(pid: int) -> bool:
    """Whether `pid` runs: not gone, and not a zombie (reaped here if it is our own child)."""
    if pid <= 0:
        return False
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc here: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat[stat.rindex(b")") + 2:][:1] not in (b"Z", b"X")
