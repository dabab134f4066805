"""The JSON types of every protocol method's parameters, checked before the method runs.

The engine commands are plain Python functions without type checks of their own: a list where
text belongs would reach them and fail somewhere inside as a bug (`-32603`). The server checks
each parameter against the type its name stands for, so a wrong type is a `-32000` answer naming
the method, the parameter and what it must be. `None` is accepted where the parameter's default
is `None`. `tests/test_server_params.py` fails for a parameter name missing here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from cockpit.errors import CockpitError

TEXT, WHOLE, FLAG, LIST, OBJECT = "text", "a whole number", "true or false", "a list of text", "an object"
OBJECTS = "a list of objects"

#: What each parameter name means, across methods.
TYPES: dict[str, str] = {
    # sessions and their names
    "session": TEXT, "sessions": LIST, "name": TEXT, "focused": TEXT, "marked": LIST, "order": LIST,
    "add": LIST, "remove": LIST, "tags": LIST, "agents": LIST, "group": TEXT,
    # what is said and decided
    "text": TEXT, "line": TEXT, "reason": TEXT, "always": FLAG, "id": TEXT, "message": TEXT,
    "task": TEXT, "data": TEXT,
    # creating sessions
    "repo": TEXT, "base_ref": TEXT, "agent": TEXT, "model": TEXT, "count": WHOLE, "fork_of": TEXT,
    "branch": TEXT, "worktree": TEXT, "read_only": FLAG,
    # review and landing
    "path": TEXT, "hunk": WHOLE, "digest": TEXT, "n": WHOLE, "target": TEXT, "strategy": TEXT,
    "delete_branch": FLAG, "revoke": FLAG,
    # terminals
    "cols": WHOLE, "rows": WHOLE, "start": FLAG,
    # experiments
    "file": TEXT, "overrides": OBJECT,
    # the approval inbox's rules
    "patterns": LIST, "commands": LIST,
    # plans (the conductor)
    "plan": TEXT, "subtask": TEXT, "subtasks": LIST, "summary": TEXT, "title": TEXT, "files": LIST,
    "approve": FLAG, "timeout": WHOLE,
    # the protocol's own methods
    "protocol": TEXT, "client": TEXT, "tail": WHOLE, "after": WHOLE, "before": WHOLE, "limit": WHOLE,
}
#: Where a method uses a name differently.
METHOD_TYPES: dict[tuple[str, str], str] = {("comment", "line"): WHOLE, ("plan_propose", "subtasks"): OBJECTS}


def parameters(method: str, handler: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """The parameters a client may pass to `method` (`handler` with the engine already bound;
    `create` passes its options on to `Engine.create_sessions`)."""
    found = {name: p for name, p in inspect.signature(handler).parameters.items()
             if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    if method == "create":
        from cockpit.core.engine import Engine

        found.update((name, p) for name, p in inspect.signature(Engine.create_sessions).parameters.items()
                     if p.kind is p.KEYWORD_ONLY)
    return found


def check(method: str, params: dict[str, Any], handler: Callable[..., Any]) -> None:
    """Raise a CockpitError naming the first parameter whose value has the wrong type."""
    declared = parameters(method, handler)
    for name, value in params.items():
        parameter = declared.get(name)
        kind = METHOD_TYPES.get((method, name)) or TYPES.get(name)
        if parameter is None or kind is None:
            continue  # an unexpected name: binding the call says so
        if value is None and parameter.default is None:
            continue
        if not _is(kind, value):
            raise CockpitError(f"method {method!r}: parameter {name!r} must be {kind}, "
                               f"got {_json_type(value)}")


def _is(kind: str, value: Any) -> bool:
    if kind == TEXT:
        return isinstance(value, str)
    if kind == WHOLE:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == FLAG:
        return isinstance(value, bool)
    if kind == LIST:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if kind == OBJECTS:
        return isinstance(value, list) and all(isinstance(item, dict) for item in value)
    return isinstance(value, dict)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    return {str: "text", int: "a number", float: "a number", list: "a list with something else than text",
            dict: "an object"}.get(type(value), type(value).__name__)
