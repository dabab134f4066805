"""The merge queue: which open sessions collide, in what order to land them, and landing them.

`plan` looks at every candidate's change as it is now (HEAD + uncommitted + untracked) and
reports the files each touches, the pairs that touch the same files, the pairs that would
conflict with each other and the sessions that conflict with their target (all by
`merge-tree`, without touching any checkout). `run` lands sessions one by one and stops at the
first that does not land cleanly or whose merged result is red.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from cockpit.core import events as ev
from cockpit.core.merge import changed_files, merge_tree, read_tip, resolve_target, tip_commit
from cockpit.core.model import Session
from cockpit.core.states import State
from cockpit.core.verify import passed_on
from cockpit.errors import CockpitError

if TYPE_CHECKING:
    from cockpit.core.ports import Desk

T = TypeVar("T")


@dataclass
class _Entry:
    session: Session
    target: str = ""
    commit: str = ""  # the session's tip as a commit (snapshot on top of HEAD)
    files: tuple[str, ...] = ()
    target_conflicts: tuple[str, ...] = ()
    green: bool = False  # the last verify passed on exactly this change
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "session": self.session.id, "number": self.session.number, "name": self.session.name,
            "target": self.target, "files": list(self.files), "target_conflicts": list(self.target_conflicts),
            "verified": self.green, "error": self.error,
        }


async def plan(landing: Desk, refs: list[str] | None = None) -> dict[str, Any]:
    """Files, overlaps, conflicts and a suggested order for `refs` (default: every open session
    with changes)."""
    engine = landing.engine
    if refs:
        sessions = [engine.get(ref) for ref in refs]
    else:
        sessions = [s for s in sorted(engine.sessions.values(), key=lambda s: s.number)
                    if s.state not in (State.MERGED, State.ARCHIVED) and s.path.is_dir()]
    entries = list(await asyncio.gather(*(_entry(landing, s) for s in sessions)))
    if not refs:
        entries = [e for e in entries if e.files or e.error]
    pairs = overlaps([e for e in entries if not e.error], lambda e: e.target, lambda e: e.files)
    merged = await asyncio.gather(*(_pair_conflicts(landing, a, b) for a, b, _ in pairs))
    conflicts = {frozenset((a.session.id, b.session.id)): files for (a, b, _), files in zip(pairs, merged) if files}
    order, blocked = suggest_order(entries, conflicts)
    return {
        "sessions": [e.to_dict() for e in entries],
        "overlaps": [{"sessions": [a.session.id, b.session.id], "files": files} for a, b, files in pairs],
        "conflicts": [{"sessions": sorted(key), "files": files} for key, files in conflicts.items()],
        "order": order,
        "blocked": blocked,
    }


def overlaps(items: Sequence[T], group: Callable[[T], object],
             files: Callable[[T], Iterable[str]]) -> list[tuple[T, T, list[str]]]:
    """(a, b, the files both change) for each pair of `items` in the same group (e.g. landing
    on the same target) that change a file in common; pairs in the order of `items`."""
    return [(a, b, shared) for a, b in itertools.combinations(items, 2)
            if group(a) == group(b) and (shared := sorted(set(files(a)) & set(files(b))))]


async def _entry(landing: Desk, session: Session) -> _Entry:
    entry = _Entry(session)
    try:
        info = await landing.engine.repo_info(session.repo_id)
        entry.target = landing.target_name(session)
        target_commit = await resolve_target(info.root, entry.target)
        tip = await read_tip(session.path)
        entry.commit = await tip_commit(info.root, tip, "cockpit: merge queue plan")
        entry.files = tuple(await changed_files(info.root, target_commit, tip))
        entry.target_conflicts = tuple((await merge_tree(info.root, target_commit, entry.commit)).conflicts)
        entry.green = passed_on(session.verify, tip.tree)
    except CockpitError as exc:
        entry.error = str(exc)
    return entry


async def _pair_conflicts(landing: Desk, a: _Entry, b: _Entry) -> list[str]:
    info = await landing.engine.repo_info(a.session.repo_id)
    return (await merge_tree(info.root, a.commit, b.commit)).conflicts


def suggest_order(entries: list[_Entry], conflicts: dict[frozenset[str], list[str]]) -> tuple[list[str], list[str]]:
    """(order to land in, sessions that cannot land until rebased onto their target).

    Landing a session moves the target, so every session that conflicts with it then conflicts
    with the target. The order therefore tries to land as many sessions as possible cleanly:
    sessions that conflict with the fewest others go first (a greedy maximal set of mutually
    compatible changes), ties broken by a green verify on the current change (least likely to
    stop the queue), then by fewer files touched (small changes are cheap to verify and disturb
    the others least), then by session number. Sessions that conflict with one already picked
    follow (they will need a rebase once it lands), and those that already conflict with their
    target, or whose plan failed, are `blocked`.
    """
    degree = {e.session.id: sum(1 for key in conflicts if e.session.id in key) for e in entries}
    ready = sorted(
        (e for e in entries if not e.error and not e.target_conflicts),
        key=lambda e: (degree[e.session.id], not e.green, len(e.files), e.session.number),
    )
    first: list[str] = []
    later: list[str] = []
    for entry in ready:
        clash = any(frozenset((entry.session.id, picked)) in conflicts for picked in first)
        (later if clash else first).append(entry.session.id)
    blocked = [e.session.id for e in entries if e.error or e.target_conflicts]
    return first + later, blocked


async def run(landing: Desk, order: list[str]) -> dict[str, Any]:
    """Land the sessions in `order` one by one; stop at the first that does not land or is red.

    With a verify command configured, each merge result is verified in a scratch worktree
    BEFORE the target moves, so a red result is never landed: the target stays at the last
    green landing and the queue reports the red session with the verify output. (Verifying
    after landing would leave a red commit on the target for everyone.) The verify runs outside
    the repository lock; the target then moves with a compare-and-swap, so if anything else
    moved it meanwhile the landing is refused and the queue stops. Without a verify command
    the sessions land unverified (`verified` is false in the result).
    """
    if not order:
        raise CockpitError("queue_run needs an order of sessions (e.g. the order from queue_plan)")
    engine = landing.engine
    sessions = [engine.get(ref) for ref in order]
    verifying = all(landing.review(s).verify.strip() for s in sessions)
    landed: list[str] = []
    for position, session in enumerate(sessions, 1):
        scope = {"queue": {"position": position, "total": len(sessions)}}
        lock = await landing.repo_lock(session)
        try:
            async with lock:
                prepared = await landing.prepare(session, gate=not verifying)
            if verifying:
                result = await landing.verify_commit(session, prepared.commit, scope)
                if not result.passed:
                    reason = f"verify {result.state} on the merged result; {prepared.target} was not moved"
                    return _stopped(landing, landed, sessions[position - 1:], reason, verify=result.to_dict())
            async with lock:
                await landing.land(prepared)
        except CockpitError as exc:
            return _stopped(landing, landed, sessions[position - 1:], str(exc), conflicts=getattr(exc, "files", []))
        await landing.finish(prepared, scope)
        landed.append(session.id)
    return {"landed": landed, "stopped": None, "remaining": [], "verified": verifying}


def _stopped(landing: Desk, landed: list[str], rest: list[Session], reason: str, **details: Any) -> dict[str, Any]:
    session = rest[0]
    landing.engine.emit(session.id, ev.NOTICE, {"text": f"merge queue stopped at @{session.number}: {reason}"})
    return {
        "landed": landed, "stopped": {"session": session.id, "reason": reason, **details},
        "remaining": [s.id for s in rest], "verified": bool(landing.review(session).verify.strip()),
    }
