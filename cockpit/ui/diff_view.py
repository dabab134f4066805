"""The diff of one file as a line-API scroll view: unified or side by side, highlighted lazily.

One `DiffView` shows one `FileDiff` at a time. Showing a file builds a flat list of rows
(small tuples pointing into the diff's hunks) and nothing else; `render_line` paints only the
rows on screen, and syntax colours are lexed only for the chunks those rows fall in
(`cockpit.ui.highlight`), right after the frame that first shows them plain. So a 20,000-line
file opens as fast as a 20-line one, and moving to the next file costs one row list plus one
screen of painting. Never a widget per line.

Side by side pairs each run of removed lines with the run of added lines that follows it, so
a changed line sits next to what replaced it; context lines show on both sides.

A cursor row (j/k) says which hunk `y`/`R` act on and which line `c` comments on.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.color import Color
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from cockpit.core.diffs import DiffLine, FileDiff, Hunk
from cockpit.ui.highlight import FileHighlight, Spans, TokenStyles, plain, printable, syntax_style_name

# Row kinds. A row is a tuple whose first item is its kind:
TITLE = 0  # (TITLE,): status letter, path, counts
NOTE = 1  # (NOTE, text, style key): rename, mode, binary, folded …
HUNK = 2  # (HUNK, h): the hunk's @@ header
LINE = 3  # (LINE, h, i): one line of hunk h (unified; in side by side, "\ No newline" rows)
PAIR = 4  # (PAIR, h, left i, right i): side by side, -1 for an empty side

STATUS_LETTERS = {"added": "A", "modified": "M", "deleted": "D", "renamed": "R", "copied": "C", "type-changed": "T"}
_FILE_MODES = {"120000": "symbolic link", "160000": "submodule"}
_MODEL_CACHE = 32  # files whose row data and highlighting are kept


# -- styles ---------------------------------------------------------------------------------------


class DiffStyles:
    """Rich styles of the diff and the file list, derived once per app and theme: rows are
    painted thousands of times a second, and resolving the theme costs more than a row."""

    _cache: WeakKeyDictionary[Any, dict[str, dict[str, Any]]] = WeakKeyDictionary()

    @classmethod
    def for_app(cls, app: Any) -> dict[str, Any]:
        by_theme = cls._cache.setdefault(app, {})
        found = by_theme.get(app.theme)
        if found is None:
            found = by_theme[app.theme] = cls._derive(app)
        return found

    @staticmethod
    def _derive(app: Any) -> dict[str, Any]:
        theme = app.current_theme
        values = app.get_css_variables()

        def color(name: str, fallback: str) -> Color:
            try:
                return Color.parse(values.get(name) or fallback)
            except Exception:  # an "auto 60%"-style value or a theme without the colour
                return Color.parse(fallback)

        bg = color("background", "#121212" if theme.dark else "#fafafa")
        fg = color("foreground", "#e0e0e0" if theme.dark else "#202020")
        panel = color("panel", bg.hex)
        good, bad = color("success", "green"), color("error", "red")
        muted = bg.blend(fg, 0.55)
        add_bg, del_bg = bg.blend(good, 0.22), bg.blend(bad, 0.22)

        def style(fore: Color, back: Color, **flags: bool) -> Style:
            return Style(color=fore.rich_color, bgcolor=back.rich_color, **flags)

        return {
            "syntax": syntax_style_name(theme.dark),
            "text": style(fg, bg),
            " ": style(fg, bg), "+": style(fg, add_bg), "-": style(fg, del_bg),
            "sign ": style(muted, bg), "sign+": style(good, add_bg, bold=True), "sign-": style(bad, del_bg, bold=True),
            "gutter ": style(muted, bg), "gutter+": style(muted, add_bg), "gutter-": style(muted, del_bg),
            "cursor": style(bg, color("primary", "#0178d4"), bold=True),
            "empty": style(muted, bg.blend(fg, 0.05)),
            "edge": style(muted, bg),
            "title": style(fg, panel, bold=True),
            "title.added": style(good, panel, bold=True), "title.removed": style(bad, panel, bold=True),
            "hunk": style(color("secondary", muted.hex).blend(fg, 0.5), panel),
            "hunk.kept": style(good, panel, bold=True),
            "note": style(muted, bg, italic=True),
            "warn": style(color("warning", "yellow"), bg, bold=True),
            "nolf": style(muted, bg, italic=True),
            "muted": style(muted, bg),
            "added": style(good, bg), "removed": style(bad, bg),
            "list": style(fg, bg), "list.current": style(bg, color("primary", "#0178d4"), bold=True),
            "list.dim": style(muted, bg),
            "state.unseen": style(color("warning", "yellow"), bg, bold=True),
            "state.viewed": style(muted, bg), "state.kept": style(good, bg, bold=True),
        }


# -- what a file says besides its lines -------------------------------------------------------------


def file_notes(diff: FileDiff) -> list[tuple[str, str]]:
    """(text, style key) lines shown above a file's hunks: how it changed besides its lines."""
    notes: list[tuple[str, str]] = []
    if diff.status in ("renamed", "copied"):
        notes.append((f"{diff.status} from {diff.old_path} ({diff.similarity}% similar)", "note"))
    if diff.status == "type-changed":
        notes.append((f"type changed: {_mode_kind(diff.old_mode)} → {_mode_kind(diff.new_mode)}", "warn"))
    elif diff.mode_changed:
        notes.append((f"mode {diff.old_mode} → {diff.new_mode}", "warn"))
    if diff.status == "added":
        odd_mode = diff.new_mode not in ("", "100644")
        notes.append(("new file" + (f", mode {diff.new_mode} ({_mode_kind(diff.new_mode)})" if odd_mode else ""), "note"))
    elif diff.status == "deleted":
        notes.append(("deleted file: every line removed", "note"))
    if diff.binary:
        notes.append((f"binary file {_binary_verb(diff.status)}: no text diff", "warn"))
    elif diff.folded:
        notes.append((f"large diff folded: {diff.patch_lines:,} lines (+{diff.added:,} −{diff.removed:,}); "
                       "press enter to load it", "warn"))
    elif not diff.hunks and diff.status not in ("renamed", "copied") and not diff.mode_changed:
        notes.append(("empty file" if diff.status in ("added", "deleted") else "no line changed", "note"))
    return notes


def _mode_kind(mode: str) -> str:
    if mode == "100755":
        return "executable"
    return _FILE_MODES.get(mode, "file")


def _binary_verb(status: str) -> str:
    return {"added": "added", "deleted": "deleted"}.get(status, "changed")


# -- per-file data (built when the file is first shown) -------------------------------------------


@dataclass
class _FileModel:
    """What painting one file needs besides the diff: each line's place in its side's text
    (for the highlighter), the widest line number and text, and the row lists once built."""

    diff: FileDiff
    refs: list[list[tuple[str, int] | None]]  # per hunk, per line: ("old"|"new", index)
    sides: dict[str, list[str]]
    number_width: int
    text_width: int
    unified: list[tuple] | None = None
    split: list[tuple] | None = None

    @classmethod
    def build(cls, diff: FileDiff) -> _FileModel:
        old: list[str] = []
        new: list[str] = []
        refs: list[list[tuple[str, int] | None]] = []
        widest = biggest = 0
        for hunk in diff.hunks:
            hunk_refs: list[tuple[str, int] | None] = []
            for line in hunk.lines:
                kind, text = line.kind, line.text
                if kind == " ":
                    old.append(text)
                    hunk_refs.append(("new", len(new)))
                    new.append(text)
                elif kind == "+":
                    hunk_refs.append(("new", len(new)))
                    new.append(text)
                elif kind == "-":
                    hunk_refs.append(("old", len(old)))
                    old.append(text)
                else:
                    hunk_refs.append(None)
                if len(text) > widest:
                    widest = len(text)
            refs.append(hunk_refs)
            biggest = max(biggest, hunk.old_start + hunk.old_count, hunk.new_start + hunk.new_count)
        return cls(diff, refs, {"old": old, "new": new}, max(3, len(str(biggest))), widest)

    def rows(self, split: bool) -> list[tuple]:
        if split:
            if self.split is None:
                self.split = self._rows(split=True)
            return self.split
        if self.unified is None:
            self.unified = self._rows(split=False)
        return self.unified

    def _rows(self, *, split: bool) -> list[tuple]:
        rows: list[tuple] = [(TITLE,)]
        rows.extend((NOTE, text, key) for text, key in file_notes(self.diff))
        for h, hunk in enumerate(self.diff.hunks):
            rows.append((HUNK, h))
            if split:
                rows.extend(_paired(h, hunk.lines))
            else:
                rows.extend((LINE, h, i) for i in range(len(hunk.lines)))
        return rows


def _paired(h: int, lines: list[DiffLine]) -> list[tuple]:
    """Side-by-side rows of one hunk: each removed run next to the added run after it."""
    rows: list[tuple] = []
    i, count = 0, len(lines)
    while i < count:
        if lines[i].kind == " ":
            rows.append((PAIR, h, i, i))
            i += 1
            continue
        if lines[i].kind == "\\":
            rows.append((LINE, h, i))
            i += 1
            continue
        runs: dict[str, list[int]] = {"-": [], "+": []}
        markers: list[int] = []  # "\ No newline" lines inside the runs, shown after them
        while i < count and lines[i].kind in "-+\\" and not (lines[i].kind == "-" and runs["+"]):
            (markers if lines[i].kind == "\\" else runs[lines[i].kind]).append(i)
            i += 1
        removed, added = runs["-"], runs["+"]
        for j in range(max(len(removed), len(added))):
            rows.append((PAIR, h, removed[j] if j < len(removed) else -1, added[j] if j < len(added) else -1))
        rows.extend((LINE, h, m) for m in markers)
    return rows


# -- the widget -----------------------------------------------------------------------------------


class DiffView(ScrollView, can_focus=True):
    """One file's diff. `show(diff)` to change file; `split` for side by side."""

    DEFAULT_CSS = """
    DiffView { height: 1fr; scrollbar-size-vertical: 1; scrollbar-size-horizontal: 1; }
    """
    BINDINGS = [
        Binding("up,k", "cursor(-1)", "up", show=False, id="review.line_up"),
        Binding("down,j", "cursor(1)", "down", show=False, id="review.line_down"),
        Binding("pageup", "page(-1)", "page up", show=False),
        Binding("pagedown", "page(1)", "page down", show=False),
        Binding("home", "edge(0)", "top", show=False),
        Binding("end", "edge(1)", "bottom", show=False),
    ]

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.diff: FileDiff | None = None
        self.split = False
        self.rows: list[tuple] = []
        self.cursor = 0
        self.kept: set[int] = set()  # hunks of this file the person kept (shown in their headers)
        self._hunk_rows: list[int] = []
        self._toggled_at: tuple[int, tuple[int, int]] | None = None  # (row after the last toggle, line before it)
        self._lex_scheduled = False
        self._model: _FileModel | None = None
        self._models: OrderedDict[int, _FileModel] = OrderedDict()
        self._highlights: OrderedDict[tuple[int, str], FileHighlight] = OrderedDict()

    # -- what is shown ---------------------------------------------------------------------------

    def show(self, diff: FileDiff | None, *, kept: set[int] | None = None, keep_cursor: bool = False) -> None:
        """Show `diff` (None: nothing) from its top, or at the same cursor row (a reloaded file)."""
        self.diff = diff
        self.kept = set(kept or ())
        self._model = self._model_of(diff) if diff is not None else None
        self._rebuild(self.cursor if keep_cursor else 0, scroll_home=not keep_cursor)

    def set_split(self, split: bool) -> None:
        """Switch unified ↔ side by side, keeping the cursor on the same line of the diff."""
        if split == self.split:
            return
        place = self._place(self.cursor)
        if self._toggled_at is not None and self._toggled_at[0] == self.cursor:
            place = self._toggled_at[1]  # toggling back and forth: where it started, not the pair's side
        self.split = split
        self._rebuild(0, scroll_home=False)
        self.move_cursor_to(self._row_of(place))
        self._toggled_at = (self.cursor, place)

    def forget(self, diff: FileDiff) -> None:
        """Drop what was built for a diff that is replaced (a reload)."""
        self._models.pop(id(diff), None)
        for key in [key for key in self._highlights if key[0] == id(diff)]:
            del self._highlights[key]

    def _model_of(self, diff: FileDiff) -> _FileModel:
        model = self._models.get(id(diff))
        if model is None or model.diff is not diff:
            model = self._models[id(diff)] = _FileModel.build(diff)
            while len(self._models) > _MODEL_CACHE:
                self._models.popitem(last=False)
        self._models.move_to_end(id(diff))
        return model

    def _highlight(self, styles: dict[str, Any]) -> FileHighlight:
        model = self._model
        assert model is not None
        key = (id(model.diff), styles["syntax"])
        found = self._highlights.get(key)
        if found is None or found.sides is not model.sides:
            found = self._highlights[key] = FileHighlight(model.diff.path, model.sides, TokenStyles.named(styles["syntax"]))
            while len(self._highlights) > _MODEL_CACHE:
                self._highlights.popitem(last=False)
        return found

    def _rebuild(self, cursor: int, *, scroll_home: bool) -> None:
        self.rows = self._model.rows(self.split) if self._model is not None else []
        self._toggled_at = None
        self._hunk_rows = [r for r, row in enumerate(self.rows) if row[0] == HUNK]
        self.cursor = max(0, min(cursor, len(self.rows) - 1))
        self._update_virtual_size()
        if scroll_home:
            self.scroll_to(0, 0, animate=False, immediate=True)
        self.refresh()

    def _update_virtual_size(self) -> None:
        model = self._model
        if model is None:
            self.virtual_size = Size(0, 0)
            return
        width = self.scrollable_content_region.width or self.size.width
        if self.split:
            half = (width - 1) // 2
            code = half - (model.number_width + 3)
            self.virtual_size = Size(width + max(0, model.text_width + 2 - code), len(self.rows))
        else:
            self.virtual_size = Size(2 * model.number_width + 4 + model.text_width + 1, len(self.rows))

    def on_resize(self, event: events.Resize) -> None:
        self._update_virtual_size()

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.refresh())

    # -- cursor and hunks ------------------------------------------------------------------------

    def hunk_at(self, row: int | None = None) -> int | None:
        """The hunk the row (default: the cursor row) belongs to, or None above the first hunk."""
        row = self.cursor if row is None else row
        if not self.rows or not 0 <= row < len(self.rows):
            return None
        kind = self.rows[row][0]
        return self.rows[row][1] if kind in (HUNK, LINE, PAIR) else None

    def line_at_cursor(self) -> DiffLine | None:
        """The diff line the cursor is on (the session's side in side by side when it has one)."""
        row = self.rows[self.cursor] if self.rows else None
        if self.diff is None or row is None or row[0] not in (LINE, PAIR):
            return None
        lines = self.diff.hunks[row[1]].lines
        if row[0] == LINE:
            return lines[row[2]]
        return lines[row[3] if row[3] >= 0 else row[2]]

    def move_cursor_to(self, row: int, *, top: bool = False) -> None:
        """Put the cursor on `row` and scroll it into view (to the top of the view when `top`)."""
        if not self.rows:
            return
        old, self.cursor = self.cursor, max(0, min(row, len(self.rows) - 1))
        height = self.scrollable_content_region.height or self.size.height or 1
        y = self.scroll_offset.y
        if top:
            self.scroll_to(y=max(0, self.cursor - 1), animate=False, immediate=True)
        elif self.cursor < y:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= y + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)
        self.refresh_line(old)
        self.refresh_line(self.cursor)

    def next_hunk(self, step: int) -> bool:
        """Move the cursor to the next (step 1) or previous (-1) hunk header; False if none."""
        if step > 0:
            index = bisect.bisect_right(self._hunk_rows, self.cursor)
        else:
            index = bisect.bisect_left(self._hunk_rows, self.cursor) - 1
        if not 0 <= index < len(self._hunk_rows):
            return False
        self.move_cursor_to(self._hunk_rows[index], top=True)
        return True

    def first_hunk(self, last: bool = False) -> None:
        """Cursor on the first (or last) hunk, else the top."""
        if self._hunk_rows:
            self.move_cursor_to(self._hunk_rows[-1 if last else 0], top=True)
        else:
            self.move_cursor_to(0, top=True)

    def action_cursor(self, step: int) -> None:
        self.move_cursor_to(self.cursor + step)

    def action_page(self, step: int) -> None:
        height = self.scrollable_content_region.height or 1
        self.scroll_to(y=self.scroll_offset.y + step * height, animate=False, immediate=True)
        self.move_cursor_to(self.cursor + step * height)

    def action_edge(self, end: int) -> None:
        self.move_cursor_to(len(self.rows) - 1 if end else 0)

    def on_click(self, event: events.Click) -> None:
        self.move_cursor_to(event.y + self.scroll_offset.y)

    def _place(self, row: int) -> tuple[int, int]:
        """(hunk, line) of a row, to find the same place in the other layout."""
        item = self.rows[row] if 0 <= row < len(self.rows) else (TITLE,)
        if item[0] == LINE:
            return item[1], item[2]
        if item[0] == PAIR:
            return item[1], item[3] if item[3] >= 0 else item[2]
        if item[0] == HUNK:
            return item[1], -1
        return -1, -1

    def _row_of(self, place: tuple[int, int]) -> int:
        if place[0] < 0:
            return 0
        for r in range(self._hunk_rows[place[0]], len(self.rows)):
            if self._place(r) == place or (place[1] >= 0 and self.rows[r][0] == PAIR and place[1] in self.rows[r][2:]):
                return r
        return 0

    # -- painting --------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        scroll_x, scroll_y = self.scroll_offset
        row_index = scroll_y + y
        styles = DiffStyles.for_app(self.app)
        if self._model is None or not 0 <= row_index < len(self.rows):
            return Strip.blank(width, styles["text"])
        row = self.rows[row_index]
        kind = row[0]
        cursor = row_index == self.cursor
        if kind == PAIR:
            return self._pair(row, width, scroll_x, styles, cursor)
        if kind == LINE:
            return self._unified(row, width, scroll_x, styles, cursor)
        if kind == TITLE:
            strip, fill = self._title(styles), styles["title"]
        elif kind == HUNK:
            strip, fill = self._hunk_header(row[1], styles), styles["hunk"]
        else:
            strip, fill = Strip([Segment(" " + printable(row[1]), styles[row[2]])]), styles["text"]
        marker = Segment("▶" if cursor else " ", styles["cursor"] if cursor else fill)
        return Strip.join([Strip([marker]), strip]).crop_extend(0, width, fill)

    def _title(self, styles: dict[str, Any]) -> Strip:
        diff = self.diff
        assert diff is not None
        letter = STATUS_LETTERS.get(diff.status, "?")
        return Strip([
            Segment(f"{letter} {printable(diff.path)}  ", styles["title"]),
            Segment(f"+{diff.added}", styles["title.added"]),
            Segment(f" −{diff.removed}", styles["title.removed"]),
        ])

    def _hunk_header(self, h: int, styles: dict[str, Any]) -> Strip:
        hunk: Hunk = self.diff.hunks[h]  # type: ignore[union-attr]
        count = len(self.diff.hunks)  # type: ignore[union-attr]
        parts = [Segment(printable(hunk.header), styles["hunk"]),
                 Segment(f"   hunk {h + 1}/{count}", styles["hunk"])]
        if h in self.kept:
            parts.append(Segment("   ★ kept", styles["hunk.kept"]))
        return Strip(parts)

    def _code(self, spans: Spans, back: Style, start: int, width: int) -> Strip:
        strip = Strip([Segment(text, back + style) for text, style in spans])
        return strip.crop_extend(start, start + width, back)

    def _spans(self, h: int, i: int, styles: dict[str, Any]) -> Spans:
        model = self._model
        assert model is not None
        ref = model.refs[h][i]
        if ref is None:
            return []
        spans = self._highlight(styles).spans(*ref)
        if spans is None:  # not lexed yet: plain in this frame, coloured right after it
            self._lex_after_frame()
            return plain(printable(model.sides[ref[0]][ref[1]]))
        return spans

    @property
    def highlighting(self) -> bool:
        """Whether lines on screen are still waiting for their syntax colours."""
        return self._lex_scheduled

    def _lex_after_frame(self) -> None:
        if not self._lex_scheduled:
            self._lex_scheduled = True
            self.call_after_refresh(self._lex_step)

    def _lex_step(self) -> None:
        """Lex one wanted chunk of the file shown; again (after pending keys) until none is
        left, then repaint with colours."""
        self._lex_scheduled = False
        if self._model is None:
            return
        if self._highlight(DiffStyles.for_app(self.app)).lex_wanted():
            self._lex_scheduled = True
            self.call_later(self._lex_step)
        else:
            self.refresh()

    def _unified(self, row: tuple, width: int, scroll_x: int, styles: dict[str, Any], cursor: bool) -> Strip:
        h, i = row[1], row[2]
        line = self.diff.hunks[h].lines[i]  # type: ignore[union-attr]
        n = self._model.number_width  # type: ignore[union-attr]
        if line.kind == "\\":
            gutter = Strip([Segment(" " * (2 * n + 4), styles["cursor" if cursor else "gutter "])])
            body = Strip([Segment("\\ " + line.text, styles["nolf"])]).crop_extend(0, width - gutter.cell_length, styles["text"])
            return Strip.join([gutter, body])
        kind = line.kind
        numbers = f"{_no(line.old_no, n)} {_no(line.new_no, n)} "
        gutter = Strip([
            Segment(numbers, styles["cursor" if cursor else "gutter" + kind]),
            Segment(kind + " ", styles["sign" + kind]),
        ])
        code = self._code(self._spans(h, i, styles), styles[kind], scroll_x, max(0, width - gutter.cell_length))
        return Strip.join([gutter, code])

    def _pair(self, row: tuple, width: int, scroll_x: int, styles: dict[str, Any], cursor: bool) -> Strip:
        _, h, left, right = row
        half = (width - 1) // 2
        lines = self.diff.hunks[h].lines  # type: ignore[union-attr]
        return Strip.join([
            self._half(h, left, lines, "old_no", half, scroll_x, styles, cursor),
            Strip([Segment("│", styles["edge"])]),
            self._half(h, right, lines, "new_no", width - 1 - half, scroll_x, styles, cursor),
        ])

    def _half(self, h: int, i: int, lines: list[DiffLine], number: str, width: int, scroll_x: int,
              styles: dict[str, Any], cursor: bool) -> Strip:
        n = self._model.number_width  # type: ignore[union-attr]
        if i < 0:
            return Strip([Segment(" " * width, styles["empty"])], width)
        line = lines[i]
        kind = line.kind
        gutter = Strip([
            Segment(_no(getattr(line, number), n) + " ", styles["cursor" if cursor else "gutter" + kind]),
            Segment(kind + " ", styles["sign" + kind]),
        ])
        code = self._code(self._spans(h, i, styles), styles[kind], scroll_x, max(0, width - gutter.cell_length))
        return Strip.join([gutter, code]).crop(0, width)


def _no(number: int | None, width: int) -> str:
    return str(number).rjust(width) if number is not None else " " * width
