"""One streamed completion through litellm, with retries, stall detection and usage/cost.

litellm is imported on first use (it takes seconds) with its cost map read locally and its
debug printing off, so nothing reaches the network or stdout unasked.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
    result = Completion()
    drafts: dict[int, ToolCallDraft] = {}
    text: list[str] = []
    prompt_tokens = completion_tokens = 0
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
                    prompt_tokens = usage.prompt_tokens or prompt_tokens
                    completion_tokens = usage.completion_tokens or completion_tokens
                for choice in chunk.choices or ():
                    delta = choice.delta
                    if choice.finish_reason:
                        result.finish_reason = choice.finish_reason
                    if delta is None:
                        continue
                    thought = getattr(delta, "reasoning_content", None)
                    if thought:
                        on_thought(thought)
                    if delta.content:
                        text.append(delta.content)
                        on_text(delta.content)
                    for call in delta.tool_calls or ():
                        draft = drafts.setdefault(call.index or 0, ToolCallDraft())
                        draft.id = call.id or draft.id
                        if call.function is not None:
                            draft.name += call.function.name or ""
                            draft.arguments += call.function.arguments or ""
                deadline.reschedule(loop.time() + stall_s)
    except Exception as exc:  # CancelledError is not an Exception: an interrupt passes through
        raise classify(exc) from exc
    result.text = "".join(text)
    result.tool_calls = [d for _, d in sorted(drafts.items())]
    for i, draft in enumerate(result.tool_calls):
        draft.id = draft.id or f"call_{i}"
    result.usage = usage_with_cost(model.model, prompt_tokens, completion_tokens)
    return result
