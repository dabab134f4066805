"""Syntax colours for diff lines: pygments tokens → rich styles, lexed lazily a chunk at a time.

A change can hold 20,000 lines; lexing them all before the first frame would take seconds, so
a `FileHighlight` lexes only the chunks (`CHUNK` consecutive lines of one side of the file)
that hold lines being drawn, and keeps them. Lexing a chunk rather than one line keeps most
multi-line constructs (docstrings, block comments) right; a chunk costs 1-10 ms, so it is done
after the frame that needed it (shown plain meanwhile), never between a key and its frame.

Lexers are found from pygments' built-in table by file name. `get_lexer_for_filename` is not
used: it scans installed plugins through package metadata, about 0.5 s on the first call.
The pygments style follows the app theme: a dark one for dark themes, a light one otherwise.
pygments is imported on first use, not with the module: the cockpit imports the merge view's
key bindings at start.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Sequence
from posixpath import basename, splitext
from typing import TYPE_CHECKING, Any

from rich.style import Style

if TYPE_CHECKING:
    from pygments.lexer import Lexer

CHUNK = 32
DARK_STYLE = "monokai"
LIGHT_STYLE = "default"
#: Control characters would move the terminal's cursor; they are drawn as their Unicode pictures.
_CONTROL_PICTURES = {code: 0x2400 + code for code in range(32) if code != 9} | {127: 0x2421}

Spans = list[tuple[str, Style]]


def syntax_style_name(dark: bool) -> str:
    return DARK_STYLE if dark else LIGHT_STYLE


def printable(text: str) -> str:
    """`text` as it may be written to a terminal: tabs expanded, control characters pictured."""
    return text.expandtabs(4).translate(_CONTROL_PICTURES)


# -- finding a lexer ------------------------------------------------------------------------------


@functools.cache
def _filename_table() -> tuple[dict[str, str], list[tuple[str, str]]]:
    """({".ext": lexer class name}, [(other glob, lexer class name)]), in pygments' table order."""
    from pygments.lexers._mapping import LEXERS

    by_suffix: dict[str, str] = {}
    globs: list[tuple[str, str]] = []
    for class_name, (_module, _name, _aliases, patterns, _mimes) in LEXERS.items():
        for pattern in patterns:
            if pattern.startswith("*.") and not any(ch in pattern[2:] for ch in "*?["):
                by_suffix.setdefault(pattern[1:], class_name)
            else:
                globs.append((pattern, class_name))
    return by_suffix, globs


@functools.lru_cache(maxsize=512)
def lexer_for(path: str) -> Lexer | None:
    """A lexer for the file's name (None: shown as plain text)."""
    from pygments.lexers import find_lexer_class
    from pygments.lexers._mapping import LEXERS

    name = basename(path)
    by_suffix, globs = _filename_table()
    class_name = next((cls for pattern, cls in globs if fnmatch.fnmatchcase(name, pattern)), None)
    if class_name is None:
        class_name = by_suffix.get(splitext(name)[1]) or by_suffix.get(splitext(name)[1].lower())
    if class_name is None:
        return None
    lexer_class = find_lexer_class(LEXERS[class_name][1])
    return lexer_class(stripnl=False, ensurenl=False) if lexer_class is not None else None


# -- token styles ---------------------------------------------------------------------------------


class TokenStyles:
    """Foreground styles of token types for one pygments style (the line's background is the
    diff's, so the pygments background is dropped)."""

    _cache: dict[str, TokenStyles] = {}

    def __init__(self, style_name: str):
        from rich.syntax import PygmentsSyntaxTheme

        self._theme = PygmentsSyntaxTheme(style_name)
        self._styles: dict[Any, Style] = {}  # pygments token type → style

    @classmethod
    def named(cls, style_name: str) -> TokenStyles:
        found = cls._cache.get(style_name)
        if found is None:
            found = cls._cache[style_name] = cls(style_name)
        return found

    def __getitem__(self, token: Any) -> Style:
        style = self._styles.get(token)
        if style is None:
            full = self._theme.get_style_for_token(token)
            style = self._styles[token] = Style(
                color=full.color, bold=full.bold, italic=full.italic, underline=full.underline
            )
        return style


# -- one file -------------------------------------------------------------------------------------


class FileHighlight:
    """Highlighted lines of one file's diff, by side ("old": context and removed lines, "new":
    context and added lines, each in file order), lexed `CHUNK` lines at a time on demand.

    `spans` never lexes: it answers None for a line whose chunk is not lexed yet and notes
    the chunk as wanted; the view paints that line plain and calls `lex_wanted` after the
    frame is out, so a key press never waits for pygments.
    """

    def __init__(self, path: str, sides: dict[str, Sequence[str]], styles: TokenStyles):
        self.path = path
        self.sides = sides
        self.styles = styles
        self._chunks: dict[tuple[str, int], list[Spans]] = {}
        self._wanted: dict[tuple[str, int], None] = {}  # in the order they were asked for

    @property
    def chunks_lexed(self) -> int:
        return len(self._chunks)

    @property
    def pending(self) -> bool:
        return bool(self._wanted)

    def spans(self, side: str, index: int) -> Spans | None:
        """The styled pieces of line `index` of `side` (tabs expanded, nothing unprintable),
        or None until its chunk is lexed."""
        key = (side, index // CHUNK)
        chunk = self._chunks.get(key)
        if chunk is None:
            self._wanted[key] = None
            return None
        return chunk[index % CHUNK]

    def lex_wanted(self) -> bool:
        """Lex one wanted chunk; True while more are wanted."""
        if self._wanted:
            key = next(iter(self._wanted))
            del self._wanted[key]
            self._chunks[key] = self._lex(*key)
        return bool(self._wanted)

    def _lex(self, side: str, number: int) -> list[Spans]:
        lines = [printable(text) for text in self.sides[side][number * CHUNK : (number + 1) * CHUNK]]
        lexer = lexer_for(self.path)  # here, not before the first frame: a lexer's first use compiles its rules
        if lexer is None:
            return [plain(line) for line in lines]
        out: list[Spans] = [[]]
        styles = self.styles
        for token, value in lexer.get_tokens("\n".join(lines)):
            style = styles[token]
            first, *rest = value.split("\n")
            if first:
                out[-1].append((first, style))
            for piece in rest:
                out.append([(piece, style)] if piece else [])
        out.extend([] for _ in range(len(lines) - len(out)))
        return out[: len(lines)]


def plain(text: str) -> Spans:
    """A printable line without syntax colours (what is shown until its chunk is lexed)."""
    return [(text, _PLAIN)] if text else []


_PLAIN = Style()
