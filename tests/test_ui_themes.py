"""Themes: the built-in files load, mistakes are one clear line, picks are remembered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cockpit.config import Config, load_config
from cockpit.core.engine import Engine
from cockpit.ui.app import CockpitApp
from cockpit.ui.themes import (
    ThemeError,
    builtin_theme_dir,
    load_theme_file,
    load_themes,
    parse_theme,
    user_theme_dir,
)

BUILTIN = ("cockpit-dark", "cockpit-light", "cockpit-high-contrast")


def test_builtin_themes_load_without_errors() -> None:
    found = load_themes([builtin_theme_dir()])
    assert found.errors == []
    assert set(BUILTIN) <= set(found.themes)
    light = found.themes["cockpit-light"]
    assert light.dark is False and light.background == "#fafaf7"
    high = found.themes["cockpit-high-contrast"]
    assert high.text_alpha == 1.0 and high.background == "#000000"
    for name in BUILTIN:  # every colour Textual derives from them is valid
        found.themes[name].to_color_system().generate()


def test_builtin_folder_is_the_top_level_themes_folder() -> None:
    repo_themes = Path(__file__).resolve().parent.parent / "themes"
    assert builtin_theme_dir().resolve() == repo_themes.resolve()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('primary = "#4c9be8"\nbackground = "blurple"\n',
         "{f}: key 'background' must be a colour such as \"#4c9be8\" or \"rgb(76,155,232)\", got 'blurple'"),
        ('primary = "#4c9be8"\ndark = "yes"\n', "{f}: key 'dark' must be true or false, got a string ('yes')"),
        ('primary = "#4c9be8"\nbackgound = "#000000"\n',
         "{f}: unknown key 'backgound' (expected one of: accent, ansi, background, boost, dark, error, "
         "foreground, luminosity_spread, name, panel, primary, secondary, success, surface, text_alpha, "
         "variables, warning)"),
        ('background = "#000000"\n', "{f}: key 'primary' is required (a colour such as \"#4c9be8\")"),
        ('primary = "#4c9be8"\n[variables]\nborder = 3\n',
         "{f}: key 'variables.border' must be a string, got an integer (3)"),
        ('primary = "#4c9be8"\nname = "my theme"\n',
         "{f}: key 'name' must be a theme name (letters, digits, '-' and '_'), got 'my theme'"),
        ('primary = "#4c9be8\n', "{f}: line 1: invalid TOML: Illegal character '\\n'"),
    ],
)
def test_bad_theme_file_gives_one_exact_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ThemeError) as caught:
        load_theme_file(path)
    assert str(caught.value) == message.format(f=path)
    assert "\n" not in str(caught.value)


def test_name_defaults_to_the_file_stem() -> None:
    assert parse_theme('primary = "#112233"', "x.toml", default_name="ocean").name == "ocean"


def _write_user_theme(name: str, text: str) -> Path:
    folder = user_theme_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def _engine(home: Path) -> Engine:
    return await Engine.open(home, load_config(), None)  # no agents run


async def test_cycling_changes_theme_repaints_panes_and_is_remembered(cockpit_env, repo: Path) -> None:
    engine = await _engine(cockpit_env.home)
    try:
        await engine.create_sessions(str(repo), name="alpha")
        app = CockpitApp(engine, Config())
        assert app.theme == "cockpit-dark"
        async with app.run_test(size=(80, 16)) as pilot:
            await pilot.pause()
            assert "#0f1218" in app.export_screenshot()  # cockpit-dark's background
            app.set_focus(None)  # keys go to the app, not the instruction bar
            order = app.themes.names
            await pilot.press("T")
            await pilot.pause()
            picked = order[(order.index("cockpit-dark") + 1) % len(order)]
            assert app.theme == picked
            app.theme = "cockpit-light"  # any other way of changing it is remembered too
            await pilot.pause()
            await pilot.pause()
            screenshot = app.export_screenshot()
            assert "#0f1218" not in screenshot  # no pane kept the old colours
            assert "#fafaf7" in screenshot
        state = json.loads((cockpit_env.home / "ui-state.json").read_text())
        assert state["theme"] == "cockpit-light"

        again = CockpitApp(engine, Config())  # a restart with the same config
        assert again.theme == "cockpit-light"
        edited = CockpitApp(engine, Config(theme="cockpit-high-contrast"))  # config edited since
        assert edited.theme == "cockpit-high-contrast"
    finally:
        await engine.close()


async def test_start_does_not_write_state_and_damaged_state_is_ignored(cockpit_env) -> None:
    engine = await _engine(cockpit_env.home)
    try:
        app = CockpitApp(engine, Config(theme="cockpit-light"))
        async with app.run_test() as pilot:
            await pilot.pause()
            assert app.theme == "cockpit-light"
        assert not (cockpit_env.home / "ui-state.json").exists()  # nothing was picked
        (cockpit_env.home / "ui-state.json").write_text("{not json", encoding="utf-8")
        assert CockpitApp(engine, Config()).theme == "cockpit-dark"
        (cockpit_env.home / "ui-state.json").write_text('{"theme": "deleted-theme"}', encoding="utf-8")
        assert CockpitApp(engine, Config()).theme == "cockpit-dark"
    finally:
        await engine.close()


async def test_user_theme_overrides_builtin_and_adds_new(cockpit_env) -> None:
    _write_user_theme("mine", 'name = "cockpit-dark"\nprimary = "#ff00ff"\nbackground = "#101010"\n')
    _write_user_theme("paper", 'primary = "#336699"\ndark = false\nbackground = "#ffffee"\n')
    engine = await _engine(cockpit_env.home)
    try:
        app = CockpitApp(engine, Config())
        assert app.get_theme("cockpit-dark").primary == "#ff00ff"
        assert app.themes.names.index("cockpit-dark") == 0  # the override keeps its place
        assert "paper" in app.themes.names
        assert CockpitApp(engine, Config(theme="paper")).theme == "paper"
    finally:
        await engine.close()


async def test_unknown_or_broken_config_theme_is_a_clear_error(cockpit_env) -> None:
    engine = await _engine(cockpit_env.home)
    try:
        with pytest.raises(ThemeError) as caught:
            CockpitApp(engine, Config(theme="solarised"))
        message = str(caught.value)
        assert message.startswith("unknown theme 'solarised' (key 'theme' in config); available: ")
        assert "cockpit-dark, cockpit-high-contrast, cockpit-light" in message
        assert "textual-dark" in message and "\n" not in message

        broken = _write_user_theme("neon", 'primary = "neon"\n')
        with pytest.raises(ThemeError) as caught:
            CockpitApp(engine, Config(theme="neon"))
        assert str(caught.value).startswith(f"{broken}: key 'primary' must be a colour")

        app = CockpitApp(engine, Config())  # a broken file nobody asked for: skipped, shown
        assert app.themes.errors and str(broken) in app.themes.errors[0]
    finally:
        await engine.close()
