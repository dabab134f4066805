"""Just enough PNG (zlib + struct, no imaging library) to compare two screenshots pixel by pixel.

Reads 8-bit RGB and RGBA images, non-interlaced: what Chromium's Page.captureScreenshot writes.
"""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from dataclasses import dataclass

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {2: 3, 6: 4}  # colour type -> bytes per pixel (RGB, RGBA)


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    pixels: list[bytes]  # one RGB triple per pixel, row by row

    def at(self, x: int, y: int) -> tuple[int, int, int]:
        return tuple(self.pixels[y * self.width + x])  # type: ignore[return-value]

    def differing(self, other: Image, tolerance: int = 24) -> float:
        """The share of pixels whose colour differs by more than `tolerance` in some channel."""
        assert (self.width, self.height) == (other.width, other.height), "screenshots of different sizes"
        changed = sum(
            1 for a, b in zip(self.pixels, other.pixels)
            if a != b and max(abs(a[0] - b[0]), abs(a[1] - b[1]), abs(a[2] - b[2])) > tolerance
        )
        return changed / len(self.pixels)

    def background_share(self) -> float:
        """The share of pixels of the most common colour: 1.0 for a blank screen."""
        return Counter(self.pixels).most_common(1)[0][1] / len(self.pixels)


def decode(data: bytes) -> Image:
    assert data.startswith(_SIGNATURE), "not a PNG"
    position, idat, header = len(_SIGNATURE), [], None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    assert header is not None, "PNG without IHDR"
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in _CHANNELS and not interlace, f"unsupported PNG {header}"
    bpp = _CHANNELS[colour]
    rows = _unfilter(zlib.decompress(b"".join(idat)), width * bpp, height, bpp)
    pixels = [bytes(row[x:x + 3]) for row in rows for x in range(0, width * bpp, bpp)]
    return Image(width, height, pixels)


def _unfilter(raw: bytes, stride: int, height: int, bpp: int) -> list[bytearray]:
    """Undo the per-row filters of PNG (None, Sub, Up, Average, Paeth)."""
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, row = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 0xFF
        elif kind == 2:
            row = bytearray((a + b) & 0xFF for a, b in zip(row, previous))
        elif kind == 3:
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = row[i - bpp] if i >= bpp else 0
                b, c = previous[i], (previous[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        else:
            assert kind == 0, f"unknown PNG filter {kind}"
        rows.append(row)
        previous = row
    return rows
