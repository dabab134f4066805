"""One streamed completion, with stall detection and usage/cost, through litellm or `openai_wire`.

litellm is imported on first use (it takes seconds) with its cost map read locally and its
debug printing off, so nothing reaches the network or stdout unasked.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cockpit.agents import openai_wire
from cockpit.config import ModelConfig
from cockpit.core.model import Usage

DEFAULT_CONTEXT_WINDOW = 128_000


@functools.cache
def litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    import litellm as module

    module.suppress_debug_info = True
    module.telemetry = False
    return module


class TransientLLMError(Exception):
    """A failure worth retrying: 429, 5xx, timeouts, dropped or stalled streams."""


class FatalLLMError(Exception):
    """A failure retrying will not fix (bad key, bad request, unknown model)."""


@dataclass
class ToolCallDraft:
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class Completion:
    text: str = ""
    tool_calls: list[ToolCallDraft] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reason: str = ""


def classify(exc: BaseException) -> Exception:
    """Map litellm / network exceptions to transient or fatal, with a one-line reason."""
    lm = litellm()
    transient = (
        lm.RateLimitError, lm.InternalServerError, lm.ServiceUnavailableError, lm.Timeout,
        lm.APIConnectionError, lm.BadGatewayError, TimeoutError, ConnectionError,
        json.JSONDecodeError,
    )
    reason = _one_line(exc)
    if isinstance(exc, transient) or isinstance(exc, lm.APIError) and getattr(exc, "status_code", 0) >= 500:
        return TransientLLMError(reason)
    return FatalLLMError(reason)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    # litellm prefixes messages with its class names and the provider's: keep the provider's words
    text = re.sub(r"^(litellm\.\w+: )?(\w+Error: )?(\w+Exception - )?", "", text)
    status = getattr(exc, "status_code", None)
    label = type(exc).__name__ + (f" {status}" if status else "")
    return f"{label}: {textwrap.shorten(text, 300, placeholder=' …')}" if text else label  # whole words


def context_window(model: ModelConfig) -> int:
    if model.context_window:
        return model.context_window
    try:
        info = litellm().get_model_info(model.model)
        return int(info.get("max_input_tokens") or DEFAULT_CONTEXT_WINDOW)
    except Exception:  # models litellm does not know: assume a common size
        return DEFAULT_CONTEXT_WINDOW


def usage_with_cost(model: str, prompt_tokens: int, completion_tokens: int) -> Usage:
    """Usage of one call; cost is 0 and marked unknown for models without a known price."""
    try:
        prompt_cost, completion_cost = litellm().cost_per_token(
            model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
        return Usage(prompt_tokens, completion_tokens, float(prompt_cost + completion_cost), True)
    except Exception:
        return Usage(prompt_tokens, completion_tokens, 0.0, False)


def api_key(model: ModelConfig) -> str | None:
    """The key from the environment variable config names; never stored anywhere."""
    return os.environ.get(model.api_key_env) if model.api_key_env else None


def uses_openai_wire(model: ModelConfig) -> bool:
    """Whether `model` streams through `openai_wire` rather than litellm.

    Only an `openai/<name>` model with an `api_base` (an OpenAI-compatible server) whose name is
    not one of OpenAI's own: for those litellm rewrites the request (o-series and gpt-5 take
    `max_completion_tokens`, no temperature), which the direct client does not repeat.
    `route = "litellm"` in the model's config turns it off.
    """
    if model.route == "litellm" or not model.api_base:
        return False
    provider, _, name = model.model.partition("/")
    return provider == "openai" and bool(name) and name not in litellm().open_ai_chat_completion_models


async def stream_completion(
    model: ModelConfig,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    *,
    on_text: Callable[[str], None],
    on_thought: Callable[[str], None],
    headers: dict[str, str],
) -> Completion:
    """One streamed call. Raises TransientLLMError / FatalLLMError; partial text was already sent."""
    stream = _stream_wire if uses_openai_wire(model) else _stream_litellm
    return await stream(model, messages, tools, on_text=on_text, on_thought=on_thought, headers=headers)


class _Answer:
    """What the chunks of one answer add up to, whichever route read them."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.drafts: dict[int, ToolCallDraft] = {}
        self.prompt_tokens = self.completion_tokens = 0
        self.finish_reason = ""

    def draft(self, index: int | None) -> ToolCallDraft:
        return self.drafts.setdefault(index or 0, ToolCallDraft())

    def completion(self, model: str) -> Completion:
        calls = [d for _, d in sorted(self.drafts.items())]
        for i, draft in enumerate(calls):
            draft.id = draft.id or f"call_{i}"
        return Completion("".join(self.text), calls, usage_with_cost(model, self.prompt_tokens, self.completion_tokens),
                          self.finish_reason)


async def _stream_litellm(
    model: ModelConfig,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    *,
    on_text: Callable[[str], None],
    on_thought: Callable[[str], None],
    headers: dict[str, str],
) -> Completion:
    lm = litellm()
    kwargs: dict[str, Any] = {
        "model": model.model, "messages": messages, "stream": True,
        "stream_options": {"include_usage": True}, "num_retries": 0,
        "max_tokens": model.max_output_tokens, "temperature": model.temperature,
        "timeout": model.stall_timeout_s, "extra_headers": headers,
    }
    if tools:
        kwargs["tools"] = tools
    if model.api_base:
        kwargs["api_base"] = model.api_base
    key = api_key(model)
    if key:
        kwargs["api_key"] = key
    elif model.api_base:
        kwargs["api_key"] = "not-needed"  # local OpenAI-compatible servers still want a value
    answer = _Answer()
    stall_s = model.stall_timeout_s
    try:
        stream = await lm.acompletion(**kwargs)
        loop = asyncio.get_running_loop()
        # One deadline, moved on after every chunk: a gap longer than stall_s is a TimeoutError,
        # without the task per chunk that wait_for() makes on Python 3.11.
        async with asyncio.timeout(stall_s) as deadline:
            async for chunk in stream:
                usage = getattr(chunk, "usage", None)
                if usage:
                    answer.prompt_tokens = usage.prompt_tokens or answer.prompt_tokens
                    answer.completion_tokens = usage.completion_tokens or answer.completion_tokens
                for choice in chunk.choices or ():
                    delta = choice.delta
                    if choice.finish_reason:
                        answer.finish_reason = choice.finish_reason
                    if delta is None:
                        continue
                    thought = getattr(delta, "reasoning_content", None)
                    if thought:
                        on_thought(thought)
                    if delta.content:
                        answer.text.append(delta.content)
                        on_text(delta.content)
                    for call in delta.tool_calls or ():
                        draft = answer.draft(call.index)
                        draft.id = call.id or draft.id
                        if call.function is not None:
                            draft.name += call.function.name or ""
                            draft.arguments += call.function.arguments or ""
                deadline.reschedule(loop.time() + stall_s)
    except Exception as exc:  # CancelledError is not an Exception: an interrupt passes through
        raise classify(exc) from exc
    return answer.completion(model.model)


async def _stream_wire(
    model: ModelConfig,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    *,
    on_text: Callable[[str], None],
    on_thought: Callable[[str], None],
    headers: dict[str, str],
) -> Completion:
    """The same call as `_stream_litellm`, read straight off the wire (see `openai_wire`)."""
    body: dict[str, Any] = {
        "model": model.model.partition("/")[2], "messages": messages, "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": model.max_output_tokens, "temperature": model.temperature,
    }
    if tools:
        body["tools"] = tools
    # local OpenAI-compatible servers still want a value
    sent = {"Authorization": f"Bearer {api_key(model) or 'not-needed'}", **headers}
    answer = _Answer()
    stall_s = model.stall_timeout_s
    loop = asyncio.get_running_loop()
    try:
        # The deadline covers connecting and the wait for the first chunk too, as litellm's does.
        async with asyncio.timeout(stall_s) as deadline, \
                contextlib.aclosing(openai_wire.stream_chat(openai_wire.chat_url(model.api_base), body, sent)) as chunks:
            async for chunk in chunks:
                usage = chunk.get("usage")
                if usage:
                    answer.prompt_tokens = usage.get("prompt_tokens") or answer.prompt_tokens
                    answer.completion_tokens = usage.get("completion_tokens") or answer.completion_tokens
                for choice in chunk.get("choices") or ():
                    finish = choice.get("finish_reason")
                    if finish:
                        if finish == "abort":  # vLLM gave up on the request: litellm calls that a 500
                            raise openai_wire.status_error(500, "Upstream generation aborted (finish_reason=abort)")
                        answer.finish_reason = finish
                    delta = choice.get("delta")
                    if not delta:
                        continue
                    thought = delta.get("reasoning_content") or delta.get("reasoning")
                    if thought:
                        on_thought(thought)
                    content = delta.get("content")
                    if content:
                        answer.text.append(content)
                        on_text(content)
                    for call in delta.get("tool_calls") or ():
                        draft = answer.draft(call.get("index"))
                        draft.id = call.get("id") or draft.id
                        function = call.get("function")
                        if function:
                            draft.name += function.get("name") or ""
                            draft.arguments += function.get("arguments") or ""
                deadline.reschedule(loop.time() + stall_s)
    except openai_wire.WireError as exc:
        raise (TransientLLMError if exc.transient else FatalLLMError)(str(exc)) from exc
    except (AttributeError, TypeError) as exc:  # JSON of the wrong shape, e.g. "choices": {}
        raise TransientLLMError(f"APIConnectionError: malformed chunk from the server ({exc})") from exc
    except TimeoutError as exc:
        raise TransientLLMError(f"Timeout: no data from {model.api_base} for {stall_s:g} s") from exc
    return answer.completion(model.model)
