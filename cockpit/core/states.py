"""The session state machine.

Transitions are checked here so that no caller (agent, UI, server) can put a session into a
state that the rest of the cockpit does not expect, e.g. an archived session starting to run.
"""

from __future__ import annotations

from enum import StrEnum

from cockpit.errors import StateError


class State(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    WAITING = "waiting"  # for an approval or for input
    IDLE = "idle"
    ERROR = "error"
    MERGED = "merged"
    ARCHIVED = "archived"


_ALLOWED: dict[State, frozenset[State]] = {
    State.STARTING: frozenset({State.RUNNING, State.IDLE, State.ERROR, State.ARCHIVED}),
    State.RUNNING: frozenset({State.WAITING, State.IDLE, State.ERROR, State.ARCHIVED}),
    State.WAITING: frozenset({State.RUNNING, State.IDLE, State.ERROR, State.ARCHIVED}),
    State.IDLE: frozenset({State.RUNNING, State.ERROR, State.MERGED, State.ARCHIVED}),
    State.ERROR: frozenset({State.RUNNING, State.IDLE, State.MERGED, State.ARCHIVED}),
    State.MERGED: frozenset({State.ARCHIVED, State.RUNNING}),
    State.ARCHIVED: frozenset({State.IDLE}),  # un-archive
}

#: States in which an agent may be working and a person may want to look.
LIVE = frozenset({State.STARTING, State.RUNNING, State.WAITING})


def can_transition(current: State, new: State) -> bool:
    return new == current or new in _ALLOWED[current]


def check_transition(current: State, new: State) -> State:
    """Return `new` if the move is allowed, else raise a StateError naming both states."""
    if not can_transition(current, new):
        raise StateError(f"a session cannot go from {current.value} to {new.value}")
    return new
