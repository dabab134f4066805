"""The event store on a real SQLite file: schema, group commits, failure isolation, restore
order, and durability of every acknowledged append across `kill -9`."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cockpit.core.events import Event
from cockpit.core.model import Session, Usage
from cockpit.core.states import State
from cockpit.core.store import INSERT_EVENT, MIGRATIONS, Store, event_row
from cockpit.errors import CockpitError

WRITER = Path(__file__).with_name("store_writer.py")


@pytest.fixture
async def store(tmp_path):
    opened = await Store.open(tmp_path / "db" / "cockpit.db")
    yield opened
    await opened.close()


def _session(id: str, number: int, repo_id: int = 1, **extra) -> Session:
    return Session(id=id, number=number, name=f"n{number}", slug=f"n{number}", repo_id=repo_id,
                   branch=f"cockpit/n{number}", base_ref="main", base_commit="c" * 40,
                   worktree=f"/w/n{number}", **extra)


def _count(path: Path, sql: str, *params) -> int:
    with sqlite3.connect(path) as db:
        return db.execute(sql, params).fetchone()[0]


async def test_schema_version_and_pragmas(store):
    async with store._db.execute("PRAGMA user_version") as cur:
        assert (await cur.fetchone())[0] == len(MIGRATIONS)
    async with store._db.execute("PRAGMA journal_mode") as cur:
        assert (await cur.fetchone())[0] == "wal"
    assert await store.integrity_check() == "ok"


async def test_reopen_keeps_data_and_refuses_a_newer_schema(tmp_path):
    path = tmp_path / "cockpit.db"
    store = await Store.open(path)
    await store.append(Event("notice", "s1", {"text": "kept"}, 1))
    await store.close()
    store = await Store.open(path)  # no migration runs twice
    assert [e.data for e in await store.events("s1")] == [{"text": "kept"}]
    await store.close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(CockpitError) as caught:
        await Store.open(path)
    assert str(caught.value) == (
        f"{path}: database schema version 99 is newer than this cockpit knows ({len(MIGRATIONS)}); upgrade cockpit"
    )


async def test_append_paths_and_reads(store):
    await store.append(Event("message.user", "a", {"text": "héllo ✓"}, 1, ts=10.5))
    await store.append_many([Event("text", "a", {"text": "x", "first_seq": 2}, 3, ts=11.0),
                             Event("notice", "b", {"n": [1, 2, {"deep": None}]}, 1, ts=12.0)])
    store.append_nowait(Event("turn.end", "a", {}, 4, ts=13.0))
    await store.flush()
    events = await store.events("a")
    assert [(e.kind, e.seq, e.ts, e.data) for e in events] == [
        ("message.user", 1, 10.5, {"text": "héllo ✓"}),
        ("text", 3, 11.0, {"text": "x", "first_seq": 2}),
        ("turn.end", 4, 13.0, {}),
    ]
    assert [e.seq for e in await store.events("a", after_seq=1, limit=1)] == [3]
    assert await store.last_seq() == {"a": 4, "b": 1}
    everything = await store.all_events()
    assert list(everything) == ["a", "b"]
    assert everything["a"] == events
    assert everything["b"][0].data == {"n": [1, 2, {"deep": None}]}
    assert await store.all_events() == {s: await store.events(s) for s in ("a", "b")}


async def test_all_events_matches_per_session_reads_across_chunks_and_disorder(store):
    # More rows than one restore chunk, interleaved sessions, and one session written out of
    # seq order: all_events must give exactly what the per-session query gives.
    events = [Event("text", f"s{i % 7}", {"i": i}, i // 7 + 1, ts=float(i)) for i in range(20_000)]
    events += [Event("notice", "late", {"n": n}, n, ts=1.0) for n in (3, 1, 2, 2)]
    for event in events:
        store.append_nowait(event)
    await store.flush()
    everything = await store.all_events()
    assert sorted(everything) == list(everything)
    for session, got in everything.items():
        assert got == await store.events(session)
    assert [e.data["n"] for e in everything["late"]] == [1, 2, 2, 3]
    assert sum(map(len, everything.values())) == len(events)
    assert gc.isenabled()  # the collector paused for the restore runs again


async def test_fire_and_forget_writes_keep_their_order(store):
    def burst(start: int, stop: int) -> None:
        for i in range(start, stop):
            store.append_nowait(Event("n", "s", {"i": i}, i + 1))

    burst(0, 5)
    # A waited write queued in between (queued synchronously here, as `append` does when it
    # runs) closes the burst: later nowait events must not join the earlier queued write.
    waited = store._enqueue(INSERT_EVENT, [event_row(Event("n", "s", {"i": 5}, 6))], wait=True)
    burst(6, 10)
    store.set_meta_nowait("k", "v")
    burst(10, 12)
    await asyncio.sleep(0)  # the writer takes what is queued; later appends start a new write
    burst(12, 15)
    await waited
    await store.flush()
    async with store._db.execute("SELECT seq FROM events ORDER BY id") as cur:
        assert [row[0] for row in await cur.fetchall()] == list(range(1, 16))
    assert await store.get_meta("k") == "v"


async def test_concurrent_appends_all_commit(store):
    async def writer(n: int) -> None:
        for seq in range(1, 51):
            await store.append(Event("text", f"t{n}", {"seq": seq}, seq))

    await asyncio.gather(*(writer(n) for n in range(64)))
    assert _count(store.path, "SELECT COUNT(*) FROM events") == 64 * 50
    last = await store.last_seq()
    assert len(last) == 64 and set(last.values()) == {50}


async def test_a_failing_write_fails_alone_and_is_rolled_back(store):
    await store.add_repo("/r", "r")
    orphan = _session("bad01", 1, repo_id=999)  # violates the sessions → repos foreign key
    store.append_nowait(Event("notice", "s", {"text": "before"}, 1))
    bad = asyncio.ensure_future(store.save_session(orphan))
    good = asyncio.ensure_future(store.append(Event("notice", "s", {"text": "after"}, 2)))
    assert len(store._queue) == 1  # tasks not started yet; they queue in this same batch
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY constraint failed"):
        await bad
    await good
    await store.flush()  # the fire-and-forget write of the same batch went through
    # Committed exactly once: the failed group was rolled back before its writes were retried.
    assert [e.data["text"] for e in await store.events("s")] == ["before", "after"]
    assert _count(store.path, "SELECT COUNT(*) FROM sessions") == 0

    store.save_session_nowait(orphan)
    with pytest.raises(CockpitError) as caught:
        await store.flush()
    assert str(caught.value) == f"{store.path}: a queued write failed: FOREIGN KEY constraint failed"
    await store.flush()  # reported once
    assert await store.integrity_check() == "ok"


async def test_closed_store(tmp_path):
    store = await Store.open(tmp_path / "c.db")
    await store.close()
    await store.close()  # twice is fine
    assert store.closed
    with pytest.raises(CockpitError) as caught:
        await store.append(Event("notice", "s", {}, 1))
    assert str(caught.value) == f"{tmp_path / 'c.db'}: the store is closed"
    store.append_nowait(Event("notice", "s", {}, 1))  # dropped, never raises at shutdown


async def test_repos_are_idempotent_with_unique_slugs(store):
    first = await store.add_repo("/src/app", "app")
    again = await store.add_repo("/src/app", "app")
    other = await store.add_repo("/elsewhere/app", "app")
    assert first == again and first.slug == "app"
    assert other.slug == "app-2" and other.id != first.id
    # Concurrent registrations of one path (32 sessions created at once) make one row.
    many = await asyncio.gather(*(store.add_repo("/src/api", "api") for _ in range(16)))
    assert {r.id for r in many} == {many[0].id}
    assert [r.slug for r in await store.repos()] == ["app", "app-2", "api"]


async def test_sessions_usage_meta_and_delete(store):
    repo = await store.add_repo("/r", "r")
    one = _session("aaaaa", 1, repo.id, tags=["x"], state=State.RUNNING)
    two = _session("bbbbb", 2, repo.id)
    await store.save_session(one)
    store.save_session_nowait(two)
    one.state, one.usage = State.IDLE, Usage(10, 5, 0.25)
    store.save_session_nowait(one)  # the record as it is at call time
    one.name = "changed later"
    await store.flush()
    assert [s.to_dict() for s in await store.sessions()] == [
        {**one.to_dict(), "name": "n1"}, two.to_dict(),
    ]
    store.record_usage_nowait("aaaaa", "m", Usage(10, 5, 0.25))
    store.record_usage_nowait("bbbbb", "m", Usage(1, 1, 0.0, cost_known=False))
    await store.flush()
    assert await store.total_usage() == Usage(11, 6, 0.25, cost_known=False)
    assert await store.get_meta("last_number", "0") == "0"
    store.set_meta_nowait("last_number", "7")
    store.set_meta_nowait("last_number", "8")
    await store.flush()
    assert await store.get_meta("last_number") == "8"

    await store.append(Event("notice", "aaaaa", {}, 1))
    await store.delete_session("aaaaa")
    assert [s.id for s in await store.sessions()] == ["bbbbb"]
    assert await store.events("aaaaa") == []
    assert await store.total_usage() == Usage(1, 1, 0.0, cost_known=False)


@pytest.mark.slow
def test_every_acknowledged_append_survives_kill_9(tmp_path):
    path = tmp_path / "killed.db"
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(path), "8"], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    printed: list[tuple[str, int]] = []
    deadline = time.monotonic() + 60
    try:
        assert proc.stdout is not None
        while len(printed) < 600 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            session, seq = line.split()
            printed.append((session, int(seq)))
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: appends are in flight right now
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert len(printed) >= 600, "the writer did not get going"

    with sqlite3.connect(path) as db:  # opening recovers the WAL
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = set(db.execute("SELECT session, seq FROM events").fetchall())
    missing = [p for p in printed if p not in stored]
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {missing[:5]}"
    assert len(stored) >= len(printed)


async def test_reopen_after_kill_with_store(tmp_path):
    """The store itself reopens a database a killed writer left (WAL and all) and appends on."""
    path = tmp_path / "again.db"
    proc = subprocess.Popen([sys.executable, str(WRITER), str(path), "2"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for _ in range(50):
        proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()
    store = await Store.open(path)
    try:
        assert await store.integrity_check() == "ok"
        last = await store.last_seq()
        assert set(last) == {"w0", "w1"} and sum(last.values()) >= 50
        await store.append(Event("notice", "w0", {}, last["w0"] + 1))
        assert (await store.events("w0"))[-1].seq == last["w0"] + 1
    finally:
        await store.close()


async def test_tail_is_the_last_events_in_order(store):
    await store.append_many([Event("text", "a", {"i": i}, seq, 0.0) for seq, i in ((s, s) for s in range(1, 51))])
    await store.append(Event("text", "b", {}, 1, 0.0))
    everything = await store.events("a")
    assert await store.tail("a", 7) == everything[-7:]
    assert await store.tail("a", 500) == everything
