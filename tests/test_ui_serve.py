"""`cockpit --serve`: a real textual-serve server on a free loopback port, fetched over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from cockpit.cli import main
from cockpit.ui.serve import is_loopback, serve_command


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                assert response.status == 200
                return response.read().decode("utf-8")
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_serve_command_is_this_cockpit_on_the_same_repo(tmp_path: Path) -> None:
    command = serve_command(tmp_path / "my repo")
    assert command == f"{sys.executable} -m cockpit --repo '{(tmp_path / 'my repo').resolve()}'"
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("devbox.example")


def test_serve_cannot_be_combined_with_a_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--serve", "ls"]) == 2
    assert "cannot be combined with 'ls'" in capsys.readouterr().err


@pytest.mark.slow
async def test_serve_shows_the_page_and_runs_the_cockpit_in_a_tab(repo: Path, tmp_path: Path) -> None:
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "cockpit", "--repo", str(repo), "--serve", "--port", str(port)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        env=os.environ.copy(), start_new_session=True,  # its own group: its tabs' processes too
    )
    try:
        page = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/", time.monotonic() + 30)
        assert "<div>cockpit</div>" in page and "xterm" in page
        assert f"ws://127.0.0.1:{port}/ws" in page

        # A tab: the websocket starts `cockpit --repo …` and relays its screen.
        seen = b""
        async with aiohttp.ClientSession() as client:
            async with client.ws_connect(f"ws://127.0.0.1:{port}/ws?width=100&height=30") as ws:
                deadline = time.monotonic() + 30
                while b"no agents" not in seen and time.monotonic() < deadline:
                    with contextlib.suppress(asyncio.TimeoutError):
                        message = await ws.receive(timeout=1)
                        if message.type == aiohttp.WSMsgType.BINARY:
                            seen += message.data
                        elif message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                            break
        assert b"no agents" in seen, (tmp_path / "serve.log").read_text(errors="replace")[-2000:]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)  # any tab process left behind
        log.close()
