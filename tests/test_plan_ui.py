"""The plan view driven with Pilot on a real engine: `P`, a task typed in, the scripted conductor's
proposal edited and approved on screen, then the tree following three real sessions to main."""

from __future__ import annotations

from typing import Any

from conftest import run_git
from test_experiment_ui import open_app, pilot_until
from test_plan import TASK, plan_engine, server  # noqa: F401  (the scripted model server fixture)

from cockpit.plan import model as pm
from cockpit.ui.dialogs import TextPrompt
from cockpit.ui.plan_view import PlanScreen


def view(app: Any) -> PlanScreen:
    assert isinstance(app.screen, PlanScreen), type(app.screen).__name__
    return app.screen


def cells(screen: PlanScreen) -> list[list[str]]:
    table = screen.query_one("#plan-table")
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def answer(pilot: Any, text: str) -> None:
    """Replace the text of the open prompt and press enter."""
    await pilot_until(pilot, lambda: isinstance(pilot.app.screen, TextPrompt), "the prompt")
    pilot.app.screen.query_one("#prompt-input").value = text
    await pilot.press("enter")


async def test_p_plans_a_task_the_person_edits_and_approves_and_the_tree_follows_it(open_engine, server, repo):
    engine = await plan_engine(open_engine, server)
    app, pilot, stack = await open_app(engine, repo=str(repo))
    async with stack:
        await pilot.press("P")
        screen = view(app)
        assert str(screen.query_one("#plan-header").render()).startswith("No plans yet. Press n")
        await pilot.press("n")
        await answer(pilot, TASK)
        await pilot_until(pilot, lambda: screen.status and screen.status["status"] == pm.PROPOSED, "the proposal")
        summary = str(screen.query_one("#plan-summary").render()).splitlines()
        assert summary == ["Greeting and docs in parallel; the changelog after the greeting.",
                           "The conductor proposes this plan: approve it to start its sessions; edit or drop sub-tasks first."]
        assert [row[0] for row in cells(screen)] == ["├─ s1 greeting", "├─ s2 docs", "└─ s3 changelog"]

        await pilot.press("escape")  # `a` on the waiting conductor's pane brings its plan back
        conductor = engine.sessions[screen.status["conductor"]]
        assert conductor.state_detail == f"plan {screen.plan} awaits your approval (P, or a here)"
        app.focus_session(conductor.id)
        await pilot.press("a")
        screen = view(app)
        await pilot_until(pilot, lambda: screen.status is not None, "the plan")
        assert screen.status["conductor"] == conductor.id

        await pilot.press("down")  # s2: a narrower set of files and a longer instruction
        await pilot.press("f")
        await answer(pilot, "docs/usage.md")
        await pilot.press("e")
        await answer(pilot, "Write docs/usage.md explaining greet(), with one example.")
        await pilot_until(pilot, lambda: cells(screen)[1][5] == "docs/usage.md", "the edited files")
        await pilot.press("a")

        plan_id = screen.plan
        await pilot_until(pilot, lambda: engine.plans.store.load(plan_id).status == pm.DONE, "every merge", 60)
        await pilot_until(pilot, lambda: [r[2] for r in cells(screen)] == ["merged"] * 3, "the tree says merged")
        docs = engine.sessions[engine.plans.store.load(plan_id).subtask("s2").session]
        assert docs.task.startswith("Write docs/usage.md explaining greet(), with one example.")
        notes = screen.query_one("#plan-notes")
        await pilot_until(pilot, lambda: str(notes.render()) == "note: All three sub-tasks landed.", "the note")

        await pilot.press("g")  # the cursor is still on s2: to the docs session's pane
        assert not isinstance(app.screen, PlanScreen) and app.focused_id == docs.id
    assert {"hello.py", "docs/usage.md", "CHANGELOG.md"} <= set(run_git(repo, "ls-tree", "-r", "--name-only", "main").split())
