"""Events carry text, not files; transcripts come a page at a time and the client pages.

The cap is checked on a real engine and store; the paging on the real server process with a
store holding 8 MB of big tool outputs, read by the real client.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from cockpit.client.remote import RemoteClient, socket_opener
from cockpit.core import events as ev
from cockpit.core.events import Event
from cockpit.core.store import Store
from cockpit.core.textcap import EVENT_TEXT_MAX
from cockpit.server.daemon import ensure_server
from cockpit.server.listener import PAGE_BYTES
from cockpit.server.paths import ServerPaths

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import hostile  # noqa: E402  (bench/hostile.py: a store with big transcripts, a raw client)
from tinyfs import TinyFS, tiny_fs  # noqa: E402, F401  (the fixture)

MARKER = f" characters cut: an event keeps {EVENT_TEXT_MAX:,}]"


async def test_a_huge_tool_output_is_kept_cut_with_a_marker(open_engine, repo):
    engine = await open_engine()
    [session] = await engine.create_sessions(repo, name="big")
    output = "o" * (3 * EVENT_TEXT_MAX)
    live = engine.subscribe()
    engine.emit(session.id, ev.TOOL_RESULT, {"id": "c1", "ok": True, "output": output})
    for _ in range(3):  # one streamed run, stored as one text event bigger than the cap
        engine.emit(session.id, ev.TEXT_DELTA, {"text": "t" * (EVENT_TEXT_MAX // 2)})
    sent = [e for e in [await live.get() for _ in range(4)] if e.kind == ev.TOOL_RESULT][0]
    stored = {e.kind: e for e in await engine.transcript(session.id)}
    kept = EVENT_TEXT_MAX - len("c1")  # all the event's strings share the cap
    for event in (sent, stored[ev.TOOL_RESULT]):
        assert event.data["output"] == "o" * kept + f"\n[… {len(output) - kept:,} of {len(output):,}" + MARKER
        assert event.data["cut_chars"] == len(output) - kept
    text = stored[ev.TEXT]
    assert text.data["text"].startswith("t" * EVENT_TEXT_MAX + "\n[… ") and text.data["text"].endswith(MARKER)
    assert text.data["cut_chars"] == EVENT_TEXT_MAX // 2


@pytest.mark.slow
async def test_the_client_pages_whole_transcripts_and_tails(repo, cockpit_env):
    await asyncio.to_thread(hostile.seed_store, cockpit_env.home, repo, transcript_mb=8, huge_row_mb=0)
    paths = ServerPaths(cockpit_env.home)
    await asyncio.to_thread(ensure_server, paths, repo)
    conn = hostile.Wire(paths)
    page = conn.call("transcript", session=hostile.SESSION)["result"]
    conn.close()
    assert 1 < len(page) and sum(len(e["data"]["output"]) for e in page) <= PAGE_BYTES  # one page, not all
    client = RemoteClient(socket_opener(paths), tail=400)
    await client.connect()
    try:
        stored = await client.transcript(hostile.SESSION)
        count = len(stored)
        assert count > 4 * len(page) and [e.seq for e in stored] == list(range(1, count + 1))
        assert [e.seq for e in await client.transcript(hostile.SESSION, tail=0)] == list(range(1, count + 1))
        assert [e.seq for e in await client.transcript(hostile.SESSION, tail=10)] == list(range(count - 9, count + 1))
    finally:
        await client.close()


async def test_pages_include_what_a_full_disk_holds_in_memory(tiny_fs: TinyFS):
    """While the store cannot write, the newest events are only queued: pages (and so attach
    tails and transcripts) still hold them, each seq once, within their budgets."""
    store = await Store.open(tiny_fs.root / "cockpit.db")
    try:
        await store.append(Event("notice", "s", {"text": "before"}, 1))
        tiny_fs.fill()
        for n in range(2, 202):
            store.append_nowait(Event("text", "s", {"text": f"{n} " + "x" * 2000}, n))
        await store.written_or_blocked()
        assert store.blocked
        assert [e.seq for e in await store.page("s", limit=1000, max_bytes=1 << 30)] == list(range(1, 202))
        assert [e.seq for e in await store.page("s", limit=3, max_bytes=1 << 30, newest=True)] == [199, 200, 201]
        assert [e.seq for e in await store.page("s", after=150, limit=2, max_bytes=1 << 30)] == [151, 152]
        assert [e.seq for e in await store.page("s", before=100, limit=1000, max_bytes=5000, newest=True)] == [98, 99]
        tiny_fs.free()
        await store.flush()
        assert [e.seq for e in await store.page("s", limit=3, max_bytes=1 << 30, newest=True)] == [199, 200, 201]
    finally:
        await store.close()
