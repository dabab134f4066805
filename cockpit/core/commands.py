"""Engine commands as JSON: the same verbs for the CLI, the UI and (later) the socket server.

Features add theirs at start-up (`cockpit.core.registry`).

A command is `{"cmd": "<name>", ...arguments}`; the result is JSON-able. Unknown commands and
missing or unexpected arguments are `CockpitError`s that name the command and the argument.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from cockpit.errors import CockpitError

if TYPE_CHECKING:
    from cockpit.core.ports import CommandEngine


async def _create(engine: CommandEngine, repo: str, **kwargs: Any) -> list[dict[str, Any]]:
    try:
        inspect.signature(engine.create_sessions).bind(repo, **kwargs)
    except TypeError as exc:
        raise CockpitError(f"command 'create': {exc}") from None
    return [s.to_dict() for s in await engine.create_sessions(repo, **kwargs)]


async def _send_line(engine: CommandEngine, line: str, focused: str | None = None,
                     marked: list[str] = ()) -> list[str]:
    return [s.id for s in await engine.send_line(line, focused=focused, marked=marked)]


async def _ls(engine: CommandEngine) -> list[dict[str, Any]]:
    paused = engine.paused
    return [{**row, "paused": paused} for row in engine.snapshot()]


async def _transcript(engine: CommandEngine, session: str) -> list[dict[str, Any]]:
    return [e.to_dict() for e in await engine.transcript(engine.get(session).id)]


async def _session_result(call: Awaitable[Any]) -> Any:
    result = await call
    return result.to_dict() if hasattr(result, "to_dict") else None


async def _dicts(call: Awaitable[list[Any]]) -> list[dict[str, Any]]:
    return [item.to_dict() for item in await call]


async def _term_input(engine: CommandEngine, session: str, data: str) -> None:
    if not isinstance(data, str):
        raise CockpitError(f"command 'term_input': data must be text, got {type(data).__name__}")
    backend = await engine.terminal(session)
    if backend is not None:
        await backend.write_input(data)


async def _term_resize(engine: CommandEngine, session: str, cols: int, rows: int) -> bool:
    """Resize the terminal if its program runs here; False when it does not (nothing started)."""
    for name, value in (("cols", cols), ("rows", rows)):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
            raise CockpitError(f"command 'term_resize': {name} must be a whole number from 1 to 1000, got {value!r}")
    backend = await engine.terminal(session, start=False)
    if backend is None:
        return False
    return await backend.resize(cols, rows)  # kept for the next start when the program is not running


async def _term_screen(engine: CommandEngine, session: str, start: bool = False) -> dict[str, Any] | None:
    """The whole screen of a terminal session (starting its program when `start`), else None."""
    backend = await engine.terminal(session, start=bool(start))
    return await backend.screen_frame() if backend is not None else None


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
    "trust": lambda e, repo, revoke=False, digest="": e.trust(repo, revoke, digest),
    "remove": lambda e, session, delete_branch=False: e.remove(session, delete_branch=delete_branch),
    "verify": lambda e, session: e.landing.verify(session),
    "merge_preview": lambda e, session, target=None: e.landing.preview(session, target),
    "merge_message": lambda e, session, target=None: e.landing.message(session, target),
    "merge": lambda e, session, strategy=None, message=None, target=None: e.landing.merge(
        session, strategy, message, target),
    "rebase_onto_target": lambda e, session, target=None: e.landing.rebase_onto_target(session, target),
    "compare": lambda e, sessions=None, group=None: e.landing.compare(sessions, group),
    "queue_plan": lambda e, sessions=None: e.landing.queue_plan(sessions),
    "queue_run": lambda e, order: e.landing.queue_run(order),
    "pr": lambda e, session, target=None: e.landing.open_pull_request(session, target),
    "diff": lambda e, session, path=None: _session_result(e.review.diff(session, path)),
    "revert_hunk": lambda e, session, path, hunk, digest: e.review.revert_hunk(session, path, hunk, digest),
    "comment": lambda e, session, path, line, text: e.review.comment(session, path, line, text),
    "checkpoints": lambda e, session: _dicts(e.review.checkpoints(session)),
    "checkpoint_diff": lambda e, session, n, path=None: _session_result(e.review.checkpoint_diff(session, n, path)),
    "rollback": lambda e, session, n: _session_result(e.review.rollback(session, n)),
    "term_input": _term_input,
    "term_resize": _term_resize,
    "term_screen": _term_screen,
}


async def dispatch(engine: CommandEngine, command: dict[str, Any]) -> Any:
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
