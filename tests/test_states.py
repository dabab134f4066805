"""The session state machine: every pair of states is either allowed or refused with a message."""

from __future__ import annotations

import itertools

import pytest

from cockpit.core.states import LIVE, State, can_transition, check_transition
from cockpit.errors import StateError

S = State
#: The transitions the rest of the cockpit relies on, written out independently of states.py.
LEGAL = {
    (S.STARTING, S.RUNNING), (S.STARTING, S.IDLE), (S.STARTING, S.ERROR), (S.STARTING, S.ARCHIVED),
    (S.RUNNING, S.WAITING), (S.RUNNING, S.IDLE), (S.RUNNING, S.ERROR), (S.RUNNING, S.ARCHIVED),
    (S.WAITING, S.RUNNING), (S.WAITING, S.IDLE), (S.WAITING, S.ERROR), (S.WAITING, S.ARCHIVED),
    (S.IDLE, S.RUNNING), (S.IDLE, S.ERROR), (S.IDLE, S.MERGED), (S.IDLE, S.ARCHIVED),
    (S.ERROR, S.RUNNING), (S.ERROR, S.IDLE), (S.ERROR, S.MERGED), (S.ERROR, S.ARCHIVED),
    (S.MERGED, S.RUNNING), (S.MERGED, S.ARCHIVED),
    (S.ARCHIVED, S.IDLE),
}


@pytest.mark.parametrize(("current", "new"), sorted(LEGAL | {(s, s) for s in State}))
def test_legal_transitions(current, new):
    assert can_transition(current, new)
    assert check_transition(current, new) is new


ILLEGAL = sorted(set(itertools.product(State, State)) - LEGAL - {(s, s) for s in State})


@pytest.mark.parametrize(("current", "new"), ILLEGAL)
def test_illegal_transitions_are_refused_by_name(current, new):
    assert not can_transition(current, new)
    with pytest.raises(StateError) as caught:
        check_transition(current, new)
    assert str(caught.value) == f"a session cannot go from {current.value} to {new.value}"


def test_notable_refusals():
    # An archived session must be un-archived (to idle) before it can work again,
    # and nothing goes back to starting.
    assert not can_transition(S.ARCHIVED, S.RUNNING)
    assert not can_transition(S.IDLE, S.WAITING)
    assert all(not can_transition(s, S.STARTING) for s in State if s is not S.STARTING)
    assert len(ILLEGAL) == 49 - 7 - len(LEGAL)


def test_live_states_and_values():
    assert LIVE == {S.STARTING, S.RUNNING, S.WAITING}
    assert [s.value for s in State] == ["starting", "running", "waiting", "idle", "error", "merged", "archived"]
    assert State("waiting") is S.WAITING
