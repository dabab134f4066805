"""The direct OpenAI-wire client on what real servers send that the scripted one does not:
CRLF line ends, keep-alive comments, an error inside a 200 stream, vLLM's `reasoning` field and
`finish_reason: abort`, lines longer than aiohttp's 64 KiB line limit, error bodies in other shapes.
Each test serves the bytes from a real aiohttp server on loopback.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from cockpit.agents.llm_client import FatalLLMError, TransientLLMError, stream_completion
from cockpit.config import ModelConfig
from cockpit.sim import ScriptedLLMServer

Serve = Callable[[bytes, int, str], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """`await serve(body, status, content_type)` answers every chat request with those bytes; returns api_base."""
    runners: list[web.AppRunner] = []

    async def start(body: bytes, status: int = 200, content_type: str = "text/event-stream") -> str:
        async def chat(request: web.Request) -> web.Response:
            return web.Response(body=body, status=status, content_type=content_type)

        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/v1"  # type: ignore[union-attr]

    yield start
    for runner in runners:
        await runner.cleanup()


def sse(*chunks: dict, end: str = "\n\n", done: bool = True) -> bytes:
    events = [f"data: {json.dumps(c)}{end}" for c in chunks] + ([f"data: [DONE]{end}"] if done else [])
    return "".join(events).encode()


def delta(**fields: object) -> dict:
    return {"choices": [{"index": 0, "delta": fields, "finish_reason": None}]}


async def complete(api_base: str):
    text: list[str] = []
    thoughts: list[str] = []
    config = ModelConfig(model="openai/local", api_base=api_base, stall_timeout_s=5)
    completion = await stream_completion(config, [{"role": "user", "content": "hi"}], [],
                                         on_text=text.append, on_thought=thoughts.append, headers={})
    return completion, text, thoughts


async def test_crlf_comments_and_vllms_reasoning_field(serve):
    body = b": keep-alive\r\n\r\n" + sse(delta(reasoning="Thinking."), delta(content="Hello"),
                                        delta(content=" there"),
                                        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                                         "usage": {"prompt_tokens": 5, "completion_tokens": 2}}, end="\r\n\r\n")
    completion, text, thoughts = await complete(await serve(body))
    assert (completion.text, text, thoughts) == ("Hello there", ["Hello", " there"], ["Thinking."])
    assert completion.finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (5, 2)


async def test_a_stream_that_ends_without_done_keeps_what_came(serve):
    completion, _, _ = await complete(await serve(sse(delta(content="all of it"), done=False)))
    assert completion.text == "all of it"


async def test_an_error_inside_a_200_stream_takes_its_code_as_the_status(serve):
    body = sse(delta(content="partial"), {"error": {"message": "context length exceeded", "code": 400}})
    with pytest.raises(FatalLLMError, match="^BadRequestError 400: context length exceeded$"):
        await complete(await serve(body))
    with pytest.raises(TransientLLMError, match="^InternalServerError 500: engine died$"):
        await complete(await serve(sse({"error": {"message": "engine died"}})))


async def test_an_aborted_generation_is_transient(serve):
    body = sse({"choices": [{"index": 0, "delta": {}, "finish_reason": "abort"}]})
    with pytest.raises(TransientLLMError, match="aborted"):
        await complete(await serve(body))


async def test_a_chunk_of_the_wrong_shape_is_transient_not_a_traceback(serve):
    with pytest.raises(TransientLLMError, match="malformed chunk"):
        await complete(await serve(sse({"choices": ["not a choice"]})))
    with pytest.raises(TransientLLMError, match="malformed chunk"):
        await complete(await serve(b"data: [1, 2]\n\n"))


@pytest.mark.parametrize(("body", "status", "kind", "message"), [
    (b'{"detail": "model not found"}', 404, FatalLLMError, "NotFoundError 404: model not found"),  # FastAPI
    (b'{"object": "error", "message": "bad params"}', 400, FatalLLMError, "BadRequestError 400: bad params"),  # vLLM
    (b"upstream timed out", 504, TransientLLMError, "InternalServerError 504: upstream timed out"),
    (b"", 502, TransientLLMError, "BadGatewayError 502: Bad Gateway"),
])
async def test_error_bodies_in_other_shapes_are_read_for_the_servers_words(serve, body, status, kind, message):
    with pytest.raises(kind) as raised:
        await complete(await serve(body, status, "application/json"))
    assert str(raised.value) == message


async def test_a_chunk_longer_than_aiohttps_line_limit_arrives_whole():
    word = "x" * 200_000  # one "token" of 200 KB: one SSE line, far beyond 64 KiB
    async with ScriptedLLMServer({"steps": [{"text": f"start {word} end"}]}) as server:
        completion, text, _ = await complete(server.url)
    assert completion.text == f"start {word} end" and text[1] == f" {word}"


async def test_an_api_base_that_is_not_a_url_is_fatal_and_says_so():
    with pytest.raises(FatalLLMError, match="InvalidURL"):
        await complete("localhost:8000/v1")
