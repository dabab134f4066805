"""Plans end to end: a scripted conductor (the built-in agent with the cockpit's verbs as tools,
talking to `cockpit.sim` through litellm) proposes a three-part plan, the person approves it, three
real sessions in real worktrees do the parts, and the conductor waits, verifies and lands them
through the merge queue in the plan's order."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from conftest import run_git
from experiment_helpers import sim_config, until

from cockpit.agents.factory import make_agent
from cockpit.core import events as ev
from cockpit.core.states import State
from cockpit.plan import model as pm
from cockpit.sim import ScriptedLLMServer

pytestmark = pytest.mark.asyncio

TASK = "Add a greeting, its docs and a changelog"


@pytest.fixture
async def server() -> AsyncIterator[ScriptedLLMServer]:
    async with ScriptedLLMServer("plan") as srv:
        yield srv


async def plan_engine(open_engine, server):
    config = sim_config(server.url)
    config.review.verify = "test -f README.md"
    return await open_engine(config, make_agent)


async def proposed(engine, plan_id: str) -> dict:
    await until(lambda: engine.plans.store.load(plan_id).status == pm.PROPOSED, "the conductor's proposal")
    return await engine.execute({"cmd": "plan_status", "plan": plan_id})


async def test_a_three_part_plan_runs_and_lands_in_order(open_engine, server, repo):
    engine = await plan_engine(open_engine, server)
    events = engine.subscribe(accept=lambda e: e.kind == ev.PLAN)
    plan = await engine.execute({"cmd": "plan_new", "repo": str(repo), "task": TASK})
    conductor = engine.sessions[plan["conductor"]]
    assert conductor.agent == "conductor" and f"plan-{plan['id']}" in conductor.tags

    shown = await proposed(engine, plan["id"])
    assert [(r["id"], r["files"], r["after"]) for r in shown["rows"]] == [
        ("s1", ["hello.py"], []), ("s2", ["docs/"], []), ("s3", ["CHANGELOG.md"], ["s1"])]
    assert conductor.state == State.WAITING  # the proposal waits for the person

    approved = await engine.execute({"cmd": "plan_approve", "plan": plan["id"]})
    assert [s["subtask"] for s in approved["started"]] == ["s1", "s2"]  # s3 waits for s1 to merge

    await until(lambda: engine.plans.store.load(plan["id"]).status == pm.DONE, "every sub-task merged", 90)
    await until(lambda: conductor.state == State.IDLE, "the conductor's last turn")

    done = engine.plans.store.load(plan["id"])
    assert [s.status for s in done.subtasks] == [pm.MERGED] * 3
    assert done.notes == ["All three sub-tasks landed."]
    sessions = [engine.sessions[s.session] for s in done.subtasks]
    assert all(f"plan-{plan['id']}" in s.tags and s.state == State.MERGED for s in sessions)
    files = run_git(repo, "ls-tree", "-r", "--name-only", "main").split()
    assert {"hello.py", "docs/usage.md", "CHANGELOG.md"} <= set(files)
    # The changelog was made from main after the greeting landed: its session's base has hello.py.
    assert "hello.py" in run_git(repo, "ls-tree", "-r", "--name-only", sessions[2].base_commit).split()
    statuses = [e.data["plan"]["status"] for e in events.get_nowait()]
    assert statuses[0] == pm.DRAFTING and pm.PROPOSED in statuses and statuses[-1] == pm.DONE
