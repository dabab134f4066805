"""JSON-RPC 2.0 over one transport: numbered requests, answers matched to them, notifications.

One task reads the stream and handles every line in arrival order, synchronously: a response's
`on_result` hook runs before any line that came after it, which is what lets the attach answer
and the events that follow it be applied in exactly the order the server sent them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Callable
from typing import Any

from cockpit import __version__
from cockpit.client.transport import Transport
from cockpit.errors import CockpitError
from cockpit.server import protocol as wire

log = logging.getLogger("cockpit.client")

NotificationHandler = Callable[[str, dict[str, Any]], None]
ResultHook = Callable[[Any], None]


class RpcConnection:
    def __init__(self, transport: Transport, on_notification: NotificationHandler,
                 on_lost: Callable[[str], None] | None = None):
        self.transport = transport
        self._on_notification = on_notification
        self._on_lost = on_lost
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[asyncio.Future[Any], ResultHook | None]] = {}
        self._closing = False
        self.lost: str = ""  # why the connection ended, once it has
        self._reader = asyncio.create_task(self._read_loop(), name="cockpit-rpc-reader")

    @property
    def where(self) -> str:
        return self.transport.where

    @property
    def open(self) -> bool:
        return not self._reader.done()

    async def hello(self) -> dict[str, Any]:
        return await self.request("hello", {"protocol": wire.PROTOCOL_VERSION, "client": f"cockpit {__version__}"})

    async def request(self, method: str, params: dict[str, Any] | None = None,
                      on_result: ResultHook | None = None) -> Any:
        """Send one request and wait for its answer; an error answer raises a CockpitError."""
        if not self.open:
            raise CockpitError(self.lost or f"not connected to {self.where}")
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (future, on_result)
        self.transport.writer.write(wire.encode(wire.request(request_id, method, params)))
        return await future

    async def close(self) -> None:
        self._closing = True
        await self.transport.close()
        await self._reader

    async def _read_loop(self) -> None:
        reason = ""
        try:
            while line := await self.transport.reader.readline():
                self._dispatch(line)
        except (ConnectionError, ValueError) as exc:  # ValueError: a line over MAX_LINE
            reason = str(exc)
        finally:
            if not self._closing:
                await _settle(self.transport)
            failure = self.transport.failure() or reason
            self.lost = f"lost the connection to {self.where}" + (f" ({failure})" if failure else "")
            for future, _hook in self._pending.values():
                if not future.done():
                    future.set_exception(CockpitError(self.lost))
            self._pending.clear()
            if self._on_lost is not None and not self._closing:
                self._on_lost(self.lost)

    def _dispatch(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            log.warning("%s sent a line that is not JSON: %.200r", self.where, line)
            return
        if "method" in message:
            self._on_notification(message["method"], message.get("params") or {})
            return
        entry = self._pending.pop(message.get("id"), None)
        if entry is None:
            if "error" in message:  # about no request of ours (e.g. a line it could not parse)
                log.warning("%s: %s", self.where, message["error"].get("message"))
            return
        future, hook = entry
        if "error" in message:
            future.set_exception(wire.exception_from_error(message["error"], self.where))
            return
        try:
            if hook is not None:
                hook(message["result"])
        except Exception as exc:  # a malformed answer: fail that request, keep the connection
            future.set_exception(CockpitError(f"{self.where}: unexpected answer to a request: {exc!r}"))
            return
        future.set_result(message.get("result"))


async def _settle(transport: Transport) -> None:
    """Give a dying ssh a moment to exit, so its exit code and last words can be reported."""
    if transport.process is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(transport.process.wait(), 2)
            if transport.stderr_task is not None:
                await asyncio.wait_for(asyncio.shield(transport.stderr_task), 1)
