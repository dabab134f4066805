"""What a scenario can see of one chat-completions request.

Steps choose themselves (`when`) and fill their text (`{last_tool_result}` …) from these facts,
so the facts are computed once per request and kept to plain strings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SESSION_HEADER = "X-Cockpit-Session"
_RESULT_CAP = 2000  # a placeholder never pastes a whole file into the reply


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a message whose content is a string or a list of OpenAI content parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return ""


def _first_text(messages: Iterable[Mapping[str, Any]], role: str) -> str:
    """The text of the first message with `role`; pass `reversed(messages)` for the last."""
    return next((message_text(m) for m in messages if m.get("role") == role), "")


@dataclass(frozen=True)
class Facts:
    session: str
    last_role: str
    last_text: str
    last_user: str
    last_tool_result: str
    prompt_chars: int

    @classmethod
    def of(cls, body: Mapping[str, Any], headers: Mapping[str, str]) -> Facts:
        messages = [m for m in body.get("messages") or () if isinstance(m, Mapping)]
        last = messages[-1] if messages else {}
        return cls(
            session=headers.get(SESSION_HEADER) or conversation_key(messages),
            last_role=str(last.get("role", "")),
            last_text=message_text(last),
            last_user=_first_text(reversed(messages), "user"),
            last_tool_result=_first_text(reversed(messages), "tool"),
            prompt_chars=sum(len(message_text(m)) for m in messages),
        )

    def placeholders(self) -> dict[str, str]:
        """The `{name}` values a step's text may use."""
        result = self.last_tool_result[:_RESULT_CAP]
        lines = [line.strip() for line in result.splitlines() if line.strip()]
        return {
            "last_tool_result": result,
            "last_tool_result_tail": lines[-1] if lines else "",
            "last_user": self.last_user[:_RESULT_CAP],
            "session": self.session,
        }

    def fill(self, text: str) -> str:
        """Replace known `{name}` placeholders only, so code with braces in a reply is untouched."""
        if "{" not in text:
            return text
        for name, value in self.placeholders().items():
            text = text.replace("{" + name + "}", value)
        return text


def conversation_key(messages: list[Mapping[str, Any]]) -> str:
    """A stable key for a conversation whose caller sent no session header.

    A conversation's system prompt and first user message do not change as it grows, so their
    hash identifies it across requests. Two conversations that open identically share a key (and
    so a cursor): callers running many alike sessions should send `X-Cockpit-Session`.
    """
    system, first_user = _first_text(messages, "system"), _first_text(messages, "user")
    digest = hashlib.sha256(f"{system}\0{first_user}".encode("utf-8", "surrogatepass"))
    return "conv-" + digest.hexdigest()[:16]
