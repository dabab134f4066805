"""The store on a real full file system (a 2 MB tmpfs, filled): writes are held in memory in
order and retried until space returns, nothing acknowledged is lost to `kill -9`, and closing
while blocked says exactly how much was not saved."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cockpit.core import store as store_module
from cockpit.core.events import Event
from cockpit.core.store import Store, blocks_writing
from cockpit.errors import CockpitError
from tinyfs import TinyFS, tiny_fs  # noqa: F401  (the fixture)

WRITER = Path(__file__).with_name("store_writer.py")


async def _until(check, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.01)


def _events(n_from: int, n_to: int) -> list[Event]:
    return [Event("text", "s", {"text": f"{n} " + "x" * 2000}, n) for n in range(n_from, n_to)]


def test_what_blocks_writing_and_what_is_a_bad_write():
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = 13  # as sqlite3 sets it
    io = sqlite3.OperationalError("disk I/O error")
    io.sqlite_errorcode = 10 | (4 << 8)  # an extended code: SQLITE_IOERR_READ
    bad = sqlite3.IntegrityError("FOREIGN KEY constraint failed")
    bad.sqlite_errorcode = 787
    assert blocks_writing(full) and blocks_writing(io) and blocks_writing(OSError(28, "No space left on device"))
    assert not blocks_writing(bad) and not blocks_writing(ValueError("x"))


async def test_a_full_disk_holds_writes_in_order_and_loses_nothing_once_space_returns(tiny_fs: TinyFS):
    store = await Store.open(tiny_fs.root / "cockpit.db")
    heard: list[str] = []
    store.on_blocked = heard.append
    try:
        await store.append(Event("notice", "s", {"text": "before"}, 1))
        tiny_fs.fill()
        *nowait, last = _events(2, 202)
        for event in nowait:
            store.append_nowait(event)
        acknowledged = asyncio.ensure_future(store.append(last))
        await _until(lambda: store.blocked)
        assert store.blocked == "database or disk is full"
        assert heard == [store.blocked]
        await asyncio.sleep(0.3)  # several retries, all refused
        assert not acknowledged.done(), "an append returned before it was on disk"
        assert store.unwritten() == 200
        with sqlite3.connect(store.path) as db:  # on disk: only what was acknowledged
            assert db.execute("SELECT seq FROM events").fetchall() == [(1,)]
        assert [e.seq for e in await store.events("s")] == list(range(1, 202))  # reads see memory too
        assert [e.seq for e in await store.events("s", after_seq=150, limit=2)] == [151, 152]
        await asyncio.wait_for(store.written_or_blocked(), 10)  # returns: the rest is in memory
        assert [e.seq for e in await store.tail("s", 3)] == [199, 200, 201]  # memory included
        assert [e.seq for e in await store.tail("s", 500)] == list(range(1, 202))
        newest = await store.page("s", limit=3, max_bytes=1 << 20, newest=True)
        assert [e.seq for e in newest] == [199, 200, 201]
        assert [e.seq for e in await store.page("s", after=195, limit=10, max_bytes=1 << 20)] == list(range(196, 202))

        tiny_fs.free()
        await acknowledged
        await store.flush()
        assert heard == [heard[0], ""] and store.blocked == ""
        assert [e.seq for e in await store.events("s")] == list(range(1, 202))
        assert [e.seq for e in await store.tail("s", 3)] == [199, 200, 201]  # once each
        assert await store.integrity_check() == "ok"
    finally:
        await store.close()


async def test_closing_while_blocked_names_what_was_not_saved(tiny_fs: TinyFS, monkeypatch):
    monkeypatch.setattr(store_module, "CLOSE_GRACE_S", 0.2)
    path = tiny_fs.root / "cockpit.db"
    store = await Store.open(path)
    await store.append(Event("notice", "s", {"text": "saved"}, 1))
    tiny_fs.fill()
    for event in _events(2, 12):
        store.append_nowait(event)
    waiting = asyncio.ensure_future(store.append(Event("notice", "s", {"text": "never acknowledged"}, 12)))
    await _until(lambda: store.blocked)
    with pytest.raises(CockpitError) as caught:
        await store.close()
    assert str(caught.value) == f"cannot write {path}: database or disk is full; closed with 11 queued writes not saved"
    with pytest.raises(CockpitError, match="closed before this write was saved"):
        await waiting  # its caller is told, not left waiting forever
    tiny_fs.free()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT seq FROM events").fetchall() == [(1,)]


def test_kill_9_while_the_disk_is_full_loses_no_acknowledged_append(tiny_fs: TinyFS):
    """What a writer saw acknowledged is on disk; the held writes were memory only (and unacknowledged)."""
    path = tiny_fs.root / "cockpit.db"
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(path), "4"], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    printed: list[tuple[str, int]] = []
    blocked = ""

    def take(line: str) -> None:
        nonlocal blocked
        if line.startswith("blocked "):
            blocked = line.removeprefix("blocked ").strip()
        elif line.strip():
            session, seq = line.split()
            printed.append((session, int(seq)))

    try:
        assert proc.stdout is not None
        while len(printed) < 200:
            line = proc.stdout.readline()
            assert line, "the writer stopped"
            take(line)
        tiny_fs.fill()
        while not blocked:
            line = proc.stdout.readline()
            assert line, "the writer stopped"
            take(line)
        before_kill = len(printed)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        for line in proc.stdout.read().splitlines():  # anything printed before the kill counts
            take(line)
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
    assert blocked == "database or disk is full"
    assert len(printed) == before_kill, "an append was acknowledged while the disk was full"

    tiny_fs.free()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = set(db.execute("SELECT session, seq FROM events").fetchall())
    missing = [p for p in printed if p not in stored]
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {missing[:5]}"
