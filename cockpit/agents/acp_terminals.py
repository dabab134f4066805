"""The `terminal/*` capability for ACP agents: commands an agent runs in its worktree.

An agent asks the client to start a command (`terminal/create`), reads its output while it runs
(`terminal/output`), waits for it, kills it and releases it. Every command goes through
`run_confined`, the launch path of the built-in shell tool: in the session's sandbox when there
is one, in its own process group that is ended when the command is killed or released, or when
the agent goes away, and in the session's cgroup: nothing an agent starts outlives it. Only the last
`output_byte_limit` bytes are kept, cut at a character boundary, as the protocol asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cockpit.core.containment import SESSION_MARKERS
from cockpit.core.process import ShellResult, elide
from cockpit.core.sandbox import Sandbox, run_confined

#: Output kept per command when the agent names no limit.
DEFAULT_OUTPUT_LIMIT = 1_000_000
#: Released terminals whose last output stays readable, and how much of it: an agent may release a
#: terminal before the tool call showing it has been drawn.
KEEP_RELEASED = 16
KEEP_RELEASED_CHARS = 20_000
_EXIT_NOT_FOUND = 127  # what a shell reports for a command it cannot run

_terminal_ids = itertools.count(1)


class UnknownTerminal(LookupError):
    """The agent named a terminal it never created or already released."""


@dataclass(frozen=True)
class ExitStatus:
    exit_code: int | None
    signal: str | None


@dataclass
class _Terminal:
    limit: int
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    output: bytearray = field(default_factory=bytearray)
    truncated: bool = False
    task: asyncio.Task[ShellResult] | None = None

    def feed(self, chunk: bytes) -> None:
        self.output += chunk
        extra = len(self.output) - self.limit
        if extra > 0:
            del self.output[:extra]
            self.truncated = True

    def text(self) -> str:
        data = bytes(self.output)
        start = 0
        # The cut may have split a character: drop the continuation bytes it left at the front.
        while self.truncated and start < min(len(data), 3) and data[start] & 0xC0 == 0x80:
            start += 1
        return data[start:].decode("utf-8", errors="replace")

    def exit_status(self) -> ExitStatus | None:
        if self.task is None or not self.task.done() or self.task.cancelled():
            return None
        code = self.task.result().exit_code
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                return ExitStatus(None, signal.Signals(-code).name)
            return ExitStatus(None, f"signal {-code}")
        return ExitStatus(code, None)


def _report_exit(terminal: _Terminal, on_exit: Callable[[str, ExitStatus], None]) -> None:
    status = terminal.exit_status()
    if status is not None:  # None: cancelled, the agent went away
        on_exit(terminal.text(), status)


class Terminals:
    """The commands one agent process has started, by terminal id."""

    def __init__(self, env: Mapping[str, str], sandbox: Sandbox | None = None):
        self._env = dict(env)
        self.sandbox = sandbox
        self._terminals: dict[str, _Terminal] = {}
        self._released: OrderedDict[str, str] = OrderedDict()

    def create(self, command: str, args: Sequence[str], env: Mapping[str, str], cwd: Path,
               output_limit: int | None, on_exit: Callable[[str, ExitStatus], None] | None = None) -> str:
        """Start `command` (with `args`, else as a `sh -c` line) in `cwd`; its terminal id.

        `on_exit` gets the output kept and the exit status once the command has ended.
        """
        argv = [command, *args] if args else ["/bin/sh", "-c", command]
        terminal = _Terminal(output_limit if output_limit and output_limit > 0 else DEFAULT_OUTPUT_LIMIT)
        # The agent's variables may not move the command out of its session (see containment).
        merged = {**self._env, **env, **{k: v for k, v in self._env.items() if k in SESSION_MARKERS}}
        task = terminal.task = asyncio.create_task(self._run(terminal, argv, cwd, merged))
        if on_exit is not None:
            task.add_done_callback(lambda _: _report_exit(terminal, on_exit))
        terminal_id = f"term-{next(_terminal_ids)}"
        self._terminals[terminal_id] = terminal
        return terminal_id

    async def _run(self, terminal: _Terminal, argv: list[str], cwd: Path, env: dict[str, str]) -> ShellResult:
        try:
            return await run_confined(argv, cwd, env, None, sandbox=self.sandbox, capture_chars=0,
                                      stop=terminal.stop, on_output=terminal.feed)
        except OSError as exc:  # the program is missing or not executable: say so, like a shell
            terminal.feed(f"{argv[0]}: {exc.strerror or exc}\n".encode())
            return ShellResult(_EXIT_NOT_FOUND, "")

    def output(self, terminal_id: str) -> tuple[str, bool, ExitStatus | None]:
        """(output so far, whether its beginning was cut, exit status once it has ended)."""
        terminal = self._get(terminal_id)
        return terminal.text(), terminal.truncated, terminal.exit_status()

    def output_text(self, terminal_id: str) -> str | None:
        """The output of a terminal, live or recently released, else None (for showing a tool
        call's result)."""
        terminal = self._terminals.get(terminal_id)
        return self._released.get(terminal_id) if terminal is None else terminal.text()

    async def wait(self, terminal_id: str) -> ExitStatus:
        terminal = self._get(terminal_id)
        assert terminal.task is not None
        await asyncio.shield(terminal.task)
        status = terminal.exit_status()
        assert status is not None
        return status

    async def kill(self, terminal_id: str) -> None:
        """End the command's process group; its output and exit status stay readable."""
        terminal = self._get(terminal_id)
        terminal.stop.set()
        assert terminal.task is not None
        await asyncio.shield(terminal.task)

    async def release(self, terminal_id: str) -> None:
        """Kill the command if it still runs and forget the terminal."""
        await self.kill(terminal_id)
        terminal = self._terminals.pop(terminal_id, None)
        if terminal is not None:
            self._released[terminal_id] = elide(terminal.text(), KEEP_RELEASED_CHARS)
            while len(self._released) > KEEP_RELEASED:
                self._released.popitem(last=False)

    async def close(self) -> None:
        """End every command (the agent went away)."""
        for terminal_id in list(self._terminals):
            await self.release(terminal_id)

    def _get(self, terminal_id: str) -> _Terminal:
        terminal = self._terminals.get(terminal_id)
        if terminal is None:
            raise UnknownTerminal(f"no terminal {terminal_id!r} (never created, or released)")
        return terminal
