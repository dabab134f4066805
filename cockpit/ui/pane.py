"""One agent pane: a single line-API widget (header row + transcript tail), cheap to stream.

Following the measurements in DESIGN.md: no child widgets, one pre-padded `Strip` per row,
styles looked up from a shared table (never `Widget.rich_style` per row), events only update
the model, and the app's 15 Hz flush repaints just the last row unless the text scrolled.
"""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from cockpit.core import events as ev
from cockpit.ui.tail import Tail
from cockpit.ui.text import header_text, summarize_tool, tool_result_line


class PaneStyles:
    """Rich styles for panes, derived once per theme and shared by every pane."""

    _cache: dict[str, dict[str, Style]] = {}

    @classmethod
    def cached(cls, theme_name: str) -> dict[str, Style] | None:
        return cls._cache.get(theme_name)

    @classmethod
    def forget(cls, theme_name: str) -> None:
        """Drop a theme's styles, e.g. when a theme of that name is registered again."""
        cls._cache.pop(theme_name, None)

    @classmethod
    def for_theme(cls, theme: Any) -> dict[str, Style]:
        cached = cls._cache.get(theme.name)
        if cached is None:
            fg = theme.foreground or ("#e0e0e0" if theme.dark else "#202020")
            bg = theme.background or ("#121212" if theme.dark else "#fafafa")
            panel = theme.panel or theme.surface or bg
            muted = "#8a8a8a" if theme.dark else "#6a6a6a"
            cached = cls._cache[theme.name] = {
                "text": Style(color=fg, bgcolor=bg),
                "user": Style(color=theme.accent or fg, bgcolor=bg, bold=True),
                "tool": Style(color=theme.secondary or muted, bgcolor=bg),
                "ok": Style(color=theme.success or "green", bgcolor=bg),
                "fail": Style(color=theme.error or "red", bgcolor=bg),
                "notice": Style(color=muted, bgcolor=bg, italic=True),
                "error": Style(color=theme.error or "red", bgcolor=bg, bold=True),
                "approval": Style(color=theme.warning or "yellow", bgcolor=bg, bold=True),
                "thought": Style(color=muted, bgcolor=bg, italic=True),
                "header": Style(color=fg, bgcolor=panel, bold=True),
                "header.focus": Style(color=bg, bgcolor=theme.primary or "blue", bold=True),
                "header.waiting": Style(color="#000000", bgcolor=theme.warning or "yellow", bold=True),
                "header.error": Style(color="#ffffff", bgcolor=theme.error or "red", bold=True),
                "edge": Style(color=panel, bgcolor=bg),
            }
        return cached


class AgentPane(Widget, can_focus=True):
    DEFAULT_CSS = """
    AgentPane { position: absolute; }
    """

    def __init__(self, session: dict[str, Any], *, tail_lines: int = 300):
        super().__init__(id=f"pane-{session['id']}")
        self.session = session
        self.tail = Tail(max_lines=tail_lines)
        self.marked = False
        self.dirty = False
        self.header_dirty = False
        self.show_repo = False  # the screen shows sessions of several repositories: name this one's
        self.stats: dict[str, Any] = {}
        self.collisions: list[dict[str, Any]] = []  # other sessions changing this one's files
        self.spinner = ""
        self._painted_scrolls = -1

    # -- model ---------------------------------------------------------------------------------

    @property
    def session_id(self) -> str:
        return self.session["id"]

    @property
    def state(self) -> str:
        return self.session.get("state", "idle")

    def feed(self, event: Any) -> None:
        """Update the model from one event; the app's flush repaints later."""
        kind, data = event.kind, event.data
        if kind in (ev.TEXT_DELTA, ev.TEXT):
            self.tail.write(data.get("text", ""), "text")
        elif kind in (ev.THOUGHT_DELTA, ev.THOUGHT):
            self.tail.write(data.get("text", ""), "thought")
        elif kind == ev.USER_MESSAGE:
            self.tail.line("› " + data.get("text", ""), "user")
        elif kind == ev.TOOL_CALL:
            self.tail.line(summarize_tool(data), "tool")
        elif kind == ev.TOOL_RESULT:
            style, text = tool_result_line(data)
            self.tail.line(text, style)
        elif kind == ev.APPROVAL_REQUEST:
            self.tail.line(f"⚠ approve {data.get('tool')}: {data.get('title')}?  [a] approve  [d] deny", "approval")
        elif kind == ev.APPROVAL_RESOLVED:
            verdict = "approved" if data.get("approved") else "denied"
            reason = f": {data['reason']}" if data.get("reason") else ""
            self.tail.line(f"{'✓' if data.get('approved') else '✗'} {verdict}{reason}", "ok" if data.get("approved") else "fail")
        elif kind == ev.NOTICE:
            self.tail.line("· " + data.get("text", ""), "notice")
        elif kind == ev.ERROR:
            self.tail.line("✗ " + data.get("text", ""), "error")
        elif kind == ev.SESSION_STATE:
            self.session = {**self.session, "state": data["state"], "state_detail": data.get("detail", "")}
            self.header_dirty = True
            return
        elif kind == ev.USAGE:
            self.session = {**self.session, "usage": data.get("session", {})}
            self.header_dirty = True
            return
        elif kind == ev.DIFF_STAT:
            self.set_stats(data)
            return
        elif kind == ev.COLLISION:
            self.collisions = list(data.get("with") or [])
            self.header_dirty = True
            return
        elif kind == ev.VERIFY:
            if "commit" not in data:  # the worktree's own verify, not a merge result's (merge queue)
                self.session = {**self.session, "verify": dict(data)}
                self.header_dirty = True
            return
        elif kind in (ev.SESSION_UPDATED, ev.SESSION_CREATED):
            self.session = data["session"]
            self.header_dirty = True
            return
        else:
            return
        self.dirty = True

    def set_stats(self, stats: dict[str, Any]) -> None:
        self.stats = stats
        self.header_dirty = True

    # -- painting --------------------------------------------------------------------------------

    def flush(self) -> None:
        """Repaint what changed since the last flush (called by the app's timer)."""
        width, height = self.size
        if not width or not height:
            return
        if self.dirty:
            self.dirty = False
            if self.tail.scrolls == self._painted_scrolls:
                self.refresh(Region(0, height - 1, width, 1))
            else:
                self._painted_scrolls = self.tail.scrolls
                self.refresh()
        if self.header_dirty:
            self.header_dirty = False
            self.refresh(Region(0, 0, width, 1))

    def on_resize(self) -> None:
        """Re-wrap to the new width and repaint: the screen was already painted at the new size
        from the rows wrapped at the old one, and nothing else repaints a quiet pane."""
        self.tail.resize(max(1, self.size.width - 1))
        self._painted_scrolls = self.tail.scrolls
        self.refresh()

    def on_focus(self) -> None:
        self.refresh(Region(0, 0, self.size.width, 1))

    on_blur = on_focus

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        styles = self._pane_styles()
        if y == 0:
            return self._header_strip(width, styles)
        rows = self.tail.rows
        index = len(rows) - (height - 1) + (y - 1)
        style_key, text = rows[index] if 0 <= index < len(rows) else ("text", "")
        body_width = width - 1
        return Strip(
            [Segment(text[:body_width].ljust(body_width), styles[style_key]), Segment("│", styles["edge"])],
            width,
        )

    def _pane_styles(self) -> dict[str, Style]:
        # `App.current_theme` resolves the theme on every call (~5 µs) and rows are painted
        # thousands of times a second: look styles up by the theme's name, resolve on a miss.
        app = self.app
        return PaneStyles.cached(app.theme) or PaneStyles.for_theme(app.current_theme)

    def _header_strip(self, width: int, styles: dict[str, Style]) -> Strip:
        state = self.state
        if state == "waiting":
            style = styles["header.waiting"]
        elif state == "error":
            style = styles["header.error"]
        elif self.has_focus:
            style = styles["header.focus"]
        else:
            style = styles["header"]
        text = header_text(
            self.session, marked=self.marked, spinner=self.spinner, stats=self.stats, focused=self.has_focus,
            collisions=self.collisions,
            repo=self.show_repo,
        )
        return Strip([Segment(text[:width].ljust(width), style)], width)

