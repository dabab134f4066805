"""Live collisions: two open sessions changing the same file, noticed while they work.

The merge queue finds overlaps when the person plans a merge; by then both agents have built on
their own version of the file. This service keeps each open session's changed paths (against its
base, as the pane header counts them), refreshed whenever the session's change moves (every
`diff.stat`, which the live file watcher and each turn's end emit), and recomputes the overlaps
with the merge queue's own rule (same repository and target, a path in common).

Whenever a session's set of collisions changes, it gets a `collision` event holding all of them
(an empty list when they cleared), so a pane shows the last one and a screen attached later reads
it from the transcript. With `[review] collision_notes` on, each agent is also told about each
(other session, file) once, as a review note: a working agent gets it when its turn ends, never
in the middle of one. What was last shown is kept in the store, so a restart that finds the
collision gone clears it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

from cockpit.core import events as ev
from cockpit.core.diffstat import changed_paths
from cockpit.core.merge_queue import overlaps
from cockpit.core.model import Session
from cockpit.core.states import State
from cockpit.errors import CockpitError

if TYPE_CHECKING:
    from cockpit.core.engine import Engine

log = logging.getLogger("cockpit.collisions")

_FOLLOWED = frozenset({ev.DIFF_STAT, ev.SESSION_STATE, ev.SESSION_REMOVED, ev.RESYNC})
_CLOSED = frozenset({State.MERGED, State.ARCHIVED})
_META_KEY = "collisions"
MAX_FILES = 20  # files named per other session in an event; the rest are counted

#: {session id: {other session id: files both change}}
Shown = dict[str, dict[str, list[str]]]


class Collisions:
    def __init__(self, engine: Engine):
        self._engine = engine
        self._files: dict[str, frozenset[str]] = {}  # changed paths of each open session
        self._shown: Shown = {}
        self._told: dict[str, set[tuple[str, str]]] = {}  # (other session, file) each agent was told
        self._task: asyncio.Task[None] | None = None

    def owns(self, session_id: str) -> bool:
        return False

    def on_open(self) -> None:
        subscription = self._engine.subscribe(accept=lambda e: e.kind in _FOLLOWED)
        self._task = asyncio.create_task(self._follow(subscription), name="cockpit-collisions")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def current(self) -> dict[str, list[dict[str, Any]]]:
        """Each colliding session's collisions, as its last `collision` event said."""
        return {sid: self._described(others) for sid, others in self._shown.items() if sid in self._engine.sessions}

    # -- following the sessions ------------------------------------------------------------------

    async def _follow(self, subscription: Any) -> None:
        with contextlib.suppress(ValueError):
            self._shown = json.loads(await self._engine.store.get_meta(_META_KEY, "{}"))
        await self._step(None, self._scan(list(self._engine.sessions)))
        async for event in subscription:
            await self._step(event, self._changed(event))

    async def _step(self, event: ev.Event | None, work: Any) -> None:
        """One update; a failure is logged in one line and the next event tries again."""
        try:
            await work
            await self._update()
        except (CockpitError, OSError) as exc:
            log.warning("collision check after %s failed: %s", event.kind if event else "start", exc)

    async def _changed(self, event: ev.Event) -> None:
        if event.kind == ev.RESYNC:  # fell behind: look at everything again
            self._files.clear()
            await self._scan(list(self._engine.sessions))
        elif event.kind == ev.SESSION_REMOVED:
            self._files.pop(event.session, None)
        elif event.kind == ev.DIFF_STAT or event.session not in self._files:
            await self._scan([event.session])
        elif event.data.get("state") in _CLOSED:
            self._files.pop(event.session, None)

    async def _scan(self, session_ids: list[str]) -> None:
        for session_id in session_ids:
            session = self._engine.sessions.get(session_id)
            if session is None or session.state in _CLOSED or not session.path.is_dir():
                self._files.pop(session_id, None)
                continue
            self._files[session_id] = await changed_paths(session.path, session.base_commit)

    # -- telling -----------------------------------------------------------------------------------

    async def _update(self) -> None:
        sessions = self._engine.sessions
        open_sessions = sorted((sessions[sid] for sid in self._files if sid in sessions), key=lambda s: s.number)
        now: Shown = {}
        for a, b, files in overlaps(open_sessions, self._group, lambda s: self._files[s.id]):
            now.setdefault(a.id, {})[b.id] = files
            now.setdefault(b.id, {})[a.id] = files
        if now == self._shown:
            return
        for session_id in sorted(set(now) | set(self._shown)):
            others = now.get(session_id, {})
            if session_id in sessions and others != self._shown.get(session_id, {}):
                self._engine.emit(session_id, ev.COLLISION, {"with": self._described(others)})
                await self._note(sessions[session_id], others)
        self._shown = now
        self._engine.store.set_meta_nowait(_META_KEY, json.dumps(now))

    def _group(self, session: Session) -> tuple[int, str]:
        """Sessions collide when they land in the same place: repository and target branch."""
        return session.repo_id, self._engine.landing.target_name(session)

    def _described(self, others: dict[str, list[str]]) -> list[dict[str, Any]]:
        described = []
        for other_id, files in others.items():
            other = self._engine.sessions.get(other_id)
            if other is not None:
                described.append({"session": other.id, "number": other.number, "name": other.name,
                                  "files": files[:MAX_FILES], "more": max(0, len(files) - MAX_FILES)})
        return sorted(described, key=lambda item: item["number"])

    async def _note(self, session: Session, others: dict[str, list[str]]) -> None:
        """Tell the agent about the (other session, file) pairs it was not told about yet."""
        pairs = {(other, path) for other, files in others.items() for path in files}
        told = self._told.get(session.id, set()) & pairs  # one that cleared may be told again later
        new = pairs - told
        if new and self._engine.config_for(session).review.collision_notes:
            await self._engine.review.tell(session, note_text(self._engine.sessions, new))
            told |= new
        self._told[session.id] = told


async def _current(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    return engine.collisions.current()


#: {"cmd": "collisions"}: every colliding session's collisions right now.
COLLISION_COMMANDS = {"collisions": _current}


def note_text(sessions: dict[str, Session], pairs: set[tuple[str, str]]) -> str:
    """The note an agent gets: who else changes which of its files, and what to do about it."""
    by_other: dict[str, list[str]] = {}
    for other, path in sorted(pairs):
        by_other.setdefault(other, []).append(path)
    named = "; ".join(
        f"@{sessions[other].number} {sessions[other].name}: {', '.join(files[:MAX_FILES])}"
        + (f" (+{len(files) - MAX_FILES} more)" if len(files) > MAX_FILES else "")
        for other, files in sorted(by_other.items(), key=lambda item: sessions[item[0]].number)
        if other in sessions
    )
    return (f"Note from the cockpit: another session is changing the same files in its own worktree — {named}. "
            "Both changes will be merged separately: keep your edits to these files to what your task needs, "
            "so that they merge cleanly.")
