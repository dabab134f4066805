"""Events: everything the UI, the CLI and the server learn about sessions.

An event is a plain JSON-serialisable record. Agents emit them through the engine, the store
appends them, and subscribers receive them. Keeping one flat shape (kind + data) means the same
stream works in-process and over a socket.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

# Session lifecycle
SESSION_CREATED = "session.created"
SESSION_UPDATED = "session.updated"  # name, tags, usage or other fields changed
SESSION_STATE = "session.state"
SESSION_REMOVED = "session.removed"
# Conversation
USER_MESSAGE = "message.user"
TEXT_DELTA = "text.delta"  # streamed assistant text; persisted coalesced as TEXT
TEXT = "text"  # a coalesced run of assistant text (what the store keeps)
THOUGHT_DELTA = "thought.delta"
THOUGHT = "thought"  # a coalesced run of reasoning text
MESSAGE_END = "message.end"
TOOL_CALL = "tool.call"
TOOL_RESULT = "tool.result"
APPROVAL_REQUEST = "approval.request"
APPROVAL_RESOLVED = "approval.resolved"
USAGE = "usage"
NOTICE = "notice"  # something the person should read: retries, context trimmed, set-up output
ERROR = "error"
TURN_START = "turn.start"
TURN_END = "turn.end"
DIFF_STAT = "diff.stat"  # files / lines changed against the base (after a turn, on file changes)
#: Other live sessions changing the same files as this one, all of them (empty: none any more):
#: {"with": [{"session", "number", "name", "files"}]} (cockpit.alerts.collisions)
COLLISION = "collision"
# Review and merge desk
CHECKPOINT = "checkpoint"  # the worktree was snapshotted at the end of a turn (or before a rollback)
VERIFY = "verify"  # the verify command started or finished in the session's worktree
MERGED = "merged"  # the session's change landed on its target (or a pull request was opened)
# Experiment loops (cockpit/experiment)
EXPERIMENT_RUN = "experiment.run"  # an agent's iteration ended: its results.tsv row and timings
EXPERIMENT_STATE = "experiment.state"  # (session "") an experiment started, stopped, finished or failed
PLAN = "plan"  # (session "") a plan was made, proposed, edited, approved or one of its sub-tasks moved on
# Terminal (PTY) sessions
TERM_SCREEN = "term.screen"  # changed rows of the emulated screen; live only, never stored
# Configuration (session "")
CONFIG = "config"  # a config file was re-read ("reloaded"), is broken ("error"), or is not trusted ("untrusted")
# Stream control for subscribers
RESYNC = "resync"  # the subscriber fell behind; reload the snapshot
# The cockpit itself (session "")
STORAGE = "storage"  # the store cannot write (agents paused) or can again: {"paused", "reason", "folder"}

#: Streamed kinds, delivered live one by one but stored coalesced as the mapped kind.
COALESCED = {TEXT_DELTA: TEXT, THOUGHT_DELTA: THOUGHT}
#: Kinds delivered live and never stored: they describe a moment (a terminal's screen) that a
#: later reader gets whole from a command instead of by replaying every frame.
EPHEMERAL = frozenset({TERM_SCREEN, CONFIG})


@dataclass(slots=True)
class Event:
    """One thing that happened to a session (or to the cockpit when `session` is empty)."""

    kind: str
    session: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    seq: int = 0  # per-session order, assigned by the engine
    ts: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-able fields. Its `data` is shared, not copied: `asdict` deep-copied
        it, which made encoding each streamed token for the socket cost more than handling it."""
        return {"kind": self.kind, "session": self.session, "data": self.data, "seq": self.seq, "ts": self.ts}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Event:
        return cls(
            kind=raw["kind"],
            session=raw.get("session", ""),
            data=dict(raw.get("data") or {}),
            seq=int(raw.get("seq", 0)),
            ts=float(raw.get("ts", 0.0)),
        )
