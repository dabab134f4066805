"""Dialogs, the zoom view, help, the command palette and keymap validation, driven by Pilot.

Each test runs the real CockpitApp on a real Engine (a temporary COCKPIT_HOME, sessions in a real
git repository, no agents); transcripts are made with `engine.emit`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import run_git
from textual.widgets import Collapsible, Input, Markdown, Select, Static, TextArea

from cockpit.config import AgentConfig, Config, LayoutConfig, ModelConfig
from cockpit.core import events as ev
from cockpit.core.engine import Engine
from cockpit.core.states import State
from cockpit.errors import ConfigError
from cockpit.ui.app import CockpitApp
from cockpit.ui.dialogs import Confirm, NewSessionDialog, TextPrompt
from cockpit.ui.help import HelpScreen
from cockpit.ui.keymap import known_bindings, validate_keymap
from cockpit.ui.palette import CockpitCommands
from cockpit.ui.zoom import ZoomScreen

SIZE = (120, 40)


def make_config(**kwargs: Any) -> Config:
    return Config(
        agents={"builtin": AgentConfig(), "reviewer": AgentConfig(model="fast")},
        models={"default": ModelConfig(model="openai/sim"), "fast": ModelConfig(model="openai/fast")},
        **kwargs,
    )


@pytest.fixture
async def cockpit(cockpit_env: Any, make_repo: Any, tmp_path: Path):
    """(engine, app factory, repo path, sessions) with two idle sessions."""
    config = make_config(layouts={"wide": LayoutConfig(layout="main-vertical", main_size=70)})
    engine = await Engine.open(cockpit_env.home, config)
    repo = make_repo(tmp_path / "repo")
    sessions = [
        *(await engine.create_sessions(repo, name="alpha", tags=["api"])),
        *(await engine.create_sessions(repo, name="beta")),
    ]
    def make_app() -> CockpitApp:
        app = CockpitApp(engine, config, repo=str(repo), frozen_clock=0.0)
        app.animation_level = "none"  # scrolls land at once; Pilot waits for animations
        return app

    try:
        yield engine, make_app, repo, sessions
    finally:
        await engine.close()


async def settle(pilot: Any, seconds: float = 0.25) -> None:
    """Let the app's 15 Hz pump and the zoom's 10 Hz renderer run."""
    await pilot.pause(seconds)
    await pilot.pause()


async def settle_until(pilot: Any, done: Any, seconds: float = 5.0) -> None:
    """Let the app run until `done()` holds (or `seconds` pass): for animated changes, whose
    frames come late on a loaded machine."""
    for _ in range(int(seconds / 0.05)):
        if done():
            return
        await pilot.pause(0.05)


# -- dialogs ---------------------------------------------------------------------------------------


async def test_text_prompt_returns_text_and_none_on_escape(cockpit: Any) -> None:
    _, make_app, _, _ = cockpit
    app = make_app()
    results: list[Any] = []
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(TextPrompt("Tags", "+api"), results.append)
        await pilot.pause()
        await pilot.press("space", "-", "w", "i", "p", "enter")
        app.push_screen(TextPrompt("Tags"), results.append)
        await pilot.pause()
        await pilot.press("x", "escape")
        await pilot.pause()
    assert results == ["+api -wip", None]


async def test_confirm_keys(cockpit: Any) -> None:
    _, make_app, _, _ = cockpit
    app = make_app()
    results: list[bool] = []
    async with app.run_test(size=SIZE) as pilot:
        for key in ("y", "enter", "n", "escape"):
            app.push_screen(Confirm("Remove @1?"), results.append)
            await pilot.pause()
            await pilot.press(key)
            await pilot.pause()
    assert results == [True, True, False, False]


async def test_new_session_dialog_result_validation_and_cancel(cockpit: Any) -> None:
    _, make_app, repo, _ = cockpit
    app = make_app()
    results: list[Any] = []
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(NewSessionDialog(app.config), results.append)
        await pilot.pause()
        dialog = app.screen
        assert dialog.query_one("#new-name", Input).has_focus
        await pilot.press(*"fix-login", "enter")  # enter on a field moves on
        assert dialog.query_one("#new-repo", Input).has_focus
        dialog.query_one("#new-agent", Select).value = "reviewer"
        dialog.query_one("#new-model", Select).value = "fast"
        dialog.query_one("#new-task", TextArea).text = "Fix the login bug\nand add a test"
        count = dialog.query_one("#new-count", Input)
        count.value = "0"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert results == []  # refused, with a clear reason
        assert "Count must be a whole number from 1 to 100, got 0" in str(dialog.query_one("#new-error", Static).content)
        assert count.has_focus
        count.value = "3"
        dialog.query_one("#new-tags", Input).focus()
        await pilot.press(*"api, #web", "enter")  # enter on the last field submits
        await pilot.pause()
        app.push_screen(NewSessionDialog(app.config), results.append)
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
    assert results == [
        {"repo": str(repo), "name": "fix-login", "agent": "reviewer", "model": "fast",
         "task": "Fix the login bug\nand add a test", "count": 3, "tags": ["api", "web"]},
        None,
    ]


async def test_new_session_dialog_places_the_session(cockpit: Any, make_repo: Any, tmp_path: Path) -> None:
    """The dialog picks the repository and where the session works: an existing branch needs its
    name, read-only needs nothing; the engine makes what it asked for."""
    engine, make_app, _, _ = cockpit
    other = make_repo(tmp_path / "other")
    run_git(other, "branch", "feature")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        for where, base, wanted in (("branch", "", None), ("branch", "feature", {"branch": "feature"}),
                                    ("read-only", "ignored", {"read_only": True})):
            await pilot.press("c")
            await pilot.pause()
            dialog = app.screen
            dialog.query_one("#new-repo", Input).value = str(other)
            dialog.query_one("#new-where", Select).value = where
            dialog.query_one("#new-base", Input).value = base
            await pilot.press("ctrl+s")
            await pilot.pause()
            if wanted is None:
                assert "Base ref: type the existing branch" in str(dialog.query_one("#new-error", Static).content)
                await pilot.press("escape")
                await pilot.pause()
                continue
            for _ in range(60):
                await pilot.pause(0.05)
                made = [s for s in engine.sessions.values() if s.repo == "other"
                        and all(getattr(s, k) == v for k, v in wanted.items())]
                if made and made[0].id in app.grid.panes:
                    break
            assert made and made[0].id in app.grid.panes
    placed = sorted((s.branch, s.read_only, s.owns_branch) for s in engine.sessions.values() if s.repo == "other")
    assert placed == [("feature", False, False), ("main", True, False)]


async def test_create_key_makes_sessions_through_the_engine(cockpit: Any) -> None:
    engine, make_app, _, _ = cockpit
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, NewSessionDialog)
        await pilot.press(*"fan")
        app.screen.query_one("#new-count", Input).value = "2"
        await pilot.press("ctrl+s")
        for _ in range(40):
            await pilot.pause(0.05)
            if len(app.grid.panes) == 4:
                break
        names = sorted(s.name for s in engine.sessions.values())
    assert names == ["alpha", "beta", "fan-1", "fan-2"]


# -- zoom ------------------------------------------------------------------------------------------


def transcript_of(engine: Engine, session_id: str) -> None:
    engine.emit(session_id, ev.USER_MESSAGE, {"text": "make the tests pass"})
    engine.emit(session_id, ev.TEXT_DELTA, {"text": "## Plan\n\nRun the **tests** "})
    engine.emit(session_id, ev.TEXT_DELTA, {"text": "first."})
    engine.emit(session_id, ev.MESSAGE_END, {})
    engine.emit(session_id, ev.TOOL_CALL, {"id": "c1", "name": "shell", "arguments": {"command": "pytest -q"}})
    engine.emit(session_id, ev.TOOL_RESULT, {"id": "c1", "name": "shell", "ok": False, "output": "1 failed\n[red]x"})
    engine.emit(session_id, ev.NOTICE, {"text": "retrying after a 429"})
    engine.emit(session_id, ev.ERROR, {"text": "model timed out"})


async def test_zoom_shows_markdown_tools_and_streams(cockpit: Any) -> None:
    engine, make_app, _, sessions = cockpit
    alpha = sessions[0]
    transcript_of(engine, alpha.id)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.focus_session(alpha.id)
        await pilot.pause()
        await pilot.press("z")
        await settle(pilot)
        zoom = app.screen
        assert isinstance(zoom, ZoomScreen) and zoom.session_id == alpha.id
        blocks = list(zoom.log_view.children)
        kinds = [type(b).__name__ for b in blocks]
        assert kinds == ["Static", "Markdown", "Collapsible", "Static", "Static"]
        assert str(blocks[0].content) == "› make the tests pass" and blocks[0].has_class("user")
        assert blocks[1].source == "## Plan\n\nRun the **tests** first."
        assert blocks[1].query("MarkdownH2")  # rendered as markdown, not text
        tool = blocks[2]
        assert isinstance(tool, Collapsible) and tool.collapsed
        assert tool.title == "⚙ shell pytest -q  ✗" and tool.has_class("failed")
        body = [str(s.content) for s in tool.query(Static) if s.has_class("tool-args") or s.has_class("tool-result")]
        assert body == ["command: pytest -q", "✗ 1 failed\n[red]x"]
        assert blocks[3].has_class("notice") and blocks[4].has_class("error")

        # Live: deltas stream into one new markdown block; other sessions' events stay out.
        engine.emit(alpha.id, ev.TEXT_DELTA, {"text": "Fixed `calc.py`, "})
        engine.emit(sessions[1].id, ev.TEXT_DELTA, {"text": "not mine"})
        await settle(pilot)
        engine.emit(alpha.id, ev.TEXT_DELTA, {"text": "all green."})
        await settle(pilot)
        blocks = list(zoom.log_view.children)
        assert len(blocks) == 6
        assert isinstance(blocks[-1], Markdown) and blocks[-1].source == "Fixed `calc.py`, all green."
        assert zoom.log_view.following
        assert zoom.log_view.scroll_y == zoom.log_view.max_scroll_y

        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ZoomScreen)


async def test_zoom_follow_stops_on_scroll_up_and_end_resumes(cockpit: Any) -> None:
    engine, make_app, _, sessions = cockpit
    alpha = sessions[0]
    for i in range(60):
        engine.emit(alpha.id, ev.NOTICE, {"text": f"notice {i}"})
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.push_screen(ZoomScreen(app, alpha.id))
        await settle(pilot)
        log = app.screen.log_view
        assert log.max_scroll_y > 0 and log.following and log.scroll_y == log.max_scroll_y
        await pilot.press("pageup")
        await settle_until(pilot, lambda: not log.following)  # the page scroll is animated
        assert not log.following
        top = log.scroll_y
        engine.emit(alpha.id, ev.NOTICE, {"text": "while you read"})
        await settle(pilot)
        assert log.scroll_y == top and not log.following  # no jumping while the person reads
        assert "paused" in str(app.screen.query_one("#zoom-header", Static).content)
        await pilot.press("end")
        await settle(pilot)
        assert log.following and log.scroll_y == log.max_scroll_y


async def test_zoom_approval_inline_and_input_sends_to_this_session(cockpit: Any) -> None:
    engine, make_app, _, sessions = cockpit
    alpha, beta = sessions
    engine.set_state(engine.sessions[alpha.id], State.RUNNING)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.push_screen(ZoomScreen(app, alpha.id))
        await settle(pilot)
        zoom = app.screen
        decision = asyncio.ensure_future(engine.hosts[alpha.id].request_approval("shell", "rm -rf build"))
        await settle(pilot)
        bar = zoom.query_one("#zoom-approval", Static)
        assert bar.display and "approve shell: rm -rf build?" in str(bar.content)
        assert "[a] approve" in str(bar.content) and "[d] deny" in str(bar.content)
        assert zoom.log_view.children[-1].has_class("approval")
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, TextPrompt)
        await pilot.press(*"too risky", "enter")
        await settle(pilot)
        assert decision.done() and not decision.result().approved and decision.result().reason == "too risky"
        assert not bar.display
        assert "denied shell: too risky" in str(zoom.log_view.children[-1].content)

        await pilot.press("i")
        await pilot.press(*"try again", "enter")
        await settle(pilot)
        assert zoom.query_one("#zoom-input", Input).value == ""
        assert str(zoom.log_view.children[-1].content) == "› try again"
    alpha_events = [e.kind for e in await engine.transcript(alpha.id)]
    beta_events = [e.kind for e in await engine.transcript(beta.id)]
    assert alpha_events.count(ev.USER_MESSAGE) == 1 and ev.USER_MESSAGE not in beta_events


async def test_zoom_is_bounded(cockpit: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import cockpit.ui.zoom as zoom_module

    engine, make_app, _, sessions = cockpit
    monkeypatch.setattr(zoom_module, "MAX_EVENTS", 20)
    monkeypatch.setattr(zoom_module, "MAX_BLOCKS", 30)
    for _ in range(250):  # the worktree watcher's first look (a diff stat) comes before the messages
        if any(e.kind == ev.DIFF_STAT for e in await engine.transcript(sessions[0].id)):
            break
        await asyncio.sleep(0.02)
    for i in range(50):
        engine.emit(sessions[0].id, ev.USER_MESSAGE, {"text": f"m{i}"})
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.push_screen(ZoomScreen(app, sessions[0].id))
        await settle(pilot)
        log = app.screen.log_view
        stored = len(await engine.transcript(sessions[0].id))  # 50 messages + created + state
        assert len(log.children) == 21
        assert str(log.children[0].content) == f"… {stored - 20} earlier events not shown"
        for i in range(20):
            engine.emit(sessions[0].id, ev.NOTICE, {"text": f"n{i}"})
        await settle(pilot)
        assert len(log.children) == 30 and str(log.children[-1].content) == "· n19"


# -- help, keymap, palette -------------------------------------------------------------------------


async def test_help_lists_current_keys_after_remap(cockpit: Any) -> None:
    _, make_app, _, _ = cockpit
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.set_keymap({"approval.approve": "y", "layout.cycle": "f5"})
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        rows = {(group, binding_id): keys for group, binding_id, keys, _ in app.screen.rows}
        assert rows[("Approvals", "approval.approve")] == "y"
        assert rows[("Layout", "layout.cycle")] == "f5"
        assert rows[("Zoom view", "approval.approve")] == "y"  # one id, both screens
        assert rows[("Sessions", "pane.zoom")] == "z, ⏎"
        assert {group for group, _ in rows} >= {"Focus", "Attention", "Approvals", "Sessions", "Layout", "Bar"}
        text = "\n".join(str(s.content) for s in app.screen.query(Static))
        for token in ("@3", "@name", "#tag", "@all", "@marked", "@waiting", "@idle", "@error"):
            assert token in text
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_config_keymap_is_applied_on_mount(cockpit: Any) -> None:
    engine, _, repo, sessions = cockpit
    config = make_config(keys={"pane.zoom": "v"})
    app = CockpitApp(engine, config, repo=str(repo))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.focus_session(sessions[0].id)
        await pilot.pause()
        await pilot.press("z")
        await pilot.pause()
        assert not isinstance(app.screen, ZoomScreen)
        await pilot.press("v")
        await settle(pilot)
        assert isinstance(app.screen, ZoomScreen)
        await pilot.press("v")  # the same id closes the zoom view
        await pilot.pause()
        assert not isinstance(app.screen, ZoomScreen)


def test_keymap_validation_messages() -> None:
    bindings = known_bindings()
    validate_keymap({"approval.approve": "y", "pane.zoom": "Z,enter"}, bindings)
    with pytest.raises(ConfigError) as unknown:
        validate_keymap({"approval.aprove": "y"}, bindings)
    message = str(unknown.value)
    assert message.startswith("config: key 'keys.approval.aprove': no such action; known: app.quit, approval.approve, ")
    assert "\n" not in message and "zoom.follow" in message
    with pytest.raises(ConfigError) as clash:
        validate_keymap({"approval.approve": "n"}, bindings)
    assert str(clash.value) == (
        "config: key 'keys.approval.approve': 'n' is already bound to attention.next; "
        "pick another key or remap attention.next too"
    )
    validate_keymap({"approval.approve": "n", "attention.next": "N"}, bindings)  # a swap is fine
    with pytest.raises(ConfigError, match=r"^config: key 'keys.help': must be a key"):
        validate_keymap({"help": ""}, bindings)


async def test_palette_lists_actions_sessions_and_layouts(cockpit: Any) -> None:
    _, make_app, _, sessions = cockpit
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.set_keymap({"approval.approve": "y"})
        provider = CockpitCommands(app.screen)
        commands = {c.text: c for c in provider.commands()}
        for verb in ("Go to", "Zoom", "Archive", "Interrupt"):
            assert f"{verb} @1 alpha" in commands and f"{verb} @2 beta" in commands
        approve = commands["Approve the focused pane's pending request"]
        assert approve.help.startswith("key: y ")
        assert "Layout: main-vertical" in commands and "Layout: wide" in commands
        hits = [hit.text async for hit in provider.search("zoom beta")]
        assert "Zoom @2 beta" in hits

        # Through the real palette: pick a config layout.
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Layout: wide")
        await settle(pilot, 0.4)
        await pilot.press("enter")
        await settle(pilot)
        assert app.grid.layout_name == "main-vertical" and app.grid.settings.main_size == 70

        commands["Zoom @2 beta"].callback()
        await settle(pilot)
        assert isinstance(app.screen, ZoomScreen) and app.screen.session_id == sessions[1].id


async def test_help_shows_the_binding_ids_that_keys_remaps(cockpit: Any) -> None:
    """Issue #12.10: the README sends people to the help screen for `[keys]` ids; only the palette had them."""
    _, make_app, _, _ = cockpit
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.set_keymap({"approval.approve": "y"})
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        shown = "\n".join(str(s.render()) for s in app.screen.query(Static)).splitlines()
        for keys, binding_id, description in (("y", "approval.approve", "approve the focused pane's"),
                                              ("z, ⏎", "pane.zoom", "zoom: the whole transcript"),
                                              ("^]", "terminal.release", "leave a zoomed terminal")):
            assert any(line.split()[:len(keys.split()) + 1] == [*keys.split(), binding_id] and description in line
                       for line in shown), (keys, binding_id)
