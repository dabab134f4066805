"""Headless Chromium driven over the DevTools protocol, with nothing but aiohttp's websocket client.

The browser is started with `--remote-debugging-port=0` in a new profile directory and writes
the port it chose to `DevToolsActivePort` there. One websocket to the browser carries everything:
a page is a target attached in "flat" mode, so its commands and events go over the same socket,
tagged with its session id. Events are kept in order; tests poll them (and screenshots) with
deadlines instead of sleeping for fixed times.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import itertools
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

T = TypeVar("T")

#: What works as root in a container without a display, GPU or network (Debian's chromium).
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-port=0",
)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return None


async def poll(probe: Callable[[], Awaitable[T | None] | T | None], what: str, timeout: float = 60.0,
               interval: float = 0.1) -> T:
    """Call `probe` (plain or async) until it returns something true; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(interval)


@dataclass
class Browser:
    socket: aiohttp.ClientWebSocketResponse
    events: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)  # method, session, params
    _pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def read(self) -> None:
        """Dispatch answers to their callers and keep events; runs for the browser's lifetime."""
        async for message in self.socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = message.json()
            if "id" in data:
                future = self._pending.pop(data["id"])
                if "error" in data:
                    future.set_exception(AssertionError(f"DevTools error: {data['error']}"))
                else:
                    future.set_result(data.get("result", {}))
            else:
                self.events.append((data["method"], data.get("sessionId"), data.get("params", {})))
        for future in self._pending.values():
            future.set_exception(AssertionError("the browser closed its DevTools socket"))

    async def send(self, method: str, session: str | None = None, timeout: float = 60.0, **params: Any) -> dict[str, Any]:
        number = next(self._ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        self._pending[number] = asyncio.get_running_loop().create_future()
        await self.socket.send_json(message)
        return await asyncio.wait_for(self._pending[number], timeout)

    async def new_page(self, width: int, height: int) -> Page:
        target = await self.send("Target.createTarget", url="about:blank")
        attached = await self.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        page = Page(self, attached["sessionId"])
        for domain in ("Page", "Network", "Runtime"):
            await page.send(f"{domain}.enable")
        await page.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                        deviceScaleFactor=1, mobile=False)
        return page


@dataclass
class Page:
    browser: Browser
    session: str

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        return await self.browser.send(method, self.session, **params)

    def events(self, method: str) -> list[dict[str, Any]]:
        return [params for name, session, params in self.browser.events if name == method and session == self.session]

    async def navigate(self, url: str) -> None:
        """Go to `url` and wait for its load event."""
        loaded = len(self.events("Page.loadEventFired"))
        await self.send("Page.navigate", url=url)
        await poll(lambda: len(self.events("Page.loadEventFired")) > loaded, f"{url} to load")

    async def evaluate(self, expression: str) -> Any:
        answer = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in answer, answer["exceptionDetails"]
        return answer["result"].get("value")

    async def screenshot(self) -> bytes:
        return base64.b64decode((await self.send("Page.captureScreenshot", format="png"))["data"])

    async def press(self, key: str, code: str, key_code: int, shift: bool = False) -> None:
        """A real key press (down with its text, then up), as the keyboard would send it."""
        modifiers = 8 if shift else 0
        await self.send("Input.dispatchKeyEvent", type="keyDown", key=key, code=code, text=key,
                        unmodifiedText=key, windowsVirtualKeyCode=key_code, modifiers=modifiers)
        await self.send("Input.dispatchKeyEvent", type="keyUp", key=key, code=code,
                        windowsVirtualKeyCode=key_code, modifiers=modifiers)

    def websocket_text(self, direction: str = "Received") -> bytes:
        """All websocket frames the page received (or "Sent"), payloads decoded, concatenated."""
        chunks = []
        for params in self.events(f"Network.webSocketFrame{direction}"):
            response = params["response"]
            payload = response["payloadData"]
            chunks.append(base64.b64decode(payload) if response["opcode"] == 2 else payload.encode())
        return b"".join(chunks)


@contextlib.asynccontextmanager
async def chromium(executable: str, workdir: Path) -> AsyncIterator[Browser]:
    """A headless Chromium with a new profile under `workdir`; killed (with its children) after."""
    profile = workdir / "chromium-profile"
    profile.mkdir(parents=True)
    port_file = profile / "DevToolsActivePort"
    with (workdir / "chromium.log").open("wb") as log:
        process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            async def active_port() -> list[str] | None:
                assert process.poll() is None, (workdir / "chromium.log").read_text(errors="replace")[-2000:]
                lines = port_file.read_text().splitlines() if port_file.exists() else []
                return lines if len(lines) == 2 else None

            port, path = await poll(active_port, "Chromium's DevToolsActivePort", timeout=60)
            async with aiohttp.ClientSession() as client:
                # max_msg_size=0: screenshots come back as one large message.
                async with client.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0) as socket:
                    browser = Browser(socket)
                    reader = asyncio.create_task(browser.read())
                    try:
                        yield browser
                    finally:
                        with contextlib.suppress(Exception):
                            await browser.send("Browser.close", timeout=5)
                        reader.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await reader
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
