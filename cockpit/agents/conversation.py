"""The model's view of a session: OpenAI-format messages, rebuilt from stored events.

The store, not the agent's memory, is the source of truth, so a restarted cockpit continues a
conversation by replaying the transcript. Context fitting lives here too: when the estimated
size nears the model's window, the oldest whole turns are dropped (never splitting an assistant
tool call from its results) and old tool outputs are shortened.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cockpit.core import events as ev
from cockpit.core.events import Event

Message = dict[str, Any]
_CHARS_PER_TOKEN = 4
_SHORT_TOOL_OUTPUT = 400


@dataclass
class _Assistant:
    content: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)

    def message(self) -> Message | None:
        if not self.content and not self.tool_calls:
            return None
        msg: Message = {"role": "assistant", "content": "".join(self.content) or None}
        if self.tool_calls:
            msg["tool_calls"] = self.tool_calls
        return msg


def tool_call_message(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def rebuild(events: Iterable[Event]) -> list[Message]:
    """Messages (without the system prompt) from a session's stored events."""
    messages: list[Message] = []
    current = _Assistant()
    open_calls: set[str] = set()
    deferred_users: list[Message] = []

    def close_assistant() -> None:
        nonlocal current
        msg = current.message()
        if msg is not None:
            messages.append(msg)
        current = _Assistant()

    for event in events:
        kind, data = event.kind, event.data
        if kind == ev.USER_MESSAGE and data.get("text"):
            user = {"role": "user", "content": data["text"]}
            if open_calls:
                deferred_users.append(user)  # it reached the model after the tool results
            else:
                close_assistant()
                messages.append(user)
        elif kind in (ev.TEXT, ev.TEXT_DELTA):
            current.content.append(data.get("text", ""))
        elif kind == ev.MESSAGE_END and data.get("discarded"):
            current.content.clear()
        elif kind == ev.TOOL_CALL:
            raw = data.get("raw_arguments")
            arguments = raw if raw is not None else json.dumps(data.get("arguments", {}))
            current.tool_calls.append(tool_call_message(data["id"], data["name"], arguments))
            open_calls.add(data["id"])
        elif kind == ev.TOOL_RESULT and data.get("id") in open_calls:
            close_assistant()
            messages.append({"role": "tool", "tool_call_id": data["id"], "content": data.get("output", "")})
            open_calls.discard(data["id"])
            if not open_calls:
                messages.extend(deferred_users)
                deferred_users.clear()
    close_assistant()
    if open_calls:  # a turn cut off mid-tool (crash, interrupt): tell the model, keep it valid
        for call_id in sorted(open_calls):
            messages.append({"role": "tool", "tool_call_id": call_id, "content": "interrupted before it finished"})
    messages.extend(deferred_users)
    return messages


def estimate_tokens(messages: Iterable[Message]) -> int:
    """A cheap size estimate; exact counting would cost more than the turn is worth."""
    total = 0
    for msg in messages:
        total += len(msg.get("content") or "") + 16
        for call in msg.get("tool_calls") or ():
            total += len(call["function"]["arguments"]) + len(call["function"]["name"])
    return total // _CHARS_PER_TOKEN


def fit_context(messages: list[Message], budget_tokens: int) -> tuple[list[Message], str]:
    """Trim to `budget_tokens`; return the messages and a note for the transcript ("" if untouched)."""
    if estimate_tokens(messages) <= budget_tokens:
        return messages, ""
    turn_starts = [i for i, m in enumerate(messages) if m["role"] == "user"]
    dropped_turns = 0
    kept = messages
    for start in turn_starts[1:]:
        if estimate_tokens(kept) <= budget_tokens:
            break
        kept = messages[start:]
        dropped_turns += 1
    shortened = 0
    if estimate_tokens(kept) > budget_tokens:
        kept = [dict(m) for m in kept]
        for msg in kept[:-1]:
            if msg["role"] == "tool" and len(msg["content"]) > _SHORT_TOOL_OUTPUT:
                msg["content"] = msg["content"][:_SHORT_TOOL_OUTPUT] + "\n[older output shortened to fit the context]"
                shortened += 1
                if estimate_tokens(kept) <= budget_tokens:
                    break
    parts = []
    if dropped_turns:
        parts.append(f"dropped the {dropped_turns} oldest turn{'s' if dropped_turns > 1 else ''}")
    if shortened:
        parts.append(f"shortened {shortened} old tool output{'s' if shortened > 1 else ''}")
    note = ("context nearly full: " + " and ".join(parts)) if parts else ""
    if dropped_turns:
        kept = [{"role": "user", "content": "[earlier turns were dropped to fit the context window]"},
                {"role": "assistant", "content": "Understood."}, *kept]
    return kept, note
