"""Issue #13.6: `cockpit --serve` on 127.0.0.1 and the other users of the machine.

textual-serve's real app with the token middleware, on a real loopback socket, fetched with a
real HTTP client; `tests/test_ui_serve_browser.py` replays the same with Chromium.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from cockpit.ui.serve_token import TokenServer, cookie_name
from serve_helpers import free_port


@pytest.fixture
async def gate(tmp_path: Path) -> AsyncIterator[tuple[TokenServer, str, Path]]:
    """A token server whose tab command appends its pid to `tabs` (one line per tab started)."""
    tabs = tmp_path / "tabs"
    port = free_port()
    token_server = TokenServer(f"echo $$ >> {shlex.quote(str(tabs))}", host="127.0.0.1", port=port, title="cockpit")
    server = TestServer(await token_server._make_app(), host="127.0.0.1", port=port)
    await server.start_server()
    try:
        yield token_server, f"127.0.0.1:{port}", tabs
    finally:
        await server.close()
        # textual-serve never waits for a tab process: let the loop reap them before it closes.
        for pid in tabs.read_text().split() if tabs.exists() else ():
            await _until_reaped(int(pid))


async def _until_reaped(pid: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, f"tab process {pid} never ended"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # the child watcher hands the exit to the loop


async def _tabs_started(tabs: Path, at_least: int) -> int:
    deadline = time.monotonic() + 30
    while (count := len(tabs.read_text().splitlines()) if tabs.exists() else 0) < at_least:
        assert time.monotonic() < deadline, f"{at_least} tab(s) expected, {count} started"
        await asyncio.sleep(0.05)
    return count


async def test_another_local_user_without_the_token_gets_403_and_starts_no_tab(gate) -> None:
    """Attack row 13.6: another user of the dev box opens http://127.0.0.1:8000/ (page, static
    files, downloads) or connects its websocket straight away, to drive the agents."""
    token_server, host, tabs = gate
    wrong = {"Cookie": f"{cookie_name(token_server.port)}=guess"}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        for path in ("/", "/?token=guess", "/static/js/textual.js", "/download/x", "/ws"):
            async with client.get(f"http://{host}{path}") as response:
                assert response.status == 403, path
                assert "open the URL it printed" in await response.text()
        async with client.get(f"http://{host}/", headers=wrong) as response:
            assert response.status == 403
        for headers in (None, wrong):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await client.ws_connect(f"ws://{host}/ws?width=80&height=24", headers=headers)
            assert refused.value.status == 403

        # The owner's tab, after the refused ones: the only tab process that ever started.
        async with client.ws_connect(f"ws://{host}/ws?token={token_server.token}") as ws:
            assert await _tabs_started(tabs, at_least=1) == 1
            await ws.close()
    assert len(tabs.read_text().splitlines()) == 1


async def test_the_printed_url_sets_a_strict_httponly_cookie_and_leaves_the_address_bar(gate) -> None:
    """Attack row 13.6: the token must not stay in the address bar (history, Referer) nor be
    readable by scripts, and another site must not ride on the cookie (SameSite=Strict)."""
    token_server, host, tabs = gate
    assert token_server.url == f"http://{host}/?token={token_server.token}"
    assert len(token_server.token) >= 40
    assert TokenServer("true", host="127.0.0.1", port=1, title="x").token != token_server.token
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.get(f"{token_server.url}&fontsize=20", allow_redirects=False) as response:
            assert response.status == 302
            assert response.headers["Location"] == "/?fontsize=20"
            cookie = response.cookies[cookie_name(token_server.port)]
            assert cookie.value == token_server.token
            assert cookie["httponly"] is True and cookie["samesite"] == "Strict" and cookie["path"] == "/"
        async with client.get(f"http://{host}/") as response:  # the cookie now
            assert response.status == 200 and "xterm" in await response.text()
        async with client.get(f"http://{host}/static/js/textual.js") as response:
            assert response.status == 200
        async with client.ws_connect(f"ws://{host}/ws?width=80&height=24") as ws:
            assert await _tabs_started(tabs, at_least=1) == 1
            await ws.close()
