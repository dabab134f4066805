"""The narrow parts of the engine that its services use, as Protocols.

The engine builds its services (`SessionHost`, `Review`, `Landing`, the JSON commands) and hands
them itself; each service names only what it calls, from here, so none of them imports the
engine: the engine imports them, never the reverse. `Engine` satisfies every Protocol here
structurally.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from cockpit.config import Config, ReviewConfig
from cockpit.core.agent_api import TerminalBackend
from cockpit.core.bus import EventFilter, Subscription
from cockpit.core.events import Event
from cockpit.core.merge import Prepared
from cockpit.core.model import Session, Usage
from cockpit.core.sandbox import Sandbox
from cockpit.core.states import State
from cockpit.core.store import Store
from cockpit.core.verify import VerifyResult
from cockpit.core.worktrees import RepoInfo, WorktreeManager


class Events(Protocol):
    """Settings, the home folder, and saying what happened to a session."""

    config: Config
    home: Path

    def emit(self, session_id: str, kind: str, data: dict[str, Any] | None = None) -> Event: ...

    def set_state(self, session: Session, state: State, detail: str = "") -> None: ...

    async def transcript(self, session_id: str, tail: int = 0) -> list[Event]: ...


class HostEngine(Events, Protocol):
    """What a `SessionHost` passes on for its agent: events, state, usage and the budget."""

    def add_usage(self, session: Session, model: str, usage: Usage) -> None: ...

    def budget_exceeded(self, session: Session) -> str: ...


class Sessions(Events, Protocol):
    """The sessions and their repositories: finding one, instructing it, storing it."""

    sessions: dict[str, Session]
    store: Store

    def get(self, ref: str) -> Session: ...

    async def send(self, ref: str, text: str) -> None: ...

    async def repo_info(self, repo_id: int) -> RepoInfo: ...


class ReviewEngine(Sessions, Protocol):
    """What the review desk (`Review`) uses: the sessions and the event stream."""

    def subscribe(self, maxsize: int = 10_000, accept: EventFilter | None = None) -> Subscription: ...


class HasEnv(Protocol):
    @property
    def env(self) -> dict[str, str]: ...


class LandingEngine(Sessions, Protocol):
    """What the merge desk (`Landing`) uses: the sessions, their worktrees and environments."""

    worktrees: WorktreeManager

    @property
    def hosts(self) -> Mapping[str, HasEnv]: ...

    async def remove_worktree(self, session: Session, *, delete_branch: bool = False) -> None: ...

    def config_for(self, session: Session) -> Config: ...

    def verify_command(self, session: Session) -> str: ...

    def command_env(self, session: Session, **overrides: str) -> dict[str, str]: ...

    def sandbox(self, session: Session, worktree: Path) -> Sandbox | None: ...

    async def _updated(self, session: Session) -> Session:
        """Save a changed session and announce it (the engine's own step after a change)."""
        ...


class Desk(Protocol):
    """What the merge queue asks of the merge desk (`Landing`)."""

    @property
    def engine(self) -> Sessions: ...

    def review(self, session: Session) -> ReviewConfig: ...

    def target_name(self, session: Session, target: str | None = None) -> str: ...

    async def repo_lock(self, session: Session) -> asyncio.Lock: ...

    async def prepare(self, session: Session, *, strategy: str | None = None, message: str | None = None,
                      target: str | None = None, gate: bool = True) -> Prepared: ...

    async def verify_commit(self, session: Session, commit: str, scope: dict[str, Any]) -> VerifyResult: ...

    async def land(self, prepared: Prepared) -> None: ...

    async def finish(self, prepared: Prepared, extra: dict[str, Any] | None = None) -> dict[str, Any]: ...


class CommandEngine(Protocol):
    """What the JSON commands with a body of their own call (the one-line ones reach the engine's
    public methods by name)."""

    paused: str  # why every agent is held (the store cannot write), "" when they run

    @property
    def create_sessions(self) -> Callable[..., Awaitable[list[Session]]]: ...

    def get(self, ref: str) -> Session: ...

    def snapshot(self) -> list[dict[str, Any]]: ...

    async def transcript(self, session_id: str, tail: int = 0) -> list[Event]: ...

    async def send_line(self, line: str, *, focused: str | None = None,
                        marked: Iterable[str] = ()) -> list[Session]: ...

    async def terminal(self, ref: str, *, start: bool = True) -> TerminalBackend | None: ...
