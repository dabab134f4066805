"""The zoom view: one session's whole transcript, live, with an input that talks only to it.

The stored transcript is loaded once; after that the app's 15 Hz event pump hands this screen
every event of its session (`feed`, which only queues). A 10 Hz timer turns queued events into
widgets: assistant text streams into one `Markdown` block per message (appended at most ten
times a second), user messages, notices and errors are one-line blocks, tool calls are
`Collapsible`s (collapsed; the title is the tool and its main argument, the body its
arguments and output), and a pending approval shows inline and in a bar with its keys.

The view is bounded: it renders at most the last `MAX_EVENTS` stored events and keeps at most
`MAX_BLOCKS` blocks, dropping the oldest, so a day-long session opens fast.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Collapsible, Input, Markdown, Static

from cockpit.core import events as ev
from cockpit.core.events import Event
from cockpit.errors import CockpitError
from cockpit.ui.keymap import current_keymap, effective_bindings, key_display
from cockpit.ui.text import header_text, summarize_tool

if TYPE_CHECKING:
    from cockpit.ui.app import CockpitApp

MAX_EVENTS = 500  # stored events rendered when the view opens
MAX_BLOCKS = 400  # blocks kept while streaming; the oldest go first
RENDER_HZ = 10
MAX_OUTPUT_LINES = 200  # of one tool result, in its collapsible body

# Events that only change the header, never the transcript; they do not end a text block.
_QUIET = {ev.USAGE, ev.SESSION_STATE, ev.SESSION_UPDATED, ev.SESSION_CREATED, ev.TURN_START}


@dataclass
class _TextRun:
    """One assistant message (markdown) or one run of reasoning (plain), being streamed."""

    kind: str  # "text" | "thought"
    pending: list[str] = field(default_factory=list)  # not yet shown
    shown: str = ""
    widget: Widget | None = None


@dataclass
class _ToolCall:
    block: Collapsible
    result: Static
    summary: str


class TranscriptLog(VerticalScroll, can_focus=True):
    """The scrolling transcript: sticks to the end while following.

    Following uses Textual's anchor (released when the person scrolls, taken back at the
    end), but only once the text overflows: an anchored short transcript would be pinned to
    the bottom of the screen instead of reading from the top.
    """

    DEFAULT_CSS = """
    TranscriptLog { height: 1fr; padding: 0 1; }
    """

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._want_follow = True

    @property
    def following(self) -> bool:
        if self.is_anchored:
            return not getattr(self, "_anchor_released", False)
        return self._want_follow

    def follow(self) -> None:
        """Stick to the end from now on (the End key, sending a message)."""
        self._want_follow = True
        if self.max_scroll_y > 0:
            self.anchor()

    def restart(self) -> None:
        """Back to a short, unanchored transcript that follows (after a reload)."""
        self.anchor(False)
        self._want_follow = True

    def keep_following(self) -> None:
        if self.is_anchored:
            # The target, not the position: a page-up is animated, and until its frames come
            # `scroll_y` still says "at the end", which would re-anchor and undo the page-up.
            if not self.following and self.scroll_target_y >= self.max_scroll_y:
                self.anchor()  # scrolled back down to the end: follow again
        elif self._want_follow and self.max_scroll_y > 0:
            self.anchor()


class ZoomScreen(ModalScreen[None]):
    AUTO_FOCUS = "#zoom-log"  # scrolling keys work at once; the app itself auto-focuses nothing
    DEFAULT_CSS = """
    ZoomScreen { background: $background; layout: vertical; }
    ZoomScreen #zoom-header { height: 1; width: 1fr; background: $panel; color: $text; text-style: bold; padding: 0 1; }
    ZoomScreen .user { color: $accent; text-style: bold; border-left: thick $accent; padding: 0 1; margin: 1 0 0 0; }
    ZoomScreen .notice { color: $text-muted; text-style: italic; }
    ZoomScreen .error { color: $error; text-style: bold; border-left: thick $error; padding: 0 1; }
    ZoomScreen .approval { color: $warning; text-style: bold; border-left: thick $warning; padding: 0 1; }
    ZoomScreen .resolved { color: $text-muted; text-style: none; border-left: thick $panel; }
    ZoomScreen .thought { color: $text-muted; text-style: italic; }
    ZoomScreen .elided { color: $text-muted; text-style: italic; text-align: center; }
    ZoomScreen .assistant { margin: 0; padding: 0; background: $background; }
    ZoomScreen Collapsible { padding-bottom: 0; border-top: none; }
    ZoomScreen Collapsible.failed CollapsibleTitle { color: $error; }
    ZoomScreen .tool-args { color: $text-muted; }
    ZoomScreen #zoom-approval { display: none; height: auto; background: $warning; color: $background; text-style: bold; padding: 0 1; }
    ZoomScreen #zoom-approval.pending { display: block; }
    ZoomScreen #zoom-input { width: 1fr; }
    """
    # Ids shared with the grid's bindings, so one `[keys]` entry remaps both screens.
    BINDINGS = [
        Binding("escape", "close", "back to the grid", id="zoom.close"),
        Binding("z", "close", "back to the grid", show=False, id="pane.zoom"),
        Binding("a", "approve", "approve", id="approval.approve"),
        Binding("d", "deny", "deny", id="approval.deny"),
        Binding("x", "interrupt", "interrupt", show=False, id="session.interrupt"),
        Binding("i,slash,colon", "focus_input", "message this session", id="bar.focus"),
        Binding("end", "follow", "follow the end", show=False, id="zoom.follow"),
        Binding("question_mark", "help", "help", show=False, id="help"),
    ]

    def __init__(self, app: CockpitApp, session_id: str):
        super().__init__(id=f"zoom-{session_id}")
        self.cockpit = app
        self.session_id = session_id
        self.loaded = False
        self._seen = 0  # highest seq already in the loaded transcript
        self._queue: deque[Event] = deque()
        self._reload_wanted = False
        self._keys_cache: tuple[Mapping[str, str], dict[str, Any]] | None = None
        self._reset_model()

    def _reset_model(self) -> None:
        self._run: _TextRun | None = None  # the text block that deltas extend
        self._dirty_runs: list[_TextRun] = []
        self._tools: dict[str, _ToolCall] = {}
        self._pending: dict[str, tuple[Static, dict[str, Any]]] = {}  # approval id → block, request

    # -- building --------------------------------------------------------------------------------

    @property
    def session(self) -> dict[str, Any]:
        return self.cockpit.sessions.get(self.session_id) or {"id": self.session_id, "number": "?", "name": ""}

    def compose(self) -> ComposeResult:
        yield Static("", id="zoom-header", markup=False)
        self.log_view = TranscriptLog(id="zoom-log")
        yield self.log_view
        yield Static("", id="zoom-approval", markup=False)
        session = self.session
        yield Input(placeholder=f"message to @{session['number']} {session['name']} only (enter sends, escape: grid)",
                    id="zoom-input")

    async def on_mount(self) -> None:
        self.log_view.focus()
        self.set_interval(1 / RENDER_HZ, self._tick)
        await self.reload()

    async def reload(self) -> None:
        """(Re)build the view from the stored transcript; live events queued meanwhile are kept."""
        self.loaded = False
        self._reload_wanted = False
        stored = await self.cockpit.client.transcript(self.session_id)
        self._seen = max((e.seq for e in stored), default=0)
        live = [e for e in self._queue if e.seq > self._seen]
        self._queue.clear()
        self._reset_model()
        self.log_view.restart()
        await self.log_view.remove_children()
        shown = stored[-MAX_EVENTS:]
        if len(stored) > len(shown):
            await self.log_view.mount(Static(
                f"… {len(stored) - len(shown)} earlier events not shown", classes="elided", markup=False))
        self._queue.extend(shown)
        self._queue.extend(live)
        self.loaded = True
        await self._render_queue()
        if self._current_state() != "waiting":
            self._expire_pending()  # requests that a restart or an interrupt made moot
        self._refresh_chrome()
        self.call_after_refresh(self.log_view.keep_following)

    def _current_state(self) -> str:
        """The engine's state of this session now (the app's copy may lag by one pump tick)."""
        for session in self.cockpit.client.snapshot():
            if session["id"] == self.session_id:
                return str(session.get("state", ""))
        return str(self.session.get("state", ""))

    # -- the event feed --------------------------------------------------------------------------

    def feed(self, event: Event) -> None:
        """Queue one live event (called by the app's event pump; cheap)."""
        if event.kind == ev.RESYNC:
            self._reload_wanted = True
            return
        if event.session != self.session_id:
            return
        if self.loaded and event.seq <= self._seen:
            return  # already part of the transcript we loaded
        self._queue.append(event)

    async def _tick(self) -> None:
        if not self.loaded:
            return
        if self._reload_wanted:
            await self.reload()
            return
        if self._queue or self._dirty_runs:
            await self._render_queue()
        self._refresh_chrome()

    async def _render_queue(self) -> None:
        new: list[Widget | _TextRun] = []
        removed = False
        while self._queue:
            event = self._queue.popleft()
            if event.kind == ev.SESSION_REMOVED:
                removed = True
                continue
            self._apply(event, new)
        widgets: list[Widget] = []
        for item in new:
            if isinstance(item, _TextRun):
                item.widget = self._text_widget(item)
                widgets.append(item.widget)
            else:
                widgets.append(item)
        with self.app.batch_update():
            if widgets:
                await self.log_view.mount_all(widgets)
            for run in self._dirty_runs:
                await self._show_run(run)
            self._dirty_runs.clear()
            await self._prune()
        if widgets:
            self.call_after_refresh(self.log_view.keep_following)
        if removed:
            self.app.notify(f"@{self.session['number']} {self.session['name']} was removed", timeout=4)
            self.dismiss()

    def _apply(self, event: Event, new: list[Widget | _TextRun]) -> None:
        kind, data = event.kind, event.data
        if kind in _QUIET:
            if kind == ev.SESSION_STATE and data.get("state") != "waiting":
                self._expire_pending()
            return
        if kind in (ev.TEXT_DELTA, ev.TEXT, ev.THOUGHT_DELTA, ev.THOUGHT):
            run_kind = "text" if kind in (ev.TEXT_DELTA, ev.TEXT) else "thought"
            if self._run is None or self._run.kind != run_kind:
                self._run = _TextRun(run_kind)
                new.append(self._run)
            self._run.pending.append(data.get("text", ""))
            if self._run not in self._dirty_runs:
                self._dirty_runs.append(self._run)
            return
        self._run = None  # any other content ends the current message
        if kind == ev.MESSAGE_END or kind == ev.TURN_END:
            return
        if kind == ev.USER_MESSAGE:
            new.append(Static("› " + data.get("text", ""), classes="user", markup=False))
        elif kind == ev.TOOL_CALL:
            new.append(self._tool_call(data))
        elif kind == ev.TOOL_RESULT:
            self._tool_result(data, new)
        elif kind == ev.APPROVAL_REQUEST:
            block = Static(_approval_text(data), classes="approval", markup=False)
            self._pending[str(data.get("id"))] = (block, data)
            new.append(block)
        elif kind == ev.APPROVAL_RESOLVED:
            entry = self._pending.pop(str(data.get("id")), None)
            verdict = "approved" if data.get("approved") else "denied"
            reason = f": {data['reason']}" if data.get("reason") else ""
            line = f"{'✓' if data.get('approved') else '✗'} {verdict} {data.get('tool', '')}{reason}"
            if entry is not None:
                block, request = entry
                block.update(f"{line}  ({request.get('title', '')})")
                block.add_class("resolved")
            else:
                new.append(Static(line, classes="approval resolved", markup=False))
        elif kind == ev.NOTICE:
            text = "· " + data.get("text", "")
            if data.get("output"):
                new.append(Collapsible(Static(_clip(data["output"]), markup=False), title=Content(text), collapsed=True,
                                       classes="notice"))
            else:
                new.append(Static(text, classes="notice", markup=False))
        elif kind == ev.ERROR:
            new.append(Static("✗ " + data.get("text", ""), classes="error", markup=False))

    def _text_widget(self, run: _TextRun) -> Widget:
        text = "".join(run.pending)
        run.pending.clear()
        run.shown = text
        if run.kind == "text":
            return Markdown(text, classes="assistant")
        return Static(text, classes="thought", markup=False)

    async def _show_run(self, run: _TextRun) -> None:
        if not run.pending or run.widget is None:
            return
        fragment = "".join(run.pending)
        run.pending.clear()
        run.shown += fragment
        if isinstance(run.widget, Markdown):
            await run.widget.append(fragment)
        elif isinstance(run.widget, Static):
            run.widget.update(run.shown)

    def _tool_call(self, data: dict[str, Any]) -> Collapsible:
        summary = summarize_tool(data)
        result = Static("… running", classes="tool-result", markup=False)
        block = Collapsible(Static(_arguments_text(data), classes="tool-args", markup=False), result,
                            title=Content(summary), collapsed=True, classes="tool")  # plain: agent text
        self._tools[str(data.get("id"))] = _ToolCall(block, result, summary)
        return block

    def _tool_result(self, data: dict[str, Any], new: list[Widget | _TextRun]) -> None:
        call = self._tools.get(str(data.get("id")))
        if call is None:  # the call itself was cut off by the bound; show the result alone
            call_data = {"name": data.get("name", "?"), "id": data.get("id")}
            new.append(self._tool_call(call_data))
            call = self._tools[str(data.get("id"))]
        ok = bool(data.get("ok"))
        output = _clip((data.get("output") or "").rstrip()) or "(no output)"
        call.result.update(("✓ " if ok else "✗ ") + output)
        call.block.title = Content(f"{call.summary}  {'✓' if ok else '✗'}")
        call.block.set_class(not ok, "failed")

    def _expire_pending(self) -> None:
        for block, request in self._pending.values():
            block.update(f"· approval no longer pending: {request.get('tool', '')} {request.get('title', '')}")
            block.add_class("resolved")
        self._pending.clear()

    async def _prune(self) -> None:
        children = list(self.log_view.children)
        extra = len(children) - MAX_BLOCKS
        if extra <= 0:
            return
        gone = children[:extra]
        gone_ids = {id(w) for w in gone}
        self._tools = {k: v for k, v in self._tools.items() if id(v.block) not in gone_ids}
        await self.log_view.remove_children(gone)

    # -- chrome ----------------------------------------------------------------------------------

    def key_for(self, binding_id: str) -> str:
        """The key(s) bound to an action on this screen, after the user's keymap."""
        keymap = current_keymap(self.app)
        if self._keys_cache is None or self._keys_cache[0] is not keymap:  # set_keymap replaces the dict
            self._keys_cache = (keymap, effective_bindings(self._bindings, keymap))
        found = self._keys_cache[1].get(binding_id)
        if not found:
            return "?"
        binding, keys = found
        return key_display(self.app, binding, keys)

    def _refresh_chrome(self) -> None:
        session = self.session
        pane = self.cockpit.grid.panes.get(self.session_id)  # it follows the session's collisions
        header = header_text(session, marked=session.get("id") in getattr(self.cockpit, "marked", ()),
                             spinner="", stats={}, collisions=pane.collisions if pane is not None else ())
        follow = "following" if self.log_view.following else f"paused · {self.key_for('zoom.follow')} follows"
        header_widget = self.query_one("#zoom-header", Static)
        text = f"{header}  │  {follow}  │  {self.key_for('zoom.close')} back"
        if str(header_widget.content) != text:
            header_widget.update(text)
        bar = self.query_one("#zoom-approval", Static)
        if self._pending:
            _, request = next(iter(self._pending.values()))
            more = f"  (+{len(self._pending) - 1} more)" if len(self._pending) > 1 else ""
            text = (f"⚠ approve {request.get('tool')}: {request.get('title')}?{more}   "
                    f"[{self.key_for('approval.approve')}] approve   [{self.key_for('approval.deny')}] deny")
            if str(bar.content) != text:
                bar.update(text)
        bar.set_class(bool(self._pending), "pending")
        self.log_view.keep_following()

    # -- actions ---------------------------------------------------------------------------------

    async def _command(self, command: dict[str, Any]) -> bool:
        try:
            await self.cockpit.client.execute(command)
        except CockpitError as exc:
            self.app.notify(str(exc), severity="error", timeout=6)
            return False
        return True

    def action_close(self) -> None:
        self.dismiss()

    def action_focus_input(self) -> None:
        self.query_one("#zoom-input", Input).focus()

    def action_follow(self) -> None:
        self.log_view.follow()
        self._refresh_chrome()

    def action_help(self) -> None:
        self.cockpit.action_help()

    async def action_approve(self) -> None:
        command: dict[str, Any] = {"cmd": "approve", "session": self.session_id}
        if self._pending:
            command["id"] = next(iter(self._pending))
        await self._command(command)

    @work
    async def action_deny(self) -> None:
        from cockpit.ui.dialogs import TextPrompt

        request = next(iter(self._pending), None)
        reason = await self.app.push_screen_wait(TextPrompt("Deny: reason for the agent (optional)"))
        if reason is None:
            return
        command: dict[str, Any] = {"cmd": "deny", "session": self.session_id, "reason": reason}
        if request is not None:
            command["id"] = request
        await self._command(command)

    async def action_interrupt(self) -> None:
        await self._command({"cmd": "interrupt", "session": self.session_id})

    @on(Input.Submitted, "#zoom-input")
    async def _send(self, message: Input.Submitted) -> None:
        message.stop()
        text = message.value.strip()
        if not text:
            return
        if await self._command({"cmd": "send", "session": self.session_id, "text": text}):
            message.input.value = ""
            self.log_view.follow()  # you want to see the answer


def _clip(text: str, limit: int = MAX_OUTPUT_LINES) -> str:
    lines = text.splitlines()
    if len(lines) <= limit:
        return text
    return "\n".join(lines[:limit]) + f"\n… {len(lines) - limit} more lines"


def _arguments_text(data: dict[str, Any]) -> str:
    args = data.get("arguments")
    if not args:
        raw = data.get("raw_arguments")
        return f"arguments (malformed): {raw}" if raw else "(no arguments)"
    lines = []
    for key, value in args.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if "\n" in shown:
            lines.append(f"{key}:\n{_clip(shown, 60)}")
        else:
            lines.append(f"{key}: {shown}")
    return "\n".join(lines)


def _approval_text(data: dict[str, Any]) -> str:
    detail = f"\n{_clip(str(data['detail']), 30)}" if data.get("detail") else ""
    return f"⚠ approval needed: {data.get('tool')}: {data.get('title')}{detail}"
