"""SVG snapshots of the plan view (`P`): a proposal awaiting approval and a plan under way, at
80×24 and 200×50 (files under `snapshots/test_snapshots_plan/`).

The app runs on the snapshot store of tests/test_snapshots.py (fixed sessions) plus a plan file
with a fixed id whose sub-tasks name those sessions; their worktrees do not exist, so no row
shows a diffstat that could vary. Refresh after an intended change with
`python -m pytest tests/test_snapshots_plan.py --snapshot-update`, then look at the SVGs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_snapshots import make_app

from cockpit.plan import model as pm
from cockpit.plan.store import PlanStore
from cockpit.ui.plan_view import PlanScreen

SIZES = [(80, 24), (200, 50)]
SUBTASKS = [
    {"id": "s1", "title": "greeting", "task": "Write hello.py with greet(name).", "files": ["hello.py"]},
    {"id": "s2", "title": "docs", "task": "Write docs/usage.md explaining greet().", "files": ["docs/"]},
    {"id": "s3", "title": "changelog", "task": "Write CHANGELOG.md.", "files": ["CHANGELOG.md"], "after": ["s1", "s2"]},
]


def plan_app(tmp_path: Path, *, under_way: bool) -> Any:
    app = make_app(tmp_path, 3)
    plan = pm.Plan("k3f9", "/nonexistent/repo", "Add a greeting, its docs and a changelog", conductor="s03",
                   summary="Greeting and docs in parallel; the changelog once both landed.",
                   subtasks=pm.parse_subtasks(SUBTASKS), status=pm.PROPOSED)
    if under_way:
        plan.status = pm.APPROVED
        plan.subtasks[0].status, plan.subtasks[0].session = pm.MERGED, "s01"
        plan.subtasks[1].status, plan.subtasks[1].session = pm.STARTED, "s02"
        plan.notes.append("the greeting landed; the docs wait for an approval")
    PlanStore(tmp_path / "home").save(plan)
    return app


async def open_plans(pilot: Any) -> None:
    await pilot.pause(0.2)
    await pilot.press("P")
    await pilot.pause(0.3)
    assert isinstance(pilot.app.screen, PlanScreen) and pilot.app.screen.status is not None


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_a_proposed_plan(snap_compare, tmp_path, size):
    assert snap_compare(plan_app(tmp_path, under_way=False), terminal_size=size, run_before=open_plans)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_a_plan_under_way(snap_compare, tmp_path, size):
    assert snap_compare(plan_app(tmp_path, under_way=True), terminal_size=size, run_before=open_plans)
