"""The cockpit screen: every session as a pane, an instruction bar, a status bar.

The app never touches agents or git itself: it reads the engine's snapshot and events and
sends the engine's JSON commands, so the same UI drives an in-process engine or (later) a
server over a socket. Events are drained by one 15 Hz timer that updates pane models and
repaints only visible panes that changed.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterable
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Input

from cockpit.config import Config
from cockpit.core import events as ev
from cockpit.core.events import Event
from cockpit.errors import CockpitError
from cockpit.ui import textual_patches  # noqa: F401  (applied on import; see the module)
from cockpit.ui.attention import attention_order
from cockpit.ui.command_bar import CommandBar
from cockpit.ui.grid import PaneGrid
from cockpit.ui.notify import Kind, Notifier
from cockpit.ui.palette import CockpitCommands
from cockpit.ui.pane import AgentPane
from cockpit.ui.status import StatusBar, status_text
from cockpit.ui.trust_prompt import on_config_event
from cockpit.ui.terminal_pane import TerminalPane, pane_for
from cockpit.ui.text import SPINNER
from cockpit.ui.themes import ThemeManager

FLUSH_HZ = 15
TRANSCRIPT_TAIL_EVENTS = 400


class CockpitApp(App[None]):
    TITLE = "cockpit"
    # Focus goes to a pane, never to the bar by default: with no pane focused the grid's keys
    # (c to create, ? for help) must work, not type into the instruction bar.
    AUTO_FOCUS = None
    COMMANDS = App.COMMANDS | {CockpitCommands}
    CSS = """
    Screen { layers: base overlay; }
    /* Input's own `:focus` rule (a tall border) outranks `CommandBar Input { border: none }`:
       focused, the one-row bar had no room left for text and what you typed was invisible. */
    CommandBar Input:focus { border: none; }
    """
    BINDINGS = [
        Binding("left,h", "move('left')", "left", show=False, id="focus.left"),
        Binding("right,l", "move('right')", "right", show=False, id="focus.right"),
        Binding("up,k", "move('up')", "up", show=False, id="focus.up"),
        Binding("down,j", "move('down')", "down", show=False, id="focus.down"),
        Binding("tab", "cycle(1)", "next pane", show=False, id="focus.next"),
        Binding("shift+tab", "cycle(-1)", "previous pane", show=False, id="focus.previous"),
        Binding("n", "next_attention", "next needing you", id="attention.next"),
        Binding("space,m", "toggle_mark", "mark", id="mark.toggle"),
        Binding("u", "clear_marks", "unmark all", show=False, id="mark.clear"),
        Binding("a", "approve", "approve", id="approval.approve"),
        Binding("A", "approve_marked", "approve marked", show=False, id="approval.approve_marked"),
        Binding("d", "deny", "deny", id="approval.deny"),
        Binding("I", "inbox", "inbox", id="approval.inbox"),
        Binding("x", "interrupt", "interrupt", id="session.interrupt"),
        Binding("r", "resume", "resume", show=False, id="session.resume"),
        Binding("c", "create", "new", id="session.new"),
        Binding("E", "archive", "archive", show=False, id="session.archive"),
        Binding("D", "remove", "remove", show=False, id="session.remove"),
        Binding("t", "tag", "tag", show=False, id="session.tag"),
        Binding("g", "goto", "go to", show=False, id="session.goto"),
        Binding("z,enter", "zoom", "zoom", id="pane.zoom"),
        Binding("M", "review", "merge view", id="review.open"),
        Binding("C", "compare", "compare", show=False, id="compare.open"),
        Binding("Q", "queue", "merge queue", show=False, id="queue.open"),
        Binding("v", "verify", "verify", show=False, id="verify.run"),
        Binding("R", "filter_repo", "repository", show=False, id="layout.repo"),
        Binding("L", "cycle_layout", "layout", id="layout.cycle"),
        Binding("T", "cycle_theme", "theme", id="theme.cycle"),
        Binding("]", "page(1)", "next page", show=False, id="page.next"),
        Binding("[", "page(-1)", "previous page", show=False, id="page.previous"),
        Binding("i,slash,colon", "focus_bar", "instruct", id="bar.focus"),
        Binding("X", "experiments", "experiments", id="experiment.board"),
        Binding("P", "plans", "plans", id="plan.board"),
        Binding("question_mark", "help", "help", id="help"),
        Binding("q", "quit", "quit", id="app.quit"),
        Binding("ctrl+d", "detach", "detach", id="server.detach"),
    ]

    def __init__(
        self, client: Any, config: Config, *, frozen_clock: float | None = None, repo: str = ".", label: str = "",
        experiment: str = "", no_detach: str = "",
    ):
        super().__init__()
        self.no_detach = no_detach  # what ctrl+d says where there is no server (the demo: run `cockpit`)
        self.label = label  # shown first in the status bar, e.g. that the agents are simulated
        self.experiment = experiment  # an experiment whose leaderboard opens at start
        self.client = client
        self.config = config
        self.repo = repo  # where new sessions branch from (the new-session dialog's default)
        self.frozen_clock = frozen_clock  # snapshots freeze the spinner and clocks
        self.marked: set[str] = set()
        self.sessions: dict[str, dict[str, Any]] = {}
        #: Live events of panes not filled yet (`_load_all`), in arrival order.
        self._held: dict[str, list[Event]] = {}
        self._subscription: Any = None
        self._tokens_window: list[tuple[float, int]] = []  # (time, tokens) per flush
        self._tokens_pending = 0
        self._status_text = ""
        self._status_note = ""  # a passing word in the status bar ("config reloaded")
        self._status_note_timer: Any = None
        self.trust_asked: set[tuple[str, str]] = set()  # (repo, file digest) the trust prompt asked about
        self.paused = ""  # why the engine holds every agent (its store cannot write), shown in red
        self.review_marks: dict[str, Any] = {}  # merge view review state per session (ReviewMarks)
        self.notifier = Notifier(self)
        self.themes = ThemeManager(self, config)  # registers themes, applies the start theme

    # -- building --------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        layout = self.config.layouts.get("default") or self.config.layouts.get(self.config.defaults.agent)
        from cockpit.config import LayoutConfig

        self.grid = PaneGrid(layout or LayoutConfig())
        yield self.grid
        self.bar = CommandBar(self)
        yield self.bar
        self.status = StatusBar()
        yield self.status

    async def on_mount(self) -> None:
        if self.config.keys:
            self.set_keymap(self.config.keys)  # checked by keymap.validate_keymap before start
        self.themes.watch()
        for error in self.themes.errors:
            self.notify(error, title="theme skipped", severity="error", timeout=10, markup=False)
        self._subscription = self.client.subscribe()
        self.paused = getattr(self.client, "paused", "")  # held already: say so from the start
        await self._load_all()
        self.set_interval(1 / FLUSH_HZ, self._pump)
        self.call_after_refresh(_freeze_heap)
        self._focus_first()
        if self.experiment:
            self.action_experiments()

    def notify(
        self, message: str, *, title: str = "", severity: Any = "information", timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every toast is plain text, whatever the caller passed: toasts carry session names, paths,
        errors and agent text, in which `[review]` is text (Textual's markup ate it) and a stray
        `[/]` would raise. No cockpit toast uses markup on purpose."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def on_unmount(self) -> None:
        gc.unfreeze()  # the start-up heap, this app's widgets among it, may be collected again

    async def _load_all(self) -> None:
        """Build every pane from the snapshot and the tail of each stored transcript.

        Only the panes the first page can show are filled before the first frame; the others
        are filled right after it (`_load_later`), so a hundred sessions start as fast as ten.
        """
        snapshot = [s for s in self.client.snapshot() if s["state"] != "archived"]
        first = self.grid.capacity_within(self.size.width, self.size.height)  # at least the first page
        panes = []
        for index, session in enumerate(snapshot):
            self.sessions[session["id"]] = session
            pane = pane_for(session)
            if index < first:
                await self._fill(pane)
            else:
                self._held[session["id"]] = []  # its live events wait for its transcript
            panes.append(pane)
        with self.batch_update():
            await self.grid.add_panes(panes)
        self._refresh_status()
        if self._held:
            self.call_after_refresh(lambda: self.run_worker(self._load_later(), group="load", exclusive=True))

    async def _fill(self, pane: Any) -> None:
        for event in await self.client.transcript(pane.session_id, tail=TRANSCRIPT_TAIL_EVENTS):
            pane.feed(event)

    async def _load_later(self) -> None:
        """Fill the panes `_load_all` left empty, then hand each the live events that arrived
        meanwhile (those its stored tail already holds, by sequence number, are skipped)."""
        for session_id in list(self._held):
            pane = self.grid.panes.get(session_id)
            if pane is None:
                self._held.pop(session_id, None)
                continue
            stored = await self.client.transcript(session_id, tail=TRANSCRIPT_TAIL_EVENTS)
            held = self._held.pop(session_id, [])
            last = stored[-1].seq if stored else 0
            for event in stored:
                pane.feed(event)
            for event in held:
                if event.seq > last:
                    await self._apply(event)  # as if live: attention, status, the sessions' copy
            pane.dirty = True

    def _focus_first(self) -> None:
        visible = self.grid.visible_ids()
        if visible:
            _focus_now(self.grid.panes[visible[0]])

    # -- the event pump --------------------------------------------------------------------------

    async def _pump(self) -> None:
        """Apply queued events and repaint the visible panes (named so as not to hide
        Textual's own `App._flush`, which `print()` inside the app relies on)."""
        events = self._subscription.get_nowait() if self._subscription else []
        if events:
            # views that follow events (zoom, merge desk) get each one; `feed` only queues or
            # updates their model, they repaint on their own
            followers = [screen.feed for screen in self.screen_stack if hasattr(screen, "feed")]
            for event in events:
                for feed in followers:
                    feed(event)
                await self._apply(event)
        visible = [self.grid.panes[session_id] for session_id in self.grid.visible_ids()]
        self._tick_spinners(visible)
        for pane in visible:
            pane.flush()
        if events:
            self._refresh_status()

    async def _apply(self, event: Event) -> None:
        kind = event.kind
        if kind == ev.RESYNC:
            await self._resync()
            return
        if kind == ev.NOTICE and not event.session:  # about the cockpit itself: a lost connection
            self.notify(event.data.get("text", ""), timeout=6, markup=False)
            return
        if kind == ev.CONFIG:
            on_config_event(self, event.data)
            return
        if kind == ev.STORAGE:
            self.paused = event.data.get("reason", "") if event.data.get("paused") else ""
            return
        if kind == ev.PLAN:
            plan = event.data["plan"]
            conductor = self.sessions.get(plan["conductor"])
            if plan["status"] == "proposed" and conductor is not None:
                self.notify_attention(conductor, f"plan {plan['id']} awaits your approval (P)")
            return
        if kind == ev.SESSION_CREATED:
            session = event.data["session"]
            self.sessions[session["id"]] = session
            await self.grid.add_panes([pane_for(session)])
            return
        if kind == ev.SESSION_REMOVED:
            self.sessions.pop(event.session, None)
            self.marked.discard(event.session)
            await self.grid.remove_pane(event.session)
            return
        if event.session in self._held:  # its pane is not filled yet: after its stored tail
            self._held[event.session].append(event)
            return
        pane = self.grid.panes.get(event.session)
        if pane is None:
            return
        was = pane.state
        pane.feed(event)
        if kind == ev.SESSION_STATE and was in ("running", "waiting") and pane.state == "idle":
            # finished work to look at, unless the person is looking (its pane, or zoomed into it)
            watched = pane is self.focused_pane or getattr(self.screen, "session_id", None) == pane.session_id
            pane.session["unseen"] = not watched
            if pane.session["unseen"]:
                self.notify_attention(pane.session, "finished", kind="finished")
        self.sessions[event.session] = pane.session
        if kind == ev.TEXT_DELTA:
            self._tokens_pending += 1
        elif kind == ev.APPROVAL_REQUEST:
            self.notify_attention(pane.session, f"approve {event.data.get('tool')}: {event.data.get('title')}")
        elif kind == ev.ERROR:
            self.notify_attention(pane.session, event.data.get("text", "error"), severity="error")
        elif kind == ev.SESSION_STATE and event.data["state"] == "waiting" and isinstance(pane, TerminalPane):
            # a terminal's prompt matched a waiting pattern: it asks like an approval does
            self.notify_attention(pane.session, f"waiting: {event.data.get('detail', '')}")
        elif kind == ev.SESSION_STATE and event.data["state"] == "archived":
            await self.grid.remove_pane(event.session)

    async def _resync(self) -> None:
        for session_id in list(self.grid.panes):
            await self.grid.remove_pane(session_id)
        self.sessions.clear()
        self._held.clear()
        self.paused = getattr(self.client, "paused", "")
        await self._load_all()

    def _tick_spinners(self, visible: list[AgentPane]) -> None:
        now = self.frozen_clock if self.frozen_clock is not None else time.monotonic()
        frame = SPINNER[int(now * 10) % len(SPINNER)]
        for pane in visible:
            if pane.state == "running" and pane.spinner != frame:
                pane.spinner = frame
                pane.header_dirty = True

    def tokens_per_second(self) -> float:
        now = time.monotonic()
        if self._tokens_pending:
            self._tokens_window.append((now, self._tokens_pending))
            self._tokens_pending = 0
        self._tokens_window = [(t, n) for t, n in self._tokens_window if now - t < 2.0]
        return sum(n for _, n in self._tokens_window) / 2.0

    def status_note(self, text: str, seconds: float | None = None) -> None:
        """Show `text` in the status bar (for `seconds`, else until replaced)."""
        if self._status_note_timer is not None:
            self._status_note_timer.stop()
            self._status_note_timer = None
        self._status_note = text
        if seconds is not None:
            self._status_note_timer = self.set_timer(seconds, lambda: self.status_note(""))
        self._refresh_status()

    def _refresh_status(self) -> None:
        shown = f"repo {self.grid.repo_filter} (R: next)" if self.grid.repo_filter else ""
        label = "  │  ".join(part for part in (self.label, shown, self._status_note) if part)
        text = status_text(
            list(self.sessions.values()), label=label, tokens_per_s=self.tokens_per_second(),
            budgets=self.config.budgets, page=self.grid.page, pages=len(self.grid.pages),
            layout=self.grid.layout_name, marked=len(self.marked), paused=self.paused,
        )
        if text != self._status_text:
            # The bar's size never changes: no relayout, or every update (15 Hz while agents
            # stream) relayouts the screen and repaints every pane (~20 ms at 48 panes).
            self._status_text = text
            self.status.show(text)

    # -- attention -------------------------------------------------------------------------------

    def notify_attention(
        self, session: dict[str, Any], text: str, severity: str = "warning", kind: Kind | None = None
    ) -> None:
        """Call the person: bell, toast, desktop notification and hook, repeats and bursts folded."""
        self.notifier.attention(session, kind or ("error" if severity == "error" else "approval"), text)

    # -- focus helpers ---------------------------------------------------------------------------

    @property
    def focused_pane(self) -> AgentPane | None:
        focused = self.focused
        return focused if isinstance(focused, AgentPane) else None

    @property
    def focused_id(self) -> str | None:
        pane = self.focused_pane
        if pane is not None:
            return pane.session_id
        return getattr(self, "_last_pane_id", None)

    def on_descendant_focus(self, event: Any) -> None:
        if isinstance(event.widget, AgentPane):
            self._last_pane_id = event.widget.session_id
            event.widget.session["unseen"] = False

    def focus_session(self, session_id: str) -> None:
        pane = self.grid.reveal(session_id)
        _focus_now(pane)
        self._refresh_status()

    def targets(self) -> list[str]:
        """The marked set, else the focused session."""
        if self.marked:
            return [s for s in self.grid.order if s in self.marked]
        return [self.focused_id] if self.focused_id else []

    # -- actions ---------------------------------------------------------------------------------

    def action_move(self, direction: str) -> None:
        current = self.focused_id
        if current is None:
            self._focus_first()
            return
        target = self.grid.neighbour(current, direction)
        if target:
            _focus_now(self.grid.panes[target])

    def action_cycle(self, step: int) -> None:
        order = self.grid.shown
        if not order:
            return
        current = self.focused_id
        index = order.index(current) if current in order else -1
        self.focus_session(order[(index + step) % len(order)])

    # Screen binds tab / shift+tab to these before the app's own `focus.next` bindings are
    # reached, so on a pane they must cycle panes (in grid order, across pages) themselves.
    def action_focus_next(self) -> None:
        if self.focused_pane is not None:
            self.action_cycle(1)
        else:
            super().action_focus_next()

    def action_focus_previous(self) -> None:
        if self.focused_pane is not None:
            self.action_cycle(-1)
        else:
            super().action_focus_previous()

    def action_next_attention(self) -> None:
        queue = attention_order(list(self.sessions.values()), self.grid.order, after=self.focused_id)
        if not queue:
            self.notify("nobody needs you right now")
            return
        self.focus_session(queue[0])

    def action_toggle_mark(self) -> None:
        pane = self.focused_pane
        if pane is None:
            return
        pane.marked = not pane.marked
        (self.marked.add if pane.marked else self.marked.discard)(pane.session_id)
        pane.header_dirty = True
        pane.flush()
        self._refresh_status()

    def action_clear_marks(self) -> None:
        for session_id in self.marked:
            pane = self.grid.panes.get(session_id)
            if pane is not None:
                pane.marked = False
                pane.header_dirty = True
                pane.flush()
        self.marked.clear()
        self._refresh_status()

    async def run_command(self, command: dict[str, Any]) -> Any:
        """Send one engine command; show a refusal as a toast instead of crashing."""
        try:
            return await self.client.execute(command)
        except CockpitError as exc:
            self.notify(str(exc), severity="error", timeout=6)
            return None

    async def command_each(self, cmd: str, session_ids: Iterable[str], **args: Any) -> None:
        """Send the same command to several sessions, one after the other."""
        for session_id in session_ids:
            await self.run_command({"cmd": cmd, "session": session_id, **args})

    async def action_approve(self) -> None:
        session_id = self.focused_id
        if not session_id:
            return
        session = self.sessions.get(session_id, {})
        if session.get("kind") == "conductor":  # what a conductor waits for is its plan: show it
            plans = [tag.removeprefix("plan-") for tag in session.get("tags", []) if tag.startswith("plan-")]
            self.action_plans(plans[0] if plans else None)
            return
        await self.run_command({"cmd": "approve", "session": session_id})

    async def action_approve_marked(self) -> None:
        waiting = [s for s in self.targets() if self.sessions.get(s, {}).get("state") == "waiting"]
        await self.command_each("approve", waiting)
        if not waiting:
            self.notify("no marked pane is waiting for approval")

    @work
    async def action_deny(self) -> None:
        from cockpit.ui.dialogs import TextPrompt

        session_id = self.focused_id
        if not session_id:
            return
        reason = await self.push_screen_wait(TextPrompt("Deny: reason for the agent (optional)"))
        if reason is not None:
            await self.run_command({"cmd": "deny", "session": session_id, "reason": reason})

    def action_inbox(self) -> None:
        from cockpit.ui.inbox import InboxScreen

        self.push_screen(InboxScreen(self))

    async def action_resume(self) -> None:
        await self.command_each("resume", self.targets())

    async def action_interrupt(self) -> None:
        await self.command_each("interrupt", self.targets())

    @work
    async def action_create(self) -> None:
        from cockpit.ui.dialogs import NewSessionDialog

        spec = await self.push_screen_wait(NewSessionDialog(self.config, repo=self.repo))
        if spec:
            created = await self.run_command({"cmd": "create", **spec})
            if created:
                first = created[0]["id"]
                for _ in range(2 * FLUSH_HZ):  # its pane appears when the pump applies session.created
                    if first in self.grid.panes:
                        self.focus_session(first)
                        break
                    await asyncio.sleep(1 / FLUSH_HZ)

    async def action_archive(self) -> None:
        await self.command_each("archive", self.targets())

    @work
    async def action_remove(self) -> None:
        from cockpit.ui.dialogs import Confirm

        targets = self.targets()
        if not targets:
            return
        names = ", ".join(f"@{self.sessions[s]['number']}" for s in targets if s in self.sessions)
        if await self.push_screen_wait(Confirm(f"Remove {names} and their worktrees? Branches are kept.")):
            await self.command_each("remove", targets)

    @work
    async def action_tag(self) -> None:
        from cockpit.ui.dialogs import TextPrompt

        targets = self.targets()
        if not targets:
            return
        text = await self.push_screen_wait(TextPrompt("Tags: +tag adds, -tag removes (e.g. +api -wip)"))
        if not text:
            return
        add = [w[1:] if w.startswith("+") else w for w in text.split() if not w.startswith("-")]
        remove = [w[1:] for w in text.split() if w.startswith("-")]
        await self.command_each("tag", targets, add=add, remove=remove)

    @work
    async def action_goto(self) -> None:
        from cockpit.ui.dialogs import TextPrompt

        text = await self.push_screen_wait(TextPrompt("Go to session: number, id or name"))
        if not text:
            return
        from cockpit.core.router import resolve_token

        found = resolve_token("@" + text.lstrip("@"), [_as_session(s) for s in self.sessions.values()])
        if found:
            self.focus_session(found[0].id)
        else:
            self.notify(f"no session {text!r}", severity="error")

    def action_zoom(self) -> None:
        from cockpit.ui.zoom import ZoomScreen

        session_id = self.focused_id
        pane = self.grid.panes.get(session_id) if session_id else None
        if isinstance(pane, TerminalPane):
            from cockpit.ui.terminal_zoom import TerminalZoom

            self.push_screen(TerminalZoom(self, pane))
        elif session_id:
            self.push_screen(ZoomScreen(self, session_id))

    def action_review(self) -> None:
        from cockpit.ui.merge_view import MergeScreen

        session_id = self.focused_id
        if session_id:
            self.push_screen(MergeScreen(self, session_id))

    def action_compare(self) -> None:
        from cockpit.ui.compare_view import CompareScreen, compare_scope

        scope = compare_scope(self)
        if scope is None:
            self.notify("compare needs a fan-out (a session created with count > 1) or two marked panes",
                        severity="warning")
            return
        self.push_screen(CompareScreen(self, scope))

    def action_queue(self) -> None:
        from cockpit.ui.queue_view import QueueScreen

        self.push_screen(QueueScreen(self, self.targets() if self.marked else None))

    @work(group="verify")
    async def action_verify(self) -> None:
        await self.command_each("verify", self.targets())

    def action_filter_repo(self) -> None:
        """Show only the next repository's sessions (in name order), then all of them again."""
        repos = ["", *self.grid.repos()]
        if len(repos) < 3 and not self.grid.repo_filter:
            self.status_note("one repository here: nothing to filter", 3)
            return
        following = repos[(repos.index(self.grid.repo_filter) + 1) % len(repos)] if self.grid.repo_filter in repos else ""
        self.show_repo(following)

    def show_repo(self, repo: str) -> None:
        """Page only `repo`'s sessions ("" = every repository's)."""
        self.grid.filter_repo(repo)
        self._refresh_status()
        self._focus_first()

    def action_cycle_layout(self) -> None:
        name = self.grid.cycle_layout()
        self.notify(f"layout: {name}", timeout=2)
        self._refresh_status()

    def action_cycle_theme(self) -> None:
        name = self.themes.cycle()
        self.notify(f"theme: {name}", timeout=2)

    def action_page(self, step: int) -> None:
        self.grid.show_page(self.grid.page + step)
        self._focus_first()
        self._refresh_status()

    def action_focus_bar(self) -> None:
        _focus_now(self.bar.input)

    def leave_bar(self) -> None:
        """Give the keys back to the panes (after a line is sent, or escape): the next `q`, `i`
        or `ctrl+d` is a command again, not text that goes to the agents with the next line."""
        if self.grid.order:
            self.action_cycle(0)
        else:
            self.screen.set_focus(None)

    def action_experiments(self) -> None:
        from cockpit.ui.leaderboard import LeaderboardScreen

        self.push_screen(LeaderboardScreen(self, self.experiment or None))

    def action_plans(self, plan: str | None = None) -> None:
        from cockpit.ui.plan_view import PlanScreen

        self.push_screen(PlanScreen(self, plan))

    def action_detach(self) -> None:
        """Leave the screen; the agents go on in the server (`cockpit attach` comes back)."""
        if not getattr(self.client, "detachable", False):
            self.notify(self.no_detach or "the agents run inside this screen (--local): there is no server to leave "
                        "them to", severity="warning", timeout=8)
            return
        self.exit()

    def action_help(self) -> None:
        from cockpit.ui.help import HelpScreen

        self.push_screen(HelpScreen(self))

    @on(Input.Submitted)
    async def _on_instruction(self, message: Input.Submitted) -> None:
        if message.input is not self.bar.input:
            return
        line = message.value.strip()
        if not line:
            return
        sent = await self.run_command(
            {"cmd": "send_line", "line": line, "focused": self.focused_id, "marked": sorted(self.marked)}
        )
        if sent is not None:
            self.bar.remember(line)
            message.input.value = ""
            if not self.config.ui.keep_bar_open:
                self.leave_bar()
            names = ", ".join(f"@{self.sessions[s]['number']}" for s in sent if s in self.sessions)
            self.notify(f"sent to {names}", timeout=2)


def _focus_now(widget: Widget) -> None:
    """Move the focus now. `Widget.focus()` queues the move behind keys already waiting, and
    those still went to the old focus: `i` then `hello` typed fast ran `h`, `e`, `l` as pane
    commands (`e` archives). Textual routes a key to whatever has focus when the app dequeues
    it, so a burst that arrives all at once can still go astray; this closes our part."""
    widget.screen.set_focus(widget)


def _freeze_heap() -> None:
    """Leave the start-up heap (Textual, modules, restored panes) out of every later GC pass.

    A full collection walks every tracked object; with ~80,000 of them one took 25-60 ms on
    the 2-core box and landed in key-press latency. After the first frame they are frozen,
    so collections only walk what changed since (a few ms). Collect first so nothing
    unreachable is frozen.
    """
    gc.collect()
    gc.freeze()


def _as_session(data: dict[str, Any]) -> Any:
    from cockpit.core.model import Session

    return Session.from_dict(data)
