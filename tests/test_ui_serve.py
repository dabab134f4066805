"""`cockpit --serve`: a real textual-serve server on a free loopback port, fetched over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from cockpit.cli import main
from cockpit.ui.serve import is_loopback, serve_command
from serve_helpers import serving


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
    async with serving(repo, tmp_path / "serve.log") as served:
        # unsafe: aiohttp keeps no cookies of IP-address hosts otherwise.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
            # The printed URL: the page, with the token; the cookie it sets lets the page through.
            async with client.get(served.url) as response:
                assert response.status == 200 and response.url.query.get("token") is None
                page = await response.text()
            assert "<div>cockpit</div>" in page and "xterm" in page
            assert served.ws in page

            # A tab: the websocket starts `cockpit --repo …` and relays its screen.
            seen = b""
            async with client.ws_connect(f"{served.ws}?width=100&height=30") as ws:
                deadline = time.monotonic() + 30
                while b"no agents" not in seen and time.monotonic() < deadline:
                    with contextlib.suppress(asyncio.TimeoutError):
                        message = await ws.receive(timeout=1)
                        if message.type == aiohttp.WSMsgType.BINARY:
                            seen += message.data
                        elif message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                            break
        assert b"no agents" in seen, served.log_tail()
