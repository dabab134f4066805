"""`cockpit plan "task"` and the verbs on a plan: show, approve, reject, edit, drop, ls.

    cockpit plan "add a --json flag to every command"   # a conductor session starts planning
    cockpit plan --show k3f9                               # the tree: sub-tasks, sessions, state
    cockpit plan --approve k3f9 | --reject k3f9
    cockpit plan --drop k3f9 s3
    cockpit plan --edit k3f9 s2 --task "…" --files cli.py --files docs/

Like every verb these talk to this home's cockpit server (started when none runs), `--remote`,
or with `--local` an engine in this process (where no agent runs: the conductor waits for the
screen or the server).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from cockpit.errors import CockpitError
from cockpit.plan.tree import tree_lines


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    plan = sub.add_parser("plan", parents=parents, help="a conductor splits a task into parallel sessions (P on the screen)")
    plan.add_argument("task", nargs="*", help="what to do; the conductor proposes sub-tasks for you to approve")
    plan.add_argument("--agent", default="", help="the agent of the sub-tasks' sessions (default: the default agent)")
    verbs = plan.add_mutually_exclusive_group()
    verbs.add_argument("--ls", action="store_true", help="every plan, one line each")
    verbs.add_argument("--show", metavar="PLAN", help="the plan's tree: sub-tasks, their sessions, state, diffstat")
    verbs.add_argument("--approve", metavar="PLAN", help="approve the proposed plan: its sessions start")
    verbs.add_argument("--reject", metavar="PLAN", help="reject the proposed plan (the conductor may propose again)")
    verbs.add_argument("--drop", nargs=2, metavar=("PLAN", "SUBTASK"), help="leave a pending sub-task out")
    verbs.add_argument("--edit", nargs=2, metavar=("PLAN", "SUBTASK"), help="change a pending sub-task (--text, --files)")
    plan.add_argument("--text", default=None, help="with --edit: the sub-task's new instruction; with --reject: why")
    plan.add_argument("--files", action="append", default=None, help="with --edit: a file or glob it may touch (repeatable)")
    plan.add_argument("--json", action="store_true", help="print JSON")
    plan.set_defaults(handler=run)


def command_of(args: argparse.Namespace, repo: str) -> dict[str, Any]:
    """The JSON command the flags ask for; a mistake is one line naming the flag."""
    if args.files is not None and not args.edit:
        raise CockpitError("plan: --files goes with --edit")
    if args.text is not None and not (args.edit or args.reject):
        raise CockpitError("plan: --text goes with --edit or --reject")
    if args.ls:
        return {"cmd": "plan_list"}
    if args.show:
        return {"cmd": "plan_status", "plan": args.show}
    if args.approve:
        return {"cmd": "plan_approve", "plan": args.approve}
    if args.reject:
        return {"cmd": "plan_reject", "plan": args.reject, "reason": args.text or ""}
    if args.drop:
        return {"cmd": "plan_drop", "plan": args.drop[0], "subtask": args.drop[1]}
    if args.edit:
        if args.text is None and args.files is None:
            raise CockpitError("plan --edit: say what changes: --text and/or --files")
        return {"cmd": "plan_edit", "plan": args.edit[0], "subtask": args.edit[1], "task": args.text,
                "files": args.files}
    task = " ".join(args.task).strip()
    if not task:
        raise CockpitError('plan: say what to do, e.g. `cockpit plan "add a --json flag to every command"`')
    return {"cmd": "plan_new", "repo": repo, "task": task, "agent": args.agent}


def run(args: argparse.Namespace) -> int:
    from cockpit.client.cli import repo_argument

    command = command_of(args, repo_argument(args))
    result = asyncio.run(_execute(args, command))
    if args.json:
        from cockpit.client.cli import print_json

        print_json(result)
    elif command["cmd"] == "plan_list":
        for plan in result:
            print(f"{plan['id']}  {plan['status']:<9} {len(plan['subtasks'])} sub-tasks  {plan['task'].splitlines()[0]}")
    elif command["cmd"] == "plan_new":
        print(f"plan {result['id']}: the conductor (session {result['conductor']}) is planning; "
              f"approve its proposal on the screen (P) or with `cockpit plan --approve {result['id']}`")
    elif command["cmd"] == "plan_status":
        print("\n".join(tree_lines(result)))
    else:
        print("\n".join(tree_lines(result.get("plan", result))))
    return 0


async def _execute(args: argparse.Namespace, command: dict[str, Any]) -> Any:
    from cockpit.client.cli import connected

    async with connected(args) as client:
        return await client.execute(command)
