"""The zoomed terminal: the whole screen for one terminal session, and the keyboard with it.

Every key goes to the program as the bytes an xterm sends (ctrl and alt combinations, arrows in
normal or application mode, function keys with modifiers, bracketed paste when the program
asked for it), except the release key (`terminal.release`, ctrl+] by default) that returns to
the grid. The terminal takes the zoomed size while the view is open and goes back to the
pane's size when it closes.

Keys travel as `term_input` commands, queued and sent in order by one sender (several keys
pressed before the last command returned go out together). The screen is the grid pane's
`TermView` (the app's pump keeps feeding it); this view repaints the rows whose version moved.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.geometry import Region
from textual.screen import ModalScreen
from textual.strip import Strip
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static

from cockpit.ui.keymap import current_keymap, effective_bindings, key_display
from cockpit.ui.pane import PaneStyles
from cockpit.ui.terminal_pane import RESIZE_DEBOUNCE_S, TerminalPane, TermView, term_strip
from cockpit.ui.text import header_text

if TYPE_CHECKING:
    from cockpit.ui.app import CockpitApp

REPAINT_HZ = 30
RELEASE_ID = "terminal.release"
RELEASE_DEFAULT_KEYS = frozenset({"ctrl+right_square_bracket"})

# -- keys → bytes ---------------------------------------------------------------------------------

_FIXED = {"enter": "\r", "tab": "\t", "shift+tab": "\x1b[Z", "escape": "\x1b", "ctrl+@": "\x00",
          "ctrl+space": "\x00"}
_CURSOR = {"up": "A", "down": "B", "right": "C", "left": "D", "home": "H", "end": "F"}
_PF = {"f1": "P", "f2": "Q", "f3": "R", "f4": "S"}
_TILDE = {"insert": 2, "delete": 3, "pageup": 5, "pagedown": 6, "f5": 15, "f6": 17, "f7": 18, "f8": 19,
          "f9": 20, "f10": 21, "f11": 23, "f12": 24}
_MODIFIER_BITS = {"shift": 1, "alt": 2, "meta": 2, "ctrl": 4}


def key_to_bytes(key: str, character: str | None, *, app_cursor: bool = False) -> str | None:
    """What an xterm sends for a Textual key (name like "ctrl+left", printable character or
    None); None for keys a terminal has no bytes for."""
    if key in _FIXED:
        return _FIXED[key]
    *modifiers, base = key.split("+") if key != "+" else [key]
    bits = sum(_MODIFIER_BITS.get(m, 0) for m in set(modifiers))
    code = 1 + bits
    if base in _CURSOR:
        if code > 1:
            return f"\x1b[1;{code}{_CURSOR[base]}"
        return ("\x1bO" if app_cursor else "\x1b[") + _CURSOR[base]
    if base in _PF:
        return f"\x1b[1;{code}{_PF[base]}" if code > 1 else "\x1bO" + _PF[base]
    if base in _TILDE:
        return f"\x1b[{_TILDE[base]};{code}~" if code > 1 else f"\x1b[{_TILDE[base]}~"
    if base == "backspace":
        sent = character if character in ("\x08", "\x7f") else "\x7f"
        return "\x1b" + sent if "alt" in modifiers else sent
    if character is None and "ctrl" in modifiers and len(base) == 1 and base.isalpha():
        character = chr(ord(base.lower()) & 0x1F)
    if not character:
        return None
    return "\x1b" + character if ("alt" in modifiers or "meta" in modifiers) else character


def paste_to_bytes(text: str, *, bracketed: bool) -> str:
    """Pasted text as typed: line breaks as CR; wrapped in bracketed-paste marks when asked."""
    text = text.replace("\r\n", "\r").replace("\n", "\r")
    return f"\x1b[200~{text}\x1b[201~" if bracketed else text


# -- the view -------------------------------------------------------------------------------------


class TerminalView(Widget, can_focus=True):
    """The zoomed screen; consumes every key but the release key, so no binding sees them."""

    DEFAULT_CSS = """
    TerminalView { height: 1fr; width: 1fr; }
    """

    def __init__(self, zoom: TerminalZoom):
        super().__init__(id="terminal-view")
        self.zoom = zoom
        self.view: TermView = zoom.pane.view
        self._painted_version = -1
        self._painted: list[int] = []

    def check_consume_key(self, key: str, character: str | None) -> bool:
        # Textual filters bindings by their declared keys before it applies the keymap, so the
        # release binding's default key must survive the filter even when remapped (`on_key`
        # then sends it to the program, as no binding holds it any more).
        return key not in self.zoom.release_keys() and key not in RELEASE_DEFAULT_KEYS

    async def on_key(self, event: events.Key) -> None:
        if event.key in self.zoom.release_keys():
            return
        event.stop()
        event.prevent_default()
        data = key_to_bytes(event.key, event.character, app_cursor=self.view.modes["app_cursor"])
        if data:
            self.zoom.send_input(data)

    async def on_paste(self, event: events.Paste) -> None:
        event.stop()
        event.prevent_default()
        if event.text:
            self.zoom.send_input(paste_to_bytes(event.text, bracketed=self.view.modes["bracketed_paste"]))

    def show(self, view: TermView) -> None:
        self.view = view
        self._painted = []
        self._painted_version = -1

    def repaint_changes(self) -> None:
        """Refresh the rows whose version moved since they were painted."""
        view = self.view
        if view.version == self._painted_version:
            return
        self._painted_version = view.version
        width, height = self.size
        versions = view.row_versions
        if len(self._painted) != len(versions):
            self._painted = list(versions)
            self.refresh()
            return
        for y in range(min(height, len(versions))):
            if self._painted[y] != versions[y]:
                self._painted[y] = versions[y]
                self.refresh(Region(0, y, width, 1))

    def render_line(self, y: int) -> Strip:
        app = self.app
        styles = PaneStyles.cached(app.theme) or PaneStyles.for_theme(app.current_theme)
        return term_strip(self.view, y, self.size.width, app.theme, styles["text"], cursor=True)


class TerminalZoom(ModalScreen[None]):
    AUTO_FOCUS = "#terminal-view"
    DEFAULT_CSS = """
    TerminalZoom { background: $background; layout: vertical; }
    TerminalZoom #terminal-header { height: 1; width: 1fr; background: $panel; color: $text; text-style: bold; padding: 0 1; }
    """
    BINDINGS = [
        Binding(",".join(RELEASE_DEFAULT_KEYS), "release", "back to the grid", priority=True, id=RELEASE_ID),
    ]

    def __init__(self, app: CockpitApp, pane: TerminalPane):
        super().__init__(id=f"terminal-zoom-{pane.session_id}")
        self.cockpit = app
        self.pane = pane
        self.session_id = pane.session_id
        self._keys: list[str] = []
        self._sending = False
        self._resize_timer: Timer | None = None
        self._release_cache: tuple[Mapping[str, str], frozenset[str], str] | None = None
        self._header = ""

    def compose(self) -> ComposeResult:
        yield Static("", id="terminal-header", markup=False)
        self.terminal = TerminalView(self)
        yield self.terminal

    async def on_mount(self) -> None:
        self.pane.sizing_paused = True
        self.set_interval(1 / REPAINT_HZ, self._repaint)
        self._refresh_header()
        # Starts the program when it is not running (a restored session): zooming in is using it.
        self.pane.show_frame(await self.cockpit.run_command(
            {"cmd": "term_screen", "session": self.session_id, "start": True}))
        self.call_after_refresh(self.on_resize)  # the program takes the zoomed size

    # -- keys --------------------------------------------------------------------------------------

    def _release(self) -> tuple[Mapping[str, str], frozenset[str], str]:
        keymap = current_keymap(self.app)
        if self._release_cache is None or self._release_cache[0] is not keymap:  # set_keymap replaces it
            found = effective_bindings(self.BINDINGS, keymap).get(RELEASE_ID)
            keys = frozenset(found[1]) if found else frozenset()
            self._release_cache = (keymap, keys, key_display(self.app, *found) if found else "?")
        return self._release_cache

    def release_keys(self) -> frozenset[str]:
        """The keys bound to `terminal.release` now (the user's `[keys]` applied)."""
        return self._release()[1]

    def release_display(self) -> str:
        return self._release()[2]

    def send_input(self, data: str) -> None:
        """Queue keys for the program; one sender delivers them in order."""
        self._keys.append(data)
        if not self._sending:
            self._sending = True
            self.run_worker(self._drain_keys(), group="terminal-keys")

    async def _drain_keys(self) -> None:
        try:
            while self._keys:
                data = "".join(self._keys)
                self._keys.clear()
                await self.cockpit.run_command({"cmd": "term_input", "session": self.session_id, "data": data})
        finally:
            self._sending = False

    def action_release(self) -> None:
        self.dismiss()

    def on_unmount(self) -> None:
        self.pane.sizing_paused = False
        self.pane.follow_size()

    # -- size and paint ----------------------------------------------------------------------------

    def on_resize(self) -> None:
        if self._resize_timer is not None:
            self._resize_timer.stop()
        self._resize_timer = self.set_timer(RESIZE_DEBOUNCE_S, self._send_size)

    async def _send_size(self) -> None:
        self._resize_timer = None
        width, height = self.terminal.size
        if width < 1 or height < 1 or self.pane.view.size == (width, height):
            return
        await self.cockpit.run_command({"cmd": "term_resize", "session": self.session_id,
                                        "cols": width, "rows": height})

    def _repaint(self) -> None:
        pane = self.cockpit.grid.panes.get(self.session_id)
        if not isinstance(pane, TerminalPane):
            if not self._session_open():
                self.app.notify(f"@{self.pane.session['number']} {self.pane.session['name']} is gone", timeout=4)
                self.dismiss()
            return  # else the grid is being rebuilt (after a resync)
        if pane is not self.pane:  # the grid was rebuilt (after a resync): follow the new pane
            self.pane = pane
            pane.sizing_paused = True
            self.terminal.show(pane.view)
        self.terminal.repaint_changes()
        self._refresh_header()

    def _session_open(self) -> bool:
        """Whether the engine still has this session, not archived (removed, archived: no)."""
        return any(s["id"] == self.session_id and s["state"] != "archived" for s in self.cockpit.client.snapshot())

    def _refresh_header(self) -> None:
        session: dict[str, Any] = self.cockpit.sessions.get(self.session_id) or self.pane.session
        text = (f"{header_text(session, marked=False, spinner='', stats={})}  │  "
                f"every key goes to the program · {self.release_display()} back to the grid")
        if text != self._header:
            self._header = text
            self.query_one("#terminal-header", Static).update(text)
