"""The pane of a terminal session: its emulated screen, in colour, in the grid.

The engine publishes `term.screen` frames holding only the rows that changed; `TermView` keeps
the screen they describe and stamps each row with the version that last changed it, so the
pane (and the zoom view, which shares the model) repaints only rows whose stamp moved, on the
app's 15 Hz pump. Styles are looked up in a per-theme cache, never computed per cell.

Before any frame arrives (a session restored after a restart whose program is not running
yet), the pane shows the stored transcript like any agent pane: the lines that scrolled off and
the last screen.

The terminal follows the pane's size: after a resize (debounced), or when a frame arrives with
another size, the pane sends `term_resize`, unless a zoom view owns the size for now.
"""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.strip import Strip
from textual.timer import Timer

from cockpit.core import events as ev
from cockpit.ui.pane import AgentPane

RESIZE_DEBOUNCE_S = 0.25
_FLAGS = (("bold", 1), ("italic", 2), ("underline", 4), ("strike", 8), ("reverse", 16))


class TermView:
    """A terminal screen rebuilt from `term.screen` frames (no Textual in here)."""

    def __init__(self) -> None:
        self.size: tuple[int, int] | None = None  # (columns, lines); None until the first frame
        self.rows: list[list[list[str]]] = []
        self.cursor: tuple[int, int] | None = None
        self.modes: dict[str, bool] = {"app_cursor": False, "bracketed_paste": False}
        self.frame_number = -1
        self.version = 0  # bumped by every applied frame
        self.row_versions: list[int] = []

    def apply(self, frame: dict[str, Any]) -> bool:
        """Take one frame; False when it is older than what the view already shows."""
        number = int(frame.get("n", 0))
        if number < self.frame_number or (number == self.frame_number and not frame.get("full")):
            return False
        self.frame_number = number
        self.version += 1
        columns, lines = (int(v) for v in frame["size"])
        if self.size != (columns, lines):
            self.size = (columns, lines)
            self.rows = [[] for _ in range(lines)]
            self.row_versions = [self.version] * lines
        for y, runs in frame.get("rows", ()):
            if 0 <= y < lines:
                self.rows[y] = runs
                self.row_versions[y] = self.version
        cursor = tuple(frame["cursor"]) if frame.get("cursor") else None
        if cursor != self.cursor:
            for old_or_new in (self.cursor, cursor):
                if old_or_new is not None and 0 <= old_or_new[1] < lines:
                    self.row_versions[old_or_new[1]] = self.version
            self.cursor = cursor  # type: ignore[assignment]
        for mode in self.modes:
            if mode in frame:
                self.modes[mode] = bool(frame[mode])
        return True

    def text(self) -> list[str]:
        """The screen as plain text, one string per row (for tests and the transcript)."""
        return ["".join(text for text, _ in runs) for runs in self.rows]

    def top_row(self, height: int) -> int:
        """First screen row to show in `height` rows: the top, unless that would hide the cursor."""
        if self.size is None or self.size[1] <= height:
            return 0
        low = self.cursor[1] if self.cursor else 0
        for y in range(self.size[1] - 1, low, -1):
            if self.rows[y]:
                low = y
                break
        return max(0, min(low - height + 1, self.size[1] - height))


class TermStyles:
    """Rich styles for the runs' style codes, per theme (the default colours are the theme's)."""

    _cache: dict[tuple[str, str], Style] = {}

    @classmethod
    def get(cls, theme_name: str, base: Style, code: str) -> Style:
        key = (theme_name, code)
        style = cls._cache.get(key)
        if style is None:
            style = cls._cache[key] = base + _code_style(code) if code else base
        return style


def _colour(value: str) -> str | None:
    if not value:
        return None
    if value.isdigit():
        return f"color({value})"
    return f"#{value}"


def _code_style(code: str) -> Style:
    fg, bg, flags = code.split(",")
    bits = int(flags or 0)
    return Style(color=_colour(fg), bgcolor=_colour(bg), **{name: True for name, bit in _FLAGS if bits & bit})


def term_strip(view: TermView, y: int, width: int, theme_name: str, base: Style, *, cursor: bool) -> Strip:
    """Screen row `y` as one strip exactly `width` cells wide; the cursor cell reversed when asked."""
    runs = view.rows[y] if 0 <= y < len(view.rows) else []
    strip = Strip([Segment(text, TermStyles.get(theme_name, base, code)) for text, code in runs])
    strip = strip.adjust_cell_length(width, base)
    at = view.cursor
    if cursor and at is not None and at[1] == y and at[0] < width:
        x = at[0]
        cell = Strip([Segment(s.text, (s.style or base) + Style(reverse=True)) for s in strip.crop(x, x + 1)])
        strip = Strip.join([strip.crop(0, x), cell, strip.crop(x + 1, width)])
    return strip


class TerminalPane(AgentPane):
    """An agent pane whose body is the session's terminal screen."""

    def __init__(self, session: dict[str, Any], **kwargs: Any):
        super().__init__(session, **kwargs)
        self.view = TermView()
        self.sizing_paused = False  # a zoom view owns the terminal's size
        self._painted: dict[int, int] = {}  # body row → row version painted there
        self._painted_top = -1
        self._resize_timer: Timer | None = None

    # -- model -----------------------------------------------------------------------------------

    def feed(self, event: Any) -> None:
        if event.kind == ev.TERM_SCREEN:
            if self.view.apply(event.data):
                self.dirty = True
                if self.view.size != self.wanted_size():
                    self.follow_size()
            return
        if event.kind == ev.TEXT and self.view.size is not None:
            return  # stored for the transcript; the live screen already shows it
        super().feed(event)

    def show_frame(self, frame: dict[str, Any] | None) -> None:
        """Apply a whole-screen frame fetched with `term_screen`."""
        if frame and self.view.apply(frame):
            self.dirty = True
            self._painted_top = -1
            self.flush()

    async def on_mount(self) -> None:
        """Show the live screen at once when the program already runs (the app started or
        reloaded after the terminal did)."""
        self.show_frame(await self.app.run_command({"cmd": "term_screen", "session": self.session_id}))

    # -- size ------------------------------------------------------------------------------------

    def wanted_size(self) -> tuple[int, int] | None:
        """The terminal size this pane shows whole: the body, without header and edge."""
        width, height = self.size
        if not self.display or width < 2 or height < 2:
            return None
        return width - 1, height - 1

    def follow_size(self) -> None:
        """Ask for the pane's size, once resizing has settled."""
        if self.sizing_paused or self.wanted_size() is None or not self.is_mounted:
            return
        if self._resize_timer is not None:
            self._resize_timer.stop()
        self._resize_timer = self.set_timer(RESIZE_DEBOUNCE_S, self._send_size)

    async def _send_size(self) -> None:
        self._resize_timer = None
        wanted = self.wanted_size()
        if self.sizing_paused or wanted is None or wanted == self.view.size:
            return
        await self.app.run_command({"cmd": "term_resize", "session": self.session_id,
                                    "cols": wanted[0], "rows": wanted[1]})

    def on_resize(self) -> None:
        super().on_resize()
        self._painted_top = -1
        self.follow_size()

    # -- painting --------------------------------------------------------------------------------

    def flush(self) -> None:
        if self.view.size is None:
            super().flush()
            return
        width, height = self.size
        if not width or not height:
            return
        if self.dirty:
            self.dirty = False
            body = height - 1
            top = self.view.top_row(body)
            if top != self._painted_top:
                self._painted_top = top
                self._painted.clear()
                self.refresh()
            else:
                versions = self.view.row_versions
                for row in range(min(body, len(versions) - top)):
                    version = versions[top + row]
                    if self._painted.get(row) != version:
                        self._painted[row] = version
                        self.refresh(Region(0, row + 1, width, 1))
        if self.header_dirty:
            self.header_dirty = False
            self.refresh(Region(0, 0, width, 1))

    def on_focus(self) -> None:
        super().on_focus()
        self.dirty = True  # the cursor shows only in the focused pane
        self._painted.clear()

    on_blur = on_focus

    def render_line(self, y: int) -> Strip:
        if self.view.size is None:
            return super().render_line(y)
        width, height = self.size
        styles = self._pane_styles()
        if y == 0:
            return self._header_strip(width, styles)
        row = self.view.top_row(height - 1) + y - 1
        self._painted[y - 1] = self.view.row_versions[row] if row < len(self.view.row_versions) else -1
        body = term_strip(self.view, row, width - 1, self.app.theme, styles["text"], cursor=self.has_focus)
        return Strip.join([body, Strip([Segment("│", styles["edge"])], 1)])


def pane_for(session: dict[str, Any]) -> AgentPane:
    """The pane that shows a session: its terminal screen, or its transcript."""
    return TerminalPane(session) if session.get("kind") == "terminal" else AgentPane(session)
