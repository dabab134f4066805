"""Themes: TOML files turned into Textual `Theme`s, registered on the app, cycled and remembered.

Where themes come from, later ones overriding earlier ones by name:

1. the built-in folder: `themes/` at the top of the repository. It is shipped inside the
   package as `cockpit/themes`, a symlink to `../themes` that setuptools follows when it builds
   a wheel or sdist, so there is one copy of each file and an installed cockpit has them too;
2. `$XDG_CONFIG_HOME/cockpit/themes/*.toml`, the person's own.

A theme file holds the fields of `textual.theme.Theme` (see `FIELDS`); `name` defaults to the
file's stem. Every mistake becomes one `ThemeError` line naming the file and the key, in the
same words as config errors. A broken file is skipped with a toast, unless it is the theme the
config asks for, which stops the start like any config error.

The chosen theme: `config.theme`, unless the person picked another one at run time (`T`, or
Textual's command palette). That pick is stored in `$COCKPIT_HOME/ui-state.json`, never in
their config file, and wins at the next start — until they edit `theme` in their config, which
is a newer decision and wins again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.color import Color, ColorParseError
from textual.theme import BUILTIN_THEMES as TEXTUAL_THEMES
from textual.theme import Theme

from cockpit.config import Config, _parse_toml, xdg_config_home
from cockpit.errors import ConfigError
from cockpit.ui.ui_state import load_ui_state, save_ui_state


class ThemeError(ConfigError):
    """A theme file is unreadable or wrong, or the config names a theme that does not exist."""


COLOR_FIELDS = ("primary", "secondary", "accent", "warning", "error", "success",
                "foreground", "background", "surface", "panel", "boost")
FIELDS: dict[str, str] = {
    "name": "a theme name (letters, digits, '-' and '_')",
    **{key: "a colour" for key in COLOR_FIELDS},
    "dark": "true or false",
    "luminosity_spread": "a number",
    "text_alpha": "a number between 0 and 1",
    "ansi": "true or false",
    "variables": "a table of strings",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


# ---------------------------------------------------------------------------------------------
# Reading theme files


def builtin_theme_dir() -> Path:
    """The built-in themes: `cockpit/themes` in the package, else the checkout's `themes/`."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "themes"
    return packaged if packaged.is_dir() else package.parent / "themes"


def user_theme_dir() -> Path:
    return xdg_config_home() / "cockpit" / "themes"


def load_theme_file(path: Path) -> Theme:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ThemeError(f"{path}: cannot read theme: {exc}") from None
    return parse_theme(text, str(path), default_name=Path(path).stem)


def parse_theme(text: str, source: str, *, default_name: str) -> Theme:
    """Build a Theme from TOML text, or raise one ThemeError line naming `source` and the key."""
    try:
        raw = _parse_toml(text, source)
    except ConfigError as exc:
        raise ThemeError(str(exc)) from None
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in FIELDS:
            raise ThemeError(f"{source}: unknown key '{key}' (expected one of: {', '.join(sorted(FIELDS))})")
        values[key] = _check(key, value, source)
    values.setdefault("name", default_name)
    if not _NAME.match(values["name"]):
        raise ThemeError(f"{source}: key 'name' must be {FIELDS['name']}, got {values['name']!r}")
    if "primary" not in values:
        raise ThemeError(f"{source}: key 'primary' is required (a colour such as \"#4c9be8\")")
    return Theme(**values)


def _check(key: str, value: Any, source: str) -> Any:
    def wrong() -> ThemeError:
        return ThemeError(f"{source}: key '{key}' must be {FIELDS[key]}, got {_describe(value)}")

    if key == "name":
        if not isinstance(value, str):
            raise wrong()
        return value
    if key in COLOR_FIELDS:
        if not isinstance(value, str):
            raise wrong()
        try:
            Color.parse(value)
        except ColorParseError:
            raise ThemeError(
                f"{source}: key '{key}' must be a colour such as \"#4c9be8\" or \"rgb(76,155,232)\", got {value!r}"
            ) from None
        return value
    if key in ("dark", "ansi"):
        if not isinstance(value, bool):
            raise wrong()
        return value
    if key in ("luminosity_spread", "text_alpha"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong()
        if key == "text_alpha" and not 0 <= value <= 1:
            raise wrong()
        return float(value)
    # variables
    if not isinstance(value, dict):
        raise wrong()
    for name, item in value.items():
        if not isinstance(item, str):
            raise ThemeError(f"{source}: key 'variables.{name}' must be a string, got {_describe(item)}")
    return dict(value)


def _describe(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a table"}
    return f"{names.get(type(value), type(value).__name__)} ({value!r})"[:80]


@dataclass
class ThemeSet:
    """Every theme found, in cycling order (built-in first), and the files that failed."""

    themes: dict[str, Theme] = field(default_factory=dict)
    sources: dict[str, Path] = field(default_factory=dict)  # theme name → file
    errors: list[tuple[Path, ThemeError]] = field(default_factory=list)

    def error_for(self, name: str) -> ThemeError | None:
        """The error of a broken file that probably defines theme `name` (same stem)."""
        return next((err for path, err in self.errors if path.stem == name), None)


def load_themes(folders: Iterable[Path] | None = None) -> ThemeSet:
    """Read `*.toml` from each folder in order; a later theme replaces an earlier one by name."""
    found = ThemeSet()
    for folder in folders if folders is not None else (builtin_theme_dir(), user_theme_dir()):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                theme = load_theme_file(path)
            except ThemeError as exc:
                found.errors.append((path, exc))
                continue
            found.themes[theme.name] = theme  # an override keeps the built-in's place
            found.sources[theme.name] = path
    return found


# ---------------------------------------------------------------------------------------------
# Choosing the start theme


def start_theme(config_theme: str, found: ThemeSet, state: dict[str, Any]) -> str:
    """The theme to start with: the remembered pick if still valid, else `config_theme`."""
    available = {**TEXTUAL_THEMES, **found.themes}
    remembered = state.get("theme")
    if (
        isinstance(remembered, str)
        and remembered in available
        and state.get("theme_config", config_theme) == config_theme
    ):
        return remembered
    if config_theme in available:
        return config_theme
    broken = found.error_for(config_theme)
    if broken is not None:
        raise broken
    ours = ", ".join(found.themes) or "none"
    textual = ", ".join(sorted(set(TEXTUAL_THEMES) - set(found.themes)))
    raise ThemeError(
        f"unknown theme {config_theme!r} (key 'theme' in config); available: {ours}; "
        f"Textual's own: {textual}"
    )


def check_config_theme(config: Config) -> None:
    """Raise the ThemeError the app would raise at start, before anything else is opened."""
    start_theme(config.theme, load_themes(), {})


# ---------------------------------------------------------------------------------------------
# On the app


class ThemeManager:
    """Registers the themes on `app`, applies the start theme, cycles and remembers picks."""

    def __init__(self, app: Any, config: Config, *, folders: Iterable[Path] | None = None,
                 home: Path | None = None) -> None:
        from cockpit.ui.pane import PaneStyles

        self.app = app
        self.config = config
        self.home = home
        self.found = load_themes(folders)
        for theme in self.found.themes.values():
            # A theme may replace one of the same name (a user override, a reload): pane
            # styles are cached by name, so drop what was derived from the old colours.
            PaneStyles.forget(theme.name)
            app.register_theme(theme)
        self.names = list(self.found.themes)
        self.start = start_theme(config.theme, self.found, load_ui_state(home))
        self._saved = self.start
        app.theme = self.start

    @property
    def errors(self) -> list[str]:
        return [str(err) for _, err in self.found.errors]

    def watch(self) -> None:
        """Start following theme changes, from `cycle` or from anywhere else (palette)."""
        self.app.theme_changed_signal.subscribe(self.app, self._changed)

    def cycle(self, step: int = 1) -> str:
        """Switch to the next cockpit theme (the palette offers Textual's own too)."""
        names = self.names or list(self.app.available_themes)
        current = self.app.theme
        index = names.index(current) if current in names else -1
        self.app.theme = names[(index + step) % len(names)]
        return self.app.theme

    def _changed(self, theme: Theme) -> None:
        from cockpit.ui.pane import AgentPane

        # Panes paint from cached styles, not CSS, so a CSS refresh does not repaint them.
        for screen in self.app.screen_stack:
            for pane in screen.query(AgentPane):
                pane.refresh()
        if theme.name != self._saved:
            self._saved = theme.name
            save_ui_state({"theme": theme.name, "theme_config": self.config.theme}, self.home)
