"""A terminal screen emulated with `pyte`, encoded compactly for `term.screen` events.

`TermScreen` takes the bytes a program writes to its pseudo-terminal and keeps what an xterm
would show: characters with colours and attributes, the cursor, and the modes that change what
keys must send (application cursor keys, bracketed paste). It adds three things pyte lacks:

- the alternate screen (`CSI ?1049h` and friends), so a full-screen program that quits leaves
  the shell's screen as it was, like a real terminal does;
- the lines that scroll off the top, kept for the transcript (a restarted cockpit shows them);
- a fast path for floods of plain lines (`seq 1 300000`, a long log): pyte parses every
  character in Python and moves every row on every line feed, about 4 s for that `seq`. When a
  chunk holds more than two screens of plain lines, only the lines that stay on screen are
  emulated; the ones in between are copied to the scrollback as text. The screen afterwards is
  the same as if every line had been fed (see `_feed_shortcut`).

Rows go out as runs of equally-styled text: `[[text, style], ...]` where style is "" for the
default or "fg,bg,flags" (colours "" / "0".."15" / "rrggbb"; flags = bold 1, italic 2,
underline 4, strike 8, reverse 16). Trailing blank default cells are left out.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable
from typing import Any

import pyte
from pyte import modes as mo

#: Private modes that switch to the alternate screen (1049 also saves the cursor).
_ALT_MODES = frozenset({47, 1047, 1049})
# pyte stores private modes shifted left by 5 and names only some of them.
_APP_CURSOR = 1 << 5  # DECCKM: cursor keys send SS3 sequences (ESC O A)
_BRACKETED_PASTE = 2004 << 5
#: Characters a plain run of lines may not contain: every C0 control but TAB, LF and CR (ESC
#: included), DEL and the C1 controls. VT and FF are excluded too: pyte treats them as line feeds.
_NOT_PLAIN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: A chunk takes the fast path only with more line feeds than this many screens.
_SHORTCUT_SCREENS = 3
#: Scrolled-off text kept between two `take_scrolled` calls (characters); older text is dropped.
SCROLLBACK_CHARS = 1_000_000

_COLOUR_NAMES = {
    name: str(index)
    for index, name in enumerate(["black", "red", "green", "brown", "blue", "magenta", "cyan", "white"])
}
_COLOUR_NAMES.update({"bright" + name: str(int(code) + 8) for name, code in list(_COLOUR_NAMES.items())})
_COLOUR_NAMES["bfightmagenta"] = "13"  # pyte 0.8.2 spells bright magenta background this way
_COLOUR_NAMES["default"] = ""


def _colour(value: str) -> str:
    return _COLOUR_NAMES.get(value, value)


class _ScrollBack:
    """Text that left the screen, in order, bounded in size until someone takes it."""

    def __init__(self) -> None:
        self._pieces: list[str] = []
        self._chars = 0
        self.dropped = 0  # lines given up because nobody took them in time
        self.total = 0  # lines ever added (positions survive `take`)

    def add(self, text: str, lines: int) -> None:
        """Append `text`, which holds `lines` complete lines each ending in "\\n"."""
        self._pieces.append(text)
        self._chars += len(text)
        self.total += lines
        if self._chars > SCROLLBACK_CHARS:
            joined = "".join(self._pieces)
            keep = joined[-SCROLLBACK_CHARS // 2:]
            keep = keep[keep.find("\n") + 1:]
            self.dropped += joined.count("\n") - keep.count("\n")
            self._pieces, self._chars = [keep], len(keep)

    def take(self, max_lines: int) -> tuple[list[str], int]:
        """The lines added since the last call (the last `max_lines` of them) and how many
        earlier ones were left out; carriage-return overwrites resolved as a terminal shows them."""
        if not self._pieces:
            return [], 0
        joined = "".join(self._pieces)
        self._pieces, self._chars = [], 0
        dropped, self.dropped = self.dropped, 0
        parts = joined.rsplit("\n", max_lines + 1)
        if len(parts) > max_lines + 1:
            dropped += parts[0].count("\n") + 1
            parts = parts[1:]
        lines = [_visible(line) for line in parts[:-1]]
        return lines, dropped


def _visible(line: str) -> str:
    """What a terminal shows of a line printed with carriage returns in it (progress bars):
    each part overwrites the start of what the previous ones left."""
    if "\r" not in line:
        return line.expandtabs().rstrip()
    shown = ""
    for part in line.split("\r"):
        part = part.expandtabs()
        shown = part + shown[len(part):]
    return shown.rstrip()


class _Screen(pyte.Screen):
    """pyte's screen plus the alternate screen, scrollback capture and replies to the program."""

    def __init__(self, columns: int, lines: int, reply: Callable[[str], None] | None):
        self.scrollback = _ScrollBack()
        self.alternate = False
        self._saved: tuple[dict[int, Any], pyte.screens.Cursor] | None = None
        self._reply = reply
        self.suppress_scrollback = 0  # scrolls whose top line must not be kept (the fast path)
        super().__init__(columns, lines)

    def row_text(self, y: int) -> str:
        line = self.buffer.get(y)
        if not line:
            return ""
        chars = [" "] * self.columns
        for x, char in line.items():
            if x < self.columns:
                chars[x] = char.data
        return "".join(chars).rstrip()

    def index(self) -> None:
        top, bottom = self.margins or (0, self.lines - 1)
        if self.cursor.y == bottom and top == 0 and not self.alternate:
            if self.suppress_scrollback:
                self.suppress_scrollback -= 1
            else:
                self.scrollback.add(self.row_text(0) + "\n", 1)
        super().index()

    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        """Resize as xterm does: a shorter screen pushes lines off the top (into the scrollback)
        only as far as the cursor needs, else it drops empty lines at the bottom; pyte's own
        resize always deletes from the top, losing a shell's output for nothing."""
        lines, columns = lines or self.lines, columns or self.columns
        if (lines, columns) == (self.lines, self.columns):
            return
        if lines < self.lines:
            scroll = max(0, self.cursor.y - (lines - 1))
            if scroll:
                if not self.alternate:
                    self.scrollback.add("".join(self.row_text(y) + "\n" for y in range(scroll)), scroll)
                kept = {y - scroll: line for y, line in self.buffer.items() if y >= scroll}
                self.buffer.clear()
                self.buffer.update(kept)
                self.cursor.y -= scroll
            for y in [y for y in self.buffer if y >= lines]:
                del self.buffer[y]
        if columns < self.columns:
            for line in self.buffer.values():
                for x in [x for x in line if x >= columns]:
                    del line[x]
        self.lines, self.columns = lines, columns
        self.set_margins()
        self.dirty.update(range(lines))

    def set_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private") and _ALT_MODES.intersection(modes):
            self._enter_alternate(save_cursor=1049 in modes)
        super().set_mode(*modes, **kwargs)

    def reset_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private") and _ALT_MODES.intersection(modes):
            self._leave_alternate()
        super().reset_mode(*modes, **kwargs)

    def _enter_alternate(self, *, save_cursor: bool) -> None:
        if self.alternate:
            return
        cursor = pyte.screens.Cursor(self.cursor.x, self.cursor.y, self.cursor.attrs)
        cursor.hidden = self.cursor.hidden
        self._saved = ({y: line for y, line in self.buffer.items()}, cursor if save_cursor else self.cursor)
        self.buffer.clear()
        self.alternate = True
        self.dirty.update(range(self.lines))

    def _leave_alternate(self) -> None:
        if not self.alternate or self._saved is None:
            return
        rows, cursor = self._saved
        self._saved = None
        self.buffer.clear()
        self.buffer.update({y: line for y, line in rows.items() if y < self.lines})  # resized meanwhile
        self.cursor = cursor
        self.alternate = False
        self.dirty.update(range(self.lines))

    def write_process_input(self, data: str) -> None:
        """Answers to the program's queries (cursor position, device attributes)."""
        if self._reply is not None:
            self._reply(data)


class TermScreen:
    """The emulated screen of one terminal session."""

    def __init__(self, columns: int = 80, lines: int = 24, reply: Callable[[bytes], None] | None = None):
        self._screen = _Screen(columns, lines, (lambda text: reply(text.encode())) if reply else None)
        self._stream = pyte.Stream(self._screen)
        # Honour charset designations (ESC ( 0) as xterm does in UTF-8 too: curses draws boxes
        # with the DEC line-drawing set. Decoding is ours, so this changes nothing else.
        self._stream.use_utf8 = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._styles: dict[tuple, str] = {}
        self.frames = 0  # frames handed out so far: a viewer drops frames older than what it has

    # -- input -----------------------------------------------------------------------------------

    @property
    def size(self) -> tuple[int, int]:
        return self._screen.columns, self._screen.lines

    def feed(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        if text.count("\n") > _SHORTCUT_SCREENS * self._screen.lines:
            self._feed_shortcut(text)
        elif text:
            self._stream.feed(text)

    def resize(self, columns: int, lines: int) -> None:
        screen = self._screen
        if (columns, lines) == self.size:
            return
        screen.resize(lines, columns)
        screen.cursor.x = min(screen.cursor.x, columns - 1)
        screen.cursor.y = min(screen.cursor.y, lines - 1)
        screen.dirty.update(range(lines))

    def _feed_shortcut(self, text: str) -> None:
        """Feed a flood of lines, emulating only what can still be on screen afterwards.

        With L screen lines, the text is cut at line feeds into a head, a middle and a tail (the
        last L line feeds and what follows). Head lines are fed as usual until the cursor waits
        at the start of a blank bottom line of a full-screen scrolling region with the parser
        between sequences (usually after one line: a flood keeps the cursor there). If then the
        middle and tail are plain lines (no escapes) and the last middle line ends in CR LF,
        every row now on screen and every middle line would scroll off before the tail's L line
        feeds are done. So those rows and lines go to the scrollback as text, the screen is
        blanked with the cursor where it would be, and the tail is fed; its first L-1 scrolls
        push out only the blank rows, which are not kept. Otherwise the rest is fed as usual.
        """
        screen, lines = self._screen, self._screen.lines
        tail_start = len(text)
        for _ in range(lines + 1):
            tail_start = text.rindex("\n", 0, tail_start)
        head_end = 0
        for _ in range(lines):  # within a screenful the cursor reaches the bottom, or never will
            if self._ready_to_skip():
                break
            line_end = text.index("\n", head_end) + 1
            if line_end > tail_start:
                break
            self._stream.feed(text[head_end:line_end])
            head_end = line_end
        rest = text[head_end:]
        if not (self._ready_to_skip() and text[tail_start - 1] == "\r" and _NOT_PLAIN.search(rest) is None):
            self._stream.feed(rest)
            return
        middle = text[head_end:tail_start + 1]
        on_screen = "".join(screen.row_text(y) + "\n" for y in range(lines - 1))
        screen.scrollback.add(on_screen, lines - 1)
        screen.scrollback.add(middle, middle.count("\n"))
        screen.buffer.clear()
        screen.suppress_scrollback = lines - 1
        screen.dirty.update(range(lines))
        self._stream.feed(text[tail_start + 1:])
        screen.suppress_scrollback = 0

    def _ready_to_skip(self) -> bool:
        """The state in which skipping plain lines is exact (see `_feed_shortcut`)."""
        screen = self._screen
        margins = screen.margins
        bottom = screen.lines - 1
        return (
            self._stream._taking_plain_text  # the parser is not inside an escape sequence
            and not screen.alternate
            and mo.DECSCNM not in screen.mode
            and (margins is None or (margins.top == 0 and margins.bottom == bottom))
            and screen.cursor.y == bottom
            and screen.cursor.x == 0
            and not screen.buffer.get(bottom)
        )

    # -- output ----------------------------------------------------------------------------------

    @property
    def scrolled_total(self) -> int:
        """Lines that ever scrolled off the top (a row's absolute line is this plus its row)."""
        return self._screen.scrollback.total

    def take_scrolled(self, max_lines: int) -> tuple[list[str], int]:
        """Lines that scrolled off since the last call (at most the last `max_lines`) and how
        many earlier ones were left out."""
        return self._screen.scrollback.take(max_lines)

    def has_changes(self) -> bool:
        return bool(self._screen.dirty)

    def lines(self) -> list[str]:
        """The screen as text, one string per row, trailing blanks removed."""
        return [self._screen.row_text(y) for y in range(self._screen.lines)]

    def row_text(self, y: int) -> str:
        return self._screen.row_text(y)

    def cursor_row(self) -> int:
        return min(self._screen.cursor.y, self._screen.lines - 1)

    @property
    def modes(self) -> dict[str, bool]:
        """What the keyboard must send: application cursor keys, bracketed paste."""
        mode = self._screen.mode
        return {"app_cursor": _APP_CURSOR in mode, "bracketed_paste": _BRACKETED_PASTE in mode}

    def frame(self, *, full: bool = False) -> dict[str, Any]:
        """The rows changed since the last frame (all rows when `full`), the cursor and modes.

        A full frame does not consume the changes: viewers that follow the live frames still
        get them.
        """
        screen = self._screen
        if full:
            rows: Iterable[int] = range(screen.lines)
        else:
            rows = sorted(y for y in screen.dirty if y < screen.lines)
            screen.dirty.clear()
            self.frames += 1
        cursor = screen.cursor
        return {
            "n": self.frames,
            "size": [screen.columns, screen.lines],
            "rows": [[y, self.runs(y)] for y in rows],
            "cursor": None if cursor.hidden else [min(cursor.x, screen.columns - 1), self.cursor_row()],
            "full": full,
            **self.modes,
        }

    def runs(self, y: int) -> list[list[str]]:
        """Row `y` as `[[text, style], ...]`, without trailing default blanks.

        Only the cells pyte holds are visited (rows are sparse dicts; a 200-column row of a
        flood holds a handful), the gaps between them are default blanks.
        """
        screen = self._screen
        line = screen.buffer.get(y)
        if not line:
            return []
        styles = self._styles
        blank = screen.default_char[1:8]
        if blank not in styles:
            styles[blank] = _style_code(screen.default_char)
        runs: list[list[str]] = []
        chars: list[str] = []
        current = None
        column = 0
        for x in sorted(line):
            if x >= screen.columns:
                break
            cells = [(" " * (x - column), blank)] if x > column else []
            char = line[x]
            cells.append((char.data, char[1:8]))
            for text, key in cells:
                if key != current:
                    if chars:
                        runs.append(["".join(chars), styles[current]])
                        chars = []
                    current = key
                    if key not in styles:
                        styles[key] = _style_code(char)
                chars.append(text)
            column = x + 1
        if chars:
            runs.append(["".join(chars), styles[current]])
        if runs and runs[-1][1] == "":
            text = runs[-1][0].rstrip(" ")
            if text:
                runs[-1][0] = text
            else:
                runs.pop()
        return runs

def _style_code(char: pyte.screens.Char) -> str:
    flags = sum(bit for bit, on in ((1, char.bold), (2, char.italics), (4, char.underscore),
                                     (8, char.strikethrough), (16, char.reverse)) if on)
    fg, bg = _colour(char.fg), _colour(char.bg)
    if not (fg or bg or flags):
        return ""
    return f"{fg},{bg},{flags}"
