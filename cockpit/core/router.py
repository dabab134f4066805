"""Parsing an instruction line into targets and text.

Targets are the leading words that start with `@` or `#`: `@3` (number), `@api` (name, slug or
id), `#backend` (tag) and the groups `@all @marked @waiting @idle @error @running`. A repository
scopes a target: `@web:` is every open session of repository `web`, `@web:fix` / `@web:#ui` /
`@web:waiting` that target among its sessions only. A line with no targets goes to the marked
set, else the focused session. Anything that names nobody is refused with a message, never
dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cockpit.core.model import Session
from cockpit.core.states import State
from cockpit.errors import RouteError

_STATE_GROUPS = {
    "waiting": State.WAITING, "idle": State.IDLE, "error": State.ERROR, "running": State.RUNNING,
}
GROUPS = ("all", "marked", *_STATE_GROUPS)
_CLOSED = (State.ARCHIVED, State.MERGED)


@dataclass(frozen=True)
class Route:
    targets: tuple[Session, ...]
    text: str


_TARGET = re.compile(r"\s*([@#]\S+)(?=\s|$)")


def split_targets(line: str) -> tuple[list[str], str]:
    """Leading `@x` / `#x` words, and the rest of the line (its inner spacing kept).

    Targets may be separated by any whitespace; a lone `@` or `#` is text, not a target.
    """
    tokens: list[str] = []
    position = 0
    while match := _TARGET.match(line, position):
        tokens.append(match.group(1))
        position = match.end()
    return tokens, line[position:].strip()


def resolve_token(token: str, sessions: Sequence[Session], marked: Iterable[str] = ()) -> list[Session]:
    """The sessions one target word names (empty if none)."""
    open_sessions = [s for s in sessions if s.state not in _CLOSED]
    if token.startswith("#"):
        tag = token[1:].lower()
        return [s for s in open_sessions if tag in (t.lower() for t in s.tags)]
    name = token[1:]
    repo, colon, inner = name.partition(":")
    if colon:
        mine = [s for s in sessions if s.repo.lower() == repo.lower()]
        if not inner:
            return [s for s in mine if s.state not in _CLOSED]
        return resolve_token(inner if inner.startswith("#") else "@" + inner, mine, marked)
    key = name.lower()
    if key == "all":
        return open_sessions
    if key == "marked":
        wanted = set(marked)
        return [s for s in sessions if s.id in wanted]
    if key in _STATE_GROUPS:
        return [s for s in sessions if s.state == _STATE_GROUPS[key]]
    if name.isdigit():
        return [s for s in sessions if s.number == int(name)]
    exact = [s for s in sessions if key in (s.id.lower(), s.name.lower(), s.slug.lower())]
    if exact:
        return exact
    by_prefix = [s for s in sessions if s.id.lower().startswith(key)]
    return by_prefix if len(by_prefix) == 1 else []


def route(
    line: str,
    sessions: Sequence[Session],
    *,
    focused: str | None = None,
    marked: Iterable[str] = (),
) -> Route:
    tokens, text = split_targets(line)
    marked = list(marked)
    if not text:
        raise RouteError("nothing to send: type an instruction after the targets")
    if not tokens:
        wanted = set(marked)
        chosen = [s for s in sessions if s.id in wanted] or [s for s in sessions if s.id == focused]
        if not chosen:
            raise RouteError("no target: focus a pane, mark panes, or start with @name / #tag")
        return Route(tuple(chosen), text)
    targets: dict[str, Session] = {}
    unknown: list[str] = []
    empty: list[str] = []
    for token in tokens:
        found = resolve_token(token, sessions, marked)
        if not found:
            # a group (@waiting) that names nobody right now is not a typo; a tag nobody has may be
            (empty if _names_a_group(token, sessions) else unknown).append(token)
        for session in found:
            targets.setdefault(session.id, session)
    if unknown:
        raise RouteError(f"unknown target{'s' if len(unknown) > 1 else ''}: {' '.join(unknown)}")
    if not targets:
        raise RouteError(f"nobody to send to: no session matches {' '.join(empty)} right now")
    return Route(tuple(targets.values()), text)


def _names_a_group(token: str, sessions: Sequence[Session]) -> bool:
    """Whether `token` is a group that may be empty right now (not a typo): `@waiting`, and a
    known repository's `@web:` or `@web:waiting`."""
    if not token.startswith("@"):
        return False
    repo, colon, inner = token[1:].partition(":")
    if colon:
        known = any(s.repo.lower() == repo.lower() for s in sessions)
        return known and (not inner or inner.lower() in GROUPS)
    return token[1:].lower() in GROUPS
