"""Agent backends in worker processes: the engine's side (`WorkerPool` and its proxies).

One event loop cannot stream for dozens of agents: a model client spends far more CPU per
chunk than the engine does per event, so with ~50 agents the engine's loop saturated and every
command (approve, send, ls) waited behind the token backlog. The pool moves the backends into
worker processes (as many as cores by default, started on first use, sessions spread over
them) and gives the engine a `RemoteBackend` per session in their place. The engine keeps the
store, the bus, sessions, git and the socket; a worker sends what its agents do in ~30 ms
batches (`channel.py`), so the engine handles tens of messages a second per worker.

A worker that dies takes only its own sessions down: each goes to `error` ("agent worker
died"), whatever its agent left running is ended, and `r` starts it again in a new worker
(the conversation is rebuilt from the store, where everything acknowledged already is).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cockpit
from cockpit.agents.log_pump import RotatingLog, start_log_pump
from cockpit.config import WorkersConfig
from cockpit.core.agent_api import AgentBackend
from cockpit.core.containment import end_session_processes
from cockpit.core.host import SessionHost
from cockpit.core.model import Usage
from cockpit.core.states import State
from cockpit.workers.channel import Channel, ChannelClosed

log = logging.getLogger(__name__)

#: A worker that dies sooner than this after starting is not restarted at once (a crash loop);
#: the next session that needs it starts it.
STEADY_AFTER_S = 10.0
#: How long a worker may take to exit once its channel is closed.
EXIT_GRACE_S = 5.0


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class WorkerProcess:
    """One worker process (started on demand, again after it dies) and the sessions it runs."""

    def __init__(self, pool: WorkerPool, index: int):
        self.pool = pool
        self.index = index
        self.backends: dict[str, RemoteBackend] = {}
        self.channel: Channel | None = None
        self.process: asyncio.subprocess.Process | None = None
        self._starting: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._started_at = 0.0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.returncode is None else None

    async def ready(self) -> Channel:
        """The channel to a running worker, starting one if there is none."""
        if self.channel is None or self.channel.closed:
            if self._starting is None or self._starting.done():
                self._starting = asyncio.create_task(self._spawn(), name=f"agent-worker-{self.index}-start")
            await asyncio.shield(self._starting)
        assert self.channel is not None
        return self.channel

    async def _spawn(self) -> None:
        settings, home = self.pool.settings, self.pool.home
        assert home is not None
        ours, theirs = socket.socketpair()
        log_file = RotatingLog(home / "logs" / f"worker-{self.index}.log")
        output, pump = await start_log_pump(log_file, f"agent-worker-{self.index}-log")
        source = str(Path(cockpit.__file__).resolve().parent.parent)  # a checkout run without installing
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cockpit.workers.worker", "--fd", str(theirs.fileno()),
                "--nice", str(settings.nice), "--batch-ms", str(settings.batch_ms),
                pass_fds=(theirs.fileno(),), stdin=asyncio.subprocess.DEVNULL, stdout=output, stderr=output,
                env=env,
            )
        finally:
            theirs.close()
            os.close(output)
        reader, writer = await asyncio.open_connection(sock=ours)
        self.channel = Channel(reader, writer, self._handlers(), batch_s=settings.batch_ms / 1000)
        self._started_at = time.monotonic()
        self._watcher = asyncio.create_task(self._watch(self.channel, self.process, pump),
                                            name=f"agent-worker-{self.index}")

    async def _watch(self, channel: Channel, process: asyncio.subprocess.Process, pump: asyncio.Task[None]) -> None:
        await channel.run()  # until the worker goes away (or the pool closes the channel)
        try:
            code = await asyncio.wait_for(process.wait(), EXIT_GRACE_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            code = await process.wait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pump, 1.0)
        if self.pool.closing:
            return
        reason = "agent worker died" + (f" (killed by {signal.Signals(-code).name})" if code < 0 else f" (exit {code})")
        log.warning("worker %d (pid %d): %s", self.index, process.pid, reason)
        lost, self.backends = list(self.backends.values()), {}
        for backend in lost:
            backend.host.lost(reason)
        for backend in lost:
            await end_session_processes(backend.host.env)  # its agent's programs lost their parent
        if time.monotonic() - self._started_at >= STEADY_AFTER_S:
            with contextlib.suppress(Exception):
                await self.ready()  # restarted now, so that `r` finds it warm

    def _handlers(self) -> dict[str, Any]:
        def backend(session_id: str) -> RemoteBackend:
            found = self.backends.get(session_id)
            if found is None:
                raise ChannelClosed(f"session {session_id} has no agent in worker {self.index}")
            return found

        def emit(session_id: str, kind: str, data: dict[str, Any]) -> None:
            if session_id in self.backends:  # late words of a closed agent are dropped
                self.backends[session_id].host.emit(kind, data)

        def set_state(session_id: str, state: str, detail: str = "") -> None:
            if session_id in self.backends:
                self.backends[session_id].state_from_worker(State(state), detail)

        def add_usage(session_id: str, model: str, usage: dict[str, Any]) -> None:
            if session_id in self.backends:
                self.backends[session_id].host.add_usage(model, Usage(**usage))

        async def request_approval(session_id: str, tool: str, title: str, detail: str = "") -> dict[str, Any]:
            return asdict(await backend(session_id).host.request_approval(tool, title, detail))

        async def current_approval(session_id: str) -> dict[str, Any]:
            return asdict(await backend(session_id).host.current_approval())

        async def history(session_id: str) -> list[dict[str, Any]]:
            return [event.to_dict() for event in await backend(session_id).host.history()]

        async def budget_exceeded(session_id: str) -> str:
            return await backend(session_id).host.budget_exceeded()

        async def hold(session_id: str) -> None:
            await backend(session_id).host.hold()

        return {"emit": emit, "set_state": set_state, "add_usage": add_usage, "request_approval": request_approval,
                "history": history, "budget_exceeded": budget_exceeded, "hold": hold,
                "current_approval": current_approval}

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close()
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await self._watcher


class WorkerPool:
    """An `AgentRuntime`: the engine's agent factory when agents run in worker processes."""

    def __init__(self, settings: WorkersConfig | None = None):
        self._settings = settings
        self.workers: list[WorkerProcess] = []
        self.home: Path | None = None
        self.closing = False

    @property
    def settings(self) -> WorkersConfig:
        return self._settings or WorkersConfig()

    def __call__(self, host: SessionHost) -> AgentBackend:
        if not self.workers:  # the first session tells where logs go and, unless given, how many workers
            self._settings = self._settings or host.config.workers
            self.home = host.home
            count = self.settings.count or available_cores()
            self.workers = [WorkerProcess(self, index) for index in range(count)]
        worker = min(self.workers, key=lambda w: len(w.backends))  # the least busy; unstarted ones are 0
        kind = host.config.agents.get(host.session.agent)
        backend = (RemoteTerminal if kind is not None and kind.kind == "terminal" else RemoteBackend)(worker, host)
        worker.backends[host.session.id] = backend
        return backend

    def describe(self) -> list[dict[str, Any]]:
        return [{"pid": w.pid, "sessions": len(w.backends)} for w in self.workers]

    def worker_of(self, session_id: str) -> WorkerProcess | None:
        return next((w for w in self.workers if session_id in w.backends), None)

    async def shutdown(self) -> None:
        """Close every worker (each closes its agents) and wait for them to exit."""
        self.closing = True
        await asyncio.gather(*(worker.close() for worker in self.workers), return_exceptions=True)


class RemoteBackend:
    """A session's backend as the engine sees it: every call goes to the session's worker."""

    def __init__(self, worker: WorkerProcess, host: SessionHost):
        self.worker = worker
        self.host = host
        self._from_worker = False  # applying the worker's own state change: not echoed back

    @property
    def _id(self) -> str:
        return self.host.session.id

    async def _call(self, method: str, **args: Any) -> Any:
        channel = await self.worker.ready()
        return await channel.call(method, self._id, **args)

    async def start(self) -> None:
        host = self.host
        try:
            await self._call("start", session=host.session.to_dict(), config=asdict(host.config),
                             env=host.env, home=str(host.home))
        except BaseException:
            self.worker.backends.pop(self._id, None)
            raise
        host.on_state = self._mirror_state

    async def send(self, text: str) -> None:
        """Handed to the worker without waiting for it: a worker busy streaming for its other
        agents must not hold up the person's command (the text is already in the transcript)."""
        channel = await self.worker.ready()
        channel.notify("send", self._id, urgent=True, text=text)

    async def interrupt(self) -> None:
        await self._call("interrupt")

    async def close(self) -> None:
        try:
            if self.worker.backends.get(self._id) is self:
                with contextlib.suppress(ChannelClosed):
                    await self._call("close")
        finally:
            if self.worker.backends.get(self._id) is self:
                del self.worker.backends[self._id]
            if self.host.on_state == self._mirror_state:
                self.host.on_state = None

    def state_from_worker(self, state: State, detail: str) -> None:
        self._from_worker = True
        try:
            self.host.set_state(state, detail)
        finally:
            self._from_worker = False

    def _mirror_state(self, state: State, detail: str) -> None:
        """The engine changed the session's state (an interrupt, an answered approval): the
        worker's copy must agree, since backends read it (a terminal deciding it waits)."""
        channel = self.worker.channel
        if not self._from_worker and channel is not None:
            channel.notify("session_state", self._id, state=state.value, detail=detail)


class RemoteTerminal(RemoteBackend):
    """A terminal session's backend in a worker: keys, sizes and screens go there too."""

    async def write_input(self, data: str) -> None:
        await self._call("term_input", data=data)

    async def resize(self, columns: int, lines: int) -> bool:
        return await self._call("term_resize", cols=columns, rows=lines)

    async def screen_frame(self) -> dict[str, Any]:
        return await self._call("term_screen")

