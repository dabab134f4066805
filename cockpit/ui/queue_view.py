"""The merge queue view: which sessions collide, in what order to land them, and landing them.

The plan comes from the engine's `queue_plan` (the marked sessions, else every open session
with changes): the suggested order, the sessions blocked by a conflict with their target,
pairs that touch the same files and pairs that would conflict. `K`/`J` move the selected
session earlier/later; `L` lands them one by one with `queue_run`, which verifies each merged
result before the target moves and stops at the first that does not land or is red. While it
runs, each row follows its session's VERIFY and MERGED events; a stop is shown as a red line
naming the session, the reason and what was not run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from cockpit.core import events as ev
from cockpit.core.events import Event

if TYPE_CHECKING:
    from cockpit.ui.app import CockpitApp

COLUMNS = (("pos", "#"), ("session", "session"), ("files", "files"), ("verified", "verified"), ("status", "status"))
HINT = "L: land in this order · K / J: move earlier / later · r: plan again · esc: back"
OUTPUT_LINES = 12  # of a red verify's output, under the stop line


def overlap_lines(plan: dict[str, Any], names: dict[str, str]) -> list[str]:
    """Pairs that touch the same files; those that would conflict say so."""
    conflicting = {frozenset(c["sessions"]): c["files"] for c in plan.get("conflicts", [])}
    lines = []
    for overlap in plan.get("overlaps", []):
        a, b = overlap["sessions"]
        files = conflicting.get(frozenset((a, b)))
        if files:
            lines.append(f"✗ {names[a]} × {names[b]} conflict in {', '.join(files)}: "
                         "the later one needs a rebase once the first lands")
        else:
            lines.append(f"• {names[a]} & {names[b]} both change {', '.join(overlap['files'])} (merge cleanly)")
    return lines


def blocked_reason(entry: dict[str, Any]) -> str:
    if entry.get("error"):
        return f"blocked: {entry['error']}"
    return f"blocked: conflicts with {entry['target']} in {', '.join(entry['target_conflicts'])} (rebase it first)"


class QueueScreen(ModalScreen[None]):
    AUTO_FOCUS = "#queue-table"
    DEFAULT_CSS = """
    QueueScreen { background: $background; layout: vertical; }
    QueueScreen #queue-header { height: 1; width: 1fr; background: $panel; color: $text; text-style: bold; padding: 0 1; }
    QueueScreen DataTable { height: auto; max-height: 60%; }
    QueueScreen #queue-details { height: 1fr; padding: 0 1; }
    QueueScreen #queue-stop { display: none; color: $error; text-style: bold; }
    QueueScreen #queue-stop.shown { display: block; }
    QueueScreen #queue-done { display: none; color: $success; text-style: bold; }
    QueueScreen #queue-done.shown { display: block; }
    QueueScreen #queue-output { color: $text-muted; }
    QueueScreen #queue-footer { height: 1; width: 1fr; background: $panel; color: $text-muted; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape", "close", "back", id="queue.close"),
        Binding("L", "land", "land in order", id="queue.land"),
        Binding("K", "move(-1)", "earlier", id="queue.earlier"),
        Binding("J", "move(1)", "later", id="queue.later"),
        Binding("r", "plan", "plan again", id="queue.plan"),
    ]

    def __init__(self, app: CockpitApp, sessions: list[str] | None):
        super().__init__()
        self.cockpit = app
        self.sessions = sessions
        self.plan: dict[str, Any] = {}
        self.order: list[str] = []
        self.entries: dict[str, dict[str, Any]] = {}
        self.status: dict[str, str] = {}
        self.running = False

    def compose(self) -> ComposeResult:
        yield Static("Merge queue: planning…", id="queue-header", markup=False)
        table: DataTable[str] = DataTable(id="queue-table", cursor_type="row")
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        with VerticalScroll(id="queue-details"):
            yield Static("", id="queue-stop", markup=False)
            yield Static("", id="queue-done", markup=False)
            yield Static("", id="queue-output", markup=False)
            yield Static("", id="queue-overlaps", markup=False)
        yield Static(HINT, id="queue-footer", markup=False)

    def on_mount(self) -> None:
        self.action_plan()

    def label_of(self, session_id: str) -> str:
        entry = self.entries.get(session_id) or {}
        return f"@{entry.get('number', '?')} {entry.get('name', '')}".strip()

    # -- planning --------------------------------------------------------------------------------

    @work(exclusive=True, group="queue-plan")
    async def action_plan(self) -> None:
        if self.running:
            return
        plan = await self.cockpit.run_command({"cmd": "queue_plan", "sessions": self.sessions})
        if plan is None:
            self.dismiss()
            return
        self.plan = plan
        self.entries = {e["session"]: e for e in plan["sessions"]}
        self.order = list(plan["order"])
        self.status = {sid: "waiting" for sid in self.order} | {sid: blocked_reason(self.entries[sid])
                                                                 for sid in plan["blocked"]}
        for banner in ("#queue-stop", "#queue-done"):
            self.query_one(banner, Static).remove_class("shown")
        self.query_one("#queue-output", Static).update("")
        self._fill()
        short = {sid: f"@{e['number']}" for sid, e in self.entries.items()}
        lines = overlap_lines(plan, short)
        self.query_one("#queue-overlaps", Static).update(
            "\n".join(lines) if lines else "No two sessions change the same file.")
        blocked = f", {len(plan['blocked'])} blocked" if plan["blocked"] else ""
        self.query_one("#queue-header", Static).update(
            f"Merge queue: {len(self.order)} to land{blocked} · suggested order: fewest conflicts first, green first")

    def _fill(self, cursor: int | None = None) -> None:
        table = self.query_one(DataTable)
        cursor = table.cursor_row if cursor is None else cursor
        table.clear()
        for position, sid in enumerate(self.order, 1):
            self._add_row(table, str(position), sid)
        for sid in self.plan.get("blocked", []):
            self._add_row(table, "–", sid)
        if table.row_count:
            table.move_cursor(row=max(0, min(cursor, table.row_count - 1)))

    def _add_row(self, table: DataTable[str], position: str, sid: str) -> None:
        entry = self.entries[sid]
        # names and outcomes are text, not cell markup
        table.add_row(position, Text(self.label_of(sid)), str(len(entry["files"])), "✓" if entry["verified"] else "–",
                      Text(self.status.get(sid, "")), key=sid)

    def action_move(self, step: int) -> None:
        table = self.query_one(DataTable)
        row = table.cursor_row
        if self.running or not 0 <= row < len(self.order) or not 0 <= row + step < len(self.order):
            return
        self.order[row], self.order[row + step] = self.order[row + step], self.order[row]
        self._fill(row + step)

    # -- landing ---------------------------------------------------------------------------------

    @work(exclusive=True, group="queue-run")
    async def action_land(self) -> None:
        from cockpit.ui.dialogs import Confirm

        if self.running:
            return
        if not self.order:
            self.notify("nothing to land", severity="warning")
            return
        names = ", ".join(self.label_of(sid).split()[0] for sid in self.order)
        if not await self.app.push_screen_wait(Confirm(
                f"Land {names} in this order? Each merged result is verified first; the queue stops at the first red.")):
            return
        self.running = True
        self._set_status(self.order[0], "landing…")
        try:
            result = await self.cockpit.run_command({"cmd": "queue_run", "order": self.order})
        finally:
            self.running = False
        if result is not None:
            self.show_result(result)

    def show_result(self, result: dict[str, Any]) -> None:
        for sid in result["landed"]:
            self._set_status(sid, "landed ✓")
        stopped = result.get("stopped")
        if stopped is None:
            verified = "" if result.get("verified") else " (no verify command: not verified)"
            done = self.query_one("#queue-done", Static)
            done.update(f"✓ Landed all {len(result['landed'])} in order{verified}.")
            done.add_class("shown")
            return
        at = stopped["session"]
        self._set_status(at, "✗ STOPPED")
        for sid in result["remaining"][1:]:
            self._set_status(sid, "not run")
        rest = [self.label_of(sid).split()[0] for sid in result["remaining"][1:]]
        landed = [self.label_of(sid).split()[0] for sid in result["landed"]]
        stop = self.query_one("#queue-stop", Static)
        stop.update(
            f"✗ STOPPED at {self.label_of(at)}: {stopped['reason']}\n"
            f"  landed: {', '.join(landed) or 'none'} · not run: {', '.join(rest) or 'none'}"
            + (f"\n  conflicting files: {', '.join(stopped['conflicts'])}" if stopped.get("conflicts") else ""))
        stop.add_class("shown")
        output = (stopped.get("verify") or {}).get("output_tail", "")
        if output:
            tail = output.rstrip().splitlines()[-OUTPUT_LINES:]
            self.query_one("#queue-output", Static).update("verify output (last lines):\n" + "\n".join(tail))

    def _set_status(self, sid: str, text: str) -> None:
        self.status[sid] = text
        table = self.query_one(DataTable)
        if sid in table.rows:
            table.update_cell(sid, "status", Text(text), update_width=True)

    def feed(self, event: Event) -> None:
        """Progress of a running queue, from the VERIFY and MERGED events it emits."""
        if not self.running or event.session not in self.status or "queue" not in event.data:
            return
        if event.kind == ev.VERIFY:
            state = event.data.get("state")
            self._set_status(event.session, {
                "running": "verifying the merged result…", "passed": "verify ✓, landing…",
            }.get(state, f"✗ verify {state}"))
        elif event.kind == ev.MERGED:
            self._set_status(event.session, "landed ✓")
            position = event.data["queue"]["position"]
            if position < len(self.order):
                self._set_status(self.order[position], "landing…")

    def action_close(self) -> None:
        self.dismiss()
