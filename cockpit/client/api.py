"""The client protocol: the four members the screen (and the CLI verbs) use.

The in-process `Engine` satisfies it as it is; `RemoteClient` and `MultiClient` satisfy it over
the server's wire protocol, so the UI never knows where the agents run.
"""

from __future__ import annotations

from typing import Any, Protocol

from cockpit.core.events import Event


class EventFeed(Protocol):
    def get_nowait(self) -> list[Event]:
        """Every event queued right now (possibly none); a `resync` event means: reload."""
        ...


class CockpitClient(Protocol):
    def subscribe(self) -> EventFeed: ...

    def snapshot(self) -> list[dict[str, Any]]:
        """The sessions as dicts (`Session.to_dict()`, plus `host` on a multi-host client)."""
        ...

    async def transcript(self, session_id: str, tail: int = 0) -> list[Event]: ...

    async def execute(self, command: dict[str, Any]) -> Any:
        """Run one engine command, `{"cmd": name, ...arguments}` (core/commands.py)."""
        ...
