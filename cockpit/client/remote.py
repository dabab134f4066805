"""`RemoteClient`: a cockpit served by another process, as the same client the screen uses.

It attaches once (snapshot, each session's last seq and scrollback in one answer), keeps a copy
of the session list current from the events that follow, and hands the events to its consumer
through a bounded queue. Every event reaches the consumer once: events up to the attach point
are in the scrollback, later ones arrive live, and anything at or below a session's last seq
is dropped. When events were lost (the server's queue for this client or the local one
overflowed, or the connection dropped and came back), it attaches again and hands the consumer
one `resync` event: reload from `snapshot()` and `transcript()`, which then serve the new
attach's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from cockpit.client.mirror import apply_event, labelled
from cockpit.client.rpc import ResultHook, RpcConnection
from cockpit.client.transport import Transport, open_socket, open_ssh
from cockpit.core import events as ev
from cockpit.core.events import Event
from cockpit.errors import CockpitError
from cockpit.server.paths import ServerPaths

Opener = Callable[[], Awaitable[Transport]]

#: Scrollback per session in the attach answer: what a pane shows at start (ui/app.py).
DEFAULT_TAIL = 400
RECONNECT_FIRST_S = 0.5
RECONNECT_MAX_S = 5.0


def socket_opener(paths: ServerPaths) -> Opener:
    return lambda: open_socket(paths)


def ssh_opener(destination: str) -> Opener:
    return lambda: open_ssh(destination)


class EventQueue:
    """Events waiting for the client's one consumer, bounded so an idle consumer costs little."""

    def __init__(self, maxsize: int):
        self._items: deque[Event] = deque()
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        self.ended = ""  # why no more events will come, once none will

    def push(self, event: Event) -> bool:
        """Queue one event; False (nothing queued) when the queue is full."""
        if len(self._items) >= self._maxsize:
            return False
        self._items.append(event)
        self._ready.set()
        return True

    def reset(self, *events: Event) -> None:
        self._items.clear()
        self._items.extend(events)
        if events:
            self._ready.set()

    def end(self, reason: str) -> None:
        self.ended = reason
        self._ready.set()

    def get_nowait(self) -> list[Event]:
        items = list(self._items)
        self._items.clear()
        self._ready.clear()
        return items

    async def get(self) -> Event:
        """The next event; raises the CockpitError that ended the stream once it has ended."""
        while not self._items:
            if self.ended:
                raise CockpitError(self.ended)
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()


class RemoteClient:
    detachable = True  # quitting the screen leaves the agents running

    def __init__(self, opener: Opener, *, host: str = "", tail: int = DEFAULT_TAIL,
                 sessions: list[str] | None = None, reconnect: bool = False, max_queued: int = 10_000):
        self.host = host  # label added to every session record ("" for the local server)
        self.tail = tail
        self.server: dict[str, Any] = {}  # the server's hello answer
        self._opener = opener
        self._only = sessions
        self._reconnect = reconnect
        self._queue = EventQueue(max_queued)
        self._sessions: dict[str, dict[str, Any]] = {}
        self._cutoffs: dict[str, int] = {}  # per session: the last seq the consumer has
        self._tails: dict[str, list[Event]] = {}  # scrollback of the last attach, served once
        self.paused = ""  # why the server's agents were held at the last attach (a full disk)
        self._rpc: RpcConnection | None = None
        self._attached = False
        self._attaching = False  # events arriving now are covered by the attach answer to come
        self._closed = False
        self._reconnecting = False
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def where(self) -> str:
        return self._rpc.where if self._rpc is not None else (self.host or "the cockpit server")

    async def connect(self, *, attach: bool = True) -> None:
        await self._open()
        if attach:
            await self.attach()

    async def _open(self) -> None:
        rpc = RpcConnection(await self._opener(), self._on_events, self._on_lost)
        try:
            self.server = await rpc.hello()
        except BaseException:
            await rpc.close()
            raise
        self._rpc = rpc

    async def attach(self, *, announce: bool = False) -> None:
        """Take the snapshot and scrollback, then every later event; `announce` queues a resync."""
        self._attached = self._attaching = True
        await self._call("attach", {"tail": self.tail, "sessions": self._only},
                         functools.partial(self._install, announce=announce))

    def _install(self, result: dict[str, Any], announce: bool) -> None:
        """Runs in the reader, before any event sent after the answer: the new starting point."""
        self._sessions = {s["id"]: labelled(s, self.host) for s in result["sessions"]}
        self._cutoffs = {k: int(v) for k, v in result["last_seq"].items()}
        self._tails = {k: [self._event(e) for e in v] for k, v in (result.get("tails") or {}).items()}
        self.paused = result.get("paused", "")
        self._attaching = False
        self._queue.reset(*([Event(ev.RESYNC, data={"reason": "attached again"})] if announce else []))

    async def close(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._rpc is not None:
            await self._rpc.close()
        self._queue.end(f"closed the connection to {self.where}")

    # -- the client protocol -------------------------------------------------------------------

    def subscribe(self) -> EventQueue:
        return self._queue

    def snapshot(self) -> list[dict[str, Any]]:
        return [dict(s) for s in sorted(self._sessions.values(), key=lambda s: s["number"])]

    def owns(self, session_id: str) -> bool:
        return session_id in self._sessions

    async def transcript(self, session_id: str, tail: int = 0) -> list[Event]:
        """The attach's scrollback the first time it is asked for (exactly what precedes the
        live events), else the stored transcript as the server has it now."""
        cached = self._tails.pop(session_id, None)
        if cached is not None and 0 < tail <= self.tail:
            return cached[-tail:]
        return [self._event(e) for e in await self._transcript_pages(session_id, tail)]

    async def _transcript_pages(self, session_id: str, tail: int) -> list[dict[str, Any]]:
        """The server answers `transcript` a page at a time: ask until there is no more (the
        last `tail` events paging back from the newest, or all of them paging forward)."""
        if self.server.get("protocol") == "1.0":  # a server from before paging answers in one go
            return await self._call("transcript", {"session": session_id, "tail": tail})
        if tail > 0:
            pages: list[list[dict[str, Any]]] = []
            wanted, before = tail, None
            while wanted > 0:
                page = await self._call("transcript", {"session": session_id, "tail": wanted, "before": before})
                if not page:
                    break
                pages.append(page)
                wanted, before = wanted - len(page), page[0]["seq"]
            return [event for page in reversed(pages) for event in page]
        events: list[dict[str, Any]] = []
        while page := await self._call("transcript", {"session": session_id,
                                                      "after": events[-1]["seq"] if events else 0}):
            events.extend(page)
        return events

    async def execute(self, command: dict[str, Any]) -> Any:
        params = dict(command)
        name = params.pop("cmd", None)
        if not isinstance(name, str):
            raise CockpitError(f"a command needs a 'cmd' name, got {command!r}")
        return await self._call(name, params)

    async def request(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """A protocol method that is not an engine command (`server.status`, `detach`)."""
        return await self._call(method, params or {})

    async def _call(self, method: str, params: dict[str, Any], hook: ResultHook | None = None) -> Any:
        rpc = self._rpc
        if rpc is None or not rpc.open:
            retrying = "; reconnecting" if self._reconnect and not self._closed else ""
            raise CockpitError(f"not connected to {self.where}{retrying}")
        return await rpc.request(method, params, hook)

    # -- events --------------------------------------------------------------------------------

    def _on_events(self, method: str, params: dict[str, Any]) -> None:
        if method != "events" or self._attaching or not self._attached:
            return
        for raw in params.get("events") or ():
            event = self._event(raw)
            if event.kind == ev.RESYNC:
                self._resync()
                return
            if event.session:
                if event.seq <= self._cutoffs.get(event.session, 0):
                    continue  # already in the consumer's scrollback
                self._cutoffs[event.session] = event.seq
            apply_event(self._sessions, event)
            if not self._queue.push(event):
                self._resync()
                return

    def _event(self, raw: dict[str, Any]) -> Event:
        """An event off the wire, its session record (if it carries one) labelled with the host."""
        event = Event.from_dict(raw)
        if self.host and isinstance(event.data.get("session"), dict):
            event.data["session"] = labelled(event.data["session"], self.host)
        return event

    def _resync(self) -> None:
        """Events were lost on the way: attach again, then tell the consumer to reload."""
        if self._attaching:
            return
        self._attaching = True
        self._spawn(self._quietly(self.attach(announce=True)))

    def _on_lost(self, reason: str) -> None:
        if self._closed or self._reconnecting:  # a reconnect loop already retries
            return
        if not self._reconnect:
            self._queue.end(reason)
            return
        self._queue.push(Event(ev.NOTICE, data={"text": f"{reason}; reconnecting"}))
        self._spawn(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        self._reconnecting = True
        delay = RECONNECT_FIRST_S
        try:
            while not self._closed:
                if self._rpc is not None:
                    await self._rpc.close()
                await asyncio.sleep(delay)
                try:
                    await self._open()
                    if self._attached:
                        await self.attach(announce=True)
                except (CockpitError, OSError):
                    delay = min(delay * 2, RECONNECT_MAX_S)
                    continue
                self._queue.push(Event(ev.NOTICE, data={"text": f"reconnected to {self.where}"}))
                return
        finally:
            self._reconnecting = False

    @staticmethod
    async def _quietly(work: Awaitable[None]) -> None:
        with contextlib.suppress(CockpitError):  # a lost connection is _on_lost's business
            await work

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
