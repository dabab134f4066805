"""The help screen: the key bindings in effect now (the user's keymap applied) with the binding
ids that `[keys]` in config.toml remaps (this is where people look for them), and the router syntax."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from cockpit.ui.keymap import app_keys, current_keymap, effective_bindings, key_display

if TYPE_CHECKING:
    from cockpit.ui.app import CockpitApp

#: (group title, binding-id prefixes) in the order shown.
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Focus", ("focus.",)),
    ("Attention", ("attention.", "mark.")),
    ("Approvals", ("approval.",)),
    ("Sessions", ("session.", "pane.")),
    ("Review and merge", ("review.", "compare.", "queue.", "verify.")),
    ("Layout", ("layout.", "page.", "theme.")),
    ("Experiments and plans", ("experiment.", "plan.")),
    ("Bar", ("bar.", "help", "app.", "server.")),
)

#: Longer descriptions than the footer-sized ones in BINDINGS.
DESCRIPTIONS = {
    "focus.left": "focus the pane to the left",
    "focus.right": "focus the pane to the right",
    "focus.up": "focus the pane above",
    "focus.down": "focus the pane below",
    "focus.next": "focus the next pane (all pages)",
    "focus.previous": "focus the previous pane",
    "attention.next": "jump to the next pane that needs you (approval, error, finished)",
    "mark.toggle": "mark / unmark the focused pane (instructions go to marked panes)",
    "mark.clear": "unmark every pane",
    "approval.approve": "approve the focused pane's pending request",
    "approval.approve_marked": "approve every marked pane that is waiting",
    "approval.deny": "deny the pending request (asks for a reason)",
    "approval.inbox": "inbox: all pending approvals grouped by what they ask, one key a group",
    "session.interrupt": "interrupt the focused / marked agents",
    "session.resume": "resume: run the agent again on its conversation (after an error or restart)",
    "session.new": "new session (or a fan-out of N)",
    "session.archive": "archive the focused / marked sessions (worktree and branch kept)",
    "session.remove": "remove the focused / marked sessions and their worktrees (asks first)",
    "session.tag": "add or remove tags (+tag -tag)",
    "session.goto": "go to a session by number, id or name",
    "pane.zoom": "zoom: the whole transcript of the focused session",
    "review.open": "merge view: review the focused session's change file by file, then land it",
    "compare.open": "compare the focused session's fan-out (or the marked sessions) side by side",
    "queue.open": "merge queue: overlaps, conflicts, order; land the marked (or all open) sessions",
    "verify.run": "verify: run [review] verify in the focused / marked worktrees",
    "layout.cycle": "next layout",
    "layout.repo": "show one repository's sessions (the next one each time), then all",
    "theme.cycle": "next theme",
    "page.next": "next page of panes",
    "page.previous": "previous page of panes",
    "bar.focus": "type an instruction in the bar",
    "experiment.board": "experiments: the leaderboard (best per agent, best-so-far plot, steering)",
    "plan.board": "plans: a conductor splits a task into parallel sessions; approve, edit, follow them",
    "plan.approve": "approve the proposed plan: its sessions start",
    "plan.edit": "edit the selected sub-task's instruction (before it starts)",
    "plan.files": "edit the files the selected sub-task may touch",
    "plan.drop": "drop the selected sub-task (the ones after it stop waiting for it)",
    "plan.reject": "reject the proposed plan, with a reason the conductor reads",
    "plan.goto": "go to the selected sub-task's session",
    "plan.new": "plan a task: start a conductor",
    "help": "this help",
    "app.quit": "quit (attached to a server: agents keep running; --local: they stop, sessions are kept)",
    "server.detach": "detach: leave the screen, agents keep running in the server (`cockpit attach`)",
    "zoom.close": "back to the grid",
    "zoom.follow": "follow the end of the transcript again",
    "terminal.release": "leave a zoomed terminal (every other key goes to its program)",
}

ZOOM_DESCRIPTIONS = {
    "pane.zoom": "back to the grid",
    "bar.focus": "type a message to this session only",
    "session.interrupt": "interrupt this session's agent",
    "approval.approve": "approve this session's pending request",
    "approval.deny": "deny this session's pending request (asks for a reason)",
}

#: The merge desk's views: (title, descriptions of their bindings that differ from the grid's).
REVIEW_DESCRIPTIONS = {
    "review.close": "back (from one turn's diff: back to the whole change)",
    "review.next_file": "next file",
    "review.previous_file": "previous file",
    "review.next_hunk": "next hunk (past the last: the next file)",
    "review.previous_hunk": "previous hunk",
    "review.line_up": "cursor up a line",
    "review.line_down": "cursor down a line",
    "review.split": "unified / side by side",
    "review.load": "load a large file that is folded",
    "review.viewed": "mark the file viewed (again: unseen)",
    "review.keep": "keep the hunk under the cursor",
    "review.revert": "revert the hunk under the cursor in the worktree (asks; the agent is told)",
    "review.comment": "comment on the cursor line: sent to the agent",
    "review.checkpoints": "checkpoints: what each turn changed; roll back to one",
    "review.reload": "reload the change",
    "review.merge": "merge: strategy, message, conflict preview (or rebase and hand the conflicts to the agent)",
    "review.pr": "push the branch and open a pull request (gh)",
    "verify.run": "verify this change",
    "compare.close": "back to the grid",
    "compare.keep": "keep the selected session, archive the others",
    "compare.reload": "reload the comparison",
    "queue.close": "back to the grid",
    "queue.land": "land the sessions in the order shown, verifying each; stop at the first red",
    "queue.earlier": "move the selected session earlier",
    "queue.later": "move the selected session later",
    "queue.plan": "plan again",
    "inbox.close": "back to the grid",
    "inbox.approve": "approve every request of the selected group",
    "inbox.deny": "deny every request of the selected group (one reason for all)",
    "inbox.allow": "always allow the group's shape in its repository: shows the .cockpit.toml diff, then writes it",
    "inbox.down": "next group",
    "inbox.up": "previous group",
}

ROUTER_SYNTAX: tuple[tuple[str, str], ...] = (
    ("@3", "session number 3"),
    ("@name", "a session by name, slug or id"),
    ("#tag", "every open session with that tag"),
    ("@all", "every open session"),
    ("@marked", "the marked panes"),
    ("@waiting", "sessions waiting for you (approval or input)"),
    ("@idle", "idle sessions"),
    ("@error", "sessions in error"),
    ("@running", "sessions working right now"),
    ("(none)", "the marked panes, else the focused pane"),
)


def group_of(binding_id: str) -> str:
    for title, prefixes in GROUPS:
        if any(binding_id == p or binding_id.startswith(p) for p in prefixes):
            return title
    return "Other"


def help_rows(app: Any) -> list[tuple[str, str, str, str]]:
    """(group, binding id, keys, description) for the grid, in group order, keymap applied."""
    rows = [
        (group_of(binding_id), binding_id, key_display(app, binding, keys),
         DESCRIPTIONS.get(binding_id, binding.description))
        for binding_id, (binding, keys) in app_keys(app).items()
    ]
    order = [title for title, _ in GROUPS] + ["Other"]
    return sorted(rows, key=lambda row: order.index(row[0]))


def zoom_rows(app: Any) -> list[tuple[str, str, str, str]]:
    from cockpit.ui.zoom import ZoomScreen

    return _screen_rows(app, "Zoom view", ZoomScreen.BINDINGS, ZOOM_DESCRIPTIONS)


def terminal_rows(app: Any) -> list[tuple[str, str, str, str]]:
    from cockpit.ui.terminal_zoom import TerminalZoom

    return _screen_rows(app, "Zoomed terminal", TerminalZoom.BINDINGS, {})


def leaderboard_rows(app: Any) -> list[tuple[str, str, str, str]]:
    from cockpit.ui.leaderboard import LeaderboardScreen

    return _screen_rows(app, "Experiment leaderboard", LeaderboardScreen.BINDINGS, {})


def plan_rows(app: Any) -> list[tuple[str, str, str, str]]:
    from cockpit.ui.plan_view import PlanScreen

    return _screen_rows(app, "Plan view", PlanScreen.BINDINGS, {})


def _screen_rows(app: Any, title: str, screen_bindings: Any, overrides: dict[str, str]) -> list[tuple[str, str, str, str]]:
    bindings = effective_bindings(screen_bindings, current_keymap(app))
    return [
        (title, binding_id, key_display(app, binding, keys),
         overrides.get(binding_id) or DESCRIPTIONS.get(binding_id, binding.description))
        for binding_id, (binding, keys) in bindings.items()
    ]


def review_rows(app: Any) -> list[tuple[str, str, str, str]]:
    """The keys of the views opened from the grid (merge, compare, queue, inbox), keymap applied."""
    from cockpit.ui.compare_view import CompareScreen
    from cockpit.ui.diff_view import DiffView
    from cockpit.ui.inbox import InboxScreen
    from cockpit.ui.merge_view import MergeScreen
    from cockpit.ui.queue_view import QueueScreen

    views = (("Merge view", [*MergeScreen.BINDINGS, *DiffView.BINDINGS]), ("Compare view", CompareScreen.BINDINGS),
             ("Merge queue view", QueueScreen.BINDINGS), ("Approval inbox", InboxScreen.BINDINGS))
    return [
        (title, binding_id, key_display(app, binding, keys),
         REVIEW_DESCRIPTIONS.get(binding_id) or DESCRIPTIONS.get(binding_id, binding.description))
        for title, bindings in views
        for binding_id, (binding, keys) in effective_bindings(bindings, current_keymap(app)).items()
        if binding_id != "help"
    ]


class HelpScreen(ModalScreen[None]):
    AUTO_FOCUS = "*"  # the scrolling list, so arrows and page keys scroll it
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 120; max-width: 95%; height: 90%; border: round $accent; background: $panel; }
    HelpScreen .title { text-style: bold; padding: 0 1; width: 1fr; }
    HelpScreen .group { text-style: bold; color: $accent; padding: 1 1 0 1; }
    HelpScreen .rows { padding: 0 1; }
    HelpScreen .hint { color: $text-muted; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,question_mark,q", "close", "close", show=False)]

    def __init__(self, app: CockpitApp):
        super().__init__()
        self.cockpit = app
        self.rows = (help_rows(app) + zoom_rows(app) + review_rows(app) + terminal_rows(app) + leaderboard_rows(app)
                     + plan_rows(app))

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Cockpit keys", classes="title")
            with VerticalScroll():
                width = max((len(row[2]) for row in self.rows), default=8) + 2
                id_width = max((len(row[1]) for row in self.rows), default=8) + 2
                groups: dict[str, list[Text]] = {}
                for group, binding_id, keys, description in self.rows:
                    line = Text(f"{keys:<{width}}")
                    line.append(f"{binding_id:<{id_width}}", style="dim")  # what [keys] in config.toml names
                    groups.setdefault(group, []).append(line + description)
                palette_key = self.app.get_key_display(Binding(self.app.COMMAND_PALETTE_BINDING, "command_palette"))
                groups.setdefault("Bar", []).append(
                    Text(f"{palette_key:<{width}}{'':<{id_width}}command palette: every action, session and layout"))
                for group, lines in groups.items():
                    yield Static(group, classes="group", markup=False)
                    yield Static(Text("\n").join(lines), classes="rows")
                yield Static("Instruction targets (leading words of a line in the bar)", classes="group", markup=False)
                syntax_width = max(len(token) for token, _ in ROUTER_SYNTAX) + 2
                yield Static("\n".join(f"{token:<{syntax_width}}{meaning}" for token, meaning in ROUTER_SYNTAX)
                             + "\n\ne.g.  @3 @api #backend run the tests and fix what fails", classes="rows", markup=False)
                yield Static("Targets combine; remap keys in config.toml under [keys] by the ids above "
                             "(the second column), e.g. \"approval.approve\" = \"y\"", classes="hint", markup=False)
            yield Label("escape / ?: close", classes="hint")

    def text(self) -> str:
        """Everything the screen lists, as plain text (for tests and for `cockpit keys`)."""
        return "\n".join(f"{group}: {keys}  {description}  [{binding_id}]"
                         for group, binding_id, keys, description in self.rows)

    def action_close(self) -> None:
        self.dismiss()
