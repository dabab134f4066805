"""An agent worker process: runs agent backends for the engine, at a lower priority.

`python -m cockpit.workers.worker --fd N` serves the engine over the socket it was handed (its
stdout and stderr go to a log file, so nothing an agent library prints can corrupt the
channel). The engine keeps the store, sessions, git and the socket; here run the backends'
model streams, tools, ACP clients and terminal emulation, each behind a `WorkerHost` that
forwards what the backend does to the engine over the `Channel`.

The worker lowers its own scheduling priority first, so that when agents use every core the
engine and the screen still get the CPU the moment the person presses a key. When the engine
goes away (its end of the socket closes) every backend is closed and the process exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cockpit.config import ApprovalConfig, Config, config_from_dict
from cockpit.core.agent_api import AgentBackend, ApprovalDecision, TerminalBackend
from cockpit.core.events import Event
from cockpit.core.model import Session, Usage
from cockpit.core.states import State
from cockpit.errors import CockpitError
from cockpit.workers.channel import Channel

log = logging.getLogger(__name__)


class WorkerHost:
    """The `AgentHost` of one session inside a worker: reports go to the engine over the channel.

    The session is a mirror: the worker updates its state as its backend sets it, and the
    engine sends the changes it makes itself (an interrupt, a resolved approval).
    """

    def __init__(self, channel: Channel, session: Session, config: Config, env: dict[str, str], home: Path):
        # Plain attributes: nothing here is derived or re-read (unlike the engine's `SessionHost`).
        self._channel = channel
        self.session = session
        self.config = config
        self.env = env
        self.home = home

    @property
    def worktree(self) -> Path:
        return self.session.path

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        self._channel.notify("emit", self.session.id, kind=kind, data=data)

    def set_state(self, state: State, detail: str = "") -> None:
        self.session.state, self.session.state_detail = state, detail
        self._channel.notify("set_state", self.session.id, state=state.value, detail=detail)

    def add_usage(self, model: str, usage: Usage) -> None:
        self.session.usage.add(usage)
        self._channel.notify("add_usage", self.session.id, model=model, usage=asdict(usage))

    async def request_approval(self, tool: str, title: str, detail: str = "") -> ApprovalDecision:
        answer = await self._channel.call("request_approval", self.session.id, tool=tool, title=title, detail=detail)
        return ApprovalDecision(**answer)

    async def history(self) -> list[Event]:
        return [Event.from_dict(raw) for raw in await self._channel.call("history", self.session.id)]

    async def current_approval(self) -> ApprovalConfig:
        return ApprovalConfig(**await self._channel.call("current_approval", self.session.id))

    async def budget_exceeded(self) -> str:
        return await self._channel.call("budget_exceeded", self.session.id)

    async def hold(self) -> None:
        await self._channel.call("hold", self.session.id)


class Worker:
    """The backends of this process, by session id, and the engine's calls that drive them."""

    def __init__(self) -> None:
        self.backends: dict[str, AgentBackend] = {}
        self.hosts: dict[str, WorkerHost] = {}
        self.channel: Channel | None = None

    def handlers(self) -> dict[str, Any]:
        return {
            "start": self.start, "send": self.send, "interrupt": self.interrupt, "close": self.close,
            "session_state": self.session_state, "term_input": self.term_input,
            "term_resize": self.term_resize, "term_screen": self.term_screen, "ping": self.ping,
        }

    async def start(self, session_id: str, session: dict[str, Any], config: dict[str, Any],
                    env: dict[str, str], home: str) -> None:
        from cockpit.agents.factory import make_agent

        assert self.channel is not None
        await self.close(session_id)  # a second start replaces the first (the engine lost it)
        host = WorkerHost(self.channel, Session.from_dict(session), config_from_dict(config), env, Path(home))
        backend = make_agent(host)
        self.hosts[session_id], self.backends[session_id] = host, backend
        try:
            await backend.start()
        except BaseException:
            self.backends.pop(session_id, None)
            self.hosts.pop(session_id, None)
            raise

    def _backend(self, session_id: str) -> AgentBackend:
        backend = self.backends.get(session_id)
        if backend is None:
            raise CockpitError(f"session {session_id} has no agent in this worker")
        return backend

    async def send(self, session_id: str, text: str) -> None:
        await self._backend(session_id).send(text)

    async def interrupt(self, session_id: str) -> None:
        await self._backend(session_id).interrupt()

    async def close(self, session_id: str) -> None:
        backend = self.backends.pop(session_id, None)
        self.hosts.pop(session_id, None)
        if backend is not None:
            await backend.close()

    def session_state(self, session_id: str, state: str, detail: str = "") -> None:
        host = self.hosts.get(session_id)
        if host is not None:
            host.session.state, host.session.state_detail = State(state), detail

    def _terminal(self, session_id: str) -> TerminalBackend:
        backend = self._backend(session_id)
        if not isinstance(backend, TerminalBackend):
            raise CockpitError(f"session {session_id} is not a terminal session")
        return backend

    async def term_input(self, session_id: str, data: str) -> None:
        await self._terminal(session_id).write_input(data)

    async def term_resize(self, session_id: str, cols: int, rows: int) -> bool:
        return await self._terminal(session_id).resize(cols, rows)

    async def term_screen(self, session_id: str) -> dict[str, Any]:
        return await self._terminal(session_id).screen_frame()

    def ping(self, session_id: str) -> int:
        return os.getpid()

    async def serve(self, fd: int, batch_s: float) -> None:
        reader, writer = await asyncio.open_connection(sock=socket.socket(fileno=fd))
        self.channel = Channel(reader, writer, self.handlers(), batch_s=batch_s)
        try:
            await self.channel.run()  # until the engine goes away
        finally:
            for session_id in list(self.backends):
                with contextlib.suppress(Exception):
                    await self.close(session_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="an agent worker of the cockpit engine (started by it)")
    parser.add_argument("--fd", type=int, required=True, help="the socket to the engine")
    parser.add_argument("--nice", type=int, default=10, help="how much to lower this process's priority")
    parser.add_argument("--batch-ms", type=float, default=30.0, help="how long notices wait to be sent together")
    args = parser.parse_args(argv)
    with contextlib.suppress(OSError):
        os.nice(args.nice)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="%(asctime)s worker %(process)d %(name)s: %(message)s")
    asyncio.run(Worker().serve(args.fd, args.batch_ms / 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
