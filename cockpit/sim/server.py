"""A local OpenAI-compatible HTTP server that plays scripted scenarios.

Tests, benchmarks and the demo point litellm at it (`model="openai/<anything>"`,
`api_base=server.url`, any api_key), so they run litellm's real HTTP and streaming path with no
key and no network. Every conversation keeps its own cursor in the scenario, so one scenario can
serve many concurrent sessions; see `cockpit.sim.facts.conversation_key` for how requests are
told apart.

Each SSE chunk carries the server's send time as the top-level float field `x_sent_at`
(`wire.TIMESTAMP_FIELD`) for latency measurements.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from cockpit.sim.facts import Facts
from cockpit.sim.scenario import Cursor, Scenario, ScenarioLike, Step, as_scenario
from cockpit.sim.wire import DONE, MALFORMED, Reply, StreamChunks, error_body, stamp

_REQUESTS_KEPT = 1000
_MAX_CATCH_UP_S = 0.25  # a stream this far behind its schedule drops the backlog instead of bursting


class ScriptedLLMServer:
    """`async with ScriptedLLMServer(scenario) as server:` then call litellm with `server.url`."""

    def __init__(self, scenario: ScenarioLike | None = None, *, host: str = "127.0.0.1", port: int = 0):
        self.scenario = as_scenario(scenario) if scenario is not None else Scenario()
        self.host = host
        self.port = port
        self.url = ""
        #: The latest request bodies and their headers, oldest first, for tests to inspect.
        self.requests: deque[dict[str, Any]] = deque(maxlen=_REQUESTS_KEPT)
        self.request_headers: deque[Mapping[str, str]] = deque(maxlen=_REQUESTS_KEPT)
        self._session_scenarios: dict[str, Scenario] = {}
        self._cursors: dict[str, Cursor] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None

    # -- scripting ----------------------------------------------------------------------------

    def set_scenario(self, scenario: ScenarioLike, session: str | None = None) -> None:
        """Replace the default scenario, or give one session its own; its cursor restarts.

        Plain attribute and dict stores, so this is safe from another thread while serving.
        """
        resolved = as_scenario(scenario)
        if session is None:
            self.scenario = resolved
        else:
            self._session_scenarios[session] = resolved

    def reset(self) -> None:
        """Forget every cursor and recorded request: all conversations start the script over."""
        self._cursors.clear()
        self.requests.clear()
        self.request_headers.clear()

    def _next_step(self, facts: Facts) -> tuple[Step, Scenario]:
        scenario = self._session_scenarios.get(facts.session, self.scenario)
        cursor = self._cursors.get(facts.session)
        if cursor is None or cursor.scenario is not scenario:
            cursor = self._cursors[facts.session] = Cursor(scenario)
        return cursor.next_step(facts), scenario

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> str:
        """Listen (port 0 picks a free one) and return the base URL, ending in `/v1`."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        # handler_cancellation: a stalled reply stops when its client gives up.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{self.host}:{self.port}/v1"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ScriptedLLMServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def run_in_thread(self) -> tuple[str, Callable[[], None]]:
        """Serve from a daemon thread with its own event loop; return `(url, stop)`.

        For benchmarks and the demo, whose own loop should not also carry the server's work.
        `stop()` waits for the thread to end.
        """
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # raised again in the caller's thread
                failure.append(exc)
                loop.close()
                return
            finally:
                started.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        thread = threading.Thread(target=serve, name="scripted-llm-server", daemon=True)
        thread.start()
        started.wait()
        if failure:
            raise failure[0]

        def stop() -> None:
            if thread.is_alive():
                loop.call_soon_threadsafe(loop.stop)
                thread.join()

        return self.url, stop

    # -- HTTP ---------------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": self.scenario.name, "object": "model", "created": 0, "owned_by": "cockpit-sim"}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return web.json_response(error_body(400, "the body must be a JSON object with 'messages'"), status=400)
        self.requests.append(body)
        self.request_headers.append(request.headers.copy())  # names case-insensitive
        facts = Facts.of(body, request.headers)
        step, scenario = self._next_step(facts)
        if step.status:
            await asyncio.sleep(step.stall)
            return _error_response(step)
        reply = Reply.render(step, facts, next(self._ids), str(body.get("model") or "sim"))
        rate = scenario.tokens_per_s if step.tokens_per_s is None else step.tokens_per_s
        streamed = bool(body.get("stream"))
        options = body.get("stream_options") or {}
        chunks = StreamChunks.of(reply, include_usage=streamed and bool(options.get("include_usage")))
        if streamed:
            return await _stream(request, step, chunks, rate)
        return await _whole(request, step, reply, len(chunks.deltas) / rate if rate > 0 else 0.0)


def _error_response(step: Step) -> web.Response:
    headers = {}
    if step.status == 429:
        headers = {"Retry-After": str(math.ceil(step.retry_after)),
                   "retry-after-ms": str(int(step.retry_after * 1000))}
    return web.json_response(error_body(step.status, step.error_message), status=step.status, headers=headers)


async def _whole(request: web.Request, step: Step, reply: Reply, generation_s: float) -> web.StreamResponse:
    """A non-streamed answer, after as long as streaming it would have taken."""
    await asyncio.sleep(step.stall + generation_s)
    if step.disconnect is not None:
        _drop(request)
    if step.malformed_chunk is not None:
        return web.Response(text="{this is not json", content_type="application/json")
    return web.Response(text=json.dumps(reply.completion_body()), content_type="application/json")


async def _stream(request: web.Request, step: Step, chunks: StreamChunks, rate: float) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    # The client may go away (a timeout, an interrupt): then nothing is left to answer.
    with contextlib.suppress(ConnectionResetError):
        await _send(request, response, step, chunks, rate)
    return response


async def _send(request: web.Request, response: web.StreamResponse, step: Step, chunks: StreamChunks,
                rate: float) -> None:
    await response.prepare(request)
    await response.write(stamp(chunks.opening))
    if step.stall:
        await asyncio.sleep(step.stall)
    paced = chunks.deltas[:step.disconnect]
    if step.malformed_chunk is not None:
        paced.insert(step.malformed_chunk, MALFORMED)
    loop = asyncio.get_running_loop()
    interval = 1.0 / rate if rate > 0 else 0.0
    due = loop.time()
    for chunk in paced:
        if interval:
            # Sleep until the chunk's due time, not for one interval, so small lateness is made up
            # and the rate stays exact; after a long hiccup start afresh rather than burst.
            now = loop.time()
            due = max(due + interval, now - _MAX_CATCH_UP_S)
            delay = due - now
            if delay > 0:
                await asyncio.sleep(delay)
        await response.write(stamp(chunk))
    if step.disconnect is not None:
        _drop(request)
        return
    for chunk in chunks.closing:
        await response.write(stamp(chunk))
    await response.write(DONE)
    await response.write_eof()


def _drop(request: web.Request) -> None:
    """Close the connection without finishing the response, like a crashed upstream."""
    if request.transport is not None:
        request.transport.abort()
