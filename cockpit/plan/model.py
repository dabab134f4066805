"""A plan: sub-tasks, the files each may touch and the order they must land in.

Pure data and checks, no engine: the conductor proposes sub-tasks as JSON, `parse_subtasks`
turns them into `SubTask`s or one line naming what to fix, and `landing_order` refuses a cycle
in `after`. A plan is saved whole as JSON (see `cockpit.plan.store`), so it survives restarts.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cockpit.errors import CockpitError

# plan status
DRAFTING, PROPOSED, APPROVED, DONE, REJECTED = "drafting", "proposed", "approved", "done", "rejected"
# sub-task status
PENDING, STARTED, MERGED, DROPPED = "pending", "started", "merged", "dropped"

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,19}$")
MAX_SUBTASKS = 20


class PlanError(CockpitError):
    """A plan (or an edit of one) that cannot be used as given; the message says what to fix."""


@dataclass
class SubTask:
    id: str  # short, from the conductor: "s1", "api"
    title: str
    task: str  # the instruction its session gets
    files: list[str] = field(default_factory=list)  # paths or globs it may touch; empty = any
    after: list[str] = field(default_factory=list)  # sub-tasks that must be merged before it starts
    status: str = PENDING
    session: str = ""  # the session's id once started

    def allows(self, path: str) -> bool:
        """Whether this sub-task may touch `path` (a glob matches a path or a folder prefix)."""
        return not self.files or any(
            fnmatch.fnmatch(path, pattern) or path.startswith(pattern.rstrip("/") + "/") for pattern in self.files)

    def outside(self, paths: Iterable[str]) -> list[str]:
        """The paths of a change that this sub-task was not given."""
        return [p for p in paths if not self.allows(p)]


@dataclass
class Plan:
    id: str
    repo: str
    task: str
    conductor: str = ""  # the conductor session's id
    agent: str = ""  # the agent of the sub-tasks' sessions; "" = the repository's default
    summary: str = ""
    subtasks: list[SubTask] = field(default_factory=list)
    status: str = DRAFTING
    notes: list[str] = field(default_factory=list)

    @property
    def tag(self) -> str:
        """The tag every session of the plan carries (`#plan-<id>` routes to all of them)."""
        return f"plan-{self.id}"

    def subtask(self, ref: str) -> SubTask:
        for sub in self.subtasks:
            if sub.id == ref:
                return sub
        known = ", ".join(s.id for s in self.subtasks) or "none yet"
        raise PlanError(f"plan {self.id} has no sub-task {ref!r} (sub-tasks: {known})")

    def live(self) -> list[SubTask]:
        return [s for s in self.subtasks if s.status != DROPPED]

    def ready(self) -> list[SubTask]:
        """Sub-tasks not started whose every `after` has merged (or was dropped)."""
        done = {s.id for s in self.subtasks if s.status in (MERGED, DROPPED)}
        return [s for s in self.subtasks if s.status == PENDING and set(s.after) <= done]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Plan:
        data = dict(raw)
        data["subtasks"] = [SubTask(**s) for s in data.get("subtasks") or []]
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def parse_subtasks(raw: Any) -> list[SubTask]:
    """Sub-tasks from the conductor's JSON, checked: unique ids, known `after`s, no cycle."""
    if not isinstance(raw, list) or not raw:
        raise PlanError("a plan needs a non-empty list of sub-tasks")
    if len(raw) > MAX_SUBTASKS:
        raise PlanError(f"a plan has at most {MAX_SUBTASKS} sub-tasks, got {len(raw)}")
    subtasks = [_subtask(item, n) for n, item in enumerate(raw, 1)]
    ids = [s.id for s in subtasks]
    duplicate = next((i for i in ids if ids.count(i) > 1), None)
    if duplicate:
        raise PlanError(f"sub-task id {duplicate!r} is used twice; give each sub-task its own id")
    for sub in subtasks:
        unknown = [a for a in sub.after if a not in ids]
        if unknown:
            raise PlanError(f"sub-task {sub.id!r}: 'after' names {unknown[0]!r}, which is not a sub-task "
                            f"(sub-tasks: {', '.join(ids)})")
    landing_order(subtasks)
    return subtasks


def _subtask(item: Any, n: int) -> SubTask:
    if not isinstance(item, Mapping):
        raise PlanError(f"sub-task {n} must be an object with id, title, task, files, after")
    sub_id = str(item.get("id") or f"s{n}")
    if not _ID.match(sub_id):
        raise PlanError(f"sub-task {n}: id {sub_id!r} must be lower-case letters, digits and '-' (at most 20)")
    task = item.get("task")
    if not isinstance(task, str) or not task.strip():
        raise PlanError(f"sub-task {sub_id!r} needs a 'task': the instruction its session gets")
    unknown = sorted(set(item) - {"id", "title", "task", "files", "after"})
    if unknown:
        raise PlanError(f"sub-task {sub_id!r}: unknown key {unknown[0]!r} (keys: id, title, task, files, after)")
    return SubTask(id=sub_id, title=str(item.get("title") or task.strip().splitlines()[0][:60]), task=task.strip(),
                   files=_strings(item.get("files"), f"sub-task {sub_id!r}: files"),
                   after=_strings(item.get("after"), f"sub-task {sub_id!r}: after"))


def _strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise PlanError(f"{what} must be a list of non-empty strings")
    return [v.strip() for v in value]


def landing_order(subtasks: list[SubTask]) -> list[str]:
    """The sub-task ids, each after everything in its `after` (stable otherwise); a cycle is refused."""
    by_id = {s.id: s for s in subtasks}
    order: list[str] = []
    visiting: list[str] = []

    def visit(sub_id: str) -> None:
        if sub_id in order:
            return
        if sub_id in visiting:
            cycle = " → ".join([*visiting[visiting.index(sub_id):], sub_id])
            raise PlanError(f"the sub-tasks wait for each other in a circle ({cycle}); remove one 'after'")
        visiting.append(sub_id)
        for dep in by_id[sub_id].after:
            if dep in by_id:
                visit(dep)
        visiting.pop()
        order.append(sub_id)

    for sub in subtasks:
        visit(sub.id)
    return order


def edit_subtask(plan: Plan, ref: str, *, title: str | None = None, task: str | None = None,
                 files: list[str] | None = None) -> SubTask:
    """Change a sub-task that has not started yet (what the person edits before approving)."""
    sub = plan.subtask(ref)
    if sub.status != PENDING:
        raise PlanError(f"sub-task {sub.id!r} is {sub.status}; only a pending sub-task can be edited")
    if task is not None:
        if not task.strip():
            raise PlanError(f"sub-task {sub.id!r}: the task cannot be empty (drop the sub-task instead)")
        sub.task = task.strip()
    if title is not None and title.strip():
        sub.title = title.strip()
    if files is not None:
        sub.files = _strings(files, f"sub-task {sub.id!r}: files")
    return sub


def drop_subtask(plan: Plan, ref: str) -> SubTask:
    """Leave a sub-task out; the ones after it no longer wait for it."""
    sub = plan.subtask(ref)
    if sub.status not in (PENDING,):
        raise PlanError(f"sub-task {sub.id!r} is {sub.status}; only a pending sub-task can be dropped")
    sub.status = DROPPED
    return sub
