"""The approval inbox screen (`I`) on a real engine whose agents ask through the real approval gate:
the figure (50 agents, 120 requests of 6 shapes, cleared in at most 12 keys), a group denied with
one reason, a shape allowed in the repository after its diff, the scripted-model demo agents, and
snapshots at 80×24 and 200×50 (files under `snapshots/test_ui_inbox/`).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import test_snapshots  # noqa: F401  (points the snapshot extension at the top-level snapshots/ folder)
from asking_backend import AskingBackend, asking_agent
from review_helpers import until
from server_kit import all_idle, model_config, start_server, text_of
from server_kit import until as server_until
from test_inbox import ASKS_TO_RUN
from textual.widgets import Static

from cockpit.client.multi import MultiClient
from cockpit.client.remote import RemoteClient, socket_opener
from cockpit.config import Config, load_config
from cockpit.core.engine import Engine
from cockpit.server.daemon import stop_server
from cockpit.sim import ScriptedLLMServer
from cockpit.trust import REPO_FILE, TrustStore, file_digest
from cockpit.ui.app import CockpitApp
from cockpit.ui.inbox import InboxScreen, RuleDiff

#: Six shapes; request i of the figure is shape i % 6 with its own arguments.
SHAPES = ("pytest -q tests/test_{i}.py", "npm test -- --shard={i}", "git diff --stat HEAD~{i}",
          "cargo build --bin b{i}", "make lint FILE=f{i}", "python -m mypy src/m{i}.py")


def figure_plan(agents: int = 50, requests: int = 120) -> dict[int, list[str]]:
    """Session index → the commands it asks for at once."""
    plan: dict[int, list[str]] = {}
    for i in range(requests):
        plan.setdefault(i % agents, []).append(SHAPES[i % len(SHAPES)].format(i=i))
    return plan


class InboxApp(CockpitApp):
    """The cockpit on a fresh engine whose sessions (agent-1 …) ask for `plan`'s commands; with
    `approved_before`, the first session's earlier approvals of those commands are in the store."""

    def __init__(self, home: Path, repo: Path, plan: dict[int, list[str]], approved_before: list[str] = ()):
        super().__init__(None, Config(), frozen_clock=0.0, repo=str(repo))
        self.home = home
        self.plan = plan
        self.approved_before = list(approved_before)

    async def on_mount(self) -> None:  # runs before CockpitApp.on_mount (Textual walks the MRO)
        self.client = engine = await Engine.open(self.home, self.config, agent_factory=asking_agent)
        self.sessions_made = await engine.create_sessions(self.repo, name="agent", count=len(self.plan))
        first = self.sessions_made[0]
        for command in self.approved_before:
            await engine.send(first.id, json.dumps([command]))
            await server_until(lambda: engine.hosts[first.id].pending, "the earlier request")
            await engine.approve(first.id)
            await server_until(lambda: command in AskingBackend.by_session[first.id].outcomes, "its answer")
        for index, commands in self.plan.items():
            await engine.send(self.sessions_made[index].id, json.dumps(commands))
        total = sum(len(c) for c in self.plan.values())
        await server_until(lambda: self.pending_count() == total, "every agent to ask")

    def pending_count(self) -> int:
        return sum(len(host.pending) for host in self.client.hosts.values())

    def outcome(self, index: int, command: str) -> str | None:
        return AskingBackend.by_session[self.sessions_made[index].id].outcomes.get(command)

    async def on_unmount(self) -> None:
        await self.client.close()


async def open_inbox(pilot: Any) -> InboxScreen:
    app = pilot.app
    await until(pilot, lambda: len(app.grid.panes) == len(app.plan), "the panes")
    await pilot.press("I")
    await until(pilot, lambda: isinstance(app.screen, InboxScreen) and app.screen.loaded, "the inbox")
    return app.screen


async def test_fifty_agents_and_120_requests_of_six_shapes_are_cleared_in_at_most_12_keys(tmp_path, repo):
    app = InboxApp(tmp_path / "home", repo, figure_plan())
    async with app.run_test(size=(200, 50)) as pilot:
        inbox = await open_inbox(pilot)
        keys = 1
        assert len(inbox.groups) == 6 and {len(g.requests) for g in inbox.groups} == {20}
        while inbox.requests and keys < 12:
            await pilot.press("a")
            keys += 1
        await until(pilot, lambda: app.pending_count() == 0, "every request to be answered")
        assert keys <= 12, f"{keys} keys"
        assert keys == 7  # I, then a per shape
        for index, commands in app.plan.items():
            assert all(app.outcome(index, c) == "" for c in commands)  # approved: the gate let each run


async def test_a_group_is_denied_with_one_reason_for_all(tmp_path, repo):
    plan = {0: ["pytest -q", "npm test"], 1: ["npm test -- -u"], 2: ["npm test"]}
    app = InboxApp(tmp_path / "home", repo, plan)
    async with app.run_test(size=(120, 40)) as pilot:
        inbox = await open_inbox(pilot)
        assert [g.label for g in inbox.groups] == ["npm test …", "pytest …"]
        await pilot.press("d")
        await until(pilot, lambda: app.screen is not inbox, "the reason prompt")
        await pilot.press(*"flaky today", "enter")
        await until(pilot, lambda: app.pending_count() == 1, "the group to be denied")
        refusal = "denied by the person: flaky today"
        assert [app.outcome(0, "npm test"), app.outcome(1, "npm test -- -u"), app.outcome(2, "npm test")] == [refusal] * 3
        assert [g.label for g in inbox.groups] == ["pytest …"]


async def test_always_allow_shows_the_diff_writes_the_rule_trusted_and_approves_the_group(tmp_path, repo):
    plan = {0: ["npm test"], 1: ["npm test -- -u", "git push"]}
    app = InboxApp(tmp_path / "home", repo, plan)
    async with app.run_test(size=(120, 40)) as pilot:
        inbox = await open_inbox(pilot)
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, RuleDiff), "the diff")
        assert '+shell_allow = ["npm test", "npm test *"]' in "".join(p["diff"] for p in app.screen.plans)
        assert not (repo / REPO_FILE).exists()  # nothing written before the person says yes
        await pilot.press("y")
        await until(pilot, lambda: app.outcome(1, "npm test -- -u") is not None, "the group to be approved")
        assert app.outcome(0, "npm test") == app.outcome(1, "npm test -- -u") == ""
        assert TrustStore().is_trusted(repo, file_digest(repo / REPO_FILE))
        assert [g.label for g in inbox.groups] == ["git push"]
        await pilot.press("w")  # `git push` once: the rule would be the person's to write, not a suggestion
        await until(pilot, lambda: isinstance(app.screen, RuleDiff), "the second diff")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is inbox, "the inbox again")
        assert "git push" not in (repo / REPO_FILE).read_text()

        await app.client.send(app.sessions_made[0].id, json.dumps(["npm test -- --ci"]))
        await until(pilot, lambda: app.outcome(0, "npm test -- --ci") is not None, "the next npm test")
        assert app.outcome(0, "npm test -- --ci") == ""  # ran unasked under the new rule


async def test_a_suggested_rule_from_past_approvals_is_written_from_the_inbox(tmp_path, repo):
    app = InboxApp(tmp_path / "home", repo, {0: ["git status"]},
                   approved_before=["make lint", "make lint FILE=a.py", "make lint FILE=b.py"])
    async with app.run_test(size=(120, 40)) as pilot:
        inbox = await open_inbox(pilot)
        assert [(s["label"], s["approved"]) for s in inbox.suggestions] == [("make lint …", 3)]
        assert inbox.selected()[0] is not None  # the group first
        await pilot.press("down")  # past the heading, which cannot be picked
        assert inbox.selected()[1] is not None
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, RuleDiff), "the diff")
        await pilot.press("y")
        await until(pilot, lambda: not inbox.suggestions, "the suggestion to be taken")
        assert '"make lint", "make lint *"' in (repo / REPO_FILE).read_text()
        assert app.pending_count() == 1  # a rule from a suggestion answers nothing pending


# -- snapshots ---------------------------------------------------------------------------------------

SNAPSHOT_PLAN = {0: ["pytest -q tests/test_api.py", "npm test"], 1: ["pytest -x"], 2: ["npm test -- -u", "git push"],
                 3: ["pytest tests/test_db.py"], 4: ["cd web && npm run build"], 5: ["npm test"]}


def _inbox_app(tmp_path: Path, make_repo: Any) -> InboxApp:
    return InboxApp(tmp_path / "home", make_repo(tmp_path / "repo"), SNAPSHOT_PLAN,
                    approved_before=["make lint", "make lint FILE=a.py", "make lint FILE=b.py"])


async def _inbox_shown(pilot: Any) -> None:
    await open_inbox(pilot)
    pilot.app.clear_notifications()  # the approval toasts of the grid behind
    await pilot.pause(0.2)


async def _diff_shown(pilot: Any) -> None:
    await _inbox_shown(pilot)
    await pilot.press("w")
    await until(pilot, lambda: isinstance(pilot.app.screen, RuleDiff), "the diff")
    await pilot.pause(0.2)


def test_inbox_80x24(snap_compare, tmp_path, make_repo):
    assert snap_compare(_inbox_app(tmp_path, make_repo), terminal_size=(80, 24), run_before=_inbox_shown)


def test_inbox_200x50(snap_compare, tmp_path, make_repo):
    assert snap_compare(_inbox_app(tmp_path, make_repo), terminal_size=(200, 50), run_before=_inbox_shown)


def test_inbox_rule_diff_80x24(snap_compare, tmp_path, make_repo):
    assert snap_compare(_inbox_app(tmp_path, make_repo), terminal_size=(80, 24), run_before=_diff_shown)


def test_inbox_rule_diff_200x50(snap_compare, tmp_path, make_repo):
    assert snap_compare(_inbox_app(tmp_path, make_repo), terminal_size=(200, 50), run_before=_diff_shown)


# -- several hosts, real servers, scripted models -------------------------------------------------

@pytest.mark.slow
async def test_one_key_approves_a_shape_waiting_on_several_hosts(cockpit_env, tmp_path, make_repo):
    """Two cockpit servers (two homes play two machines) whose built-in agents, talking to the
    scripted model server through litellm, ask to run the same command: one group, one `a`."""
    async with ScriptedLLMServer(ASKS_TO_RUN) as sim:
        cockpit_env.write_user_config(model_config(sim.url))
        repos = {name: make_repo(tmp_path / f"{name}-repo") for name in ("alpha", "beta")}
        servers = {name: await start_server(tmp_path / name, repo) for name, repo in repos.items()}
        multi = MultiClient({name: RemoteClient(socket_opener(paths), host=name, reconnect=True)
                             for name, paths in servers.items()})
        try:
            await multi.connect()
            for name, repo in repos.items():
                await multi.execute({"cmd": "create", "host": name, "repo": str(repo), "name": "work", "count": 2,
                                     "task": "check it"})
            await server_until(lambda: len([s for s in multi.snapshot() if s["state"] == "waiting"]) == 4,
                               "every agent to ask")
            app = CockpitApp(multi, load_config())
            async with app.run_test(size=(160, 40)) as pilot:
                await until(pilot, lambda: len(app.grid.panes) == 4, "a pane per session")
                await pilot.press("I")
                await until(pilot, lambda: isinstance(app.screen, InboxScreen) and app.screen.loaded, "the inbox")
                inbox = app.screen
                assert [(g.label, len(g.requests), sorted(h for h, _ in g.by_repo())) for g in inbox.groups] == [
                    ("echo …", 4, ["alpha", "beta"])]
                assert "4 pending in 1 groups from 4 sessions on 2 hosts" in str(
                    inbox.query_one("#inbox-header", Static).content)
                await pilot.press("a")
                await until(pilot, lambda: all_idle(multi, 4), "every agent to finish", timeout=60)
            for client in multi.clients.values():
                for session in client.snapshot():
                    said = text_of(await client.transcript(session["id"]))
                    assert "Ran it: checked" in said
            assert await multi.execute({"cmd": "inbox_pending"}) == []
        finally:
            await multi.close()
            for paths in servers.values():
                await asyncio.to_thread(stop_server, paths)
