"""Calls and notices between the engine and an agent worker, over one socket, in batches.

Both ends speak the same JSON-lines framing as the cockpit server, except that a line holds a
JSON *list* of messages: everything one side had to say since its last write. A streaming
agent produces a token every few milliseconds; writing each as its own line would make the
engine wake, read and decode once per token. Instead ordinary notices wait up to `batch_s`
(~30 ms) and go out together, and consecutive text deltas of one session inside a batch are
joined into one. Calls, replies and urgent notices (an approval answer, a key for a terminal)
flush at once, after what was already waiting, so order is kept per direction.

Messages:
- `{"m": method, "s": session, "a": {...}}` a notice (no answer);
- `{"id": n, "m": method, "s": session, "a": {...}}` a call; the other side answers
  `{"re": n, "v": value}`, `{"re": n, "err": text}` (a `CockpitError` with that text) or
  `{"re": n, "cancelled": true}`; a caller that stops waiting sends `{"cancel": n}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from cockpit.errors import CockpitError
from cockpit.server.lines import TOO_LONG, LineReader

log = logging.getLogger(__name__)

#: A batch line may carry a whole transcript (an agent's history): generous, but bounded.
LINE_LIMIT = 512 * 1024 * 1024
#: Notices kinds whose `text` runs of one session are joined while they wait in a batch.
JOINABLE = frozenset({"text.delta", "thought.delta"})

Handler = Callable[..., Any]


class ChannelClosed(CockpitError):
    """The other side went away (its process ended, or the socket closed)."""


class Channel:
    """One end of the engine↔worker socket: `call()`, `notify()`, and handlers for the other's."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 handlers: dict[str, Handler], *, batch_s: float = 0.03):
        self._lines = LineReader(reader, LINE_LIMIT)
        self._writer = writer
        self._handlers = handlers
        self._batch_s = batch_s
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}  # our calls, by id
        self._serving: dict[int, asyncio.Task[None]] = {}  # their calls we are answering
        self._noticing: set[asyncio.Future[Any]] = set()  # their async notices still running
        self._pending: list[dict[str, Any]] = []
        self._joinable: dict[tuple[str, str], dict[str, Any]] = {}  # open text runs in `_pending`
        self._flush_handle: asyncio.TimerHandle | None = None
        self.closed = False
        self.messages_in = self.lines_in = 0  # for the benches: how much batching saved

    # -- sending -----------------------------------------------------------------------------------

    def notify(self, method: str, session: str = "", /, *, urgent: bool = False, **args: Any) -> None:
        """Say something that needs no answer; `urgent` writes it (and what waits) now."""
        if self.closed:
            return
        kind = args.get("kind")
        if method == "emit" and kind in JOINABLE and not urgent:
            run = self._joinable.get((session, kind))
            if run is not None:
                run["a"]["data"]["text"] += args["data"]["text"]
                return
            message = {"m": method, "s": session, "a": {"kind": kind, "data": dict(args["data"])}}
            self._queue(message)
            self._joinable[(session, kind)] = message
        else:
            self._queue({"m": method, "s": session, "a": args})
        if urgent:
            self._flush()

    async def call(self, method: str, session: str = "", /, **args: Any) -> Any:
        """Ask the other side and wait for its answer; its `CockpitError`s are raised here."""
        if self.closed:
            raise ChannelClosed("the agent worker is gone")
        call_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[call_id] = future
        self._queue({"id": call_id, "m": method, "s": session, "a": args})
        self._flush()
        try:
            return await future
        except asyncio.CancelledError:
            if not future.done() and not self.closed:  # we gave up: the other side may stop too
                self._queue({"cancel": call_id})
                self._flush()
            raise
        finally:
            self._waiting.pop(call_id, None)

    def _queue(self, message: dict[str, Any]) -> None:
        session = message.get("s")
        if session is not None and self._joinable:  # a run ends when anything else of its session follows
            for kind in JOINABLE:
                self._joinable.pop((session, kind), None)
        self._pending.append(message)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(self._batch_s, self._flush)

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._pending or self.closed:
            return
        batch, self._pending = self._pending, []
        self._joinable.clear()
        try:
            self._writer.write(json.dumps(batch, separators=(",", ":")).encode() + b"\n")
        except (ConnectionError, RuntimeError):  # the other side is gone: `run()` sees the end
            pass

    # -- receiving ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Read and handle the other side's messages until it goes away; then fail what waits."""
        try:
            while True:
                line = await self._lines.next()
                if line is None:
                    break
                if line is TOO_LONG:
                    log.warning("dropped a batch over %d bytes from the other side", LINE_LIMIT)
                    continue
                try:
                    batch = json.loads(line)
                except ValueError:
                    log.warning("dropped a batch that is not JSON: %.80r", line)
                    continue
                self.lines_in += 1
                for message in batch if isinstance(batch, list) else ():
                    self.messages_in += 1
                    self._handle(message)
        except (ConnectionError, OSError):
            pass
        finally:
            self._close()

    def _handle(self, message: dict[str, Any]) -> None:
        if "re" in message:
            future = self._waiting.get(message["re"])
            if future is None or future.done():
                return
            if message.get("cancelled"):
                future.cancel()
            elif "err" in message:
                future.set_exception(CockpitError(message["err"]))
            else:
                future.set_result(message.get("v"))
        elif "cancel" in message:
            task = self._serving.get(message["cancel"])
            if task is not None:
                task.cancel()
        elif "id" in message:
            task = asyncio.get_running_loop().create_task(self._answer(message))
            self._serving[message["id"]] = task
        else:
            handler = self._handlers.get(message.get("m", ""))
            if handler is None:
                log.warning("no handler for notice %r", message.get("m"))
                return
            try:
                result = handler(message.get("s", ""), **message.get("a", {}))
            except Exception:  # one bad notice must not stop the channel
                log.exception("notice %r failed", message.get("m"))
                return
            if isinstance(result, Awaitable):  # started in arrival order; nobody waits for it
                task = asyncio.ensure_future(result)
                self._noticing.add(task)
                task.add_done_callback(self._notice_done)

    async def _answer(self, message: dict[str, Any]) -> None:
        call_id = message["id"]
        reply: dict[str, Any] = {"re": call_id}
        try:
            handler = self._handlers.get(message.get("m", ""))
            if handler is None:
                raise CockpitError(f"unknown call {message.get('m')!r}")
            result = handler(message.get("s", ""), **message.get("a", {}))
            reply["v"] = await result if isinstance(result, Awaitable) else result
        except asyncio.CancelledError:
            reply["cancelled"] = True
        except CockpitError as exc:
            reply["err"] = str(exc)
        except Exception as exc:
            log.exception("call %r failed", message.get("m"))
            reply["err"] = f"{type(exc).__name__}: {exc}"
        finally:
            self._serving.pop(call_id, None)
        if not self.closed:
            self._queue(reply)
            self._flush()

    def _notice_done(self, task: asyncio.Future[Any]) -> None:
        self._noticing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("notice failed: %s", task.exception())

    def _close(self) -> None:
        self.closed = True
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(ChannelClosed("the agent worker is gone"))
        for task in [*self._serving.values(), *self._noticing]:
            task.cancel()
        with contextlib.suppress(Exception):
            self._writer.close()

    async def close(self) -> None:
        """Write what waits and close our end (the other side's `run()` then ends)."""
        self._flush()
        with contextlib.suppress(Exception):
            await self._writer.drain()
        self._close()
