"""The plan commands, for `Engine.execute` (the UI, the CLI, a remote client and the conductor).

    {"cmd": "plan_new", "repo": "/src/app", "task": "add a --json flag to every command"}
    {"cmd": "plan_propose", "plan": "k3f9", "summary": "…", "subtasks": [{"id": "s1", "task": "…", "files": […]}]}
    {"cmd": "plan_edit", "plan": "k3f9", "subtask": "s2", "task": "…", "files": ["cli.py"]}
    {"cmd": "plan_drop", "plan": "k3f9", "subtask": "s3"}
    {"cmd": "plan_approve", "plan": "k3f9"}            {"cmd": "plan_reject", "plan": "k3f9", "reason": "…"}
    {"cmd": "plan_start", "plan": "k3f9", "subtask": "s3"}
    {"cmd": "plan_send", "plan": "k3f9", "subtask": "s1", "text": "…"}
    {"cmd": "plan_wait", "plan": "k3f9", "subtasks": ["s1"], "timeout": 600}
    {"cmd": "plan_answer", "plan": "k3f9", "subtask": "s2", "approve": true, "reason": ""}
    {"cmd": "plan_merge", "plan": "k3f9", "subtasks": ["s1", "s2"]}
    {"cmd": "plan_note", "plan": "k3f9", "text": "…"}
    {"cmd": "plan_status", "plan": "k3f9"}             {"cmd": "plan_list"}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

async def _list(engine: Any) -> list[dict[str, Any]]:
    return engine.plans.list()


PLAN_COMMANDS: dict[str, Callable[..., Awaitable[Any]]] = {
    "plan_new": lambda e, repo, task, agent="": e.plans.new(repo, task, agent),
    "plan_propose": lambda e, plan, subtasks, summary="": e.plans.propose(plan, subtasks, summary),
    "plan_edit": lambda e, plan, subtask, title=None, task=None, files=None: e.plans.edit(
        plan, subtask, title=title, task=task, files=files),
    "plan_drop": lambda e, plan, subtask: e.plans.drop(plan, subtask),
    "plan_approve": lambda e, plan: e.plans.approve(plan),
    "plan_reject": lambda e, plan, reason="": e.plans.reject(plan, reason),
    "plan_start": lambda e, plan, subtask: e.plans.start(plan, subtask),
    "plan_send": lambda e, plan, subtask, text: e.plans.send(plan, subtask, text),
    "plan_wait": lambda e, plan, subtasks=None, timeout=600: e.plans.wait(plan, subtasks, timeout),
    "plan_answer": lambda e, plan, subtask, approve, reason="": e.plans.answer(plan, subtask, approve, reason),
    "plan_merge": lambda e, plan, subtasks=None: e.plans.merge(plan, subtasks),
    "plan_note": lambda e, plan, text: e.plans.note(plan, text),
    "plan_status": lambda e, plan: e.plans.status(plan),
    "plan_list": _list,
}
