"""Request lines off a client's socket, never holding more than one line's cap of them.

`StreamReader.readline` keeps a whole line in memory before it can say it is too long, and
after that it cannot tell where the long line ends. This reads chunks and splits them itself:
a line past the cap is reported once (`TOO_LONG`) and the rest of it is dropped as it arrives,
chunk by chunk, so a client sending a 200 MB line costs the server one cap of memory and then
gets its next line served.
"""

from __future__ import annotations

import asyncio
from typing import Final

#: Bytes asked of the stream at a time.
READ_CHUNK = 64 * 1024
TOO_LONG: Final = b""  # a line over the cap (a real line is never empty: it ends with "\n")


class LineReader:
    def __init__(self, reader: asyncio.StreamReader, limit: int):
        self._reader = reader
        self._limit = limit
        self._buffer = bytearray()
        self._scanned = 0  # the buffer holds no newline before this offset
        self._dropping = False  # inside a line over the cap: drop up to its newline

    async def next(self) -> bytes | None:
        """The next line (with its newline), `TOO_LONG` for a line over the cap, None at the end."""
        while True:
            newline = self._buffer.find(b"\n", self._scanned)
            if newline >= 0:
                line = bytes(self._buffer[:newline + 1])
                del self._buffer[:newline + 1]
                self._scanned = 0
                if self._dropping:
                    self._dropping = False
                    continue
                return TOO_LONG if len(line) > self._limit else line
            if self._dropping:
                self._buffer.clear()
            elif len(self._buffer) > self._limit:
                self._buffer.clear()
                self._dropping = True
                self._scanned = 0
                return TOO_LONG
            self._scanned = len(self._buffer)
            chunk = await self._reader.read(READ_CHUNK)
            if not chunk:
                rest = b"" if self._dropping else bytes(self._buffer)  # a last line without "\n"
                self._buffer.clear()
                self._dropping = False
                return (TOO_LONG if len(rest) > self._limit else rest) if rest else None
            self._buffer += chunk
