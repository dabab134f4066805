"""The compare view: sessions fanned out from one task, side by side, to keep the best one.

One row per session: state, files and lines changed, verify result, tokens and cost (the
engine's `compare` command). The suggested best (★) passed verify on its current change and,
among those, changed the fewest lines, then cost least. `k` keeps the selected session and
archives the others (worktrees and branches stay); enter opens its merge view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from cockpit.core import events as ev
from cockpit.core.events import Event
from cockpit.ui.text import compact_number

if TYPE_CHECKING:
    from cockpit.ui.app import CockpitApp

COLUMNS = (("best", " "), ("session", "session"), ("state", "state"), ("files", "files"), ("lines", "+ / −"),
           ("verify", "verify"), ("tokens", "tokens"), ("cost", "cost"))
HINT = "enter: merge view · k: keep this one, archive the others · v: verify all · r: reload · esc: back"


def compare_scope(app: CockpitApp) -> dict[str, Any] | None:
    """What `C` compares: the marked panes (two or more), else the focused session's fan-out."""
    if len(app.marked) >= 2:
        return {"sessions": app.targets()}
    session = app.sessions.get(app.focused_id or "")
    if session and session.get("group"):
        return {"group": session["group"]}
    return None


def best_of(rows: list[dict[str, Any]]) -> str | None:
    """The session to suggest keeping: green on its current change, smallest, then cheapest."""
    green = [r for r in rows if r.get("verify") == "passed" and r.get("verify_current")]
    if not green:
        return None
    return min(green, key=lambda r: ((r.get("added") or 0) + (r.get("removed") or 0), r.get("cost") or 0))["session"]


def verify_cell(row: dict[str, Any]) -> str:
    state = row.get("verify", "")
    if state == "passed":
        return "✓ passed" if row.get("verify_current") else "✓ older change"
    if state == "running":
        return "… running"
    if state in ("failed", "timed-out"):
        return f"✗ {state}"
    return "–"


class CompareScreen(ModalScreen[None]):
    AUTO_FOCUS = "#compare-table"
    DEFAULT_CSS = """
    CompareScreen { background: $background; layout: vertical; }
    CompareScreen #compare-header { height: 1; width: 1fr; background: $panel; color: $text; text-style: bold; padding: 0 1; }
    CompareScreen DataTable { height: 1fr; }
    CompareScreen #compare-footer { height: 1; width: 1fr; background: $panel; color: $text-muted; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape", "close", "back", id="compare.close"),
        Binding("enter,M", "open_merge", "merge view", id="review.open"),
        Binding("k", "keep", "keep the best", id="compare.keep"),
        Binding("v", "verify_all", "verify all", id="verify.run"),
        Binding("r", "reload", "reload", id="compare.reload"),
    ]

    def __init__(self, app: CockpitApp, scope: dict[str, Any]):
        super().__init__()
        self.cockpit = app
        self.scope = scope
        self.rows: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield Static("Compare: loading…", id="compare-header", markup=False)
        table: DataTable[str] = DataTable(id="compare-table", cursor_type="row")
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Static(HINT, id="compare-footer", markup=False)

    def on_mount(self) -> None:
        self.action_reload()

    @work(exclusive=True, group="compare-load")
    async def action_reload(self) -> None:
        rows = await self.cockpit.run_command({"cmd": "compare", **self.scope})
        if rows is None:
            self.dismiss()
            return
        self.rows = rows
        best = best_of(rows)
        table = self.query_one(DataTable)
        selected = table.cursor_row
        table.clear()
        for row in rows:
            changed = row.get("files") is not None
            table.add_row(
                "★" if row["session"] == best else "",
                Text(f"@{row['number']} {row['name']}"),  # a name is text, not cell markup
                row["state"],
                str(row["files"]) if changed else "–",
                f"+{row['added']} −{row['removed']}" if changed else "no worktree",
                verify_cell(row),
                compact_number(row.get("tokens") or 0),
                f"${row.get('cost') or 0:.2f}",
                key=row["session"],
            )
        table.move_cursor(row=min(selected, len(rows) - 1))
        what = f"{len(rows)} marked sessions" if "sessions" in self.scope else f"a fan-out of {len(rows)}"
        suggestion = f" · ★ suggested: @{next(r['number'] for r in rows if r['session'] == best)}" if best else ""
        self.query_one("#compare-header", Static).update(f"Compare {what}{suggestion}")

    def _selected(self) -> dict[str, Any] | None:
        table = self.query_one(DataTable)
        return self.rows[table.cursor_row] if self.rows and 0 <= table.cursor_row < len(self.rows) else None

    @on(DataTable.RowSelected)
    def _row_chosen(self) -> None:
        self.action_open_merge()  # enter on the table: the table's own binding comes first

    def action_open_merge(self) -> None:
        from cockpit.ui.merge_view import MergeScreen

        row = self._selected()
        if row is not None:
            self.app.push_screen(MergeScreen(self.cockpit, row["session"]))

    @work(group="compare-act")
    async def action_keep(self) -> None:
        from cockpit.ui.dialogs import Confirm

        row = self._selected()
        if row is None:
            return
        others = [r for r in self.rows if r["session"] != row["session"] and r["state"] not in ("archived", "merged")]
        if not others:
            self.notify("nothing else to archive")
            return
        names = ", ".join(f"@{r['number']}" for r in others)
        if await self.app.push_screen_wait(Confirm(
                f"Keep @{row['number']} and archive {names}? Their worktrees and branches are kept.")):
            await self.cockpit.command_each("archive", [r["session"] for r in others])
            self.action_reload()

    @work(group="compare-verify")
    async def action_verify_all(self) -> None:
        for row in list(self.rows):
            await self.cockpit.run_command({"cmd": "verify", "session": row["session"]})
        self.action_reload()

    def action_close(self) -> None:
        self.dismiss()

    def feed(self, event: Event) -> None:
        """Show a verify starting or ending in its row at once (the rest refreshes on reload)."""
        if event.kind != ev.VERIFY or "commit" in event.data:
            return
        for row in self.rows:
            if row["session"] == event.session:
                row["verify"], row["verify_current"] = event.data.get("state", ""), True
                self.query_one(DataTable).update_cell(event.session, "verify", verify_cell(row))
