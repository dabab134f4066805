"""A direct streaming client for OpenAI-compatible chat servers (vLLM, llama.cpp, Ollama's /v1 …).

Why it exists: `bench/llm_routes.py` measured the CPU each streamed chunk costs the cockpit's
process (16 paced streams, medians of 5 rounds, on a shared 2-core box): a bare aiohttp +
`json.loads` reader 0.11 ms, this client 0.15 ms, litellm 0.58-0.80 ms on every route it has to
an OpenAI-compatible server (`openai/` 0.77, `custom_openai/` 0.70, `hosted_vllm/` 0.58 -- which
also skips malformed chunks silently and reports errors as raw JSON bodies -- `lm_studio/`,
`llamafile/`, `litellm_proxy/`, `xinference/` 0.69-0.80; `aiohttp_openai/` cannot stream from
such a server at all), and 8-12 ms per call against 1.4 ms here. With dozens of agents
streaming, litellm's per-chunk work (pydantic chunk objects, its stream wrapper, logging hooks)
is what fills a core. This client is that bare reader plus what the agent needs: HTTP errors
and in-stream errors turned into `WireError`s that say whether retrying can help, in the words
the server used, labelled as litellm labels them.

It sends what litellm's `openai/` route sends for a model it has no special rules for (model,
messages, tools, max_tokens, temperature, stream, stream_options) and yields each SSE event as
a dict; `llm_client` decides when to use it and assembles the answer. Stalls are the caller's
deadline: this module sets no timeout of its own. Each call has its own connection (nothing to
close or leak between calls; on loopback or a LAN that costs well under a millisecond).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

#: litellm's exception names for the statuses, so a pane reads the same on either route.
_LABELS = {
    400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError", 404: "NotFoundError",
    408: "Timeout", 409: "ConflictError", 422: "UnprocessableEntityError", 429: "RateLimitError",
    500: "InternalServerError", 502: "BadGatewayError", 503: "ServiceUnavailableError",
}
_ERROR_BODY_LIMIT = 64 * 1024


class WireError(Exception):
    """A failed request or stream: `transient` says whether a retry may succeed."""

    def __init__(self, label: str, message: str, *, status: int = 0, transient: bool = True):
        self.status_code = status
        self.transient = transient
        head = f"{label} {status}" if status else label
        text = " ".join(message.split())
        super().__init__(f"{head}: {textwrap.shorten(text, 300, placeholder=' …')}" if text else head)


def status_error(status: int, message: str) -> WireError:
    """429, 408 and 5xx are worth retrying; any other 4xx is the request's fault."""
    label = _LABELS.get(status, "InternalServerError" if status >= 500 else "BadRequestError")
    return WireError(label, message, status=status, transient=status in (408, 429) or status >= 500)


def chat_url(api_base: str) -> str:
    return api_base.rstrip("/") + "/chat/completions"


async def stream_chat(url: str, body: dict[str, Any], headers: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
    """POST a streamed chat completion and yield its chunks until `[DONE]` or the end of the body.

    Raises `WireError` for error statuses, error chunks, malformed chunks and dropped or refused
    connections. Close it (`contextlib.aclosing`) when stopping early, so the connection goes too.
    """
    sent = {"Content-Type": "application/json", **headers}
    try:
        # No client timeout (aiohttp's default is 5 minutes in total): the caller's stall deadline
        # bounds the wait for each chunk instead. trust_env: proxies from the environment, as httpx.
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None), trust_env=True) as http, \
                http.post(url, data=json.dumps(body), headers=sent) as response:
            if response.status >= 400:
                raise status_error(response.status, await _error_message(response))
            async for data in _sse_data(response.content):
                if data == b"[DONE]":
                    return
                chunk = _decode(data)
                error = chunk.get("error")
                if error:
                    raise _chunk_error(error)
                yield chunk
    except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
        raise WireError("InvalidURL", f"{url} is not an http(s) URL: check api_base", transient=False) from exc
    except aiohttp.ClientConnectorError as exc:
        raise WireError("APIConnectionError", f"cannot connect to {url}: {exc.os_error}") from exc
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
        raise WireError("APIConnectionError", f"the connection dropped mid-stream ({exc})") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise WireError("APIConnectionError", f"{type(exc).__name__}: {exc}") from exc


async def _sse_data(content: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """The data of each server-sent event, whatever size its lines (no line length limit)."""
    partial: list[bytes] = []  # the start of a line whose end has not arrived yet
    data: list[bytes] = []  # data lines of the event being read
    async for piece in content.iter_any():
        start = 0
        while (end := piece.find(b"\n", start)) != -1:
            line = piece[start:end]
            start = end + 1
            if partial:
                partial.append(line)
                line = b"".join(partial)
                partial.clear()
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:  # a blank line ends the event
                if data:
                    yield data[0] if len(data) == 1 else b"\n".join(data)
                    data.clear()
            elif line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            # other fields (event:, id:, retry:) and comments (": keep-alive") carry nothing we use
        if start < len(piece):
            partial.append(piece[start:])
    if partial and b"".join(partial).startswith(b"data:"):
        line = b"".join(partial)
        data.append(line[6:] if line[5:6] == b" " else line[5:])
    if data:
        yield b"\n".join(data)


def _decode(data: bytes) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except ValueError as exc:
        raise WireError("APIConnectionError", f"malformed chunk from the server: {exc}") from exc
    if not isinstance(chunk, dict):
        raise WireError("APIConnectionError", f"malformed chunk from the server: {data[:80]!r}")
    return chunk


def _chunk_error(error: object) -> WireError:
    """An error sent inside a 200 stream (vLLM, sglang): its code is the status when it is one."""
    if not isinstance(error, dict):
        return status_error(500, str(error))
    code = error.get("code")
    status = int(code) if str(code).isdigit() and 400 <= int(code) < 600 else 500
    message = error.get("message")
    return status_error(status, message if isinstance(message, str) else json.dumps(error))


async def _error_message(response: aiohttp.ClientResponse) -> str:
    """The server's own words: OpenAI's `error.message`, FastAPI's `detail`, else the body."""
    raw = await response.content.read(_ERROR_BODY_LIMIT)
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except ValueError:
        return text or (response.reason or "")
    if isinstance(body, dict):
        for found in (body.get("error"), body.get("message"), body.get("detail")):
            if isinstance(found, dict) and isinstance(found.get("message"), str):
                return found["message"]
            if isinstance(found, str) and found:
                return found
    return text
