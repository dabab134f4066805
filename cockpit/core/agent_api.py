"""The contract between the engine and agent backends.

The engine owns sessions, state, approvals, usage and persistence; a backend (the built-in
LLM loop, an ACP agent, a terminal program) only talks through an `AgentHost`. Keeping the
contract here lets core drive any backend without importing one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cockpit.config import ApprovalConfig, Config
from cockpit.core.events import Event
from cockpit.core.model import Session, Usage
from cockpit.core.states import State


@dataclass(frozen=True)
class ApprovalDecision:
    approved: bool
    reason: str = ""
    always: bool = False  # approve this kind of call for the rest of the session


class AgentHost(Protocol):
    """What the engine offers one session's backend."""

    @property
    def session(self) -> Session: ...
    @property
    def config(self) -> Config: ...
    @property
    def worktree(self) -> Path: ...
    @property
    def env(self) -> dict[str, str]: ...
    @property
    def home(self) -> Path: ...  # the cockpit home: where a backend keeps its logs

    def emit(self, kind: str, data: dict[str, Any]) -> None: ...
    def set_state(self, state: State, detail: str = "") -> None: ...
    async def request_approval(self, tool: str, title: str, detail: str = "") -> ApprovalDecision: ...
    async def current_approval(self) -> ApprovalConfig:
        """The repository's approval settings as they are now (`config` is as they were when the
        backend started): a rule the person adds while the agent runs applies to its next call."""
    async def history(self) -> list[Event]: ...
    def add_usage(self, model: str, usage: Usage) -> None: ...
    async def budget_exceeded(self) -> str: ...  # a reason, or "" when within budget
    async def hold(self) -> None:
        """Wait while the engine cannot record what the agent does (a full disk): call before
        each model request and tool call."""


class AgentBackend(Protocol):
    async def start(self) -> None: ...
    async def send(self, text: str) -> None:
        """Begin a turn with the person's text; returns without waiting for the turn to end."""
    async def interrupt(self) -> None: ...
    async def close(self) -> None: ...


@runtime_checkable
class TerminalBackend(AgentBackend, Protocol):
    """A backend that is a program in a pseudo-terminal: the `term_*` commands drive it."""

    async def write_input(self, data: str) -> None:
        """Keys as the bytes a terminal sends; a CockpitError when the program is not running."""
    async def resize(self, columns: int, lines: int) -> bool:
        """Kept for the next start when the program is not running; returns whether it runs."""
    async def screen_frame(self) -> dict[str, Any]:
        """The whole screen as a `term.screen` frame, plus `running` and `exit`."""


AgentFactory = Callable[[AgentHost], AgentBackend]


@runtime_checkable
class AgentRuntime(Protocol):
    """An agent factory that runs backends in processes of its own (`cockpit.workers`): the
    engine closes it last, after every agent."""

    def __call__(self, host: AgentHost) -> AgentBackend: ...
    async def shutdown(self) -> None: ...
    def describe(self) -> list[dict[str, Any]]:
        """Its processes, for `cockpit server status`: pid (None until started) and sessions."""
