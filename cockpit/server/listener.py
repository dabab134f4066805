"""The socket side of the server: accept clients, answer their requests, push them events.

Every client connection says `hello` first (a client of another major protocol version is
refused with one line naming both versions), then sends JSON-RPC requests. `attach` is what
makes a screen lossless and exactly-once: the connection subscribes to the bus *before* taking
the snapshot, and the response carries each session's last seq and the tail of its stored
transcript; from then on the connection pushes only events past those seqs, batched one
notification per write.

A client that reads slowly never slows the engine: its socket buffer is bounded, and while it
is full its forwarder waits and its bus subscription (bounded too) overflows into one `resync`
event, after which nothing more is sent until the client attaches again.

No client can make the server hold much memory for it (docs/protocol.md, "Limits"): a request
line is at most `MAX_REQUEST_LINE` (a longer one is answered with an error and dropped as it
arrives), a connection's requests are not read while more than `WRITE_HIGH_WATER` of its
output is unsent or `REQUESTS_IN_FLIGHT` of them are being served, and every answer that holds
events is paged by count and by bytes and built one at a time per connection, only once the
client has taken most of what it was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import itertools
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from cockpit import __version__
from cockpit.core.agent_api import AgentRuntime
from cockpit.core.bus import Subscription
from cockpit.core.engine import Engine
from cockpit.core.events import RESYNC, Event
from cockpit.core.states import LIVE
from cockpit.errors import CockpitError
from cockpit.core.commands import COMMANDS
from cockpit.server import params as typed
from cockpit.server import protocol as rpc
from cockpit.server.lines import READ_CHUNK, TOO_LONG, LineReader
from cockpit.server.paths import ServerPaths, bind_private, prepare_run_dir

log = logging.getLogger("cockpit.server")

#: Events queued for one client before it is told to resync (the bus's default bound).
SUBSCRIPTION_EVENTS = 10_000
#: Bytes written but not yet taken by a client before its forwarder waits for it and its
#: requests are no longer read.
WRITE_HIGH_WATER = 1 << 20
#: Requests of one connection served at once; the next is read when one of them is answered.
#: (Generous: a request may wait long, e.g. `verify`, and answers full of events are built one
#: at a time anyway.)
REQUESTS_IN_FLIGHT = 64
#: Nesting of a request's JSON beyond which it is refused (real requests are a few levels deep).
MAX_DEPTH = 32
#: Scrollback events per session in an attach response unless the client asks otherwise.
DEFAULT_TAIL = 400
#: Bytes of scrollback per session in an attach answer, and for all sessions together.
ATTACH_SESSION_BYTES = 1 << 20
ATTACH_BYTES = 16 << 20
#: The most events, and about the most bytes of them, in one `transcript` answer.
PAGE_EVENTS = 1000
PAGE_BYTES = 1 << 20
_connection_ids = itertools.count(1)
_TOO_DEEP = object()


class CockpitServer:
    """Serves one engine on the Unix socket of `paths` until `close()`."""

    def __init__(self, engine: Engine, paths: ServerPaths):
        self.engine = engine
        self.paths = paths
        self.connections: set[Connection] = set()
        self.started = time.time()
        self._listener: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        """Bind the socket, private from its first instant (replacing a stale one: the caller
        holds the engine lock)."""
        prepare_run_dir(self.paths)
        if self.paths.socket.is_socket():  # asyncio replaces it; only the lock holder gets here
            log.info("replacing the stale socket %s left by a server that died", self.paths.socket)
        listening = bind_private(self.paths.socket)
        self._listener = await asyncio.start_unix_server(self._accept, sock=listening, limit=READ_CHUNK)
        log.info("listening on %s (pid %d, protocol %s)", self.paths.socket, os.getpid(), rpc.PROTOCOL_VERSION)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        for connection in list(self.connections):
            await connection.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.paths.socket)

    def status(self) -> dict[str, Any]:
        sessions = self.engine.sessions.values()
        return {
            "pid": os.getpid(), "version": __version__, "protocol": rpc.PROTOCOL_VERSION,
            "home": str(self.paths.home), "socket": str(self.paths.socket),
            "uptime_s": round(time.time() - self.started, 3), "clients": len(self.connections),
            "attached": sum(1 for c in self.connections if c.attached),
            "sessions": len(self.engine.sessions), "live": sum(1 for s in sessions if s.state in LIVE),
            "workers": runtime.describe() if isinstance(runtime := self.engine.agent_factory, AgentRuntime) else [],
        }

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection(self, reader, writer)
        self.connections.add(connection)
        try:
            await connection.serve()
        finally:
            self.connections.discard(connection)


class Connection:
    """One client: its requests, and its event forwarder once it has attached."""

    def __init__(self, server: CockpitServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.server = server
        self.engine = server.engine
        self.reader = reader
        self.writer = writer
        self.name = f"client {next(_connection_ids)}"
        writer.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self._greeted = False
        self._subscription: Subscription | None = None
        self._forwarder: asyncio.Task[None] | None = None
        self._cutoffs: dict[str, int] = {}  # per session: the last seq the client's attach covered
        self._attach_lock = asyncio.Lock()
        self._bulky = asyncio.Lock()  # held while an answer full of events is built
        self._requests: set[asyncio.Task[None]] = set()
        self._methods: dict[str, Callable[..., Awaitable[Any]]] = {
            "hello": self._hello, "attach": self._attach, "detach": self._detach,
            "transcript": self._transcript, "server.status": self._status,
        }

    @property
    def attached(self) -> bool:
        return self._forwarder is not None and not self._forwarder.done()

    async def serve(self) -> None:
        log.debug("%s connected", self.name)
        lines = LineReader(self.reader, rpc.MAX_REQUEST_LINE)
        try:
            while True:
                try:
                    await self._ready_for_more()
                    line = await lines.next()
                except ConnectionError:
                    break
                if line is None:
                    break
                if line is TOO_LONG:
                    log.info("%s sent a request line over %d bytes: dropped", self.name, rpc.MAX_REQUEST_LINE)
                    self._send(rpc.error(None, rpc.INVALID_REQUEST,
                                         f"request line longer than {rpc.MAX_REQUEST_LINE} bytes: dropped"))
                    continue
                if not self._take(line):
                    break
        finally:
            await self.close()
            log.debug("%s left", self.name)

    async def _ready_for_more(self) -> None:
        """Wait until this client has taken most of its output and has a request slot free:
        what it does not read, it cannot make the server pile up."""
        await self.writer.drain()
        while len(self._requests) >= REQUESTS_IN_FLIGHT:
            await asyncio.wait(set(self._requests), return_when=asyncio.FIRST_COMPLETED)

    async def close(self) -> None:
        self._stop_forwarding()
        if not self.writer.is_closing():
            self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()

    # -- requests --------------------------------------------------------------------------------

    def _take(self, line: bytes) -> bool:
        """Handle one incoming line; False ends the connection."""
        try:
            message = json.loads(line)
        except ValueError as exc:
            self._send(rpc.error(None, rpc.PARSE_ERROR, f"not JSON: {exc}"))
            return True
        except RecursionError:  # thousands of levels: Python's parser gives up
            message = _TOO_DEEP
        if message is _TOO_DEEP or rpc.nesting(message) > MAX_DEPTH:
            request_id = None if message is _TOO_DEEP else _id_of(message)
            self._send(rpc.error(request_id, rpc.INVALID_REQUEST, f"request nested deeper than {MAX_DEPTH} levels"))
            return True
        if not isinstance(message, dict) or not isinstance(message.get("method"), str):
            self._send(rpc.error(_id_of(message), rpc.INVALID_REQUEST, "expected a JSON-RPC 2.0 request object"))
            return True
        method, request_id = message["method"], message.get("id")
        params = message.get("params", {})
        if not self._greeted:
            return self._greet(request_id, method, params)
        if not isinstance(params, dict):
            self._send(rpc.error(request_id, rpc.INVALID_PARAMS, f"{method}: params must be an object"))
            return True
        task = asyncio.create_task(self._run(request_id, method, params), name=f"cockpit-rpc-{method}")
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)
        return True

    def _greet(self, request_id: Any, method: str, params: Any) -> bool:
        if method != "hello":
            self._send(rpc.error(request_id, rpc.HELLO_FIRST,
                                 f"say hello first: {{\"method\": \"hello\", \"params\": {{\"protocol\": "
                                 f"\"{rpc.PROTOCOL_VERSION}\"}}}}"))
            return False
        version = params.get("protocol") if isinstance(params, dict) else None
        refusal = rpc.version_refusal(version)
        if refusal:
            log.info("%s refused: %s", self.name, refusal)
            self._send(rpc.error(request_id, rpc.VERSION_MISMATCH, refusal,
                                 {"server_protocol": rpc.PROTOCOL_VERSION, "client_protocol": version}))
            return False
        self._greeted = True
        log.debug("%s said hello (%s)", self.name, params.get("client") or "unnamed client")
        self._send(rpc.result(request_id, self._hello_result()))
        return True

    async def _run(self, request_id: Any, method: str, params: dict[str, Any]) -> None:
        try:
            if method == "attach":
                # The response must reach the wire before the first forwarded event.
                async with self._attach_lock:
                    value = await self._call(method, params)
                    self._reply(request_id, value)
                    self._start_forwarding()
                return
            value = await self._call(method, params)
        except Exception as exc:  # every failure is an answer; the connection lives on
            code, message, data = rpc.error_from_exception(exc)
            if code == rpc.INTERNAL_ERROR:
                log.exception("%s: %s failed", self.name, method)
            self._reply_error(request_id, code, message, data)
            return
        self._reply(request_id, value)

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        handler = self._methods.get(method)
        if handler is None:  # every other method is an engine command
            command = COMMANDS.get(method)
            if command is not None:
                typed.check(method, params, functools.partial(command, self.engine))
            if method == "create" and not os.path.isabs(str(params.get("repo", ""))):
                raise CockpitError(f"create: 'repo' must be an absolute path on the server's machine, "
                                   f"got {params.get('repo', '')!r}")
            return await self.engine.execute({**params, "cmd": method})
        typed.check(method, params, handler)
        try:
            inspect.signature(handler).bind(**params)
        except TypeError as exc:
            raise CockpitError(f"method {method!r}: {exc}") from None
        return await handler(**params)

    def _reply(self, request_id: Any, value: Any) -> None:
        if request_id is not None:
            self._send(rpc.result(request_id, value))

    def _reply_error(self, request_id: Any, code: int, message: str, data: dict[str, Any]) -> None:
        if request_id is not None:
            self._send(rpc.error(request_id, code, message, data))

    def _send(self, message: dict[str, Any]) -> None:
        if not self.writer.is_closing():
            self.writer.write(rpc.encode(message))

    # -- methods ---------------------------------------------------------------------------------

    def _hello_result(self) -> dict[str, Any]:
        return {"protocol": rpc.PROTOCOL_VERSION, "server": f"cockpit {__version__}", "pid": os.getpid(),
                "home": str(self.server.paths.home)}

    async def _hello(self, protocol: str = rpc.PROTOCOL_VERSION, client: str = "") -> dict[str, Any]:
        return self._hello_result()

    async def _attach(self, tail: int = DEFAULT_TAIL, sessions: list[str] | None = None) -> dict[str, Any]:
        """Subscribe, then snapshot: the sessions, each one's last seq and scrollback, in one answer."""
        self._stop_forwarding()
        async with self._room():
            return await self._attach_answer(tail, sessions)

    async def _attach_answer(self, tail: int, sessions: list[str] | None) -> dict[str, Any]:
        engine = self.engine
        wanted = None if sessions is None else {engine.get(str(ref)).id for ref in sessions}
        accept = None if wanted is None else (lambda e: e.session in wanted)
        subscription = engine.subscribe(SUBSCRIPTION_EVENTS, accept)
        try:
            snapshot, last = engine.snapshot_point()
            snapshot = [s for s in snapshot if wanted is None or s["id"] in wanted]
            cutoffs = {s["id"]: last.get(s["id"], 0) for s in snapshot}
            await engine.store.written_or_blocked()  # a full disk must not keep a screen out
            tails = {}
            if tail > 0:
                budget = min(ATTACH_SESSION_BYTES, max(PAGE_BYTES // 16, ATTACH_BYTES // max(len(cutoffs), 1)))
                for session_id, cutoff in cutoffs.items():
                    events = await engine.store.page(session_id, before=cutoff + 1, limit=tail, max_bytes=budget,
                                                     newest=True)
                    tails[session_id] = [rpc.event_dict(e) for e in events]
        except BaseException:
            subscription.close()
            raise
        self._subscription = subscription
        self._cutoffs = cutoffs
        log.info("%s attached: %d sessions, %d scrollback events", self.name, len(snapshot),
                 sum(len(t) for t in tails.values()))
        return {"sessions": snapshot, "last_seq": cutoffs, "tails": tails, "paused": engine.paused}

    async def _detach(self) -> dict[str, Any]:
        self._stop_forwarding()
        return {}

    async def _transcript(self, session: str, tail: int = 0, after: int = 0, before: int | None = None,
                          limit: int = PAGE_EVENTS) -> list[dict[str, Any]]:
        """One page of a session's stored events, oldest first: those after seq `after`, or with
        `tail` the last `tail` ones (before seq `before` when given). A page holds at most
        `limit` (≤ PAGE_EVENTS) events and about PAGE_BYTES; an empty page is the end."""
        session_id = self.engine.get(session).id
        async with self._room():
            await self.engine.readable()
            count = min(tail or limit, limit, PAGE_EVENTS)
            events = await self.engine.store.page(session_id, after=after, before=before, limit=count,
                                                  max_bytes=PAGE_BYTES, newest=tail > 0)
            return [rpc.event_dict(e) for e in events]

    @contextlib.asynccontextmanager
    async def _room(self) -> AsyncIterator[None]:
        """Build one answer full of events at a time, once the client has taken most of what it
        was sent: the answer goes on the wire right after (nothing awaits in between)."""
        async with self._bulky:
            await self.writer.drain()
            yield

    async def _status(self) -> dict[str, Any]:
        return self.server.status()

    # -- events ----------------------------------------------------------------------------------

    def _start_forwarding(self) -> None:
        if self.writer.is_closing():  # the client left while its attach was being answered
            self._stop_forwarding()
            return
        subscription = self._subscription
        if subscription is not None:
            self._forwarder = asyncio.create_task(self._forward(subscription, self._cutoffs),
                                                  name=f"cockpit-forward-{self.name}")

    def _stop_forwarding(self) -> None:
        if self._forwarder is not None:
            self._forwarder.cancel()
            self._forwarder = None
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    async def _forward(self, subscription: Subscription, cutoffs: dict[str, int]) -> None:
        """Push every event past the attach point, as many per line as are queued."""
        with contextlib.suppress(StopAsyncIteration, ConnectionError):
            while True:
                batch = [await subscription.get(), *subscription.get_nowait()]
                if any(e.kind == RESYNC for e in batch):
                    # The client fell behind and lost events: tell it once, then send nothing
                    # until it attaches again (what it would get now it has to reload anyway).
                    self._send(rpc.notification("events", {"events": [rpc.event_dict(Event(RESYNC))]}))
                    subscription.close()
                    return
                out = [rpc.event_dict(e) for e in batch if e.seq > cutoffs.get(e.session, 0)]
                if out:
                    self._send(rpc.notification("events", {"events": out}))
                if self.writer.transport.get_write_buffer_size() > WRITE_HIGH_WATER:
                    await self.writer.drain()


def _id_of(message: Any) -> Any:
    return message.get("id") if isinstance(message, dict) else None
