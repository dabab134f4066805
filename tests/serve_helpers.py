"""`cockpit --serve` as a real subprocess on a free loopback port, for the tests that drive it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

_URL = re.compile(rb"(http://127\.0\.0\.1:\d+/)\?token=([A-Za-z0-9_-]+)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class Served:
    base: str  # http://127.0.0.1:<port>/
    token: str
    log: Path

    @property
    def url(self) -> str:
        """The URL `cockpit --serve` printed: the page, with the token."""
        return f"{self.base}?token={self.token}"

    @property
    def ws(self) -> str:
        return self.base.replace("http://", "ws://") + "ws"

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@contextlib.asynccontextmanager
async def serving(repo: Path, log: Path, timeout: float = 30) -> AsyncIterator[Served]:
    """Start `cockpit --repo REPO --serve`, wait for the URL it prints, stop it (and its tabs) after."""
    port = free_port()
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "cockpit", "--repo", str(repo), "--serve", "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=os.environ.copy(), start_new_session=True,  # its own group: its tabs' processes too
        )
        try:
            deadline = time.monotonic() + timeout
            while not (found := _URL.search(log.read_bytes())):
                assert server.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
                await asyncio.sleep(0.1)
            served = Served(base=found[1].decode(), token=found[2].decode(), log=log)
            assert served.base == f"http://127.0.0.1:{port}/"
            while not _accepts(port):  # the URL is printed on startup, just before the socket listens
                assert server.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
                await asyncio.sleep(0.1)
            yield served
        finally:
            server.send_signal(signal.SIGINT)
            try:
                await asyncio.to_thread(server.wait, 10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)  # any tab process left behind
