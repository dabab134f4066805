"""`SessionHost`: the engine's side of one session, as its agent backend sees it.

It turns what a backend does (emit text, ask for approval, report usage) into events, state
changes and store writes, and keeps the pending approvals whose futures the person resolves.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cockpit.config import ApprovalConfig, Config
from cockpit.core import events as ev
from cockpit.core.agent_api import AgentBackend, ApprovalDecision
from cockpit.core.events import Event
from cockpit.core.model import Session, Usage
from cockpit.core.states import State
from cockpit.errors import NotFound

if TYPE_CHECKING:
    from cockpit.core.ports import HostEngine

_approval_ids = itertools.count(1)


@dataclass
class PendingApproval:
    id: str
    tool: str
    title: str
    detail: str
    future: asyncio.Future[ApprovalDecision]
    resume_state: State


class SessionHost:
    def __init__(self, engine: HostEngine, session: Session, env: dict[str, str]):
        self._engine = engine
        self._session = session
        self._env = env
        self.backend: AgentBackend | None = None
        self.pending: dict[str, PendingApproval] = {}
        #: Told of every state the engine gives the session (a backend in another process keeps a copy).
        self.on_state: Callable[[State, str], None] | None = None

    @property
    def session(self) -> Session:
        return self._session

    @property
    def config(self) -> Config:
        """The session's own repository's config (never another repository's)."""
        return self._engine.config_for(self._session)

    @property
    def worktree(self) -> Path:
        return self._session.path

    @property
    def env(self) -> dict[str, str]:
        return self._env

    @property
    def home(self) -> Path:
        return self._engine.home

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        self._engine.emit(self._session.id, kind, data)

    def set_state(self, state: State, detail: str = "") -> None:
        self._engine.set_state(self._session, state, detail)

    async def history(self) -> list[Event]:
        return await self._engine.transcript(self._session.id)

    def add_usage(self, model: str, usage: Usage) -> None:
        self._engine.add_usage(self._session, model, usage)

    async def budget_exceeded(self) -> str:
        return self._engine.budget_exceeded(self._session)

    async def hold(self) -> None:
        await self._engine.hold(self._session)

    async def request_approval(self, tool: str, title: str, detail: str = "") -> ApprovalDecision:
        """Put the session in `waiting` until the person approves or denies."""
        request = PendingApproval(
            id=f"a{next(_approval_ids)}", tool=tool, title=title, detail=detail,
            future=asyncio.get_running_loop().create_future(),
            resume_state=self._session.state if self._session.state != State.WAITING else State.RUNNING,
        )
        self.pending[request.id] = request
        self.emit(ev.APPROVAL_REQUEST, {"id": request.id, "tool": tool, "title": title, "detail": detail})
        self.set_state(State.WAITING, f"approve {tool}: {title}")
        try:
            return await request.future
        finally:
            self.pending.pop(request.id, None)
            if not self.pending and self._session.state == State.WAITING:
                self.set_state(request.resume_state)

    async def current_approval(self) -> ApprovalConfig:
        return self.config.approval  # re-read when its files change (`RepoConfigs`)

    def resolve(self, request_id: str | None, decision: ApprovalDecision) -> PendingApproval:
        """Answer one pending request (the oldest when no id is given)."""
        if request_id is None:
            if not self.pending:
                raise NotFound(f"session @{self._session.number} has no pending approval")
            request_id = next(iter(self.pending))
        request = self.pending.get(request_id)
        if request is None:
            raise NotFound(f"session @{self._session.number} has no pending approval {request_id!r}")
        self.emit(ev.APPROVAL_RESOLVED, {
            "id": request.id, "tool": request.tool, "approved": decision.approved,
            "reason": decision.reason, "always": decision.always,
        })
        if not request.future.done():
            request.future.set_result(decision)
        return request

    def lost(self, reason: str) -> None:
        """The backend died outside its own control (its worker process was killed): the
        session goes to `error` with the reason, and its next use starts a new backend."""
        self.cancel_approvals()
        self.backend, self.on_state = None, None
        if self._session.state in (State.RUNNING, State.WAITING):
            self.emit(ev.TURN_END, {"error": reason})
        self.emit(ev.ERROR, {"text": f"{reason}; resume it (r) to go on"})
        if self._session.state not in (State.ERROR, State.ARCHIVED, State.MERGED):
            self.set_state(State.ERROR, reason)

    def cancel_approvals(self) -> None:
        for request in list(self.pending.values()):
            if not request.future.done():
                request.future.cancel()
