"""The merge view's file list: one row per changed file, a line-API widget like the diff.

A row reads `★ M src/app.py    +12 −3`: the review state (• unseen, ✓ viewed, ★ kept), the
status letter (A added, M modified, D deleted, R renamed, C copied, T type changed), the
path (shortened from the left when it does not fit, so the file name stays) and the counts.
Hundreds of files cost one list of rows; only visible rows are painted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.segment import Segment
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from cockpit.core.diffs import FileDiff
from cockpit.ui.diff_view import STATUS_LETTERS, DiffStyles
from cockpit.ui.highlight import printable

STATE_GLYPHS = {"unseen": "•", "viewed": "✓", "kept": "★"}


def counts_text(diff: FileDiff) -> str:
    """`+12 −3`; for a file without changed lines, what did change instead."""
    if diff.binary:
        return "binary"
    if diff.added or diff.removed or diff.folded:
        return f"+{diff.added} −{diff.removed}"
    if diff.mode_changed:
        return "mode"
    return "moved" if diff.status in ("renamed", "copied") else "empty"


class FileList(ScrollView, can_focus=False):
    """The changed files; `current` is highlighted, a click selects (posts `Selected`). Never
    focused: the keys of the merge view go to the diff."""

    DEFAULT_CSS = """
    FileList { width: 34%; max-width: 60; min-width: 20; height: 1fr; border-right: vkey $panel;
               scrollbar-size-vertical: 1; overflow-x: hidden; }
    """

    class Selected(Message):
        def __init__(self, index: int):
            super().__init__()
            self.index = index

    def __init__(self, state_of: Callable[[FileDiff], str], **kwargs: Any):
        super().__init__(**kwargs)
        self.files: list[FileDiff] = []
        self.current = 0
        self._state_of = state_of  # the review state of a file: unseen | viewed | kept

    def set_files(self, files: list[FileDiff], current: int = 0) -> None:
        self.files = files
        self.current = max(0, min(current, len(files) - 1))
        self.virtual_size = Size(0, len(files))
        self.refresh()

    def select(self, index: int) -> None:
        """Highlight file `index` and scroll it into view."""
        old, self.current = self.current, index
        height = self.scrollable_content_region.height or 1
        y = self.scroll_offset.y
        if index < y:
            self.scroll_to(y=index, animate=False, immediate=True)
        elif index >= y + height:
            self.scroll_to(y=index - height + 1, animate=False, immediate=True)
        self.refresh_line(old)
        self.refresh_line(index)

    def on_click(self, event: events.Click) -> None:
        index = event.y + self.scroll_offset.y
        if 0 <= index < len(self.files):
            self.post_message(self.Selected(index))

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.refresh())

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        styles = DiffStyles.for_app(self.app)
        index = self.scroll_offset.y + y
        if not 0 <= index < len(self.files):
            return Strip.blank(width, styles["list"])
        diff = self.files[index]
        state = self._state_of(diff)
        current = index == self.current
        base = styles["list.current" if current else "list"]
        counts = counts_text(diff)
        room = max(1, width - 4 - len(counts) - 1)
        path = printable(diff.path)
        if len(path) > room:
            path = "…" + path[len(path) - room + 1 :]
        return Strip([
            Segment(STATE_GLYPHS[state] + " ", base if current else styles["state." + state]),
            Segment(STATUS_LETTERS.get(diff.status, "?") + " ", base),
            Segment(path.ljust(room) + " ", base),
            Segment(counts, base if current else styles["list.dim"]),
        ]).crop_extend(0, width, base)
