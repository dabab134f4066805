"""Terminal sessions in the cockpit screen, driven with Pilot on a real Engine and real shells.

A terminal session gets a `TerminalPane` in the grid that shows its emulated screen in colour
and follows the pane's size; zoom opens `TerminalZoom`, which takes the screen's size and sends
every key to the program except the release key. Keys are translated to the bytes an xterm
sends; those tables are checked on their own.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual import events

from cockpit.agents.factory import make_agent
from cockpit.config import AgentConfig, Config
from cockpit.core import events as ev
from cockpit.core.engine import Engine
from cockpit.ui.app import CockpitApp
from cockpit.ui.help import HelpScreen
from cockpit.ui.keymap import known_bindings, validate_keymap
from cockpit.ui.terminal_pane import TerminalPane, TermView
from cockpit.ui.terminal_zoom import TerminalZoom, key_to_bytes, paste_to_bytes

SIZE = (100, 30)
BASH = AgentConfig(kind="terminal", command=["bash", "--norc", "--noprofile"], env={"PS1": "$ ", "LC_ALL": "C.UTF-8"})


async def until(pilot: Any, condition: Callable[[], Any], what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await pilot.pause(0.05)


def has(pane: TerminalPane, text: str) -> bool:
    return any(text in line for line in pane.view.text())


def running(marker: str) -> bool:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker in Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode():
                    return True
            except OSError:
                continue
    return False


async def shell_engine(open_engine, repo: Path, *names: str, **config_changes: Any) -> tuple[Engine, list[str]]:
    config = Config()
    config.agents["sh"] = BASH
    for key, value in config_changes.items():
        setattr(config, key, value)
    engine = await open_engine(config=config, agent_factory=make_agent)
    ids = []
    for name in names or ("sh",):
        [session] = await engine.create_sessions(repo, agent="sh", name=name)
        ids.append(session.id)
    return engine, ids


async def open_pane(pilot: Any, app: CockpitApp, session_id: str) -> TerminalPane:
    await until(pilot, lambda: session_id in app.grid.panes, "the session's pane")
    pane = app.grid.panes[session_id]
    assert isinstance(pane, TerminalPane)
    await until(pilot, lambda: has(pane, "$"), "the shell prompt in the pane")
    await until(pilot, lambda: pane.view.size == pane.wanted_size(), "the terminal to take the pane's size")
    return pane


async def zoom_into(pilot: Any, app: CockpitApp, pane: TerminalPane) -> TerminalZoom:
    app.focus_session(pane.session_id)
    await pilot.press("z")
    await until(pilot, lambda: isinstance(app.screen, TerminalZoom), "the terminal zoom")
    zoom = app.screen
    assert isinstance(zoom, TerminalZoom)
    width, height = zoom.terminal.size
    await until(pilot, lambda: pane.view.size == (width, height), "the terminal to take the zoomed size")
    return zoom


# -- the pane --------------------------------------------------------------------------------------


async def test_pane_shows_the_screen_in_colour_and_follows_its_size(open_engine, repo):
    engine, [session_id] = await shell_engine(open_engine, repo)
    app = CockpitApp(engine, engine.config)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_pane(pilot, app, session_id)
        width, height = pane.size
        assert pane.view.size == (width - 1, height - 1)  # the body, without header and edge
        await engine.execute({"cmd": "term_input", "session": session_id, "data": "printf '\\e[31mRED\\e[0m ok\\n'\r"})
        await until(pilot, lambda: "RED ok" in pane.view.text(), "the coloured line")
        row = pane.view.text().index("RED ok")
        top = pane.view.top_row(height - 1)
        segments = list(pane.render_line(row - top + 1))
        red = next(s for s in segments if s.text.startswith("RED"))
        assert red.style.color.name == "color(1)"
        plain = next(s for s in segments if " ok" in s.text)
        assert plain.style.color.name != "color(1)"
        assert segments[-1].text == "│"


async def test_pane_reloads_the_live_screen_after_a_resync(open_engine, repo):
    engine, [session_id] = await shell_engine(open_engine, repo)
    app = CockpitApp(engine, engine.config)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_pane(pilot, app, session_id)
        await engine.execute({"cmd": "term_input", "session": session_id, "data": "echo before-$((2*4))\r"})
        await until(pilot, lambda: has(pane, "before-8"), "the output")
        engine.bus.publish(ev.Event(ev.RESYNC))
        await until(pilot, lambda: app.grid.panes.get(session_id) not in (None, pane), "a rebuilt pane")
        fresh = app.grid.panes[session_id]
        assert isinstance(fresh, TerminalPane)
        await until(pilot, lambda: has(fresh, "before-8"), "the screen fetched again, no new output needed")


async def test_a_waiting_prompt_calls_the_person(open_engine, repo):
    config = Config()
    config.agents["ask"] = AgentConfig(
        kind="terminal", command=["sh", "-c", "sleep 0.6; printf 'Allow? [y/n] '; read a; echo got $a; sleep 30"],
        waiting_patterns=[r"Allow\? \[y/n\]"])
    config.agents["sh"] = BASH
    engine = await open_engine(config=config, agent_factory=make_agent)
    [other] = await engine.create_sessions(repo, agent="sh", name="other")
    [asking] = await engine.create_sessions(repo, agent="ask", name="ask")
    app = CockpitApp(engine, engine.config)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: asking.id in app.grid.panes and other.id in app.grid.panes, "both panes")
        app.focus_session(other.id)
        pane = app.grid.panes[asking.id]
        await until(pilot, lambda: pane.state == "waiting", "the waiting state in the pane")
        assert "⚠ waiting" in pane.render_line(0).text
        await pilot.press("n")  # the attention key jumps to the pane that asks
        assert app.focused_pane is pane
        await engine.execute({"cmd": "term_input", "session": asking.id, "data": "y\r"})
        await until(pilot, lambda: has(pane, "got y") and pane.state != "waiting", "the answer to land")


# -- the zoom --------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_zoomed_terminal_takes_every_key_and_gives_the_size_back(open_engine, repo):
    engine, [session_id] = await shell_engine(open_engine, repo)
    app = CockpitApp(engine, engine.config)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_pane(pilot, app, session_id)
        zoom = await zoom_into(pilot, app, pane)
        assert zoom.terminal.size.width == SIZE[0] and zoom.terminal.size.height == SIZE[1] - 1
        await pilot.press(*"echo hello-$((6*7))", "enter")
        await until(pilot, lambda: "hello-42" in pane.view.text(), "hello-42 on the screen")
        await pilot.pause(0.1)
        painted = [zoom.terminal.render_line(y).text.rstrip() for y in range(zoom.terminal.size.height)]
        assert "hello-42" in painted
        # Keys the cockpit binds elsewhere go to the program here: ctrl+c interrupts it.
        await pilot.press(*"sleep 211", "enter")
        await until(pilot, lambda: running("sleep 211"), "sleep to start")
        await pilot.press("ctrl+c")
        await until(pilot, lambda: not running("sleep 211"), "ctrl+c to reach the program")
        for key in ("q", "c", "question_mark", "escape", "tab", "ctrl+p", "ctrl+q", "ctrl+d"):
            await pilot.press(key)
        assert app.screen is zoom and app.is_running  # none of them quit, opened or closed anything
        await pilot.press("ctrl+right_square_bracket")
        await until(pilot, lambda: not isinstance(app.screen, TerminalZoom), "the release key to leave")
        await until(pilot, lambda: pane.view.size == pane.wanted_size(), "the pane's size again")


@pytest.mark.slow
async def test_work_finished_in_the_zoom_does_not_call_the_person(open_engine, repo):
    engine, [session_id] = await shell_engine(open_engine, repo)
    app = CockpitApp(engine, engine.config)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_pane(pilot, app, session_id)
        await zoom_into(pilot, app, pane)
        states = engine.subscribe(accept=lambda e: e.kind == ev.SESSION_STATE and e.session == session_id)
        loop = "for i in 1 2 3 4 5 6 7 8 9; do echo line-$i; sleep 0.15; done\r"
        await engine.execute({"cmd": "term_input", "session": session_id, "data": loop})
        await until(pilot, lambda: has(pane, "line-9"), "the loop to finish")
        await until(pilot, lambda: pane.state == "idle", "idle once quiet")
        assert [e.data["state"] for e in states.get_nowait()] == ["running", "idle"]
        assert pane.session["unseen"] is False  # the person watched it finish


async def test_zoom_follows_a_rebuilt_grid_and_closes_when_the_session_goes(open_engine, repo):
    engine, [session_id] = await shell_engine(open_engine, repo)
    app = CockpitApp(engine, engine.config)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_pane(pilot, app, session_id)
        zoom = await zoom_into(pilot, app, pane)
        engine.bus.publish(ev.Event(ev.RESYNC))
        await until(pilot, lambda: zoom.pane is not pane, "the zoom to take the rebuilt pane")
        await pilot.press(*"echo after-$((4+4))", "enter")
        await until(pilot, lambda: "after-8" in zoom.pane.view.text(), "keys and screen through the new pane")
        assert app.screen is zoom
        await engine.archive(session_id)
        await until(pilot, lambda: app.screen is not zoom, "the zoom to close with its session")


async def test_paste_goes_to_the_program(open_engine, repo):
    engine, [session_id] = await shell_engine(open_engine, repo)
    app = CockpitApp(engine, engine.config)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_pane(pilot, app, session_id)
        zoom = await zoom_into(pilot, app, pane)
        zoom.terminal.post_message(events.Paste("echo pasted-$((1+2))"))
        await until(pilot, lambda: has(pane, "echo pasted-$((1+2))"), "the pasted text at the prompt")
        await pilot.press("enter")
        await until(pilot, lambda: "pasted-3" in pane.view.text(), "the pasted command to run")


async def test_release_key_comes_from_the_keymap(open_engine, repo):
    engine, [session_id] = await shell_engine(open_engine, repo, keys={"terminal.release": "ctrl+b"})
    validate_keymap(engine.config.keys, known_bindings())
    app = CockpitApp(engine, engine.config)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_pane(pilot, app, session_id)
        zoom = await zoom_into(pilot, app, pane)
        assert "^b back to the grid" in zoom.query_one("#terminal-header").render().plain
        await pilot.press("ctrl+right_square_bracket")
        await pilot.pause(0.2)
        assert app.screen is zoom  # the default release key now goes to the program
        await pilot.press("ctrl+b")
        await until(pilot, lambda: not isinstance(app.screen, TerminalZoom), "ctrl+b to leave")
        assert "Zoomed terminal: ^b  leave a zoomed terminal" in HelpScreen(app).text()


def test_release_key_must_be_a_key():
    from cockpit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"config: key 'keys.terminal.release': must be a key"):
        validate_keymap({"terminal.release": " "}, known_bindings())


# -- keys and frames (pure) ------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "character", "app_cursor", "sent"), [
    ("a", "a", False, "a"),
    ("A", "A", False, "A"),
    ("dollar_sign", "$", False, "$"),
    ("enter", "\r", False, "\r"),
    ("tab", "\t", False, "\t"),
    ("shift+tab", None, False, "\x1b[Z"),
    ("escape", "\x1b", False, "\x1b"),
    ("backspace", "\x7f", False, "\x7f"),
    ("ctrl+c", None, False, "\x03"),
    ("ctrl+a", "\x01", False, "\x01"),
    ("ctrl+@", None, False, "\x00"),
    ("alt+x", "x", False, "\x1bx"),
    ("alt+backspace", None, False, "\x1b\x7f"),
    ("up", None, False, "\x1b[A"),
    ("up", None, True, "\x1bOA"),
    ("left", None, True, "\x1bOD"),
    ("ctrl+left", None, True, "\x1b[1;5D"),
    ("shift+up", None, False, "\x1b[1;2A"),
    ("ctrl+shift+right", None, False, "\x1b[1;6C"),
    ("home", None, False, "\x1b[H"),
    ("end", None, True, "\x1bOF"),
    ("pageup", None, False, "\x1b[5~"),
    ("ctrl+pagedown", None, False, "\x1b[6;5~"),
    ("delete", None, False, "\x1b[3~"),
    ("insert", None, False, "\x1b[2~"),
    ("f1", None, False, "\x1bOP"),
    ("shift+f4", None, False, "\x1b[1;2S"),
    ("f5", None, False, "\x1b[15~"),
    ("f12", None, False, "\x1b[24~"),
    ("ctrl+f10", None, False, "\x1b[21;5~"),
    ("é", "é", False, "é"),
    ("f13", None, False, None),
])
def test_keys_become_the_bytes_an_xterm_sends(key, character, app_cursor, sent):
    assert key_to_bytes(key, character, app_cursor=app_cursor) == sent


def test_paste_is_bracketed_when_the_program_asks():
    assert paste_to_bytes("a\nb", bracketed=False) == "a\rb"
    assert paste_to_bytes("a\r\nb", bracketed=True) == "\x1b[200~a\rb\x1b[201~"


def test_view_ignores_frames_older_than_what_it_shows():
    view = TermView()
    assert view.apply({"n": 3, "size": [10, 2], "rows": [[0, [["new", ""]]]], "cursor": [3, 0]})
    assert not view.apply({"n": 2, "size": [10, 2], "rows": [[0, [["old", ""]]]], "cursor": None})
    assert not view.apply({"n": 3, "size": [10, 2], "rows": [[0, [["old", ""]]]], "cursor": None})
    assert view.text() == ["new", ""]
    before = list(view.row_versions)
    assert view.apply({"n": 3, "size": [10, 2], "rows": [[1, [["full", "1,,0"]]]], "cursor": [0, 1], "full": True})
    assert view.text() == ["new", "full"]
    assert view.row_versions[0] != before[0]  # the cursor left row 0: it is painted again
    assert view.apply({"n": 4, "size": [12, 3], "rows": [], "cursor": None})
    assert view.text() == ["", "", ""]  # a new size starts from an empty screen
