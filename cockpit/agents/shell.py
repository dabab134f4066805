"""The agent's shell: `bash -c` commands in the worktree, ended together on interrupt.

The process handling (own process group, head-and-tail capture, group killed at the end) is
`cockpit.core.process`, the confinement `cockpit.core.sandbox`; this adds what only an agent
needs: an interrupt that stops every command the agent is running.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from cockpit.core.process import DEFAULT_CAPTURE_CHARS, ShellResult
from cockpit.core.sandbox import Sandbox, run_confined


class ShellRunner:
    """Runs the agent's `bash -c` commands in `sandbox` (None: unconfined); `interrupt()` ends
    every command it is running."""

    def __init__(self, capture_chars: int = DEFAULT_CAPTURE_CHARS, sandbox: Sandbox | None = None):
        self.capture_chars = capture_chars
        self.sandbox = sandbox
        self._running: set[asyncio.Event] = set()

    async def run(self, command: str, cwd: Path, env: dict[str, str], timeout: float) -> ShellResult:
        """Run `command` in `cwd` with exactly the environment `env`."""
        stop = asyncio.Event()
        self._running.add(stop)
        try:
            return await run_confined(
                ["bash", "-c", command], cwd, env, timeout,
                sandbox=self.sandbox, capture_chars=self.capture_chars, stop=stop,
            )
        finally:
            self._running.discard(stop)

    def interrupt(self) -> None:
        """End the commands now running; their `run` returns with `interrupted=True`."""
        for stop in self._running:
            stop.set()
