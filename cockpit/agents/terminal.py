"""Any terminal program as an agent: a pseudo-terminal, emulated with pyte, supervised by state.

The program runs in the session's worktree, in the sandbox (`cockpit.core.sandbox`), with the
trimmed environment of every session command (`cockpit.core.environment`), in its own
session (so its own process groups) with the pty as controlling terminal, so job control, ^C and
resizes work as in a real terminal.
Output is read without blocking from the event loop (`loop.add_reader`, many reads per wake-up),
fed to a `TermScreen` in bounded slices, and published as `term.screen` events holding only the
changed rows, at most `FRAME_HZ` times a second. Those events are live only; what is stored is
the text that scrolls off the screen (as `text` events at most once a second), the last screen
when the program ends, and a notice with its exit code, so a restarted cockpit shows what
happened without a row per frame.

States, for supervision: output that is not just the echo of typing makes the session
`running`; a configured `waiting_patterns` regex matching one of the screen's last non-empty
lines for `SETTLE_S` makes it `waiting` (attention, like an approval); `IDLE_AFTER_S` of quiet
makes it `idle`; the program ending makes it `idle` (exit code 0) or `error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import re
import shlex
import signal
import struct
import termios
import time

from cockpit.agents.pty_screen import TermScreen
from cockpit.config import AgentConfig
from cockpit.core import events as ev
from cockpit.core.agent_api import AgentHost
from cockpit.core.environment import agent_environment
from cockpit.core.sandbox import child_exit_code, host_sandbox, require_program
from cockpit.core.states import State, can_transition
from cockpit.errors import CockpitError, ConfigError

DEFAULT_SIZE = (80, 24)
FRAME_HZ = 30
TEXT_INTERVAL_S = 1.0  # scrolled-off lines are stored at most this often
TEXT_MAX_LINES = 2000  # per store; a flood keeps its last lines and says how many it left out
SETTLE_S = 0.3  # a waiting pattern must keep matching this long
IDLE_AFTER_S = 2.0  # quiet this long = idle
ECHO_GRACE_S = 0.5  # output this soon after a key (or the start) is its echo, not work
WAIT_LINES = 5  # last non-empty screen lines searched for waiting patterns
PROCESS_DELAY_S = 0.004  # output is gathered this long before it is emulated (floods batch up)
READ_SIZE = 65_536
READ_BURST = 32 * 1024  # bytes read per wake-up: a pty read costs ~0.15 ms, so other work waits ~1 ms
MAX_PENDING = 4 << 20  # unprocessed output beyond this pauses reading (the program blocks)
SLICE_MIN, SLICE_MAX = 4_096, 1 << 20  # bytes emulated per step, adapted to keep steps short
SLICE_TARGET_S = 0.004
KILL_GRACE_S = 0.5


def _take_terminal() -> None:
    """In the child, after setsid: make the pty (its stdin) the controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _set_size(fd: int, columns: int, lines: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))


def _session_members(sid: int) -> list[int]:
    """Processes whose session id is `sid` (a program's jobs live in their own groups)."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.getsid(int(entry)) == sid:
                    members.append(int(entry))
    return members


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def compile_patterns(agent_name: str, patterns: list[str]) -> list[re.Pattern[str]]:
    compiled = []
    for index, pattern in enumerate(patterns):
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise ConfigError(
                f"config: key 'agents.{agent_name}.waiting_patterns[{index}]': invalid regex {pattern!r}: {exc}"
            ) from None
    return compiled


def exit_text(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exited with code {code}"


class TerminalAgent:
    """One program in a pty; also the `TerminalBackend` the `term_*` commands drive."""

    def __init__(self, host: AgentHost, agent_name: str, agent: AgentConfig):
        self._host = host
        self._name = agent_name
        self._argv = list(agent.command) or [os.environ.get("SHELL") or "bash"]
        self._agent = agent
        self._patterns = compile_patterns(agent_name, agent.waiting_patterns)
        self._size = DEFAULT_SIZE
        self._screen = TermScreen(*self._size, reply=self._write)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._fd = -1
        self._watcher: asyncio.Task[None] | None = None
        self._pending = bytearray()  # read, not yet emulated
        self._out = bytearray()  # keys not yet written (the program is not reading)
        self._reading = False
        self._slice = 64 * 1024
        self._process_handle: asyncio.Handle | None = None
        self._tick_handle: asyncio.TimerHandle | None = None
        self._tick_at = 0.0
        self._next_frame = 0.0
        self._next_text = 0.0
        self._last_output = 0.0
        self._stored_upto = 0  # scrolled lines already taken for the store
        self._grace_until = 0.0
        self._candidate: tuple[int, str, float] | None = None  # waiting match: line, text, since
        self._answered: tuple[int, str] | None = None  # the prompt the person already answered
        self._exit: str = ""  # how the last run ended; "" while running or before the first
        self._closing = False
        self._sandboxed = False  # the program runs in the sandbox (its exit code is bwrap's)

    # -- AgentBackend ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self._spawn()

    async def send(self, text: str) -> None:
        """Type `text` and press enter (a routed instruction); start the program again first if it
        has ended. Empty text (resume) only restarts."""
        if not self.running:
            await self._spawn()
        if text:
            self._write(text.replace("\r\n", "\r").replace("\n", "\r").encode() + b"\r")

    async def interrupt(self) -> None:
        """SIGINT to the terminal's foreground process group (what ^C does)."""
        if not self.running:
            return
        try:
            os.killpg(os.tcgetpgrp(self._fd), signal.SIGINT)
        except OSError:
            self._write(b"\x03")

    async def close(self) -> None:
        """End every process of the program's session and store what its screen showed."""
        self._closing = True
        if self._proc is not None and self._proc.returncode is None:
            await self._kill()
        if self._watcher is not None:
            with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._watcher), 2 * KILL_GRACE_S)
        self._release()

    # -- TerminalBackend -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None and self._fd >= 0

    async def write_input(self, data: str) -> None:
        """Keys from the person, as the bytes a terminal sends."""
        if not self.running:
            session = self._host.session
            ended = f" ({self._exit})" if self._exit else ""
            raise CockpitError(
                f"session @{session.number}: {self._argv[0]} is not running{ended}; resume it (r) to start it again"
            )
        now = time.monotonic()
        self._grace_until = now + ECHO_GRACE_S
        if self._host.session.state == State.WAITING and self._candidate is not None:
            line, text, _ = self._candidate
            self._answered = (line, text)
            self._candidate = None
            self._last_output = now  # answering is activity: idle only after quiet from here
            self._set_state(State.RUNNING, "answered")
            self._schedule_tick(IDLE_AFTER_S)
        self._write(data.encode())

    async def resize(self, columns: int, lines: int) -> bool:
        if (columns, lines) == self._size:
            return self.running
        self._size = (columns, lines)
        self._screen.resize(columns, lines)
        self._grace_until = time.monotonic() + ECHO_GRACE_S  # the redraw it causes is not work
        if self.running:
            with contextlib.suppress(OSError):
                _set_size(self._fd, columns, lines)
        self._schedule_tick(0.0)
        return self.running

    async def screen_frame(self) -> dict:
        """The whole screen now (for a viewer that attaches, zooms or lost frames)."""
        frame = self._screen.frame(full=True)
        frame["running"] = self.running
        frame["exit"] = self._exit
        return frame

    # -- the process -----------------------------------------------------------------------------

    async def _spawn(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._watcher is not None and not self._watcher.done():
            await self._watcher  # the last run ended but is not reported yet: report it first
        self._release()
        if self._exit:  # a fresh screen for the new run; frame numbers keep counting up
            frames = self._screen.frames
            self._screen = TermScreen(*self._size, reply=self._write)
            self._screen.frames = frames
            self._stored_upto = 0
        master, slave = pty.openpty()
        try:
            _set_size(slave, *self._size)
            os.set_blocking(master, False)
            # The shell tool's trimmed environment, not the cockpit's: what a program prints lands
            # in the store, and `echo $MY_API_KEY` in a pane must find nothing.
            env = {**agent_environment(self._agent, self._host.env), "TERM": "xterm-256color",
                   "COLORTERM": "truecolor"}
            sandbox = host_sandbox(self._host)
            self._sandboxed = sandbox is not None
            argv = self._argv
            if sandbox is not None:
                require_program(argv[0], env)
                argv = sandbox.wrap(argv, configured=True)
            self._proc = await asyncio.create_subprocess_exec(
                *argv, stdin=slave, stdout=slave, stderr=slave, cwd=str(self._host.worktree), env=env,
                start_new_session=True, preexec_fn=_take_terminal,
            )
        except OSError as exc:
            os.close(master)
            reason = exc.strerror or str(exc)
            raise CockpitError(f"agent {self._name!r}: cannot start {shlex.join(self._argv)}: {reason}") from None
        finally:
            os.close(slave)
        self._fd = master
        self._exit = ""
        self._closing = False
        self._answered = self._candidate = None
        self._grace_until = time.monotonic() + ECHO_GRACE_S
        self._resume_reading()
        self._watcher = asyncio.create_task(self._watch(self._proc), name=f"terminal-{self._host.session.id}")

    async def _watch(self, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if self._sandboxed:
            code = child_exit_code(code)
        self._read_available(burst=MAX_PENDING)  # whatever it wrote last
        self._finish(code)

    def _finish(self, code: int) -> None:
        """The program ended: show and store its last screen, report how it ended."""
        self._pause_reading()
        self._process(everything=True)
        self._exit = exit_text(code)
        self._emit_frame()
        self._store_scrolled(final=True)
        self._release()
        if not self._closing:
            self._host.emit(ev.NOTICE, {"text": f"{self._argv[0]} {self._exit}", "exit_code": code})
            if code == 0:
                self._set_state(State.IDLE, self._exit)
            else:
                self._set_state(State.ERROR, self._exit)

    async def _kill(self) -> None:
        """SIGHUP then SIGTERM the program's whole session, SIGKILL what is left after a grace."""
        assert self._proc is not None
        sid = self._proc.pid
        members = _session_members(sid)
        _signal_all(members, signal.SIGHUP)
        _signal_all(members, signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE_S
        while self._proc.returncode is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        _signal_all(_session_members(sid), signal.SIGKILL)

    def _release(self) -> None:
        """Close the pty; end any process of the program's session still holding on."""
        for handle in (self._process_handle, self._tick_handle):
            if handle is not None:
                handle.cancel()
        self._process_handle = self._tick_handle = None
        if self._fd >= 0:
            self._pause_reading()
            if self._loop is not None:
                self._loop.remove_writer(self._fd)
            os.close(self._fd)
            self._fd = -1
            if self._proc is not None:
                _signal_all(_session_members(self._proc.pid), signal.SIGKILL)
        self._out.clear()

    # -- output: read, emulate, publish ------------------------------------------------------------

    def _resume_reading(self) -> None:
        if not self._reading and self._fd >= 0 and self._loop is not None:
            self._loop.add_reader(self._fd, self._on_readable)
            self._reading = True

    def _pause_reading(self) -> None:
        if self._reading and self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._reading = False

    def _on_readable(self) -> None:
        if self._read_available():
            self._pause_reading()  # the other end is closed; the watcher finishes up
        if len(self._pending) > MAX_PENDING:
            self._pause_reading()  # resumed once emulation catches up: the program waits
        if self._pending and self._process_handle is None and self._loop is not None:
            self._process_handle = self._loop.call_later(PROCESS_DELAY_S, self._process)

    def _read_available(self, burst: int = READ_BURST) -> bool:
        """Read what the program wrote so far (up to `burst` bytes); True at end of file."""
        got = 0
        while got < burst and self._fd >= 0:
            try:
                data = os.read(self._fd, READ_SIZE)
            except BlockingIOError:
                return False
            except OSError:  # EIO: every process closed the terminal
                return True
            if not data:
                return True
            self._pending += data
            got += len(data)
        return False

    def _process(self, everything: bool = False) -> None:
        """Emulate pending output in slices sized to keep each step near `SLICE_TARGET_S`."""
        self._process_handle = None
        if not self._pending:
            return
        while self._pending:
            started = time.perf_counter()
            chunk = bytes(self._pending[:self._slice])
            del self._pending[:len(chunk)]
            self._screen.feed(chunk)
            # Next slice: what the measured rate does in the target time (floods of plain lines
            # emulate fast, escape-heavy output slowly).
            rate = len(chunk) / max(time.perf_counter() - started, 1e-6)
            self._slice = int(min(SLICE_MAX, max(SLICE_MIN, rate * SLICE_TARGET_S)))
            if not everything:
                break
        if not self.running:
            return  # the end: `_finish` publishes and stores what is left
        now = time.monotonic()
        self._last_output = now
        if now > self._grace_until and self._host.session.state not in (State.RUNNING, State.WAITING):
            self._set_state(State.RUNNING)
        if self._pending and self._loop is not None:
            self._process_handle = self._loop.call_soon(self._process)  # let the UI in between slices
        elif len(self._pending) <= MAX_PENDING:
            self._resume_reading()
        self._schedule_tick(max(0.0, self._next_frame - now))

    def _schedule_tick(self, delay: float) -> None:
        if self._loop is None or self._closing:
            return
        at = time.monotonic() + delay
        if self._tick_handle is not None:
            if self._tick_at <= at:
                return
            self._tick_handle.cancel()
        self._tick_at = at
        self._tick_handle = self._loop.call_later(delay, self._tick)

    def _tick(self) -> None:
        """Publish the screen, store scrolled text, update the state; wake again only if needed."""
        self._tick_handle = None
        now = time.monotonic()
        wake: list[float] = []
        if self._screen.has_changes():
            if now >= self._next_frame:
                self._emit_frame()
            else:
                wake.append(self._next_frame)
        if self._screen.scrolled_total > self._stored_upto:
            if now >= self._next_text:
                self._store_scrolled()
            else:
                wake.append(self._next_text)
        if self.running:
            wake.extend(self._update_state(now))
        if wake:
            self._schedule_tick(max(0.0, min(wake) - now))

    def _emit_frame(self) -> None:
        self._next_frame = time.monotonic() + 1 / FRAME_HZ
        self._host.emit(ev.TERM_SCREEN, self._screen.frame())

    def _store_scrolled(self, final: bool = False) -> None:
        """Store the lines that scrolled off since last time (and, at the end, the screen)."""
        self._next_text = time.monotonic() + TEXT_INTERVAL_S
        self._stored_upto = self._screen.scrolled_total
        lines, dropped = self._screen.take_scrolled(TEXT_MAX_LINES)
        if final:
            shown = self._screen.lines()
            while shown and not shown[-1]:
                shown.pop()
            lines += shown
        if not lines and not dropped:
            return
        note = [f"[{dropped} lines scrolled by]"] if dropped else []
        self._host.emit(ev.TEXT, {"text": "\n".join(note + lines) + "\n", "terminal": True})

    # -- input -----------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        """Write to the program, queueing what its full input buffer does not take yet."""
        if self._fd < 0:
            return
        self._out += data
        self._flush_out()

    def _flush_out(self) -> None:
        try:
            while self._out:
                written = os.write(self._fd, self._out)
                del self._out[:written]
        except BlockingIOError:
            pass
        except OSError:
            self._out.clear()
        if self._loop is not None and self._fd >= 0:
            if self._out:
                self._loop.add_writer(self._fd, self._flush_out)
            else:
                self._loop.remove_writer(self._fd)

    # -- states ----------------------------------------------------------------------------------

    def _set_state(self, state: State, detail: str = "") -> None:
        """Move the session to `state` if the state machine allows it from where it is now.
        Waiting from idle goes through running: the program did work before it asked."""
        current = self._host.session.state
        if current in (State.ARCHIVED, State.MERGED) or self._closing:
            return
        if state == State.WAITING and not can_transition(current, State.WAITING):
            if not can_transition(current, State.RUNNING):
                return
            self._host.set_state(State.RUNNING)
        if can_transition(self._host.session.state, state):
            self._host.set_state(state, detail)

    def _update_state(self, now: float) -> list[float]:
        """Apply the waiting / idle rules; return when they next need a look."""
        wake: list[float] = []
        state = self._host.session.state
        match = self._waiting_match()
        if match is not None:
            line, text = match
            if self._candidate is None or self._candidate[:2] != (line, text):
                self._candidate = (line, text, now)
            since = self._candidate[2]
            if now - since >= SETTLE_S:
                self._set_state(State.WAITING, text.strip())
                return wake
            wake.append(since + SETTLE_S)
            return wake
        self._candidate = None
        if state not in (State.RUNNING, State.WAITING):
            return wake
        quiet_until = self._last_output + IDLE_AFTER_S
        if now >= quiet_until:
            self._set_state(State.IDLE)
        else:
            if state == State.WAITING:  # the prompt went away without an answer from here
                self._set_state(State.RUNNING)
            wake.append(quiet_until)
        return wake

    def _waiting_match(self) -> tuple[int, str] | None:
        """(absolute line, text) of the lowest of the last non-empty lines a pattern matches."""
        if not self._patterns:
            return None
        screen = self._screen
        rows = screen.size[1]
        checked = 0
        base = screen.scrolled_total
        if self._answered is not None:
            line, text = self._answered
            row = line - base
            if not (0 <= row < rows and screen.row_text(row).startswith(text)):
                self._answered = None  # that prompt is gone: a new one may appear in its place
        answered = self._answered
        for y in range(rows - 1, -1, -1):
            text = screen.row_text(y)
            if answered is not None and base + y <= answered[0]:
                # The answered prompt and what is above it are history while that prompt
                # stays on screen; a prompt redrawn in its place clears `_answered` above.
                if base + y < answered[0] or text.startswith(answered[1]):
                    return None
            if not text.strip():
                continue
            checked += 1
            if any(p.search(text) for p in self._patterns):
                return base + y, text
            if checked >= WAIT_LINES:
                break
        return None
