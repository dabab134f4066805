"""Helpers for the server tests: a real background server, a scripted model, real clients.

The server is the real `cockpit server` process, started the way the CLI starts it; the model
is `cockpit.sim` serving over HTTP from the test's own event loop; clients connect to the real
socket. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cockpit.client.remote import RemoteClient, socket_opener
from cockpit.core import events as ev
from cockpit.core.events import Event
from cockpit.server.daemon import ensure_server
from cockpit.server.lock import lock_holder
from cockpit.server.paths import ServerPaths


def model_config(url: str, extra: str = "") -> str:
    """User config TOML: the default model is the scripted server at `url`."""
    return (f'[models.default]\nmodel = "openai/cockpit-sim"\napi_base = "{url}"\n'
            f"retry_base_s = 0.05\nstall_timeout_s = 20\n{extra}")


def streaming(words: int, rate: float, then: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A scenario whose first answer streams `words` words at `rate` tokens per second."""
    text = " ".join(f"w{i}" for i in range(words))
    return {"name": "stream", "final": "Done.", "steps": [{"text": text, "tokens_per_s": rate}, *(then or [])]}


async def start_server(home: Path, repo: Path | str = ".") -> ServerPaths:
    """Start the background server for `home` as the CLI does (detached process) and wait for it."""
    paths = ServerPaths(home)
    await asyncio.to_thread(ensure_server, paths, repo)
    return paths


def server_pid(paths: ServerPaths) -> int:
    holder = lock_holder(paths)
    assert holder is not None and holder.role == "server", f"no server holds {paths.lock}"
    return holder.pid


async def attached(paths: ServerPaths, **options: Any) -> RemoteClient:
    client = RemoteClient(socket_opener(paths), **options)
    await client.connect()
    return client


class Recorder:
    """Drains a client's feed in the background into one list (what a screen would receive)."""

    def __init__(self, client: Any):
        self.client = client
        self.events: list[Event] = []
        self._feed = client.subscribe()
        self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        while True:
            self.events.extend(self._feed.get_nowait())
            await asyncio.sleep(0.01)

    async def stop(self) -> list[Event]:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self.events.extend(self._feed.get_nowait())
        return self.events

    def count(self, kind: str) -> int:
        return sum(1 for e in self.events if e.kind == kind)


async def until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def quiet(recorder: Recorder, seconds: float = 1.0, timeout: float = 60.0) -> None:
    """Wait until the recorder has received nothing new for `seconds`."""
    deadline = time.monotonic() + timeout
    seen, since = -1, time.monotonic()
    while time.monotonic() - since < seconds:
        assert time.monotonic() < deadline, "events never stopped"
        if len(recorder.events) != seen:
            seen, since = len(recorder.events), time.monotonic()
        await asyncio.sleep(0.05)


def all_idle(client: Any, count: int) -> bool:
    sessions = client.snapshot()
    return len(sessions) == count and all(s["state"] in ("idle", "error") for s in sessions)


def coverage(events: Iterable[Event]) -> list[int]:
    """The seqs a list of events stands for, in order: a stored text run covers the seqs of the
    deltas it was coalesced from. Losing an event leaves a gap; getting one twice repeats a seq."""
    seqs: list[int] = []
    for event in events:
        first = event.data.get("first_seq", event.seq) if event.kind in ev.COALESCED.values() else event.seq
        seqs.extend(range(first, event.seq + 1))
    return seqs


def text_of(events: Iterable[Event]) -> str:
    kinds = {ev.TEXT, ev.TEXT_DELTA}
    return "".join(e.data.get("text", "") for e in events if e.kind in kinds)


def discrete(events: Iterable[Event]) -> list[tuple[int, str, dict[str, Any]]]:
    """Every event that is not streamed text, as (seq, kind, data)."""
    streamed = {*ev.COALESCED, *ev.COALESCED.values()}
    return [(e.seq, e.kind, e.data) for e in events if e.kind not in streamed]


def assert_same_as_store(seen: list[Event], stored: list[Event], session: str) -> None:
    """What a client saw of a session is exactly the stored transcript: same seqs once each,
    same text, same discrete events."""
    got, want = coverage(seen), coverage(stored)
    assert got == sorted(set(got)), f"{session}: an event arrived twice or out of order"
    assert got == want, f"{session}: seqs differ from the store (lost events?)"
    assert text_of(seen) == text_of(stored), f"{session}: streamed text differs from the store"
    assert discrete(seen) == discrete(stored), f"{session}: events differ from the store"


def cockpit(*args: str, cwd: Path | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """The real `cockpit` command line, as a subprocess with the test's environment."""
    return subprocess.run([sys.executable, "-m", "cockpit", *args], cwd=cwd, env=dict(os.environ),
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


async def acockpit(*args: str, cwd: Path | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """`cockpit(...)` off the event loop (the scripted model is served from that loop)."""
    return await asyncio.to_thread(cockpit, *args, cwd=cwd, timeout=timeout)
