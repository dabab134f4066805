"""Verification in a session's worktree: results tied to the tree they ran on, kept on the
session across a restart, a timeout that ends the whole process group, and verify after a turn."""

from __future__ import annotations

import asyncio

import pytest
from landing_helpers import review_config, write
from proc_helpers import pids_of, unique_sleep

from cockpit.core import events as ev
from cockpit.core.agent_api import AgentHost
from cockpit.core.model import Session
from cockpit.core.process import process_alive
from cockpit.core.states import State
from cockpit.core.worktrees import snapshot_tree
from cockpit.errors import CockpitError


async def test_without_a_verify_command_the_error_names_the_setting(engine, repo):
    session = (await engine.create_sessions(repo, name="v"))[0]
    with pytest.raises(CockpitError) as caught:
        await engine.execute({"cmd": "verify", "session": session.id})
    assert "[review] verify" in str(caught.value) and ".cockpit.toml" in str(caught.value)


async def test_a_result_names_its_tree_and_survives_a_restart(open_engine, repo):
    config = review_config(verify="echo checking; test -f ok.txt")
    engine = await open_engine(config=config)
    session = (await engine.create_sessions(repo, name="v"))[0]
    events = engine.subscribe(accept=lambda e: e.kind == ev.VERIFY)

    failed = await engine.execute({"cmd": "verify", "session": session.id})
    write(session.path, {"ok.txt": "ok\n"})
    passed = await engine.landing.verify(session.id)

    assert failed["state"] == "failed" and failed["exit_code"] == 1 and "checking" in failed["output_tail"]
    assert passed["state"] == "passed" and passed["exit_code"] == 0
    assert passed["tree"] == await snapshot_tree(session.path) != failed["tree"]
    assert [e.data["state"] for e in events.get_nowait()] == ["running", "failed", "running", "passed"]
    assert session.verify == passed

    await engine.close()
    reopened = await open_engine(config=config)
    assert reopened.get(session.id).verify == passed


def test_records_from_before_verify_and_group_existed_still_load():
    old = Session(id="abcde", number=1, name="n", slug="n", repo_id=1, branch="cockpit/n",
                  base_ref="main", base_commit="0" * 40, worktree="/nowhere").to_dict()
    del old["verify"], old["group"]
    loaded = Session.from_dict(old)
    assert loaded.verify == {} and loaded.group == ""




async def test_a_timeout_ends_the_whole_process_group(open_engine, repo):
    duration = unique_sleep()
    # The sandbox lets the command write its worktree only, and gives it its own pid namespace:
    # the background sleep is found by its command line, not by a pid it could write.
    engine = await open_engine(config=review_config(verify=f"sleep {duration} & touch started; wait", verify_timeout=2))
    session = (await engine.create_sessions(repo, name="t"))[0]

    verifying = asyncio.create_task(engine.landing.verify(session.id))
    while not (session.path / "started").exists():
        await asyncio.sleep(0.02)
    (pid,) = pids_of(["sleep", duration])
    result = await verifying

    assert result["state"] == "timed-out" and result["exit_code"] is not None and result["exit_code"] < 0
    for _ in range(200):  # the killed sleep may need a moment to be reaped
        if not process_alive(pid):
            break
        await asyncio.sleep(0.02)
    assert not process_alive(pid)


class OneTurn:
    """A backend whose every instruction is one turn that ends at once."""

    def __init__(self, host: AgentHost):
        self.host = host

    async def start(self) -> None:
        pass

    async def send(self, text: str) -> None:
        self.host.set_state(State.RUNNING)
        self.host.emit(ev.TURN_END, {})
        self.host.set_state(State.IDLE)

    async def interrupt(self) -> None:
        pass

    async def close(self) -> None:
        pass


async def test_verify_after_each_turn_when_configured(open_engine, repo):
    engine = await open_engine(config=review_config(verify="true", verify_after_turn=True), agent_factory=OneTurn)
    events = engine.subscribe(accept=lambda e: e.kind == ev.VERIFY)

    session = (await engine.create_sessions(repo, name="turn", task="go"))[0]

    states = []
    while "passed" not in states:
        states.append((await asyncio.wait_for(events.get(), 30)).data["state"])
    assert states == ["running", "passed"] and session.verify["state"] == "passed"


async def test_a_scratch_worktree_left_by_a_crash_mid_verify_is_removed_on_restart(open_engine, repo, cockpit_env):
    from conftest import run_git

    engine = await open_engine()
    await engine.create_sessions(repo, name="v")
    left = cockpit_env.home / "scratch" / "verify-v-crashed"
    left.parent.mkdir(parents=True)
    run_git(repo, "worktree", "add", "--detach", "--quiet", str(left), "HEAD")
    await engine.close()

    await open_engine()

    assert not left.exists()
    assert str(left) not in run_git(repo, "worktree", "list", "--porcelain")
