"""Several cockpits (one per `--remote` host) shown as one, every session labelled with its host.

Commands about a session go to the host that has it (session ids are unique across hosts, and
the screen always names sessions by id). An instruction line is routed over all sessions of
all hosts with the usual rules; `@host:3` narrows a target to one host, while a plain `@3`
names session 3 on every host that has one. New sessions go to the host named by the command's
`host` (the first host when none is named).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from cockpit.client.remote import RemoteClient
from cockpit.core.events import Event
from cockpit.core.model import Session
from cockpit.core.router import resolve_token, route, split_targets
from cockpit.errors import CockpitError, NotFound


class MultiClient:
    detachable = True

    def __init__(self, clients: dict[str, RemoteClient]):
        if not clients:
            raise CockpitError("no cockpit to attach to: give at least one --remote")
        self.clients = clients  # host label → client, in the order given

    async def connect(self) -> None:
        """Connect to every host at once; one that fails is named and the others are closed."""
        results = await asyncio.gather(*(c.connect() for c in self.clients.values()), return_exceptions=True)
        failed = [(host, r) for host, r in zip(self.clients, results) if isinstance(r, BaseException)]
        if failed:
            await self.close()
            host, exc = failed[0]
            if isinstance(exc, CockpitError):
                raise CockpitError(f"--remote {host}: {exc}") from None
            raise exc

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients.values()), return_exceptions=True)

    # -- the client protocol -------------------------------------------------------------------

    def subscribe(self) -> _MergedFeed:
        return _MergedFeed([c.subscribe() for c in self.clients.values()])

    def snapshot(self) -> list[dict[str, Any]]:
        return [s for client in self.clients.values() for s in client.snapshot()]

    async def transcript(self, session_id: str, tail: int = 0) -> list[Event]:
        return await self._owner(session_id).transcript(session_id, tail)

    async def execute(self, command: dict[str, Any]) -> Any:
        name = command.get("cmd")
        if name == "send_line":
            return await self._send_line(command["line"], command.get("focused"), command.get("marked") or ())
        if name == "ls":
            return self.snapshot()
        if name in _FAN_OUT:
            answers = await asyncio.gather(*(c.execute(command) for c in self.clients.values()))
            return [{**row, "host": host} for host, rows in zip(self.clients, answers) for row in rows]
        if "session" in command:
            return await self._owner(str(command["session"])).execute(command)
        if name == "create":
            args = dict(command)
            host = args.pop("host", None) or next(iter(self.clients))
            if host not in self.clients:
                raise CockpitError(f"no host {host!r} attached (attached: {', '.join(self.clients)})")
            return await self.clients[host].execute(args)
        raise CockpitError(f"command {name!r} needs a session when several hosts are attached")

    # -- routing ---------------------------------------------------------------------------------

    def _owner(self, session_id: str) -> RemoteClient:
        for client in self.clients.values():
            if client.owns(session_id):
                return client
        raise NotFound(f"no session {session_id!r} on any attached host")

    async def _send_line(self, line: str, focused: str | None, marked: Any) -> list[str]:
        sessions = [Session.from_dict(s) for s in self.snapshot()]
        routed = route(self._pin_hosts(line, sessions), sessions, focused=focused, marked=marked)
        for session in routed.targets:
            await self._owner(session.id).execute({"cmd": "send", "session": session.id, "text": routed.text})
        return [s.id for s in routed.targets]

    def _pin_hosts(self, line: str, sessions: list[Session]) -> str:
        """The line with each `@host:ref` target replaced by the ids it names on that host."""
        tokens, text = split_targets(line)
        hosts = {s.id: client for client in self.clients.values() for s in sessions if client.owns(s.id)}
        pinned: list[str] = []
        for token in tokens:
            match = _HOST_TARGET.match(token)
            if match and match.group(1) in self.clients:
                client = self.clients[match.group(1)]
                found = resolve_token("@" + match.group(2), [s for s in sessions if hosts[s.id] is client])
                pinned += [f"@{s.id}" for s in found] or [token]  # nobody: the router says so
            else:
                pinned.append(token)
        return " ".join([*pinned, text])


#: Commands that list something of every host: each host answers, its rows labelled with it.
_FAN_OUT = frozenset({"inbox_pending", "inbox_suggestions"})
_HOST_TARGET = re.compile(r"@([^:\s]+):(\S+)$")


class _MergedFeed:
    def __init__(self, feeds: list[Any]):
        self._feeds = feeds

    def get_nowait(self) -> list[Event]:
        return [event for feed in self._feeds for event in feed.get_nowait()]
