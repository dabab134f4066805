"""Attaching over the socket is lossless and exactly-once, for any number of clients.

Real agents stream from the scripted model through a real background server; what each client
received is compared with the store, the source of truth, after the server has stopped.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import pytest
from server_kit import (
    Recorder, all_idle, assert_same_as_store, attached, coverage, model_config, quiet, start_server, streaming,
    until,
)

from cockpit.agents.factory import make_agent
from cockpit.client.remote import RemoteClient, socket_opener
from cockpit.config import load_config
from cockpit.core import events as ev
from cockpit.core.store import Store
from cockpit.server import listener, protocol
from cockpit.server.daemon import stop_server
from cockpit.server.paths import ServerPaths, socket_address
from cockpit.sim import ScriptedLLMServer

pytestmark = pytest.mark.slow


@pytest.fixture
async def sim() -> AsyncIterator[ScriptedLLMServer]:
    async with ScriptedLLMServer(streaming(words=300, rate=50)) as server:
        yield server


async def stored_transcripts(home, session_ids) -> dict[str, list[ev.Event]]:
    store = await Store.open(home / "cockpit.db")
    try:
        assert await store.integrity_check() == "ok"
        return {s: await store.events(s) for s in session_ids}
    finally:
        await store.close()


async def test_detach_mid_stream_and_reattach_loses_and_repeats_nothing(cockpit_env, repo, sim):
    cockpit_env.write_user_config(model_config(sim.url))
    paths = await start_server(cockpit_env.home, repo)
    first = await attached(paths, tail=100_000)
    before = Recorder(first)
    created = await first.execute({"cmd": "create", "repo": str(repo), "name": "s", "task": "stream", "count": 8})
    ids = [s["id"] for s in created]
    await until(lambda: before.count(ev.TEXT_DELTA) >= 160, "text streaming in the sessions")
    assert any(s["state"] == "running" for s in first.snapshot())
    await first.close()  # detach in the middle of the streams
    seen_before = await before.stop()

    second = await attached(paths, tail=100_000)
    scrollback = {s: await second.transcript(s, tail=100_000) for s in ids}
    after = Recorder(second)
    await until(lambda: all_idle(second, 8), "every session idle", timeout=90)
    await quiet(after)
    live = await after.stop()
    await second.close()
    assert sum(1 for e in live if e.kind == ev.TEXT_DELTA) > 0, "the reattach came after the streams ended"
    await asyncio.to_thread(stop_server, paths)

    stored = await stored_transcripts(cockpit_env.home, ids)
    for session in ids:
        assert_same_as_store(scrollback[session] + [e for e in live if e.session == session], stored[session], session)
        # the first client saw a gapless, repeat-free beginning of the same transcript
        part = coverage(e for e in seen_before if e.session == session)
        assert part == coverage(stored[session])[:len(part)], session


async def test_two_clients_see_every_event_and_each_others_commands(cockpit_env, repo, sim):
    cockpit_env.write_user_config(model_config(sim.url))
    paths = await start_server(cockpit_env.home, repo)
    one, two = await attached(paths), await attached(paths)
    seen_one, seen_two = Recorder(one), Recorder(two)
    created = await one.execute({"cmd": "create", "repo": str(repo), "name": "pair", "task": "stream", "count": 2})
    await until(lambda: all_idle(two, 2), "both sessions idle, as the second client sees it", timeout=90)
    await two.execute({"cmd": "send", "session": created[0]["id"], "text": "and once more"})
    await until(lambda: any(e.kind == ev.USER_MESSAGE and e.data["text"] == "and once more" for e in seen_one.events),
                "the first client to see the second one's message")
    await until(lambda: all_idle(one, 2), "the answer to finish")
    await quiet(seen_one)
    await quiet(seen_two)
    got_one, got_two = await seen_one.stop(), await seen_two.stop()
    await one.close()
    await two.close()

    def shape(events):
        return [(e.session, e.seq, e.kind, e.data) for e in events]

    assert shape(got_one) == shape(got_two)
    assert one.snapshot() == two.snapshot()
    await asyncio.to_thread(stop_server, paths)
    stored = await stored_transcripts(cockpit_env.home, [s["id"] for s in created])
    for session, events in stored.items():
        assert_same_as_store([e for e in got_one if e.session == session], events, session)


async def test_a_client_that_stops_reading_gets_one_resync_and_slows_nobody(
    cockpit_env, repo, open_engine, monkeypatch,
):
    """In-process server (so its buffers can be made small): one client reads nothing while the
    agents stream as fast as they can; the engine and a reading client finish regardless."""
    monkeypatch.setattr(listener, "SUBSCRIPTION_EVENTS", 200)
    monkeypatch.setattr(listener, "WRITE_HIGH_WATER", 4096)
    async with ScriptedLLMServer(streaming(words=3000, rate=0)) as sim:
        cockpit_env.write_user_config(model_config(sim.url))
        engine = await open_engine(config=load_config(), agent_factory=make_agent)
        paths = ServerPaths(cockpit_env.home)
        server = listener.CockpitServer(engine, paths)
        await server.start()
        try:
            stalled = socket.socket(socket.AF_UNIX)
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            with socket_address(paths.socket) as address:
                stalled.connect(address)
            stalled.sendall(protocol.encode(protocol.request(1, "hello", {"protocol": protocol.PROTOCOL_VERSION}))
                            + protocol.encode(protocol.request(2, "attach", {"tail": 0})))
            everything = engine.subscribe(maxsize=1_000_000)  # an in-process reader that keeps up
            await engine.create_sessions(repo, name="fast", task="go", count=4)
            await until(lambda: all(s.state.value == "idle" for s in engine.sessions.values()), "every session idle",
                        timeout=90)
            events = everything.get_nowait()
            assert sum(1 for e in events if e.kind == ev.TEXT_DELTA) >= 4 * 3000  # nothing held the engine back

            # Now read what the stalled client was sent: a beginning, then one resync, then silence.
            stalled.settimeout(1.0)
            lines = stalled.makefile("rb")
            notified = []
            while True:
                try:
                    message = json.loads(await asyncio.to_thread(lines.readline))
                except TimeoutError:
                    break
                if message.get("method") == "events":
                    notified += message["params"]["events"]
            kinds = [e["kind"] for e in notified]
            assert kinds.count(ev.RESYNC) == 1 and kinds[-1] == ev.RESYNC
            assert len(kinds) < len(events)
            # Attaching again brings it up to date.
            stalled.settimeout(10)
            lines = stalled.makefile("rb")  # the old one gave up at its time-out
            stalled.sendall(protocol.encode(protocol.request(3, "attach", {"tail": 0})))
            answer = json.loads(await asyncio.to_thread(lines.readline))
            assert sorted(s["state"] for s in answer["result"]["sessions"]) == ["idle"] * 4
            stalled.close()
        finally:
            await server.close()


async def test_a_client_whose_reader_falls_behind_reloads_and_still_matches_the_store(cockpit_env, repo):
    """The screen stops draining its queue while agents stream fast: the client attaches again on
    its own and hands over one resync; reloading from it then gives every event exactly once."""
    async with ScriptedLLMServer(streaming(words=1500, rate=0)) as sim:
        cockpit_env.write_user_config(model_config(sim.url))
        paths = await start_server(cockpit_env.home, repo)
        client = RemoteClient(socket_opener(paths), tail=100_000, max_queued=5)  # workers send text joined: few events
        await client.connect()
        try:
            created = await client.execute({"cmd": "create", "repo": str(repo), "name": "f", "task": "go", "count": 2})
            await until(lambda: all_idle(client, 2), "both sessions idle (the client's copy keeps up regardless)")
            await asyncio.sleep(1.0)  # the last events of the turns (diff stats) on their way
            events = client.subscribe().get_nowait()
            assert events[0].kind == ev.RESYNC  # what piled up was dropped for one reload
            later = events[1:]
            assert len(later) < 5 and ev.RESYNC not in {e.kind for e in later}
            views = {s["id"]: await client.transcript(s["id"], tail=100_000)
                     + [e for e in later if e.session == s["id"]] for s in created}
        finally:
            await client.close()
    await asyncio.to_thread(stop_server, paths)
    stored = await stored_transcripts(cockpit_env.home, list(views))
    for session, view in views.items():
        assert_same_as_store(view, stored[session], session)
