"""The agent's shell: `bash -c` commands in the worktree, ended together on interrupt.

The process handling (own process group, head-and-tail capture, group killed at the end) is
`cockpit.core.process`; this adds what only an agent needs: its environment and an interrupt
that stops every command the agent is running.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from cockpit.core.process import DEFAULT_CAPTURE_CHARS, ShellResult, run_process


class ShellRunner:
    """Runs the agent's `bash -c` commands; `interrupt()` ends every command it is running."""

    def __init__(self, capture_chars: int = DEFAULT_CAPTURE_CHARS):
        self.capture_chars = capture_chars
        self._running: set[asyncio.Event] = set()

    async def run(self, command: str, cwd: Path, env: dict[str, str], timeout: float) -> ShellResult:
        """Run `command` in `cwd` with our environment overlaid by `env`."""
        stop = asyncio.Event()
        self._running.add(stop)
        try:
            return await run_process(
                ["bash", "-c", command], cwd, {**os.environ, **env}, timeout,
                capture_chars=self.capture_chars, stop=stop,
            )
        finally:
            self._running.discard(stop)

    def interrupt(self) -> None:
        """End the commands now running; their `run` returns with `interrupted=True`."""
        for stop in self._running:
            stop.set()
