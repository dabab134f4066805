"""Grouping approval requests by what they ask, and past answers into rule suggestions (pure).

A pending request is a dict as the engine's `inbox_pending` lists it (session, number, name,
repo, id, tool, title, detail; `host` when several cockpits are attached). Groups span
sessions, repositories and hosts: one key answers a whole group, wherever its requests wait.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cockpit.inbox.shapes import Shape, request_command, shape_of

#: Approvals of one shape (and no denial) after which the inbox suggests allowing it.
SUGGEST_AFTER = 3


@dataclass
class Group:
    """Pending requests of one shape, oldest first."""

    shape: Shape
    requests: list[dict[str, Any]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.shape.key

    @property
    def label(self) -> str:
        """The widest of its members' labels (`pytest …` over `pytest`)."""
        return max(self.labels, key=lambda label: (label.count("…"), label))

    @property
    def sessions(self) -> list[str]:
        return list(dict.fromkeys(r["session"] for r in self.requests))

    @property
    def commands(self) -> list[str]:
        """The distinct shell commands asked (none for file and other requests)."""
        found = (request_command(r["tool"], r["title"], r.get("detail", "")) for r in self.requests)
        return list(dict.fromkeys(c for c in found if c is not None))

    def by_repo(self) -> dict[tuple[str, str], str]:
        """(host, repository) → a session of this group there: what a rule for the repository
        is sent through (commands about a session reach the host that has it)."""
        out: dict[tuple[str, str], str] = {}
        for request in self.requests:
            out.setdefault((request.get("host", ""), request.get("repo", "")), request["session"])
        return out


def group_pending(requests: Iterable[Mapping[str, Any]]) -> list[Group]:
    """Requests grouped by shape; the biggest group first, then by label (a stable order)."""
    groups: dict[str, Group] = {}
    for request in requests:
        shape = shape_of(request["tool"], request["title"], request.get("detail", ""))
        group = groups.setdefault(shape.key, Group(shape))
        group.requests.append(dict(request))
        if shape.label not in group.labels:
            group.labels.append(shape.label)
    return sorted(groups.values(), key=lambda g: (-len(g.requests), g.label))


@dataclass
class Tally:
    """How the person answered requests of one shape."""

    shape: Shape
    approved: int = 0
    denied: int = 0
    commands: list[str] = field(default_factory=list)  # distinct, as asked

    def widen(self, shape: Shape) -> None:
        """Keep the widest label of the shape seen (`make lint …` over `make lint`)."""
        if shape.label.count("…") > self.shape.label.count("…"):
            self.shape = shape


def tally_answers(events: Iterable[Any]) -> dict[str, Tally]:
    """Shape key → answers, from one session's `approval.request` / `approval.resolved` events in
    order (a resolved event names its request by id; ids restart with the process, so the latest
    request of that id is the one answered)."""
    asked: dict[str, Mapping[str, Any]] = {}
    tallies: dict[str, Tally] = {}
    for event in events:
        data = event.data
        if event.kind == "approval.request":
            asked[data.get("id", "")] = data
            continue
        request = asked.pop(data.get("id", ""), None) if event.kind == "approval.resolved" else None
        if request is None:
            continue
        tool, title, detail = request.get("tool", ""), request.get("title", ""), request.get("detail", "")
        shape = shape_of(tool, title, detail)
        tally = tallies.setdefault(shape.key, Tally(shape))
        tally.widen(shape)
        if data.get("approved"):
            tally.approved += 1
        else:
            tally.denied += 1
        command = request_command(tool, title, detail)
        if command is not None and command not in tally.commands:
            tally.commands.append(command)
    return tallies


def merge_tallies(into: dict[str, Tally], more: Mapping[str, Tally]) -> None:
    for key, tally in more.items():
        mine = into.setdefault(key, Tally(tally.shape))
        mine.approved += tally.approved
        mine.denied += tally.denied
        mine.commands += [c for c in tally.commands if c not in mine.commands]
        mine.widen(tally.shape)


def worth_suggesting(tally: Tally) -> bool:
    """Approved often and never denied: a rule would only save the person keys."""
    return bool(tally.shape.patterns) and tally.approved >= SUGGEST_AFTER and tally.denied == 0
