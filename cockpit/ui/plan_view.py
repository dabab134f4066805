"""The plan view (`P`): a plan as a tree, its approval and editing, and the plan's sessions.

The tree is plan → sub-tasks → each one's session, state, diffstat and last verify; the files
each may touch and what it waits for. While the conductor's proposal waits, the person approves
it, edits a sub-task's instruction or files, drops one, or rejects the plan; afterwards the same
view follows the sessions. Like the leaderboard it asks the engine's commands once a second,
which works the same on a remote client, and it shows one plan at a time (tab for the next).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static


if TYPE_CHECKING:
    from cockpit.ui.app import CockpitApp

REFRESH_S = 1.0
COLUMNS = ("sub-task", "session", "state", "changes", "verify", "files", "after")
PROPOSED = "proposed"


def header_text(status: dict[str, Any], count: int) -> str:
    more = f" · {count} plans (tab)" if count > 1 else ""
    return f"Plan {status['id']} · {status['status']} · {status['task'].splitlines()[0]}{more}"


def summary_text(status: dict[str, Any]) -> str:
    summary = status.get("summary") or ""
    if status["status"] == PROPOSED:
        return "\n".join(filter(None, [
            summary, "The conductor proposes this plan: approve it to start its sessions; edit or drop sub-tasks first."]))
    if status["status"] == "drafting":
        return "The conductor is reading the repository and writing the plan."
    return summary


def table_row(row: dict[str, Any], last: bool) -> tuple[str, ...]:
    branch = "└─" if last else "├─"
    stat = row.get("diffstat") or {}
    changes = f"+{stat['added']} -{stat['removed']} ({stat['files']})" if stat.get("files") else ""
    session = f"@{row['number']}" if "number" in row else ""
    state = row["status"] if row["status"] in ("merged", "dropped") or not session else row["state"]
    return (f"{branch} {row['id']} {row['title']}", session, state, changes, row.get("verify", ""),
            ", ".join(row.get("files") or []) or "any", ", ".join(row.get("after") or []))


class PlanScreen(ModalScreen[None]):
    AUTO_FOCUS = "#plan-table"
    DEFAULT_CSS = """
    PlanScreen { background: $background; layout: vertical; }
    PlanScreen #plan-header { height: 1; width: 1fr; background: $panel; color: $text; text-style: bold; padding: 0 1; }
    PlanScreen #plan-summary { height: auto; padding: 0 1; }
    PlanScreen #plan-table { height: auto; max-height: 70%; }
    PlanScreen #plan-detail { height: auto; max-height: 8; padding: 0 1; margin: 1 0 0 0; }
    PlanScreen #plan-notes { height: 1fr; padding: 0 1; color: $text-muted; }
    PlanScreen #plan-keys { height: auto; color: $text-muted; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape,P", "close", "back to the grid", id="plan.close"),
        Binding("a", "approve", "approve", id="plan.approve"),
        Binding("e", "edit", "edit task", id="plan.edit"),
        Binding("f", "files", "edit files", id="plan.files"),
        Binding("d", "drop", "drop", id="plan.drop"),
        Binding("R", "reject", "reject", id="plan.reject"),
        Binding("g", "goto", "go to session", id="plan.goto"),
        Binding("n", "new", "plan a task", id="plan.new"),
        Binding("tab", "next_plan", "next plan", id="plan.next"),
    ]

    def __init__(self, app: CockpitApp, plan: str | None = None):
        super().__init__(id="plans")
        self.cockpit = app
        self.plan = plan
        self.plans: list[dict[str, Any]] = []
        self.status: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="plan-header", markup=False)
        yield Static("", id="plan-summary", markup=False)
        table: DataTable[Any] = DataTable(id="plan-table", cursor_type="row", zebra_stripes=True)
        table.add_columns(*COLUMNS)
        yield table
        yield Static("", id="plan-detail", markup=False)
        yield Static("", id="plan-notes", markup=False)
        yield Static(self.keys_hint(), id="plan-keys", markup=False)

    def keys_hint(self) -> str:
        from cockpit.ui.keymap import current_keymap, effective_bindings, key_display

        bindings = effective_bindings(self.BINDINGS, current_keymap(self.cockpit))
        return " · ".join(f"{key_display(self.cockpit, b, keys)} {b.description}" for b, keys in bindings.values())

    async def on_mount(self) -> None:
        await self.refresh_plan()
        self.set_interval(REFRESH_S, self.refresh_plan)

    async def refresh_plan(self) -> None:
        plans = await self.cockpit.run_command({"cmd": "plan_list"})
        if plans is None:
            return
        self.plans = plans
        if self.plan not in {p["id"] for p in plans} and plans:
            waiting = [p for p in plans if p["status"] == PROPOSED]
            self.plan = (waiting or plans)[-1]["id"]
        self.status = await self.cockpit.run_command({"cmd": "plan_status", "plan": self.plan}) if self.plan else None
        self._draw()

    def _draw(self) -> None:
        header = self.query_one("#plan-header", Static)
        table = self.query_one("#plan-table", DataTable)
        status = self.status
        if status is None:
            header.update("No plans yet. Press n to plan a task: a conductor splits it into parallel sessions.")
            self.query_one("#plan-summary", Static).update("")
            self.query_one("#plan-notes", Static).update("")
            self.query_one("#plan-detail", Static).update("")
            table.clear()
            return
        header.update(header_text(status, len(self.plans)))
        self.query_one("#plan-summary", Static).update(summary_text(status))
        rows = status["rows"]
        cursor = table.cursor_row
        table.clear()
        for n, row in enumerate(rows):
            table.add_row(*table_row(row, n == len(rows) - 1), key=row["id"])
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))
        notes = [f"note: {note}" for note in status.get("notes", [])]
        details = [f"{row['id']}: {row['detail']}" for row in rows if row.get("detail") and row["status"] != "merged"]
        self.query_one("#plan-notes", Static).update("\n".join([*details, *notes]))
        self._show_selected()

    @on(DataTable.RowHighlighted)
    def _show_selected(self) -> None:
        """The selected sub-task's whole instruction: what its agent is (or will be) told."""
        sub = self.selected()
        text = f"{sub['id']} · {sub['title']}: {sub['task']}" if sub else ""
        self.query_one("#plan-detail", Static).update(text)

    def selected(self) -> dict[str, Any] | None:
        """The selected sub-task as the plan has it (with its instruction), or None."""
        table = self.query_one("#plan-table", DataTable)
        if self.status is None or not self.status["rows"]:
            return None
        row = self.status["rows"][min(table.cursor_row, len(self.status["rows"]) - 1)]
        return next(s for s in self.status["subtasks"] if s["id"] == row["id"])

    async def _run(self, cmd: str, **args: Any) -> Any:
        if self.plan is None:
            self.cockpit.notify("no plan yet: press n to plan a task")
            return None
        result = await self.cockpit.run_command({"cmd": cmd, "plan": self.plan, **args})
        await self.refresh_plan()
        return result

    # -- actions -----------------------------------------------------------------------------------

    def action_close(self) -> None:
        self.dismiss()

    async def action_approve(self) -> None:
        await self._run("plan_approve")

    @work
    async def action_edit(self) -> None:
        from cockpit.ui.dialogs import TextPrompt

        sub = self.selected()
        if sub is None:
            return
        text = await self.app.push_screen_wait(TextPrompt(f"Sub-task {sub['id']}: its instruction", sub["task"]))
        if text is not None:
            await self._run("plan_edit", subtask=sub["id"], task=text)

    @work
    async def action_files(self) -> None:
        from cockpit.ui.dialogs import TextPrompt

        sub = self.selected()
        if sub is None:
            return
        text = await self.app.push_screen_wait(TextPrompt(
            f"Sub-task {sub['id']}: files it may touch (comma-separated; empty: any)", ", ".join(sub["files"])))
        if text is not None:
            await self._run("plan_edit", subtask=sub["id"], files=[f.strip() for f in text.split(",") if f.strip()])

    async def action_drop(self) -> None:
        sub = self.selected()
        if sub is not None:
            await self._run("plan_drop", subtask=sub["id"])

    @work
    async def action_reject(self) -> None:
        from cockpit.ui.dialogs import TextPrompt

        reason = await self.app.push_screen_wait(TextPrompt("Reject the plan: why (the conductor reads it)"))
        if reason is not None:
            await self._run("plan_reject", reason=reason)

    def action_goto(self) -> None:
        sub = self.selected()
        session = sub.get("session") if sub else ""
        if not session:
            self.cockpit.notify("this sub-task has no session yet")
            return
        self.dismiss()
        self.cockpit.focus_session(session)

    @work
    async def action_new(self) -> None:
        from cockpit.ui.dialogs import TextPrompt

        task = await self.app.push_screen_wait(TextPrompt("Plan a task: what should be done?"))
        if task:
            made = await self.cockpit.run_command({"cmd": "plan_new", "repo": self.cockpit.repo, "task": task})
            if made:
                self.plan = made["id"]
                await self.refresh_plan()

    async def action_next_plan(self) -> None:
        ids = [p["id"] for p in self.plans]
        if len(ids) > 1 and self.plan in ids:
            self.plan = ids[(ids.index(self.plan) + 1) % len(ids)]
            await self.refresh_plan()
