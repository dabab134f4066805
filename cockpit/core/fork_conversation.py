"""A fork keeps its source's conversation: the events a built-in agent rebuilds its messages from
(`cockpit.agents.conversation.rebuild`) are copied into the fork's own transcript, so its agent
starts where the source stood and its pane shows how it got there.

ACP agents keep their conversation inside the agent; theirs is carried only by an agent that
can fork its own session (`session/fork`), which the ACP backend asks for with `ACP_FORK_OF`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from cockpit.core import events as ev
from cockpit.core.events import Event

#: What a conversation is made of; turn boundaries are left out (a copied turn end would
#: checkpoint and verify the fork as if its agent had just worked).
CARRIED = frozenset({ev.USER_MESSAGE, ev.TEXT, ev.TEXT_DELTA, ev.THOUGHT, ev.MESSAGE_END, ev.TOOL_CALL,
                     ev.TOOL_RESULT})
#: Key of the notice that hands an ACP fork its source's ACP session id.
ACP_FORK_OF = "acp_fork_of"


def carry_conversation(events: Iterable[Event], emit: Callable[[str, dict[str, Any]], object]) -> int:
    """Emit the conversation events of `events` (the source's transcript) into the fork; how many
    messages (user and tool results) were carried."""
    messages = 0
    for event in events:
        if event.kind in CARRIED:
            emit(event.kind, {**event.data, "carried": True})
            messages += event.kind in (ev.USER_MESSAGE, ev.TOOL_RESULT)
    return messages


def acp_session_of(events: Iterable[Event], agent: str) -> str:
    """The ACP session id the source's agent `agent` last announced, "" when none."""
    found = ""
    for event in events:
        if event.kind == ev.NOTICE and event.data.get("acp_session") and event.data.get("agent") == agent:
            found = str(event.data["acp_session"])
    return found


def acp_fork_source(events: Iterable[Event], agent: str) -> str:
    """The source's ACP session a fork's agent `agent` should fork, "" when it is no fork."""
    return next((str(e.data[ACP_FORK_OF]) for e in events
                 if e.kind == ev.NOTICE and e.data.get(ACP_FORK_OF) and e.data.get("agent") == agent), "")
