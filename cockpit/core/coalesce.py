"""Coalescing streamed text before it reaches the store.

Subscribers see every delta as it arrives, but storing each delta as a row would make the
database grow by a row per token. Deltas are buffered per session and written as one `text`
(or `thought`) event at most every `interval` seconds and whenever any other event of that
session is stored, so the stored order matches the live order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cockpit.core.events import COALESCED, EPHEMERAL, Event


@dataclass
class _Run:
    kind: str
    first_seq: int
    last_seq: int
    ts: float
    parts: list[str]
    extra: dict  # the first delta's other fields (e.g. message id)


class TextCoalescer:
    def __init__(self, sink: Callable[[Event], None]):
        self._sink = sink
        self._runs: dict[str, _Run] = {}

    def feed(self, event: Event) -> None:
        """Take any event: deltas are buffered, ephemeral kinds dropped, everything else goes to
        the sink in order."""
        if event.kind in EPHEMERAL:
            return
        stored_kind = COALESCED.get(event.kind)
        run = self._runs.get(event.session)
        if stored_kind is None:
            if run is not None:
                self._flush_session(event.session)
            self._sink(event)
            return
        if run is not None and run.kind != stored_kind:
            self._flush_session(event.session)
            run = None
        if run is None:
            extra = {k: v for k, v in event.data.items() if k != "text"}
            self._runs[event.session] = _Run(
                stored_kind, event.seq, event.seq, event.ts, [event.data.get("text", "")], extra
            )
        else:
            run.parts.append(event.data.get("text", ""))
            run.last_seq = event.seq

    def flush(self) -> None:
        for session in list(self._runs):
            self._flush_session(session)

    def _flush_session(self, session: str) -> None:
        run = self._runs.pop(session)
        self._sink(
            Event(run.kind, session, {**run.extra, "text": "".join(run.parts), "first_seq": run.first_seq}, run.last_seq, run.ts)
        )
