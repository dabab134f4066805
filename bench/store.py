"""How fast the event store appends and restores, against raw sqlite3 doing the same work.

Figures:
- `append_ratio`: events/s through `Store.append_nowait` + `flush` divided by events/s of a raw
  `sqlite3.executemany` of the same rows (same schema, same JSON encoding, built inside the
  timed section in both cases, one transaction). Target ≥ 0.5.
- `concurrent_append_eps`: events/s when 64 tasks each `await store.append(ev)` one by one
  (every append waits for its group commit), for information.
- `restore_s`: `Store.open` + `sessions()` + `all_events()` on a database holding 50 sessions ×
  2,000 events. Target ≤ 0.3 s.

Usage: python bench/store.py [--quick] [--json] [--dir SCRATCH]
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from _common import Report, Timer, median, parse_args

from cockpit.core.events import Event
from cockpit.core.model import Session
from cockpit.core.store import MIGRATIONS, Store

CONCURRENT_TASKS = 64
RESTORE_SESSIONS = 50
RESTORE_EVENTS_PER_SESSION = 2_000

_WORDS = "the quick brown fox fixes a flaky test then refactors the parser and runs pytest again".split()


def make_events(count: int, sessions: int = 50) -> list[Event]:
    """A plausible transcript mix: coalesced text, tool calls and their results."""
    events: list[Event] = []
    now = time.time()
    for i in range(count):
        session = f"s{i % sessions:04d}"
        seq = i // sessions + 1
        kind = i % 5
        if kind in (0, 1, 2):
            text = " ".join(_WORDS[(i + k) % len(_WORDS)] for k in range(8 + i % 24))
            events.append(Event("text", session, {"text": text, "first_seq": seq}, seq, now + i * 1e-4))
        elif kind == 3:
            events.append(Event("tool.call", session, {"id": f"c{i}", "name": "shell", "args": {"cmd": "pytest -q tests/"}}, seq, now))
        else:
            events.append(Event("tool.result", session, {"id": f"c{i}", "ok": True, "output": "." * (40 + i % 200) + "\n3 passed"}, seq, now))
    return events


def raw_connection(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    version = db.execute("PRAGMA user_version").fetchone()[0]
    for number in range(version, len(MIGRATIONS)):
        db.executescript(f"BEGIN; {MIGRATIONS[number]} PRAGMA user_version = {number + 1}; COMMIT;")
    return db


def raw_append(path: Path, events: list[Event]) -> float:
    db = raw_connection(path)
    encode = json.JSONEncoder(separators=(",", ":")).encode  # the fastest way to the same text
    with Timer() as timer:
        rows = [(e.session, e.seq, e.ts, e.kind, encode(e.data)) for e in events]
        db.execute("BEGIN")
        db.executemany("INSERT INTO events (session, seq, ts, kind, data) VALUES (?, ?, ?, ?, ?)", rows)
        db.execute("COMMIT")
    db.close()
    return timer.seconds


async def store_append_batched(path: Path, events: list[Event]) -> float:
    store = await Store.open(path)
    with Timer() as timer:
        for event in events:
            store.append_nowait(event)
        await store.flush()
    await store.close()
    return timer.seconds


async def store_append_concurrent(path: Path, events: list[Event]) -> float:
    store = await Store.open(path)
    shares = [events[i::CONCURRENT_TASKS] for i in range(CONCURRENT_TASKS)]

    async def writer(share: list[Event]) -> None:
        for event in share:
            await store.append(event)

    with Timer() as timer:
        await asyncio.gather(*(writer(s) for s in shares))
    await store.close()
    return timer.seconds


def build_restore_db(path: Path) -> None:
    db = raw_connection(path)
    db.execute("BEGIN")
    db.execute("INSERT INTO repos (id, path, slug, added_at) VALUES (1, '/src/app', 'app', 0)")
    for n in range(RESTORE_SESSIONS):
        session = Session(
            id=f"s{n:04d}", number=n + 1, name=f"agent-{n}", slug=f"agent-{n}", repo_id=1,
            branch=f"cockpit/agent-{n}", base_ref="main", base_commit="0" * 40,
            worktree=f"/home/x/.local/share/cockpit/worktrees/app/agent-{n}", tags=["bench"],
        )
        db.execute(
            "INSERT INTO sessions (id, number, repo_id, state, data, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            (session.id, session.number, 1, "idle", json.dumps(session.to_dict()), 0.0),
        )
    rows = [(e.session, e.seq, e.ts, e.kind, json.dumps(e.data, separators=(",", ":")))
            for e in make_events(RESTORE_SESSIONS * RESTORE_EVENTS_PER_SESSION, RESTORE_SESSIONS)]
    db.executemany("INSERT INTO events (session, seq, ts, kind, data) VALUES (?, ?, ?, ?, ?)", rows)
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


async def restore(path: Path) -> tuple[float, int]:
    with Timer() as timer:
        store = await Store.open(path)
        sessions = await store.sessions()
        transcripts = await store.all_events()
    await store.close()
    assert len(sessions) == RESTORE_SESSIONS
    return timer.seconds, sum(len(t) for t in transcripts.values())


async def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    count = 50_000 if args.quick else 200_000
    rounds = 3
    report = Report("store", args.quick)
    print(f"store bench: {count:,} events, {rounds} rounds (median), python {sys.version.split()[0]}, "
          f"sqlite {sqlite3.sqlite_version}", flush=True)
    events = make_events(count)
    raw_s: list[float] = []
    batched_s: list[float] = []
    concurrent_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-store-", dir=args.dir) as tmp:
        folder = Path(tmp)
        for r in range(rounds):
            # Alternate the order so neither side always runs on a warmer cache.
            order = ("raw", "store") if r % 2 == 0 else ("store", "raw")
            for side in order:
                path = folder / f"{side}-{r}.db"
                if side == "raw":
                    raw_s.append(raw_append(path, events))
                else:
                    batched_s.append(await store_append_batched(path, events))
        concurrent_events = events[: count // 4] if args.quick else events[: count // 2]
        for r in range(rounds):
            concurrent_s.append(await store_append_concurrent(folder / f"concurrent-{r}.db", concurrent_events))

        raw_eps = count / median(raw_s)
        store_eps = count / median(batched_s)
        report.add("raw_eps", round(raw_eps), "raw sqlite3 executemany, events/s")
        report.add("store_batched_eps", round(store_eps), "Store.append_nowait + flush, events/s")
        report.add("concurrent_append_eps", round(len(concurrent_events) / median(concurrent_s)),
                   f"Store.append from {CONCURRENT_TASKS} tasks ({len(concurrent_events):,} events), events/s")
        report.add("append_ratio", store_eps / raw_eps)
        report.target("append_ratio", lambda v: v >= 0.5, "≥ 0.5")

        restore_path = folder / "restore.db"
        build_restore_db(restore_path)
        restore_runs = []
        for _ in range(5):
            seconds, total = await restore(restore_path)
            restore_runs.append(seconds)
        report.add("restore_events", total,
                   f"restore: {RESTORE_SESSIONS} sessions × {RESTORE_EVENTS_PER_SESSION:,} events")
        report.add("restore_s", median(restore_runs), "Store.open + sessions() + all_events()", "s")
        report.target("restore_s", lambda v: v <= 0.3, "≤ 0.3 s")
    report.finish(args.json)


if __name__ == "__main__":
    asyncio.run(main())
