"""A backend for approval tests: each message is a list of shell commands the agent runs at once.

Every command goes through the real `ApprovalGate` (the policy, then the person through the
engine's `SessionHost`), so requests are real pending approvals, answered by the real engine
commands, and a rule written into the repository's `.cockpit.toml` applies to the next message.
"""

from __future__ import annotations

import asyncio
import json

from cockpit.agents.approval_gate import ApprovalGate
from cockpit.core.agent_api import AgentHost
from cockpit.core.states import State


class AskingBackend:
    """`send('["pytest -q", "npm test"]')` asks to run both (concurrently, as ACP agents may)."""

    by_session: dict[str, AskingBackend] = {}

    def __init__(self, host: AgentHost):
        self.host = host
        self.gate = ApprovalGate(host, host.config.approval, sandboxed=True)
        self.outcomes: dict[str, str] = {}  # command → "" (ran) or the refusal
        self.tasks: list[asyncio.Task[None]] = []
        AskingBackend.by_session[host.session.id] = self

    async def start(self) -> None:
        pass

    async def send(self, text: str) -> None:
        if text:
            self.tasks.append(asyncio.create_task(self._turn(json.loads(text))))

    async def _turn(self, commands: list[str]) -> None:
        self.host.set_state(State.RUNNING)

        async def one(command: str) -> None:
            self.outcomes[command] = await self.gate.refusal("run_shell", {"command": command})

        await asyncio.gather(*(one(c) for c in commands))
        self.host.set_state(State.IDLE)

    async def interrupt(self) -> None:
        for task in self.tasks:
            task.cancel()

    async def close(self) -> None:
        await self.interrupt()


def asking_agent(host: AgentHost) -> AskingBackend:
    """The agent factory (a function: the engine takes a class with a `close` for a worker pool)."""
    return AskingBackend(host)
