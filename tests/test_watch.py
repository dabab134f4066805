"""Live file watching: a write in a worktree reports DIFF_STAT without any agent turn, dependency
and build folders are ignored, and the watched set follows sessions as they come and go."""

from __future__ import annotations

import asyncio
from pathlib import Path

from conftest import make_repo
from turn_backend import events_of, wait_for

from cockpit.config import parse_config_text
from cockpit.core import events as ev
from cockpit.core.watch import Watcher


async def test_a_write_reports_diff_stat_without_a_turn(engine, repo: Path):
    (session,) = await engine.create_sessions(repo, name="w")
    await wait_for(lambda: session.id in engine.review.watching)
    feed = engine.subscribe(accept=lambda e: e.kind == ev.DIFF_STAT and e.session == session.id)
    (session.path / "notes.txt").write_text("one\ntwo\n")
    await wait_for(lambda: feed._items)
    (stat,) = feed.get_nowait()
    assert stat.data == {"files": 1, "added": 2, "removed": 0}

    (session.path / "notes.txt").write_text("one\ntwo\nthree\n")
    await wait_for(lambda: feed._items)
    assert [e.data["added"] for e in feed.get_nowait()] == [3]
    assert [e["added"] for e in await events_of(engine, session, ev.DIFF_STAT)] == [2, 3]


async def test_writes_in_dependency_and_build_folders_are_ignored(tmp_path: Path):
    first, second = tmp_path / "first", tmp_path / "second"
    for root in (first, second):
        (root / "node_modules" / "lib").mkdir(parents=True)
        (root / "target").mkdir()
    calls: list[str] = []

    async def changed(session_id: str) -> None:
        calls.append(session_id)

    watcher = Watcher(lambda: {"first": first, "second": second}, changed, lambda reason: calls.append(reason))
    feed: asyncio.Queue[object] = asyncio.Queue()
    watcher.start(_items(feed))
    try:
        await wait_for(lambda: len(watcher.watching) == 2)
        (first / "node_modules" / "lib" / "index.js").write_text("module.exports = 1\n")
        (first / "target" / "app.o").write_bytes(b"\0")
        (first / "cache.pyc").write_bytes(b"\0")
        (second / "real.py").write_text("x = 1\n")  # written last: its report proves the others were seen
        await wait_for(lambda: "second" in calls)
        await asyncio.sleep(0)
        assert calls == ["second"]

        (first / "src.py").write_text("y = 2\n")
        await wait_for(lambda: "first" in calls)
    finally:
        await watcher.close()


async def _items(queue: asyncio.Queue[object]):
    while True:
        yield await queue.get()


async def test_the_watched_set_follows_sessions(engine, tmp_path: Path):
    repo = make_repo(tmp_path / "repo")
    (one,) = await engine.create_sessions(repo, name="one")
    await wait_for(lambda: set(engine.review.watching) == {one.id})
    (two,) = await engine.create_sessions(repo, name="two")
    await wait_for(lambda: set(engine.review.watching) == {one.id, two.id})
    await engine.archive(one.id)
    await wait_for(lambda: set(engine.review.watching) == {two.id})
    await engine.remove(two.id)
    await wait_for(lambda: engine.review.watching == {})
    await engine.unarchive(one.id)
    await wait_for(lambda: set(engine.review.watching) == {one.id})


async def test_no_watching_when_turned_off(open_engine, repo: Path):
    engine = await open_engine(parse_config_text("[review]\nwatch = false\n"))
    (session,) = await engine.create_sessions(repo, name="quiet")
    (session.path / "notes.txt").write_text("one\n")
    await asyncio.sleep(0.05)
    assert engine.review.watching == {}
    assert await events_of(engine, session, ev.DIFF_STAT) == []
