"""Engine commands as JSON: the same verbs for the CLI, the UI and (later) the socket server.

A command is `{"cmd": "<name>", ...arguments}`; the result is JSON-able. Unknown commands and
missing or unexpected arguments are `CockpitError`s that name the command and the argument.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from cockpit.errors import CockpitError

if TYPE_CHECKING:
    from cockpit.core.engine import Engine


async def _create(engine: Engine, repo: str, **kwargs: Any) -> list[dict[str, Any]]:
    try:
        inspect.signature(engine.create_sessions).bind(repo, **kwargs)
    except TypeError as exc:
        raise CockpitError(f"command 'create': {exc}") from None
    return [s.to_dict() for s in await engine.create_sessions(repo, **kwargs)]


async def _send_line(engine: Engine, line: str, focused: str | None = None, marked: list[str] = ()) -> list[str]:
    return [s.id for s in await engine.send_line(line, focused=focused, marked=marked)]


async def _ls(engine: Engine) -> list[dict[str, Any]]:
    return engine.snapshot()


async def _transcript(engine: Engine, session: str) -> list[dict[str, Any]]:
    return [e.to_dict() for e in await engine.transcript(engine.get(session).id)]


async def _session_result(call: Awaitable[Any]) -> Any:
    result = await call
    return result.to_dict() if hasattr(result, "to_dict") else None


COMMANDS: dict[str, Callable[..., Awaitable[Any]]] = {
    "create": _create,
    "send_line": _send_line,
    "ls": _ls,
    "transcript": _transcript,
    "send": lambda e, session, text: e.send(session, text),
    "interrupt": lambda e, session: e.interrupt(session),
    "resume": lambda e, session: e.resume(session),
    "approve": lambda e, session, id=None, reason="", always=False: e.approve(session, id, reason=reason, always=always),
    "deny": lambda e, session, id=None, reason="": e.deny(session, id, reason=reason),
    "tag": lambda e, session, add=(), remove=(): _session_result(e.tag(session, add, remove)),
    "rename": lambda e, session, name: _session_result(e.rename(session, name)),
    "archive": lambda e, session: _session_result(e.archive(session)),
    "unarchive": lambda e, session: _session_result(e.unarchive(session)),
    "remove": lambda e, session, delete_branch=False: e.remove(session, delete_branch=delete_branch),
}


async def dispatch(engine: Engine, command: dict[str, Any]) -> Any:
    args = dict(command)
    name = args.pop("cmd", None)
    handler = COMMANDS.get(name) if isinstance(name, str) else None
    if handler is None:
        raise CockpitError(f"unknown command {name!r} (known: {', '.join(sorted(COMMANDS))})")
    try:
        inspect.signature(handler).bind(engine, **args)
    except TypeError as exc:
        raise CockpitError(f"command {name!r}: {exc}") from None
    return await handler(engine, **args)
