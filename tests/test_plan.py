"""Plans end to end: a scripted conductor (the built-in agent with the cockpit's verbs as tools,
talking to `cockpit.sim` through litellm) proposes a three-part plan, the person approves it, three
real sessions in real worktrees do the parts, and the conductor waits, verifies and lands them
through the merge queue in the plan's order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import run_git
from experiment_helpers import sim_config, until

from cockpit.agents.factory import make_agent
from cockpit.config import ApprovalConfig
from cockpit.core import events as ev
from cockpit.core.states import State
from cockpit.errors import CockpitError
from cockpit.plan import model as pm
from cockpit.plan.conductor import ConductorAgent
from cockpit.plan.permits import conductor_permit
from cockpit.plan.tree import tree_lines
from cockpit.sim import ScriptedLLMServer
from cockpit.workers.pool import RemoteBackend, WorkerPool


TASK = "Add a greeting, its docs and a changelog"


@pytest.fixture
async def server() -> AsyncIterator[ScriptedLLMServer]:
    async with ScriptedLLMServer("plan") as srv:
        yield srv


async def plan_engine(open_engine, server, factory=make_agent):
    config = sim_config(server.url)
    config.review.verify = "test -f README.md"
    return await open_engine(config, factory)


async def proposed(engine, plan_id: str) -> dict:
    await until(lambda: engine.plans.store.load(plan_id).status == pm.PROPOSED, "the conductor's proposal")
    return await engine.execute({"cmd": "plan_status", "plan": plan_id})


@pytest.mark.parametrize("workers", [False, True], ids=["in-process", "worker-processes"])
async def test_a_three_part_plan_runs_and_lands_in_order(open_engine, server, repo, workers):
    """The conductor always runs in the engine (its tools are the engine's commands); with a
    worker pool the sub-tasks' agents run in worker processes, as in the server."""
    engine = await plan_engine(open_engine, server, WorkerPool() if workers else make_agent)
    events = engine.subscribe(accept=lambda e: e.kind == ev.PLAN)
    plan = await engine.execute({"cmd": "plan_new", "repo": str(repo), "task": TASK})
    conductor = engine.sessions[plan["conductor"]]
    assert conductor.agent == "conductor" and f"plan-{plan['id']}" in conductor.tags
    assert isinstance(engine.hosts[conductor.id].backend, ConductorAgent)

    shown = await proposed(engine, plan["id"])
    assert [(r["id"], r["files"], r["after"]) for r in shown["rows"]] == [
        ("s1", ["hello.py"], []), ("s2", ["docs/"], []), ("s3", ["CHANGELOG.md"], ["s1"])]
    assert conductor.state == State.WAITING  # the proposal waits for the person

    approved = await engine.execute({"cmd": "plan_approve", "plan": plan["id"]})
    assert [s["subtask"] for s in approved["started"]] == ["s1", "s2"]  # s3 waits for s1 to merge
    started = [engine.hosts[s["session"]].backend for s in approved["started"]]
    assert all(isinstance(backend, RemoteBackend) is workers for backend in started)

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


# -- the plan model -------------------------------------------------------------------------------

def sub(id: str, files: list[str] | None = None, after: list[str] | None = None) -> dict:
    return {"id": id, "task": f"do {id}", "files": files or [], "after": after or []}


@pytest.mark.parametrize(("raw", "message"), [
    ([], "a plan needs a non-empty list of sub-tasks"),
    ([sub("s1"), sub("s1")], "sub-task id 's1' is used twice"),
    ([sub("s1", after=["s9"])], "'after' names 's9', which is not a sub-task"),
    ([sub("a", after=["b"]), sub("b", after=["a"])], "in a circle (a → b → a)"),
    ([{"id": "Bad Id", "task": "x"}], "id 'Bad Id' must be lower-case letters"),
    ([{"id": "s1"}], "sub-task 's1' needs a 'task'"),
    ([{"id": "s1", "task": "x", "file": ["a"]}], "unknown key 'file'"),
    ([{"id": "s1", "task": "x", "files": [""]}], "files must be a list of non-empty strings"),
])
def test_a_bad_plan_is_refused_in_one_line_naming_what_to_fix(raw, message):
    with pytest.raises(pm.PlanError) as caught:
        pm.parse_subtasks(raw)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_landing_order_follows_after_and_files_bound_a_subtask():
    subtasks = pm.parse_subtasks([sub("c", after=["b"]), sub("a"), sub("b", ["docs/", "*.md"], after=["a"])])
    assert pm.landing_order(subtasks) == ["a", "b", "c"]
    docs = subtasks[2]
    assert docs.outside(["docs/usage.md", "README.md", "src/app.py", "docsx/y"]) == ["src/app.py", "docsx/y"]
    assert subtasks[1].outside(["anything.py"]) == []  # no files given: any file


def test_ready_waits_for_merged_or_dropped_afters():
    plan = pm.Plan("p1", "/r", "t", subtasks=pm.parse_subtasks([sub("a"), sub("b", after=["a"]), sub("c")]))
    assert [s.id for s in plan.ready()] == ["a", "c"]
    pm.drop_subtask(plan, "a")
    assert [s.id for s in plan.ready()] == ["b", "c"]
    assert pm.Plan.from_dict(plan.to_dict()) == plan


# -- approving, editing and dropping, without agents ---------------------------------------------

async def test_the_person_edits_and_drops_before_approving_and_tree_shows_it(engine, repo):
    plan = await engine.execute({"cmd": "plan_new", "repo": str(repo), "task": TASK})
    proposal = asyncio.create_task(engine.execute({
        "cmd": "plan_propose", "plan": plan["id"], "summary": "three parts",
        "subtasks": [sub("s1", ["hello.py"]), sub("s2", ["docs/"]), sub("s3", after=["s1"])]}))
    await until(lambda: engine.plans.store.load(plan["id"]).status == pm.PROPOSED, "the proposal")
    with pytest.raises(CockpitError, match="has not approved it"):
        await engine.execute({"cmd": "plan_start", "plan": plan["id"], "subtask": "s1"})
    await engine.execute({"cmd": "plan_edit", "plan": plan["id"], "subtask": "s2", "task": "write the docs",
                          "files": ["docs/usage.md"]})
    await engine.execute({"cmd": "plan_drop", "plan": plan["id"], "subtask": "s3"})
    approved = await engine.execute({"cmd": "plan_approve", "plan": plan["id"]})
    answer = await asyncio.wait_for(proposal, 10)  # the conductor's proposal returns with the answer
    assert answer["approved"] and [s["subtask"] for s in answer["started"]] == ["s1", "s2"]
    assert approved["plan"]["subtasks"][1]["task"] == "write the docs"
    second = engine.sessions[approved["started"][1]["session"]]
    assert second.task.startswith("write the docs") and "docs/usage.md" in second.task
    assert f"plan-{plan['id']}" in second.tags

    with pytest.raises(CockpitError, match="'s1' is started; only a pending sub-task can be edited"):
        await engine.execute({"cmd": "plan_edit", "plan": plan["id"], "subtask": "s1", "task": "x"})
    with pytest.raises(CockpitError, match="not awaiting approval"):
        await engine.execute({"cmd": "plan_approve", "plan": plan["id"]})
    shown = tree_lines(await engine.execute({"cmd": "plan_status", "plan": plan["id"]}))
    assert shown[0] == f"plan {plan['id']} · approved · {TASK}"
    assert shown[2].startswith("├─ s1 do s1") and "@2 idle" in shown[2] and shown[2].endswith("[hello.py]")
    assert shown[4].startswith("└─ s3 do s3") and "dropped" in shown[4]


async def test_a_merge_that_strays_outside_its_files_is_refused(engine, repo):
    plan = await engine.execute({"cmd": "plan_new", "repo": str(repo), "task": TASK})
    proposal = asyncio.create_task(engine.execute({
        "cmd": "plan_propose", "plan": plan["id"], "subtasks": [sub("s1", ["hello.py"])]}))
    await until(lambda: engine.plans.store.load(plan["id"]).status == pm.PROPOSED, "the proposal")
    started = (await engine.execute({"cmd": "plan_approve", "plan": plan["id"]}))["started"][0]
    await proposal
    worktree = engine.sessions[started["session"]].path
    (worktree / "hello.py").write_text("print('hi')\n", encoding="utf-8")
    (worktree / "README.md").write_text("changed\n", encoding="utf-8")
    with pytest.raises(CockpitError, match=r"'s1' changed files it was not given: README.md \(allowed: hello.py\)"):
        await engine.execute({"cmd": "plan_merge", "plan": plan["id"]})
    (worktree / "README.md").write_text("hello\n", encoding="utf-8")
    merged = await engine.execute({"cmd": "plan_merge", "plan": plan["id"]})
    assert merged["landed"] == ["s1"] and engine.plans.store.load(plan["id"]).status == pm.DONE
    assert run_git(repo, "show", "main:hello.py") == "print('hi')\n"


# -- approvals: the conductor answers what the person's policy lets it, the person the rest ------

def conductor_turn(when: str, name: str, **arguments: Any) -> dict:
    return {"when": {"last_role": "tool", "last_user_contains": "Plan this task", "contains": when},
            "tool_calls": [{"name": name, "arguments": arguments}]}


APPROVALS = {"name": "approvals", "final": "Done.", "steps": [
    {"when": {"last_role": "user", "last_user_contains": "Plan this task"},
     "tool_calls": [{"name": "propose_plan", "arguments": {"summary": "one part", "subtasks": [
         {"id": "s1", "task": "List the files, then create made.txt.", "files": ["made.txt"]}]}}]},
    conductor_turn("approved.", "wait", subtasks=["s1"]),
    conductor_turn('"title": "ls"', "answer", subtask="s1", approve=True),
    conductor_turn("approved ls", "wait", subtasks=["s1"]),
    conductor_turn("touch made.txt", "answer", subtask="s1", approve=True),
    conductor_turn("left to the person", "wait", subtasks=["s1"]),  # returns once the person answered
    conductor_turn('"state": "idle"', "merge", subtasks=["s1"]),
    {"when": {"last_role": "user", "last_user_contains": "sub-task s1 of plan"},
     "tool_calls": [{"name": "run_shell", "arguments": {"command": "ls"}}]},
    {"when": {"last_role": "tool", "last_user_contains": "sub-task s1 of plan"},
     "tool_calls": [{"name": "run_shell", "arguments": {"command": "touch made.txt"}}]},
    {"when": {"last_role": "tool", "last_user_contains": "sub-task s1 of plan"}, "text": "Made it."},
]}


async def test_the_conductor_answers_what_policy_allows_and_leaves_the_rest_to_the_person(open_engine, server, repo):
    server.set_scenario(APPROVALS)
    config = sim_config(server.url)
    config.approval.conductor = ["ls*"]
    engine = await open_engine(config, make_agent)
    plan = await engine.execute({"cmd": "plan_new", "repo": str(repo), "task": TASK})
    await proposed(engine, plan["id"])
    (started,) = (await engine.execute({"cmd": "plan_approve", "plan": plan["id"]}))["started"]
    worker = engine.sessions[started["session"]]

    async def conductor_said(text: str) -> bool:
        return any(text in e.data.get("output", "") for e in await engine.transcript(plan["conductor"])
                   if e.kind == ev.TOOL_RESULT)

    await until_async(lambda: conductor_said("is left to the person"), "the conductor to leave `touch` to the person")
    assert worker.state == State.WAITING and "touch made.txt" in worker.state_detail
    await engine.approve(worker.id)  # the person
    await until(lambda: engine.plans.store.load(plan["id"]).status == pm.DONE, "the merge", 60)

    answers = [(e.data["approved"], e.data["reason"]) for e in await engine.transcript(worker.id)
               if e.kind == ev.APPROVAL_RESOLVED]
    assert answers == [(True, "approved by the plan's conductor: every command in the line matches approval.conductor"),
                       (True, "")]
    assert run_git(repo, "show", "main:made.txt") == ""


async def until_async(condition: Any, what: str, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        assert loop.time() < deadline, f"timed out waiting for: {what}"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(("command", "allowed"), [
    ("ls", True), ("ls -la docs", True), ("ls && rm -rf docs", False), ("ls | sh", False), ("pytest -q", False),
    ("ls secret", False),  # shell_deny wins over the conductor's patterns
])
def test_what_the_conductor_may_approve(command, allowed):
    approval = ApprovalConfig(conductor=["ls*"], shell_deny=["ls secret*"])
    assert bool(conductor_permit(approval, "run_shell", command)) is allowed
    assert conductor_permit(approval, "write_file", "ls") == ""  # shell commands only
    assert conductor_permit(ApprovalConfig(), "run_shell", "ls") == ""  # nothing unless the person says so


FOLLOW_UP = {"name": "follow-up", "final": "Done.", "steps": [
    {"when": {"last_role": "user", "last_user_contains": "Plan this task"},
     "tool_calls": [{"name": "propose_plan", "arguments": {"summary": "one part", "subtasks": [
         {"id": "s1", "task": "Write a.txt.", "files": ["a.txt", "b.txt"]}]}}]},
    conductor_turn("approved.", "wait", subtasks=["s1"]),
    {"when": {"last_role": "user", "last_user_contains": "sub-task s1 of plan"},
     "tool_calls": [{"name": "write_file", "arguments": {"path": "a.txt", "content": "a\n"}}]},
    {"when": {"last_role": "tool", "last_user_contains": "sub-task s1 of plan"}, "text": "Wrote a.txt."},
    {"when": {"last_role": "user", "last_user_contains": "b.txt too"},
     "tool_calls": [{"name": "write_file", "arguments": {"path": "b.txt", "content": "b\n"}}]},
    {"when": {"last_role": "tool", "last_user_contains": "b.txt too"}, "text": "Wrote b.txt."},
]}


async def test_a_wait_after_a_send_waits_for_the_turn_it_started_in_a_worker(open_engine, server, repo):
    """A worker's agent starts its turn a moment after the send: a wait right after the send must
    not take the idle before that turn for its end (the merge would then miss b.txt)."""
    server.set_scenario(FOLLOW_UP)
    engine = await open_engine(sim_config(server.url), WorkerPool())
    plan = await engine.execute({"cmd": "plan_new", "repo": str(repo), "task": TASK})
    await proposed(engine, plan["id"])
    await engine.execute({"cmd": "plan_approve", "plan": plan["id"]})
    first = await engine.execute({"cmd": "plan_wait", "plan": plan["id"]})
    assert first["subtasks"][0]["diffstat"]["files"] == 1
    await engine.execute({"cmd": "plan_send", "plan": plan["id"], "subtask": "s1", "text": "Now write b.txt too."})
    second = await engine.execute({"cmd": "plan_wait", "plan": plan["id"], "subtasks": ["s1"]})
    assert second["subtasks"][0]["diffstat"]["files"] == 2
    assert (await engine.execute({"cmd": "plan_merge", "plan": plan["id"]}))["landed"] == ["s1"]
    assert run_git(repo, "show", "main:b.txt") == "b\n" and run_git(repo, "show", "main:a.txt") == "a\n"


async def test_a_proposal_outlives_a_restart_and_its_approval_reaches_the_conductor_in_words(open_engine, repo):
    engine = await open_engine()
    plan = await engine.execute({"cmd": "plan_new", "repo": str(repo), "task": TASK})
    proposal = asyncio.create_task(engine.execute({"cmd": "plan_propose", "plan": plan["id"], "subtasks": [sub("s1")]}))
    await until(lambda: engine.plans.store.load(plan["id"]).status == pm.PROPOSED, "the proposal")
    await engine.close()
    with pytest.raises(asyncio.CancelledError):
        await proposal

    engine = await open_engine()
    assert (await engine.execute({"cmd": "plan_status", "plan": plan["id"]}))["status"] == pm.PROPOSED
    approved = await engine.execute({"cmd": "plan_approve", "plan": plan["id"]})
    assert [s["subtask"] for s in approved["started"]] == ["s1"]
    told = [e.data["text"] for e in await engine.transcript(plan["conductor"]) if e.kind == ev.USER_MESSAGE]
    assert told[-1] == f"The person approved plan {plan['id']}. Started: s1 → @2."
