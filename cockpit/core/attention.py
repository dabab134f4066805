"""Calling the person without calling too often: repeats dropped, bursts gathered.

Shared by the screen's notifications (`cockpit.ui.notify`: bell, toast, desktop, hook) and the
phone's (`cockpit.alerts.phone`), which word a batch each their own way. Pure logic: time is
always passed in, so tests use a fake clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["approval", "error", "finished"]

REPEAT_S = 30.0  # the same (session, kind, text) is not re-notified within this window
BURST_S = 1.0  # notifications arriving within this window become one batch

OfferResult = Literal["repeat", "opened", "joined"]


@dataclass(frozen=True)
class Attention:
    """One reason to call the person: a session, what happened and the words for it."""

    session: str
    number: int
    name: str
    kind: Kind
    text: str

    @classmethod
    def of(cls, session: Mapping[str, Any], kind: Kind, text: str) -> Attention:
        return cls(str(session.get("id", "")), int(session.get("number", 0) or 0),
                   str(session.get("name", "")), kind, text)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.session, self.kind, self.text)

    @property
    def label(self) -> str:
        return f"@{self.number} {self.name}".rstrip()


class AttentionBatcher:
    """Drops repeats and gathers bursts.

    `offer` answers "repeat" (already notified within `repeat_s`: drop it), "opened" (the first
    of a new batch: the caller hands it over with `take_items` after `burst_s`) or "joined"
    (added to the open batch).
    """

    def __init__(self, *, repeat_s: float = REPEAT_S, burst_s: float = BURST_S) -> None:
        self.repeat_s = repeat_s
        self.burst_s = burst_s
        self._last: dict[tuple[str, str, str], float] = {}
        self._pending: list[Attention] = []
        self._opened_at: float | None = None

    def offer(self, item: Attention, now: float) -> OfferResult:
        last = self._last.get(item.key)
        if last is not None and now - last < self.repeat_s:
            return "repeat"
        self._last[item.key] = now
        if len(self._last) > 4096:  # forget what can no longer suppress anything
            self._last = {k: t for k, t in self._last.items() if now - t < self.repeat_s}
        self._pending.append(item)
        if self._opened_at is None:
            self._opened_at = now
            return "opened"
        return "joined"

    def withdraw(self, gone: Callable[[Attention], bool]) -> None:
        """Drop the waiting items that no longer need the person (e.g. an approval answered
        before the batch went out); they may be notified again later."""
        for item in [i for i in self._pending if gone(i)]:
            self._pending.remove(item)
            self._last.pop(item.key, None)

    @property
    def due_at(self) -> float | None:
        """When the open batch should be handed over (None: no batch open)."""
        return None if self._opened_at is None else self._opened_at + self.burst_s

    def take_items(self) -> tuple[Attention, ...]:
        """Hand over the open batch now, whatever the time (oldest first; maybe empty)."""
        items, self._pending, self._opened_at = tuple(self._pending), [], None
        return items
