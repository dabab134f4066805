"""Issue #12: `cockpit --serve` in a real browser (headless Chromium over the DevTools protocol).

The real `cockpit --serve` subprocess on a repository with three idle sessions (no model is
called, so no API key); Chromium opens the printed URL, textual-serve's xterm.js draws the
cockpit on its canvas, a real key event goes through the page's websocket to the app, and the
screenshots before and after are compared pixel by pixel. The last screenshot is kept as
`browser-after.png` (and the one before as `browser-before.png`) in the test's tmp dir.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from chromium_cdp import Page, chromium, find_chromium, poll
from png_pixels import decode
from serve_helpers import serving
from server_kit import acockpit

CHROMIUM = find_chromium()
SESSIONS = ("alpha", "beta", "gamma")


async def _settled(page: Page, what: str) -> bytes:
    """A screenshot once two in a row are identical: xterm.js has drawn everything it received."""
    shots: list[bytes] = []

    async def stable() -> bytes | None:
        shots.append(await page.screenshot())
        return shots[-1] if len(shots) > 1 and shots[-1] == shots[-2] else None

    return await poll(stable, what, timeout=60, interval=0.3)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (.ci/run installs it where it can)")
async def test_the_cockpit_in_chromium_shows_the_panes_and_takes_a_key(repo: Path, tmp_path: Path) -> None:
    for name in SESSIONS:
        await acockpit("new", name, "--repo", str(repo))
    assert CHROMIUM is not None
    async with serving(repo, tmp_path / "serve.log") as served, chromium(CHROMIUM, tmp_path) as browser:
        page = await browser.new_page(width=1000, height=600)

        # Without the token: 403 and the hint, and no tab (no websocket) is opened.
        await page.navigate(served.base)
        (document,) = [e["response"] for e in page.events("Network.responseReceived") if e["type"] == "Document"]
        assert document["status"] == 403
        assert "open the URL it printed" in await page.evaluate("document.body.innerText")
        assert not page.events("Network.webSocketCreated")

        # The printed URL: the cookie (invisible to scripts), the token gone from the address bar.
        await page.navigate(served.url)
        assert await page.evaluate("location.href") == served.base
        assert await page.evaluate("document.cookie") == ""

        # The cockpit's panes arrive over the websocket and xterm.js draws them; the terminal has
        # the keyboard focus, as after a click (the page tells the app, which marks a pane).
        await poll(lambda: all(n.encode() in page.websocket_text() for n in SESSIONS),
                   f"the panes of {SESSIONS} to arrive (see serve.log)")
        assert await page.evaluate("document.querySelector('canvas.xterm-text-layer') !== null")
        assert await page.evaluate(
            "document.querySelector('.xterm-helper-textarea').focus(), document.activeElement.className"
        ) == "xterm-helper-textarea"
        await poll(lambda: b'["focus"]' in page.websocket_text("Sent"), "the focus to be sent")
        before_png = await _settled(page, "the first screen to be drawn")
        (tmp_path / "browser-before.png").write_bytes(before_png)
        before = decode(before_png)
        assert before.background_share() < 0.97, "the page looks blank"
        assert b"Cockpit keys" not in page.websocket_text()

        # A key press, as the keyboard sends it, to the focused terminal: `?` opens the help.
        await page.press("?", "Slash", 191, shift=True)
        await poll(lambda: b'["stdin","?"]' in page.websocket_text("Sent"), "the key to be sent")
        await poll(lambda: b"Cockpit keys" in page.websocket_text(), "the help to be drawn")
        after_png = await _settled(page, "the help screen to be drawn")
        (tmp_path / "browser-after.png").write_bytes(after_png)
        after = decode(after_png)

        changed = before.differing(after)
        assert changed > 0.2, f"only {changed:.1%} of the pixels changed after `?`"
        assert after.background_share() < 0.97, "the page looks blank after the key"


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (.ci/run installs it where it can)")
async def test_screenshots_decode_to_the_pixels_chromium_drew(tmp_path: Path) -> None:
    """The pixel comparison above is only as good as `png_pixels`: a red box on blue, read back."""
    assert CHROMIUM is not None
    async with chromium(CHROMIUM, tmp_path) as browser:
        page = await browser.new_page(width=400, height=300)
        await page.evaluate(
            "document.body.style.cssText = 'margin:0; background:rgb(0,0,255)';"
            "document.body.innerHTML = '<div style=\"position:absolute; left:100px; top:50px;"
            " width:200px; height:100px; background:rgb(255,0,0)\"></div><p>some text</p>'"
        )
        image = decode(await page.screenshot())
    assert (image.width, image.height) == (400, 300)
    assert image.at(150, 75) == image.at(100, 50) == image.at(299, 149) == (255, 0, 0)
    assert image.at(99, 50) == image.at(300, 149) == image.at(399, 299) == (0, 0, 255)
    assert image.background_share() > 0.7
    box = sum(1 for pixel in image.pixels if pixel == b"\xff\x00\x00")
    assert box == 200 * 100


def test_png_pixels_reads_the_average_filter_too() -> None:
    """Chromium's screenshots use the other filters; two RGB rows, the second with filter 3
    (Average), the expected pixels worked out by hand."""
    raw = bytes([0, 10, 20, 30, 40, 50, 60, 3, 1, 1, 1, 1, 1, 1])
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        for kind, body in ((b"IHDR", header), (b"IDAT", zlib.compress(raw)), (b"IEND", b""))
    )
    image = decode(data)
    assert [image.at(x, y) for y in (0, 1) for x in (0, 1)] == [
        (10, 20, 30), (40, 50, 60), (6, 11, 16), (24, 31, 39)]
