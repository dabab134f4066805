"""Names and other user or agent text as the CLI prints them on a terminal.

A session name may hold a newline (a row split in two), an escape sequence (`\\x1b]…`
recolouring or retitling the terminal of whoever runs `cockpit ls`), a bidi override or wide
characters (columns out of line). `visible` spells control and format characters out and
`pad` aligns by display cells, not code points.
"""

from __future__ import annotations

import unicodedata

from rich.cells import cell_len

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def visible(text: str) -> str:
    """`text` with control and format characters (C0, C1, DEL, bidi overrides…) as escapes."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escape(ch) for ch in text)


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
        code = ord(ch)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
    return ch


def pad(text: str, width: int) -> str:
    """`text` left-aligned in `width` terminal cells (a wide character takes two)."""
    return text + " " * max(0, width - cell_len(text))
