"""Fan-out of events to subscribers that must never slow the agents down.

Each subscriber has a bounded queue. Publishing never waits: when a subscriber's queue is full
its backlog is dropped and replaced by one `resync` event, telling it to reload the snapshot
and the transcripts it shows from the store. Until it takes that event, nothing more is queued
for it (the reload will cover it), so a subscriber that stopped reading costs one check per
event and holds one event. Agents and other subscribers are unaffected.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from cockpit.core.events import RESYNC, Event

EventFilter = Callable[[Event], bool]


class Subscription:
    def __init__(self, bus: EventBus, maxsize: int, accept: EventFilter | None):
        self._bus = bus
        self._maxsize = maxsize
        self._accept = accept
        self._items: deque[Event] = deque()
        self._ready = asyncio.Event()
        self.resyncs = 0
        self.closed = False
        self._resync_pending = False

    def _offer(self, event: Event) -> None:
        if self._resync_pending or (self._accept is not None and not self._accept(event)):
            return
        if len(self._items) >= self._maxsize:
            self._items.clear()
            self.resyncs += 1
            self._resync_pending = True
            self._items.append(Event(RESYNC, data={"reason": "subscriber fell behind"}))
        else:
            self._items.append(event)
        self._ready.set()

    def get_nowait(self) -> list[Event]:
        """Everything queued right now (possibly nothing)."""
        items = list(self._items)
        self._items.clear()
        self._ready.clear()
        self._resync_pending = False
        return items

    async def get(self) -> Event:
        while not self._items:
            if self.closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        event = self._items.popleft()
        if not self._items:
            self._ready.clear()
            self._resync_pending = False  # the resync (if any) is handed out: queue again
        return event

    def close(self) -> None:
        self.closed = True
        self._bus._subscriptions.discard(self)
        self._ready.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        return await self.get()


class EventBus:
    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()

    def subscribe(self, maxsize: int = 10_000, accept: EventFilter | None = None) -> Subscription:
        sub = Subscription(self, maxsize, accept)
        self._subscriptions.add(sub)
        return sub

    def publish(self, event: Event) -> None:
        for sub in tuple(self._subscriptions):
            sub._offer(event)

    def close(self) -> None:
        for sub in tuple(self._subscriptions):
            sub.close()
