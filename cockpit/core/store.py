"""The event store: one SQLite file (WAL) that is the source of truth for every transcript.

Writes go through one queue drained by a single writer task that commits in groups: an
`append` returns once the batch holding its event is committed, so many sessions streaming at
once share a handful of commits per second, and everything whose append returned survives a
crash or `kill -9`. `append_nowait` is for bulk writers that flush explicitly.

A write that fails (a constraint) is rolled back and fails alone: the other writes of its group
are retried one by one, so one bad write never takes its neighbours down with it.

A write the file cannot take *now* (a full disk, an I/O error, a read-only remount) is not a
bad write: the store is `blocked`. The writer keeps that group and everything queued behind it in
memory, in order, and tries the group again with backoff until it lands; `on_blocked` hears the
reason once when that starts and "" once it ends, so the engine can hold its agents and say why.
Meanwhile `append` (and `flush`) do not return: what was acknowledged is on disk, what was not
is only in this process's memory (a `kill -9` loses it; `close()` names how much it dropped).
"""

from __future__ import annotations

import asyncio
import gc
import json
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any

import aiosqlite

from cockpit.core.events import Event
from cockpit.core.model import Repo, Session, Usage
from cockpit.core.textcap import EVENT_TEXT_MAX, cap_text
from cockpit.errors import CockpitError

#: Schema versions, applied in order; `PRAGMA user_version` records how many ran.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE repos (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        slug TEXT NOT NULL UNIQUE,
        added_at REAL NOT NULL
    );
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        number INTEGER NOT NULL UNIQUE,
        repo_id INTEGER NOT NULL REFERENCES repos(id),
        state TEXT NOT NULL,
        data TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        session TEXT NOT NULL,
        seq INTEGER NOT NULL,
        ts REAL NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX events_by_session ON events(session, seq);
    CREATE TABLE usage (
        id INTEGER PRIMARY KEY,
        session TEXT NOT NULL,
        ts REAL NOT NULL,
        model TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        cost_usd REAL NOT NULL,
        cost_known INTEGER NOT NULL
    );
    CREATE INDEX usage_by_session ON usage(session);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
]

INSERT_EVENT = "INSERT INTO events (session, seq, ts, kind, data) VALUES (?, ?, ?, ?, ?)"
_SAVE_SESSION = (
    "INSERT INTO sessions (id, number, repo_id, state, data, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(id) DO UPDATE SET state = excluded.state, data = excluded.data, updated_at = excluded.updated_at"
)
_MAX_BATCH = 10_000
#: Bytes of encoded data one stored event may hold: its capped text, \u-escaped at worst.
EVENT_BYTES_MAX = 6 * EVENT_TEXT_MAX + 64 * 1024
#: Bytes a page read counts per event on top of its data (kind, seq, ts, session, framing).
_EVENT_OVERHEAD = 96
_RESTORE_CHUNK = 16_384
RETRY_FIRST_S = 0.05  # a blocked write is tried again after this, doubling up to RETRY_MAX_S
RETRY_MAX_S = 2.0
CLOSE_GRACE_S = 3.0  # how long `close()` keeps trying a blocked store before it gives up
#: SQLite primary result codes that mean "the file cannot be written now", not "this write is
#: wrong": BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN.
_BLOCKING_CODES = frozenset({5, 6, 8, 10, 13, 14})


def blocks_writing(exc: BaseException) -> bool:
    """Whether a write failed because of the file system (retry later), not because of the write."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in _BLOCKING_CODES
    return isinstance(exc, OSError)


_encode = json.JSONEncoder(separators=(",", ":")).encode  # json.dumps(..., separators=...) builds one per call


def event_row(event: Event) -> tuple[str, int, float, str, str]:
    """The row of an event: its text capped (`cap_text`), and data that is still bigger than
    `EVENT_BYTES_MAX` (long runs of numbers, deep nesting) stored as a stub that says so."""
    data = _encode(event.data)
    if len(data) > EVENT_BYTES_MAX // 8:  # only events this big can be over the text cap
        data = _encode(cap_text(event.data))
        if len(data) > EVENT_BYTES_MAX:
            data = _encode(oversized(len(data)))
    return (event.session, event.seq, event.ts, event.kind, data)


def _rows_that_fit(budget: int, average: float) -> int:
    """How many rows to fetch next: about as many as the budget left holds at the average
    size seen so far (a few at first), so a page never reads far past its budget."""
    return max(1, min(256, int(budget / average) + 1)) if average else 4


def oversized(size: int) -> dict[str, Any]:
    """What stands for event data too big to keep (or stored before events were capped)."""
    return {"text": f"[event data of {size:,} bytes not kept: an event keeps {EVENT_BYTES_MAX:,}]",
            "cut_chars": size}


def _group_rows(rows: list[tuple[str, int, float, str, str]], grouped: dict[str, list[Event]]) -> None:
    """Decode (session, seq, ts, kind, data) rows into Events appended to their session's list."""
    sessions, seqs, stamps, kinds, payloads = zip(*rows)
    datas = json.loads("[" + ",".join(payloads) + "]")
    for session, event in zip(sessions, map(Event, kinds, sessions, datas, seqs, stamps)):
        events = grouped.get(session)
        if events is None:
            events = grouped[session] = []
        events.append(event)


def _merged(stored: Iterable[tuple[Any, ...]], queued: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Stored and queued event rows of one session, each seq once, in seq order."""
    by_seq = {row[1]: row for row in stored}
    by_seq.update((row[1], row) for row in queued)
    return sorted(by_seq.values(), key=lambda row: row[1])


def _with_queued(events: list[Event], queued: list[tuple[Any, ...]], limit: int, max_bytes: int,
                 newest: bool) -> list[Event]:
    """A page of stored events with the queued rows of its range merged in (each seq once),
    cut again to `limit` and ~`max_bytes` from its oldest end (its newest, with `newest`)."""
    by_seq = {e.seq: e for e in events}
    by_seq.update((seq, Event(kind, session, json.loads(data), seq, ts)) for session, seq, ts, kind, data in queued)
    merged = sorted(by_seq.values(), key=lambda e: e.seq)
    if newest:
        merged.reverse()
    kept, used = [], 0
    for event in merged[:max(limit, 0)]:
        used += len(_encode(event.data)) + _EVENT_OVERHEAD
        if kept and used > max_bytes:
            break
        kept.append(event)
    if newest:
        kept.reverse()
    return kept


def _session_row(session: Session) -> tuple[str, int, int, str, str, float]:
    return (session.id, session.number, session.repo_id, session.state.value,
            json.dumps(session.to_dict()), time.time())


@dataclass(eq=False)
class _Write:
    sql: str
    rows: list[tuple[Any, ...]]
    done: asyncio.Future[None] | None


class Store:
    """Async access to `cockpit.db`. Open with `await Store.open(path)`."""

    def __init__(self, db: aiosqlite.Connection, path: Path):
        self._db = db
        self.path = path
        self._queue: deque[_Write] = deque()
        self._queued = asyncio.Event()  # set when `_queue` may hold something
        self._batch: list[_Write] = []  # the group the writer is committing
        self.blocked = ""  # why the file cannot be written now ("database or disk is full"), "" while it can
        self._blocked_now = asyncio.Event()  # set while `blocked`
        self.on_blocked: Callable[[str], None] | None = None  # told `blocked` each time it changes
        self._writer = asyncio.create_task(self._write_loop(), name="cockpit-store-writer")
        self._failure: BaseException | None = None
        self._repo_lock = asyncio.Lock()
        self._open: _Write | None = None  # the last queued fire-and-forget event write, still growable
        self._io = asyncio.Lock()  # held by the writer per batch, and by long reads
        self._closed = False

    @classmethod
    async def open(cls, path: Path | str) -> Store:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(str(path))
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA foreign_keys=ON")
            await db.execute("PRAGMA busy_timeout=5000")
            await _migrate(db, path)
        except BaseException:
            await db.close()
            raise
        return cls(db, path)

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """Commit what is queued and close the file (safe to call twice).

        While the store is blocked it keeps trying for `CLOSE_GRACE_S`, then closes anyway and
        raises a CockpitError saying how many queued writes were not saved.
        """
        if self._closed:
            return
        try:
            await self._flush_or_give_up()
        finally:
            self._closed = True
            self._writer.cancel()
            try:
                await self._writer
            except asyncio.CancelledError:
                pass
            for item in [*self._batch, *self._queue]:
                if item.done is not None and not item.done.done():
                    item.done.set_exception(CockpitError(f"{self.path}: closed before this write was saved"))
            await self._db.close()

    async def _flush_or_give_up(self) -> None:
        flushing = asyncio.ensure_future(self.flush())
        while True:
            await asyncio.wait([flushing], timeout=CLOSE_GRACE_S)
            if flushing.done():
                flushing.result()
                return
            if self.blocked:
                lost = self.unwritten()
                flushing.cancel()
                raise CockpitError(
                    f"cannot write {self.path}: {self.blocked}; closed with {lost} queued writes not saved")

    def unwritten(self) -> int:
        """How many rows are queued or being committed (held in memory only)."""
        return sum(len(item.rows) for item in [*self._batch, *self._queue])

    # -- writing -------------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            while not self._queue:
                self._queued.clear()
                await self._queued.wait()
            batch = [self._queue.popleft()]
            size = len(batch[0].rows)
            while size < _MAX_BATCH and self._queue:
                item = self._queue.popleft()
                batch.append(item)
                size += len(item.rows)
            if self._open is not None and any(item is self._open for item in batch):
                self._open = None  # taken: later appends start a new write
            self._batch = batch
            async with self._io:
                await self._commit_batch(batch)
            self._batch = []

    async def _commit_batch(self, batch: list[_Write]) -> None:
        try:
            await self._apply_when_writable(batch)
        except Exception as exc:  # keep the writer alive
            await self._rollback()
            if len(batch) == 1:
                self._report(batch[0], exc)
                return
            # Find the write(s) at fault: retry each alone, so the others still succeed.
            for item in batch:
                try:
                    await self._apply_when_writable([item])
                except Exception as item_exc:
                    await self._rollback()
                    self._report(item, item_exc)
                else:
                    self._report(item, None)
            return
        for item in batch:
            self._report(item, None)

    def _report(self, item: _Write, failure: BaseException | None) -> None:
        if item.done is None:
            if failure is not None:
                self._failure = failure  # a fire-and-forget write was lost: tell the next flush
        elif not item.done.done():
            if failure is None:
                item.done.set_result(None)
            else:
                item.done.set_exception(failure)

    async def _apply_when_writable(self, batch: list[_Write]) -> None:
        """`_apply`, tried again with backoff for as long as the file cannot be written; raises
        only a failure of the writes themselves."""
        delay = RETRY_FIRST_S
        while True:
            try:
                await self._apply(batch)
            except Exception as exc:
                if not blocks_writing(exc):
                    raise
                await self._rollback()
                self._set_blocked(str(exc) or type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
            else:
                self._set_blocked("")
                return

    def _set_blocked(self, reason: str) -> None:
        if reason != self.blocked:
            self.blocked = reason
            if reason:
                self._blocked_now.set()
            else:
                self._blocked_now.clear()
            if self.on_blocked is not None:
                self.on_blocked(reason)

    async def _rollback(self) -> None:
        try:
            await self._db.rollback()
        except Exception:  # the connection is unusable; the next write will say so
            pass

    async def _apply(self, batch: list[_Write]) -> None:
        """Run a batch in one transaction; consecutive writes of the same SQL go together."""
        index = 0
        while index < len(batch):
            sql, rows = batch[index].sql, list(batch[index].rows)
            index += 1
            while index < len(batch) and batch[index].sql == sql:
                rows.extend(batch[index].rows)
                index += 1
            if sql:  # the empty statement is a flush marker
                await self._db.executemany(sql, rows)
        await self._db.commit()

    def _enqueue(self, sql: str, rows: list[tuple[Any, ...]], wait: bool) -> asyncio.Future[None] | None:
        """Queue a write. After `close()` a waited write raises; a fire-and-forget one is dropped."""
        if self._closed:
            if wait:
                raise CockpitError(f"{self.path}: the store is closed")
            return None
        done = asyncio.get_running_loop().create_future() if wait else None
        self._queue.append(_Write(sql, rows, done))
        self._queued.set()
        self._open = None
        return done

    async def append(self, event: Event) -> None:
        """Append one event; returns once it is committed."""
        await self._enqueue(INSERT_EVENT, [event_row(event)], wait=True)  # type: ignore[misc]

    async def append_many(self, events: Iterable[Event]) -> None:
        await self._enqueue(INSERT_EVENT, [event_row(e) for e in events], wait=True)  # type: ignore[misc]

    def append_nowait(self, event: Event) -> None:
        """Queue an event without waiting; `flush()` makes it durable.

        Consecutive calls grow one queued write (until the writer takes it), so a burst of
        events costs one queue item, not one each.
        """
        open_write = self._open
        if open_write is not None and len(open_write.rows) < _MAX_BATCH:
            open_write.rows.append(event_row(event))
            return
        if self._closed:
            return
        write = _Write(INSERT_EVENT, [event_row(event)], None)
        self._queue.append(write)
        self._queued.set()
        self._open = write

    async def flush(self) -> None:
        """Wait until everything queued so far is committed; raise if a queued write failed."""
        await self._enqueue("", [], wait=True)  # type: ignore[misc]
        failure, self._failure = self._failure, None
        if failure is not None:
            raise CockpitError(f"{self.path}: a queued write failed: {failure}")

    async def written_or_blocked(self) -> None:
        """Wait until everything queued so far is committed, or only until the store is blocked
        (what is not written yet is in memory then, and `tail` still sees it)."""
        flushing = asyncio.ensure_future(self.flush())
        blocked = asyncio.ensure_future(self._blocked_now.wait())
        try:
            await asyncio.wait([flushing, blocked], return_when=asyncio.FIRST_COMPLETED)
        finally:
            blocked.cancel()
        if flushing.done():
            flushing.result()
        else:
            flushing.cancel()

    async def _write(self, sql: str, *params: Any) -> None:
        await self._enqueue(sql, [params], wait=True)  # type: ignore[misc]

    # -- repositories and sessions ---------------------------------------------------------------

    async def add_repo(self, path: str, slug: str) -> Repo:
        """Register a repository (idempotent by path, also when called concurrently); slugs are
        made unique."""
        async with self._repo_lock:
            return await self._add_repo(path, slug)

    async def _add_repo(self, path: str, slug: str) -> Repo:
        await self.flush()
        async with self._db.execute("SELECT id, path, slug FROM repos WHERE path = ?", (path,)) as cur:
            row = await cur.fetchone()
        if row:
            return Repo(*row)
        taken = {r.slug for r in await self.repos()}
        unique, n = slug, 1
        while unique in taken:
            n += 1
            unique = f"{slug}-{n}"
        await self._write("INSERT INTO repos (path, slug, added_at) VALUES (?, ?, ?)", path, unique, time.time())
        async with self._db.execute("SELECT id, path, slug FROM repos WHERE path = ?", (path,)) as cur:
            row = await cur.fetchone()
        assert row is not None
        return Repo(*row)

    async def repos(self) -> list[Repo]:
        async with self._db.execute("SELECT id, path, slug FROM repos ORDER BY id") as cur:
            return [Repo(*row) for row in await cur.fetchall()]

    async def save_session(self, session: Session) -> None:
        """Insert or update a session record; returns once committed."""
        await self._enqueue(_SAVE_SESSION, [_session_row(session)], wait=True)  # type: ignore[misc]

    def save_session_nowait(self, session: Session) -> None:
        """Queue a session record as it is now; `flush()` makes it durable."""
        self._enqueue(_SAVE_SESSION, [_session_row(session)], wait=False)

    async def delete_session(self, session_id: str) -> None:
        """Forget a session and everything it recorded."""
        for sql in ("DELETE FROM events WHERE session = ?", "DELETE FROM usage WHERE session = ?",
                    "DELETE FROM sessions WHERE id = ?"):
            self._enqueue(sql, [(session_id,)], wait=False)
        await self.flush()

    async def sessions(self) -> list[Session]:
        async with self._db.execute("SELECT data FROM sessions ORDER BY number") as cur:
            return [Session.from_dict(json.loads(row[0])) for row in await cur.fetchall()]

    async def get_meta(self, key: str, default: str = "") -> str:
        async with self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return row[0] if row else default

    def set_meta_nowait(self, key: str, value: str) -> None:
        self._enqueue(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [(key, value)], wait=False,
        )

    # -- reading events --------------------------------------------------------------------------

    async def events(self, session: str, after_seq: int = 0, limit: int = -1) -> list[Event]:
        """A session's events after `after_seq` in seq order, those still queued included."""
        queued = [row for row in self._queued_rows(session) if row[1] > after_seq]
        async with self._db.execute(
            "SELECT session, seq, ts, kind, data FROM events WHERE session = ? AND seq > ? "
            "ORDER BY seq, id LIMIT ?", (session, after_seq, limit),
        ) as cur:
            rows = await cur.fetchall()
        if queued:
            rows = _merged(rows, queued)
            rows = rows[:limit] if limit >= 0 else rows
        return [Event(kind=k, session=s, data=json.loads(d), seq=q, ts=t) for s, q, t, k, d in rows]

    async def tail(self, session: str, count: int) -> list[Event]:
        """The last `count` events of a session, oldest first (one index range scan), those still
        queued included: while the store is blocked that is where the newest are."""
        queued = self._queued_rows(session)  # before the read: a row committed meanwhile is in both
        async with self._db.execute(
            "SELECT session, seq, ts, kind, data FROM events WHERE session = ? "
            "ORDER BY seq DESC, id DESC LIMIT ?", (session, count),
        ) as cur:
            rows = list(reversed(await cur.fetchall()))
        if queued:
            rows = _merged(rows, queued)[-count:]
        return [Event(kind=k, session=s, data=json.loads(d), seq=q, ts=t) for s, q, t, k, d in rows]

    def _queued_rows(self, session: str) -> list[tuple[Any, ...]]:
        """Taken before a read, so a row committed while the read runs is in both (see `_merged`)."""
        return [row for item in [*self._batch, *self._queue] if item.sql == INSERT_EVENT
                for row in item.rows if row[0] == session]

    async def page(self, session: str, *, after: int = 0, before: int | None = None, limit: int,
                   max_bytes: int, newest: bool = False) -> list[Event]:
        """Events of a session with `after` < seq < `before`, oldest first: the first `limit`
        of them (the last, with `newest`), and no more than ~`max_bytes` of data but always at
        least one. Rows are fetched a few at a time, so a page never holds much more than its
        budget in memory. A row too big to keep (stored before events were capped) comes as a
        stub, which replaces it in the store so that no later read loads it again. Events still
        queued are included (while the store is blocked that is where the newest are)."""
        high = before if before is not None else 1 << 62
        queued = [row for row in self._queued_rows(session) if after < row[1] < high]  # before the read
        order = "DESC" if newest else "ASC"
        events: list[Event] = []
        too_big: list[Event] = []
        used = 0
        async with self._db.execute(
            "SELECT seq, ts, kind, CASE WHEN length(data) > ? THEN NULL ELSE data END "
            f"FROM events WHERE session = ? AND seq > ? AND seq < ? ORDER BY seq {order}, id {order} LIMIT ?",
            (EVENT_BYTES_MAX, session, after, high, max(limit, 0)),
        ) as cur:
            while rows := await cur.fetchmany(_rows_that_fit(max_bytes - used, used / max(len(events), 1))):
                for seq, ts, kind, data in rows:
                    used += (len(data) if data is not None else 0) + _EVENT_OVERHEAD
                    if events and used > max_bytes:
                        break
                    events.append(Event(kind, session, json.loads(data) if data is not None else {}, seq, ts))
                    if data is None:
                        too_big.append(events[-1])
                else:
                    continue
                break
        for event in too_big:  # measured apart, so the huge row is in memory once at a time
            async with self._db.execute("SELECT length(data) FROM events WHERE session = ? AND seq = ?",
                                        (session, event.seq)) as cur:
                (size,) = await cur.fetchone()  # type: ignore[misc]
            event.data = oversized(size)
        if too_big:
            self._enqueue("UPDATE events SET data = ? WHERE session = ? AND seq = ?",
                          [(_encode(e.data), session, e.seq) for e in too_big], wait=False)
        if newest:
            events.reverse()
        return _with_queued(events, queued, limit, max_bytes, newest) if queued else events

    async def all_events(self) -> dict[str, list[Event]]:
        """Every transcript at once, grouped by session (sorted by id), each in seq order.

        This is the start-up restore path, so it avoids per-row work where it can: one table
        scan in insertion order (walking the session index would cost a random table access
        per row), fetched in chunks so SQLite reads the next chunk on its thread while this one
        is decoded here, one `json.loads` per chunk over its payloads joined into one array,
        Events built by `map`, and the cyclic garbage collector paused meanwhile (it would walk
        the growing heap again and again; reference counting still frees). Writes wait until
        the scan is done, so it sees one consistent state.
        """
        grouped: dict[str, list[Event]] = {}
        paused = gc.isenabled()
        gc.disable()
        try:
            async with self._io, self._db.execute(
                "SELECT session, seq, ts, kind, data FROM events ORDER BY id"
            ) as cur:
                pending = asyncio.ensure_future(cur.fetchmany(_RESTORE_CHUNK))
                try:
                    while rows := await pending:
                        pending = asyncio.ensure_future(cur.fetchmany(_RESTORE_CHUNK))
                        _group_rows(rows, grouped)
                finally:
                    if not pending.done():
                        await asyncio.wait([pending])
            by_seq = attrgetter("seq")
            for events in grouped.values():
                events.sort(key=by_seq)  # already in order unless written out of order; stable
            return {session: grouped[session] for session in sorted(grouped)}
        finally:
            if paused:
                gc.enable()

    async def events_of_kinds(self, kinds: Iterable[str]) -> list[Event]:
        """Every stored event of these kinds, by session then seq (past approvals, for the inbox's
        rule suggestions; a scan of the events table, so not for anything done per event)."""
        kinds = list(kinds)
        await self.written_or_blocked()
        async with self._db.execute(
            f"SELECT session, seq, ts, kind, data FROM events WHERE kind IN ({', '.join('?' * len(kinds))}) "
            "ORDER BY session, seq, id", kinds,
        ) as cur:
            rows = await cur.fetchall()
        return [Event(kind=k, session=s, data=json.loads(d), seq=q, ts=t) for s, q, t, k, d in rows]

    async def last_seq(self) -> dict[str, int]:
        async with self._db.execute("SELECT session, MAX(seq) FROM events GROUP BY session") as cur:
            return {s: q for s, q in await cur.fetchall()}

    # -- usage -----------------------------------------------------------------------------------

    def record_usage_nowait(self, session: str, model: str, usage: Usage) -> None:
        self._enqueue(
            "INSERT INTO usage (session, ts, model, prompt_tokens, completion_tokens, cost_usd, cost_known) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(session, time.time(), model, usage.prompt_tokens, usage.completion_tokens,
              usage.cost_usd, int(usage.cost_known))], wait=False,
        )

    async def total_usage(self) -> Usage:
        async with self._db.execute(
            "SELECT COALESCE(SUM(prompt_tokens),0), COALESCE(SUM(completion_tokens),0), "
            "COALESCE(SUM(cost_usd),0), COALESCE(MIN(cost_known),1) FROM usage"
        ) as cur:
            p, c, cost, known = await cur.fetchone()  # type: ignore[misc]
        return Usage(p, c, cost, bool(known))

    async def integrity_check(self) -> str:
        async with self._db.execute("PRAGMA integrity_check") as cur:
            return (await cur.fetchone())[0]  # type: ignore[index]


async def _migrate(db: aiosqlite.Connection, path: Path) -> None:
    async with db.execute("PRAGMA user_version") as cur:
        version = (await cur.fetchone())[0]  # type: ignore[index]
    if version > len(MIGRATIONS):
        raise CockpitError(
            f"{path}: database schema version {version} is newer than this cockpit knows "
            f"({len(MIGRATIONS)}); upgrade cockpit"
        )
    for number in range(version, len(MIGRATIONS)):
        await db.executescript(f"BEGIN; {MIGRATIONS[number]} PRAGMA user_version = {number + 1}; COMMIT;")
