"""A backend for review tests: each turn applies the next scripted edit to the worktree.

It speaks the real `AgentHost` contract (state changes, TURN_START / TURN_END), so the engine's
after-turn work (checkpoint, diffstat, queued notes) runs exactly as with a real agent; a test
can hold a turn open to see what happens while the agent is working.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from cockpit.core import events as ev
from cockpit.core.agent_api import AgentHost
from cockpit.core.engine import Engine
from cockpit.core.model import Session
from cockpit.core.states import State

Edit = Callable[[Path], None]


class TurnBackend:
    """Each `send` is one turn: running, apply the next edit, wait while held, end, idle."""

    by_session: dict[str, TurnBackend] = {}

    def __init__(self, host: AgentHost):
        self.host = host
        self.received: list[str] = []
        self.edits: list[Edit] = []
        self.hold: asyncio.Event | None = None  # while set to an unset Event, turns stay running
        self.turns: list[asyncio.Task[None]] = []
        TurnBackend.by_session[host.session.id] = self

    async def start(self) -> None:
        pass

    async def send(self, text: str) -> None:
        self.received.append(text)
        self.turns.append(asyncio.create_task(self._turn()))

    async def _turn(self) -> None:
        self.host.set_state(State.RUNNING)
        self.host.emit(ev.TURN_START, {})
        if self.edits:
            self.edits.pop(0)(self.host.worktree)
        if self.hold is not None:
            await self.hold.wait()
        self.host.emit(ev.TURN_END, {})
        self.host.set_state(State.IDLE)

    async def interrupt(self) -> None:
        for turn in self.turns:
            turn.cancel()

    async def close(self) -> None:
        await self.interrupt()


async def wait_for(check: Callable[[], object], timeout: float = 20.0) -> None:
    """Poll until `check()` is true (a generous bound: only a broken build reaches it)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def settled(engine: Engine, session: Session) -> None:
    """Wait until the session is idle and the engine's after-turn work is done."""
    await wait_for(lambda: session.state == State.IDLE and not engine._tasks)


async def turn(engine: Engine, session: Session, edit: Edit | None = None, text: str = "go") -> None:
    """Run one agent turn that applies `edit`, and wait for its after-turn work."""
    backend = TurnBackend.by_session[session.id]
    if edit is not None:
        backend.edits.append(edit)
    await engine.send(session.id, text)
    await backend.turns[-1]
    await settled(engine, session)


async def events_of(engine: Engine, session: Session, kind: str) -> list[dict]:
    return [e.data for e in await engine.transcript(session.id) if e.kind == kind]
