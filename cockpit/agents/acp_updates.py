"""Turning an ACP agent's `session/update` stream into the cockpit's events.

The events are the ones the built-in agent emits (text and thought deltas, message ends, tool
calls and their results, usage), so panes, the zoom view and the store show an ACP agent exactly
like the built-in one. ACP reports a tool call once and then updates it; the cockpit shows a call
and one result, so a call is announced on first sight and its result when it reaches `completed`
or `failed`. Plans become a notice. Costs arrive as a running total per ACP session and are
turned into per-update amounts (a resumed session continues from what the store already holds);
token counts arrive with each prompt's answer.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from acp import schema

from cockpit.core import events as ev
from cockpit.core.agent_api import AgentHost
from cockpit.core.model import Usage
from cockpit.core.process import elide

#: Characters of one tool result kept in an event; head and tail survive when it is longer.
MAX_RESULT_CHARS = 20_000
_PLAN_MARKS = {"pending": "☐", "in_progress": "◐", "completed": "☑"}
_FINISHED = ("completed", "failed")
_MAIN_ARGUMENTS = ("command", "path", "pattern")  # what a pane shows after a tool's name


@dataclass
class _OpenCall:
    name: str  # as the TOOL_CALL event named it
    title: str  # the agent's latest words for it
    done: bool = False


def block_text(block: Any) -> str:
    """What a content block says, as text (media and links as a short placeholder)."""
    if isinstance(block, schema.TextContentBlock):
        return block.text
    if isinstance(block, schema.ResourceContentBlock):
        return f"[{block.name}]({block.uri})"
    if isinstance(block, schema.EmbeddedResourceContentBlock):
        return getattr(block.resource, "text", None) or f"[{block.resource.uri}]"
    if isinstance(block, schema.ImageContentBlock):
        return "[image]"
    if isinstance(block, schema.AudioContentBlock):
        return "[audio]"
    return ""


def _diff_text(diff: schema.FileEditToolCallContent, root: str) -> str:
    """`path: +a −r` (the line a pane shows), then the unified diff."""
    label = os.path.relpath(diff.path, root) if diff.path.startswith(root.rstrip(os.sep) + os.sep) else diff.path
    old = (diff.old_text or "").splitlines(keepends=True)
    new = diff.new_text.splitlines(keepends=True)
    body = list(difflib.unified_diff(old, new))[2:]  # its ---/+++ header: our first line says it
    added = sum(line.startswith("+") for line in body)
    removed = sum(line.startswith("-") for line in body)
    return f"{label}: +{added} −{removed}\n" + "".join(body)


def _json_or_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1, default=str)


class UpdateMapper:
    """Maps one ACP session's updates to events on its host; call from one task only."""

    def __init__(self, host: AgentHost, usage_model: str, terminal_output: Callable[[str], str | None]):
        self.host = host
        self.usage_model = usage_model
        self._terminal_output = terminal_output
        self._calls: dict[str, _OpenCall] = {}
        self._streaming = ""  # the kind of text now streaming ("text", "thought") or ""
        self._message_id: str | None = None
        self._cost_total: dict[str, float] = {}  # currency → the session's running total seen so far
        self._cost_reported = False  # the agent reported a cost in USD: token-only usage is then priced

    def start_session(self, *, restored: bool) -> None:
        """Forget the last process's open calls; a restored ACP session's running cost continues
        from what the session has recorded, a new one starts from zero."""
        self._calls.clear()
        self._streaming, self._message_id = "", None
        self._cost_total = {"USD": self.host.session.usage.cost_usd} if restored else {}

    # -- the stream ----------------------------------------------------------------------------

    def apply(self, update: Any) -> None:
        if isinstance(update, schema.AgentMessageChunk):
            self._chunk("text", ev.TEXT_DELTA, update.content, update.message_id)
        elif isinstance(update, schema.AgentThoughtChunk):
            self._chunk("thought", ev.THOUGHT_DELTA, update.content, update.message_id)
        elif isinstance(update, (schema.ToolCallStart, schema.ToolCallProgress)):
            self.end_message()
            self.announce(update)
            self._maybe_result(update)
        elif isinstance(update, schema.AgentPlanUpdate):
            self.end_message()
            self._plan(update.entries)
        elif isinstance(update, schema.UsageUpdate):
            self._cost(update.cost)
        elif isinstance(update, schema.CurrentModeUpdate):
            self.host.emit(ev.NOTICE, {"text": f"mode: {update.current_mode_id}"})
        # User message replays, command lists, config options and titles have no event.

    def _chunk(self, kind: str, event: str, content: Any, message_id: str | None) -> None:
        text = block_text(content)
        if not text:
            return
        if self._streaming == "text" and (kind != "text" or message_id != self._message_id):
            self.end_message()
        self._streaming, self._message_id = kind, message_id
        self.host.emit(event, {"text": text})

    def end_message(self) -> None:
        """Close the assistant message now streaming, if any (a tool call or the turn's end)."""
        if self._streaming == "text":
            self.host.emit(ev.MESSAGE_END, {})
        self._streaming, self._message_id = "", None

    # -- tool calls ----------------------------------------------------------------------------

    def announce(self, call: schema.ToolCallStart | schema.ToolCallUpdate) -> str:
        """Emit the call on first sight (also from a permission request); its current title."""
        known = self._calls.get(call.tool_call_id)
        if known is not None:
            known.title = call.title or known.title
            return known.title
        title = call.title or call.kind or "tool"
        raw = call.raw_input
        arguments = raw if isinstance(raw, dict) else ({} if raw is None else {"input": raw})
        # Panes show a call as its name and main argument (`⚙ execute ls -la`); an ACP title already
        # names the argument, so it is the name only when the input has no main argument to show.
        shown = call.kind if call.kind and any(arguments.get(key) for key in _MAIN_ARGUMENTS) else title
        self._calls[call.tool_call_id] = _OpenCall(shown, title)
        self.host.emit(ev.TOOL_CALL, {"id": call.tool_call_id, "name": shown, "title": title,
                                      "kind": call.kind or "other", "arguments": arguments})
        return title

    def _maybe_result(self, call: schema.ToolCallStart | schema.ToolCallProgress) -> None:
        entry = self._calls[call.tool_call_id]
        if call.status not in _FINISHED or entry.done:
            return
        entry.done = True
        self.host.emit(ev.TOOL_RESULT, {"id": call.tool_call_id, "name": entry.name,
                                        "ok": call.status == "completed", "output": self._output(call)})

    def _output(self, call: schema.ToolCallStart | schema.ToolCallProgress) -> str:
        parts: list[str] = []
        for item in call.content or ():
            if isinstance(item, schema.ContentToolCallContent):
                parts.append(block_text(item.content))
            elif isinstance(item, schema.FileEditToolCallContent):
                parts.append(_diff_text(item, str(self.host.worktree)))
            elif isinstance(item, schema.TerminalToolCallContent):
                parts.append(self._terminal_output(item.terminal_id) or "")
        if not any(parts) and call.raw_output is not None:
            parts.append(_json_or_text(call.raw_output))
        return elide("\n".join(p for p in parts if p), MAX_RESULT_CHARS)

    def finish_open_calls(self, why: str) -> None:
        """Give every call still open a failed result (the turn ended without it finishing)."""
        for call_id, entry in self._calls.items():
            if not entry.done:
                entry.done = True
                self.host.emit(ev.TOOL_RESULT, {"id": call_id, "name": entry.name, "ok": False, "output": why})
        self._calls.clear()

    # -- plans and usage -----------------------------------------------------------------------

    def _plan(self, entries: list[schema.PlanEntry]) -> None:
        done = sum(entry.status == "completed" for entry in entries)
        current = next((entry.content for entry in entries if entry.status == "in_progress"), "")
        text = f"plan: {done}/{len(entries)} done" + (f", now: {current}" if current else "")
        listing = "\n".join(f"{_PLAN_MARKS.get(entry.status, '·')} {entry.content}" for entry in entries)
        self.host.emit(ev.NOTICE, {"text": text, "output": listing, "plan": [e.model_dump() for e in entries]})

    def _cost(self, cost: schema.Cost | None) -> None:
        """Record the growth of the session's running cost since the last report."""
        if cost is None:
            return
        currency = cost.currency.upper()
        last = self._cost_total.get(currency, 0.0)
        delta = cost.amount - last if cost.amount >= last else cost.amount  # below: the agent restarted its count
        self._cost_total[currency] = cost.amount
        if currency != "USD":
            self.host.add_usage(self.usage_model, Usage(cost_known=False))
            return
        self._cost_reported = True
        if delta > 0:
            self.host.add_usage(self.usage_model, Usage(cost_usd=delta))

    def turn_usage(self, usage: schema.Usage | None) -> None:
        """The tokens one prompt used (from its answer), priced only if the agent reports cost."""
        if usage is None:
            return
        self.host.add_usage(self.usage_model, Usage(
            prompt_tokens=usage.input_tokens, completion_tokens=usage.output_tokens,
            cost_known=self._cost_reported,
        ))
