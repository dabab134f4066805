"""Away from the desk: notifications to a phone, sent by the engine whether or not a screen is
attached.

`[notify] webhook` gets a JSON POST, `[notify] ntfy` (an ntfy-compatible topic URL) ntfy's plain
text POST with `Title`, `Priority` and `Tags` headers. Each message names the session, why it
needs the person and the command that answers it (`cockpit approve 3`). What notifies is
`[notify] phone_events` (approvals and errors unless set; "finished" adds finished turns).

Fifty agents must not make fifty buzzes: everything within `phone_coalesce_s` becomes one
message ("3 sessions need you: …"), so at most one goes out per window; the same reason from
the same session is not repeated within `REPEAT_S`; an approval answered before its message went
out is left out of it. Secrets the text may quote are masked (`cockpit.alerts.redact`).

Sending never holds the engine up: it runs in its own task with a timeout, and a failure is one
line in the log (naming the host, never the URL, which often carries a token).

Only the user's own config says where messages go: the engine's base config, never a
repository's `.cockpit.toml` (an untrusted one cannot even set the keys: `cockpit.config_gate`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from email.header import Header
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cockpit.alerts.redact import redact, secret_values
from cockpit.config import NotifyConfig
from cockpit.core import events as ev
from cockpit.core.attention import Attention, AttentionBatcher, Kind
from cockpit.core.states import State

if TYPE_CHECKING:
    from cockpit.core.engine import Engine

log = logging.getLogger("cockpit.phone")

SEND_TIMEOUT_S = 10.0
REPEAT_S = 60.0  # the same reason from the same session is not sent again within this
MAX_LINES = 10  # sessions listed in one message before "… and N more"
MAX_REASON = 160  # characters of one reason
_FOLLOWED = frozenset({ev.APPROVAL_REQUEST, ev.APPROVAL_RESOLVED, ev.ERROR, ev.SESSION_STATE})
_WORKING = frozenset({State.RUNNING.value, State.WAITING.value})
ANSWER = {"approval": "cockpit approve {n}", "error": "cockpit resume {n}", "finished": "cockpit diff {n}"}
_TAGS = {"approval": "warning", "error": "rotating_light", "finished": "white_check_mark"}


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    priority: str  # ntfy's: "high" when someone waits or something broke
    tags: str
    items: tuple[dict[str, Any], ...]

    def to_json(self) -> bytes:
        return json.dumps({"title": self.title, "message": self.body, "priority": self.priority,
                           "sessions": list(self.items)}).encode("utf-8")


def compose(items: Sequence[Attention], secrets: Sequence[str] = ()) -> Message:
    """The words of one message for a batch (oldest first), secrets masked."""
    rows = []
    for item in items:
        reason = " ".join(redact(item.text, secrets).split())
        if len(reason) > MAX_REASON:
            reason = reason[: MAX_REASON - 1] + "…"
        rows.append({"session": item.session, "number": item.number, "name": item.name, "event": item.kind,
                     "reason": reason, "command": ANSWER[item.kind].format(n=item.number)})
    kinds = {item.kind for item in items}
    kind: Kind = "error" if "error" in kinds else "approval" if "approval" in kinds else "finished"
    if len(rows) == 1:
        row = rows[0]
        label = f"@{row['number']} {row['name']}".rstrip()
        title = {"approval": f"{label} needs approval", "error": f"{label}: error",
                 "finished": f"{label} finished"}[kind]
        body = f"{row['reason']}\n→ {row['command']}"
    else:
        sessions = len({row["session"] for row in rows})
        title = f"{sessions} sessions finished" if kinds == {"finished"} else f"{sessions} sessions need you"
        lines = [f"@{row['number']} {row['name']}: {row['reason']} → {row['command']}" for row in rows[:MAX_LINES]]
        if len(rows) > MAX_LINES:
            lines.append(f"… and {len(rows) - MAX_LINES} more (cockpit ls)")
        body = "\n".join(lines)
    return Message(title, body, "default" if kind == "finished" else "high", _TAGS[kind], tuple(rows))


class PhoneNotifier:
    def __init__(self, engine: Engine):
        self._engine = engine
        self._batcher = AttentionBatcher(repeat_s=REPEAT_S)
        self._states: dict[str, str] = {}  # each session's last state, to see a turn finish
        self._tasks: set[asyncio.Task[None]] = set()
        self._follower: asyncio.Task[None] | None = None
        self.sent: deque[Message] = deque(maxlen=20)  # the last messages composed (tests and debugging)

    def owns(self, session_id: str) -> bool:
        return False

    def on_open(self) -> None:
        self._states = {s.id: s.state.value for s in self._engine.sessions.values()}
        subscription = self._engine.subscribe(accept=lambda e: e.kind in _FOLLOWED)
        self._follower = asyncio.create_task(self._follow(subscription), name="cockpit-phone")

    async def close(self) -> None:
        tasks = [t for t in (self._follower, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._follower = None

    @property
    def settings(self) -> NotifyConfig:
        return self._engine.config.notify  # the user's own file: read on use, so a reload counts

    async def _follow(self, subscription: Any) -> None:
        async for event in subscription:
            try:
                self.consider(event)
            except Exception as exc:  # never let one odd event end the notifications
                log.warning("phone notification for %s skipped: %s", event.kind, exc)

    def consider(self, event: ev.Event) -> None:
        """Queue what `event` asks of the person, when that is something to send."""
        item = self._attention(event)
        settings = self.settings
        if item is None or not (settings.webhook or settings.ntfy) or item.kind not in settings.phone_events:
            return
        self._batcher.burst_s = settings.phone_coalesce_s
        if self._batcher.offer(item, time.monotonic()) == "opened":
            self._spawn(self._flush_after(settings.phone_coalesce_s))

    def _attention(self, event: ev.Event) -> Attention | None:
        session = self._engine.sessions.get(event.session)
        if session is None:
            return None
        data = event.data
        if event.kind == ev.APPROVAL_REQUEST:
            return Attention(session.id, session.number, session.name, "approval",
                             f"approve {data.get('tool', '?')}: {data.get('title', '')}")
        if event.kind == ev.ERROR:
            return Attention(session.id, session.number, session.name, "error", str(data.get("text", "error")))
        if event.kind == ev.APPROVAL_RESOLVED:
            host = self._engine.hosts.get(session.id)
            if host is None or not host.pending:  # answered (at the desk?) before the message went out
                self._batcher.withdraw(lambda item: item.session == session.id and item.kind == "approval")
            return None
        was, self._states[session.id] = self._states.get(session.id), str(data.get("state", ""))
        if was in _WORKING and data.get("state") == State.IDLE.value and data.get("detail") != "interrupted":
            return Attention(session.id, session.number, session.name, "finished", "finished its turn")
        return None

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        items = self._batcher.take_items()
        if not items:
            return
        settings = self.settings
        message = compose(items, secret_values(self._engine.config))
        self.sent.append(message)
        sends = []
        if settings.webhook:
            sends.append(_post(settings.webhook, message.to_json(), {"Content-Type": "application/json"}))
        if settings.ntfy:
            sends.append(_post(settings.ntfy, message.body.encode("utf-8"), {
                "Title": _header(message.title), "Priority": message.priority, "Tags": message.tags,
            }))
        await asyncio.gather(*sends)


async def _post(url: str, body: bytes, headers: dict[str, str]) -> None:
    """POST once; a failure (refused, timed out, not 2xx, a bad URL) is one log line."""
    import aiohttp  # here, not at the top: 0.2 s of every start-up, screen included, for a rare send

    where = urlsplit(url).hostname or "?"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT_S)) as client:
            async with client.post(url, data=body, headers=headers) as response:
                if response.status >= 300:
                    log.warning("phone notification to %s failed: HTTP %s", where, response.status)
    except asyncio.TimeoutError:
        log.warning("phone notification to %s failed: no answer within %g s", where, SEND_TIMEOUT_S)
    except (aiohttp.ClientError, ValueError, OSError) as exc:
        log.warning("phone notification to %s failed: %s", where, str(exc) or type(exc).__name__)


def _header(text: str) -> str:
    """A header value on one line: plain ASCII as is, else RFC 2047 (which ntfy decodes)."""
    text = " ".join(text.split())
    if text.isascii():
        return text
    return Header(text, "utf-8").encode(maxlinelen=0)

