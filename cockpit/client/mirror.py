"""A client's copy of the session list, kept current from the event stream.

The engine changes a session's record only through events that carry the new values (the
whole record, its state, its usage), so replaying them on the attach snapshot gives what the
engine's own `snapshot()` would say now.
"""

from __future__ import annotations

from typing import Any

from cockpit.core import events as ev
from cockpit.core.events import Event


def apply_event(sessions: dict[str, dict[str, Any]], event: Event) -> None:
    kind, data = event.kind, event.data
    if kind in (ev.SESSION_CREATED, ev.SESSION_UPDATED):
        sessions[event.session] = dict(data["session"])
        return
    if kind == ev.SESSION_REMOVED:
        sessions.pop(event.session, None)
        return
    session = sessions.get(event.session)
    if session is None:
        return
    if kind == ev.SESSION_STATE:
        session["state"] = data["state"]
        session["state_detail"] = data.get("detail", "")
    elif kind == ev.USAGE and "session" in data:
        session["usage"] = data["session"]


def labelled(session: dict[str, Any], host: str) -> dict[str, Any]:
    """The session record with the host it lives on (shown in pane headers), if there is one."""
    return {**session, "host": host} if host else session
