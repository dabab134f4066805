"""Hostile clients of a cockpit server, for the server bench and the attack replays (issue #13.4).

Each attack is what a script on the same machine could do to a real server over its real
socket: send huge request lines, ask for transcripts and never read the answers, attach again
and again to sessions whose scrollback holds a huge event. The server's memory is read from
/proc (`VmHWM`: its peak resident set since it started).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from cockpit.server import protocol as wire
from cockpit.server.paths import ServerPaths, socket_address

MB = 1024 * 1024
SESSION = "s0001"


def rss_mb(pid: int, field: str = "VmHWM") -> float:
    """The server's resident memory (`VmHWM`: its peak so far; `VmRSS`: now) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no {field} for pid {pid}")


class Wire:
    """A raw protocol client on a real socket, as a script would write one."""

    def __init__(self, paths: ServerPaths, *, hello: bool = True):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with socket_address(paths.socket) as address:
            self.sock.connect(address)
        self.lines = self.sock.makefile("rb")
        self._ids = itertools.count(1)
        if hello:
            assert "result" in self.call("hello", protocol=wire.PROTOCOL_VERSION), "hello refused"

    def send(self, method: str, **params: Any) -> int:
        request_id = next(self._ids)
        self.sock.sendall(wire.encode(wire.request(request_id, method, params)))
        return request_id

    def read(self) -> tuple[dict[str, Any], int]:
        """The next message and its size on the wire."""
        line = self.lines.readline()
        if not line:
            raise ConnectionError("the server closed the connection")
        return json.loads(line), len(line)

    def answer(self, request_id: int | None) -> dict[str, Any]:
        """The answer to `request_id` (None: an error about no request), skipping events."""
        while True:
            message, _size = self.read()
            if "method" not in message and message.get("id") == request_id:
                return message

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        return self.answer(self.send(method, **params))

    def close(self) -> None:
        self.lines.close()
        self.sock.close()


# -- a store with huge transcripts --------------------------------------------------------------


def seed_store(home: Path, repo: Path, *, transcript_mb: int = 60, huge_row_mb: int = 60) -> None:
    """A cockpit home whose one session has a `transcript_mb` transcript of big tool outputs and,
    last, one `huge_row_mb` event as a store written before events were capped holds it."""
    asyncio.run(_seed(home, repo, transcript_mb))
    if huge_row_mb:
        db = sqlite3.connect(home / "cockpit.db")
        with db:
            (last,) = db.execute("SELECT MAX(seq) FROM events WHERE session = ?", (SESSION,)).fetchone()
            data = json.dumps({"id": "huge", "ok": True, "output": "y" * (huge_row_mb * MB)})
            db.execute("INSERT INTO events (session, seq, ts, kind, data) VALUES (?, ?, ?, ?, ?)",
                       (SESSION, last + 1, time.time(), "tool.result", data))
        db.close()


async def _seed(home: Path, repo: Path, transcript_mb: int) -> None:
    from cockpit.core.events import Event
    from cockpit.core.model import Session
    from cockpit.core.states import State
    from cockpit.core.store import Store
    from cockpit.core.textcap import EVENT_TEXT_MAX

    store = await Store.open(home / "cockpit.db")
    try:
        added = await store.add_repo(str(repo), "repo")
        await store.save_session(Session(
            id=SESSION, number=1, name="big", slug="big", repo_id=added.id, branch="cockpit/big",
            base_ref="main", base_commit="0" * 40, worktree=str(home / "wt" / "big"), state=State.IDLE))
        output = "x" * (EVENT_TEXT_MAX - 100)
        count = transcript_mb * MB // len(output)
        await store.append_many(Event("tool.result", SESSION, {"id": f"c{i}", "ok": True, "output": output}, i + 1)
                                for i in range(count))
    finally:
        await store.close()


# -- the attacks ------------------------------------------------------------------------------------


def huge_lines(paths: ServerPaths, clients: int = 8, size_mb: int = 200) -> list[list[dict[str, Any]]]:
    """`clients` connections at once each send one `size_mb` line, then a real request; what
    each got back (the answer about the long line, then the real answer)."""
    answers: list[list[dict[str, Any]]] = [[] for _ in range(clients)]
    chunk = b"[" * MB

    def one(index: int) -> None:
        conn = Wire(paths)
        try:
            for _ in range(size_mb):
                conn.sock.sendall(chunk)
            conn.sock.sendall(b"\n")
            answers[index].append(conn.answer(None))
            answers[index].append(conn.call("server.status"))
        finally:
            conn.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def never_reads(paths: ServerPaths, asks: int = 20, settle_s: float = 2.0) -> tuple[Wire, list[int]]:
    """A connection asks for the whole transcript `asks` times and does not read for `settle_s`
    (the server must stop reading it instead of piling answers up); returns it, still open, and
    the ids it asked with."""
    conn = Wire(paths)
    conn.sock.settimeout(60)
    ids = []
    for _ in range(asks):
        ids.append(conn.send("transcript", session=SESSION))
    time.sleep(settle_s)
    return conn, ids


def reattach(paths: ServerPaths, times: int = 20) -> list[int]:
    """Attach `times` over one connection (scrollback of a session holding a huge event); the
    size of each answer."""
    conn = Wire(paths)
    sizes = []
    try:
        for _ in range(times):
            request_id = conn.send("attach", tail=400)
            while True:
                message, size = conn.read()
                if message.get("id") == request_id:
                    assert "result" in message, message
                    sizes.append(size)
                    break
    finally:
        conn.close()
    return sizes
