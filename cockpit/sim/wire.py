"""The OpenAI chat-completions wire format: replies, SSE chunks and error bodies.

Streams are paced per chunk, so everything but the send time is encoded before the first byte
goes out: each chunk is stored as bytes ending in `"x_sent_at":` and `stamp()` appends the
time and the closing brace. Per-chunk work is then one float format and one concatenation.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from cockpit.sim.facts import Facts
from cockpit.sim.scenario import Step

#: The extra top-level field of every chunk holding the server's `time.time()` at send.
TIMESTAMP_FIELD = "x_sent_at"
_STAMP = f',"{TIMESTAMP_FIELD}":'.encode()
DONE = b"data: [DONE]\n\n"
#: A data line that is not JSON (an unclosed list), stampable like any other chunk.
MALFORMED = b'data: {"choices": [oops' + _STAMP
_ARGUMENT_PIECE = 12  # characters of tool-call arguments per streamed chunk
_WORDS = re.compile(r"\s*\S+|\s+")


def tokenize(text: str) -> list[str]:
    """Word-ish deltas, each word with the whitespace before it, as real tokenizers do."""
    return _WORDS.findall(text)


def estimate_tokens(chars: int) -> int:
    """About four characters a token: close enough for usage and cost displays."""
    return max(1, (chars + 3) // 4)


#: Text of a step may hold this: each is replaced by the send time of the chunk carrying it, so a
#: bench can time delivery end to end even when the client in between drops `x_sent_at`.
SENT_AT = b"{sent_at}"


def stamp(chunk: bytes) -> bytes:
    now = time.time()
    if SENT_AT in chunk:
        chunk = chunk.replace(SENT_AT, b"%.6f" % now)
    return b"%s%.6f}\n\n" % (chunk, now)


@dataclass(frozen=True)
class ToolCallOut:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Reply:
    """One step rendered for one request: placeholders filled, ids given, usage counted."""

    id: str
    model: str
    text: str
    thought: str
    tool_calls: tuple[ToolCallOut, ...]
    finish_reason: str
    usage: dict[str, int]

    @classmethod
    def render(cls, step: Step, facts: Facts, number: int, model: str) -> Reply:
        """`number` makes the completion's and its tool calls' ids unique on this server."""
        text = facts.fill(step.text)
        calls = tuple(
            ToolCallOut(f"call_sim{number}_{i}", call.name,
                        call.arguments[:-1] if step.malformed_tool_args else call.arguments)
            for i, call in enumerate(step.tool_calls)
        )
        prompt = step.prompt_tokens if step.prompt_tokens is not None else estimate_tokens(facts.prompt_chars)
        completion = step.completion_tokens if step.completion_tokens is not None else estimate_tokens(
            len(step.thought) + len(text) + sum(len(c.name) + len(c.arguments) for c in calls))
        return cls(
            id=f"chatcmpl-sim-{number}", model=model, text=text, thought=step.thought, tool_calls=calls,
            finish_reason=step.finish_reason or ("tool_calls" if calls else "stop"),
            usage={"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        )

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.thought:
            message["reasoning_content"] = self.thought
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        return message

    def completion_body(self) -> dict[str, Any]:
        """The whole non-streamed response."""
        return {
            "id": self.id, "object": "chat.completion", "created": int(time.time()), "model": self.model,
            "choices": [{"index": 0, "message": self.message(), "finish_reason": self.finish_reason}],
            "usage": self.usage, TIMESTAMP_FIELD: time.time(),
        }


@dataclass(frozen=True)
class StreamChunks:
    """A reply's SSE chunks, encoded but not yet stamped: pass each to `stamp()` when sending."""

    opening: bytes  # the assistant role, sent at once
    deltas: list[bytes]  # text words and tool-call pieces, paced
    closing: list[bytes]  # the finish reason, then usage when asked for

    @classmethod
    def of(cls, reply: Reply, include_usage: bool) -> StreamChunks:
        head = json.dumps({"id": reply.id, "object": "chat.completion.chunk", "created": int(time.time()),
                           "model": reply.model}).encode()[:-1]
        head = b"data: " + head + b',"choices":['

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            return head + json.dumps(choice).encode() + b"]" + _STAMP

        deltas = [chunk({"reasoning_content": word}) for word in tokenize(reply.thought)]
        deltas += [chunk({"content": word}) for word in tokenize(reply.text)]
        for index, call in enumerate(reply.tool_calls):
            deltas.append(chunk({"tool_calls": [{"index": index, "id": call.id, "type": "function",
                                                 "function": {"name": call.name, "arguments": ""}}]}))
            deltas.extend(
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                for piece in _pieces(call.arguments)
            )
        closing = [chunk({}, reply.finish_reason)]
        if include_usage:
            closing.append(head + b'],"usage":' + json.dumps(reply.usage).encode() + _STAMP)
        return cls(chunk({"role": "assistant", "content": ""}), deltas, closing)


def _pieces(text: str) -> list[str]:
    return [text[i:i + _ARGUMENT_PIECE] for i in range(0, len(text), _ARGUMENT_PIECE)]


def error_body(status: int, message: str) -> dict[str, Any]:
    """An OpenAI-style error; the type lets clients classify it like a real provider's."""
    kind = {429: "rate_limit_error", 400: "invalid_request_error", 401: "authentication_error",
            404: "not_found_error"}.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message or f"simulated error {status}", "type": kind, "param": None,
                      "code": str(status)}}
