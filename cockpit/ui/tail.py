"""A pane's bounded, word-wrapped tail of a transcript (pure Python, no Textual).

Streaming text arrives a few characters at a time; the tail keeps the last logical lines,
wraps them to the pane width, and re-wraps only the line that grew. `scrolls` counts changes
other than growth of the last line, so the widget can repaint one row instead of the pane.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

# Terminal escape sequences and control characters in agent or command output would move the
# cursor or recolour the screen; tabs would shift the pane border.
_ESCAPES = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|.)|[\x00-\x08\x0b-\x1f\x7f]")


def printable(text: str) -> str:
    """Text safe to paint: escapes and control characters removed, tabs expanded, \\r dropped."""
    return _ESCAPES.sub("", text.expandtabs(4))


@dataclass(slots=True)
class Line:
    style: str  # a key into the pane's style table ("text", "tool", "error", …)
    text: str
    open: bool = True  # more text may be appended


def wrap(text: str, width: int) -> list[str]:
    """Greedy word wrap; words longer than the width are cut."""
    if width <= 0:
        return [""]
    if len(text) <= width:
        return [text]
    out: list[str] = []
    while len(text) > width:
        cut = text.rfind(" ", 0, width + 1)
        if cut <= 0:
            out.append(text[:width])
            text = text[width:]
        else:
            out.append(text[:cut])
            text = text[cut + 1:]
    out.append(text)
    return out


class Tail:
    def __init__(self, max_lines: int = 300, width: int = 40):
        self._logical: deque[Line] = deque(maxlen=max_lines)
        self.width = width
        self.rows: deque[tuple[str, str]] = deque(maxlen=max_lines)
        self._last_rows = 0  # how many rows the last logical line occupies
        self.scrolls = 0

    def write(self, text: str, style: str = "text") -> None:
        """Append streamed text; a newline ends the current line."""
        parts = printable(text).split("\n")
        for index, part in enumerate(parts):
            last = self._logical[-1] if self._logical else None
            if last is not None and last.open and last.style == style:
                if part:
                    last.text += part
                    self._grow_last(last.style, part)
            elif part or index < len(parts) - 1:
                self._start(style, part)
            if index < len(parts) - 1 and self._logical:
                self._logical[-1].open = False

    def line(self, text: str, style: str) -> None:
        """Add a whole line of its own (a tool call, a notice)."""
        self._close()
        for part in printable(text).split("\n"):
            self._start(style, part)
            self._logical[-1].open = False

    def _close(self) -> None:
        if self._logical:
            self._logical[-1].open = False

    def _start(self, style: str, text: str) -> None:
        self._close()
        self._logical.append(Line(style, text))
        self._last_rows = 0
        self._rewrap_last()

    def _grow_last(self, style: str, part: str) -> None:
        """Wrap only the last row plus the new text: greedy wrapping never moves an earlier
        break once the text ran past it, so a streamed paragraph costs O(width) per delta."""
        if not self._last_rows:
            self._rewrap_last()
            return
        _, row = self.rows.pop()
        grown = wrap(row + part, self.width)
        if len(grown) != 1:
            self.scrolls += 1
        self.rows.extend((style, r) for r in grown)
        self._last_rows += len(grown) - 1

    def _rewrap_last(self) -> None:
        line = self._logical[-1]
        rows = wrap(line.text, self.width)
        for _ in range(min(self._last_rows, len(self.rows))):
            self.rows.pop()
        if len(rows) != self._last_rows:
            self.scrolls += 1
        self.rows.extend((line.style, r) for r in rows)
        self._last_rows = len(rows)

    def resize(self, width: int) -> None:
        if width == self.width or width <= 0:
            return
        self.width = width
        self.rows.clear()
        for line in self._logical:
            self.rows.extend((line.style, r) for r in wrap(line.text, width))
        self._last_rows = len(wrap(self._logical[-1].text, width)) if self._logical else 0
        self.scrolls += 1

    def clear(self) -> None:
        self._logical.clear()
        self.rows.clear()
        self._last_rows = 0
        self.scrolls += 1
