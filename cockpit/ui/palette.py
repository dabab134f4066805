"""The command palette provider: every app action (with its key), every session, every layout."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.fuzzy import Matcher

from cockpit.ui.help import DESCRIPTIONS
from cockpit.ui.keymap import app_keys, key_display
from cockpit.ui.layout import LAYOUTS


@dataclass(frozen=True)
class PaletteCommand:
    text: str  # what the person searches and sees
    help: str
    callback: Callable[[], Any]
    discover: bool = True  # listed before anything is typed


class CockpitCommands(Provider):
    """Actions, sessions (go to / zoom / archive / interrupt) and layouts."""

    def commands(self) -> list[PaletteCommand]:
        app: Any = self.app
        return [*self._action_commands(app), *self._session_commands(app), *self._layout_commands(app),
                *self._repo_commands(app)]

    def _action_commands(self, app: Any) -> list[PaletteCommand]:
        out = []
        for binding_id, (binding, keys) in app_keys(app).items():
            if binding.action == "command_palette":
                continue
            description = DESCRIPTIONS.get(binding_id, binding.description)
            text = description[:1].upper() + description[1:]
            out.append(PaletteCommand(
                text, f"key: {key_display(app, binding, keys) or 'none'}  ({binding_id})",
                partial(_run_action, app, binding.action),
            ))
        return out

    def _session_commands(self, app: Any) -> list[PaletteCommand]:
        out = []
        sessions = sorted((s for s in getattr(app, "sessions", {}).values() if s.get("state") != "archived"),
                          key=lambda s: s.get("number", 0))
        for session in sessions:
            label = f"@{session['number']} {session['name']}"
            state = session.get("state", "")
            sid = session["id"]
            out += [
                PaletteCommand(f"Go to {label}", f"focus its pane ({state})", partial(_goto, app, sid)),
                PaletteCommand(f"Zoom {label}", "whole transcript, live", partial(_zoom, app, sid), False),
                PaletteCommand(f"Archive {label}", "stop the agent and hide the pane; worktree and branch stay",
                               partial(_command, app, {"cmd": "archive", "session": sid}), False),
                PaletteCommand(f"Interrupt {label}", "stop the current turn",
                               partial(_command, app, {"cmd": "interrupt", "session": sid}), False),
            ]
        return out

    def _layout_commands(self, app: Any) -> list[PaletteCommand]:
        out = [PaletteCommand(f"Layout: {name}", "arrange the panes", partial(_set_layout, app, name, None))
               for name in LAYOUTS]
        config = getattr(app, "config", None)
        for name, layout in sorted((getattr(config, "layouts", None) or {}).items()):
            out.append(PaletteCommand(
                f"Layout: {name}", f"from config: {layout.layout}, main {layout.main_size}%, "
                f"panes at least {layout.min_pane_width}×{layout.min_pane_height}",
                partial(_set_layout, app, layout.layout, layout),
            ))
        return out

    def _repo_commands(self, app: Any) -> list[PaletteCommand]:
        repos = app.grid.repos()
        if len(repos) < 2:
            return []
        out = [PaletteCommand(f"Repository: {repo}", f"show only {repo}'s sessions (@{repo}: targets them)",
                              partial(_show_repo, app, repo)) for repo in repos]
        out.append(PaletteCommand("Repository: all", "show every repository's sessions", partial(_show_repo, app, "")))
        return out

    async def discover(self) -> Hits:
        for command in self.commands():
            if command.discover:
                yield DiscoveryHit(Content(command.text), command.callback, text=command.text, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self.commands():
            score = matcher.match(command.text)
            if score > 0:
                yield Hit(score, _highlight(matcher, command.text), command.callback, text=command.text,
                          help=command.help)


def _highlight(matcher: Matcher, text: str) -> Content:
    """`Matcher.highlight` without reading `text` as markup: session names are plain text (a name
    with `[b]` lost it, one with `[/]` broke the palette)."""
    content = Content(text)
    _, offsets = matcher.fuzzy_search.match(matcher.query, text)
    for offset in offsets:
        if not text[offset].isspace():
            content = content.stylize(matcher.match_style, offset, offset + 1)
    return content


# -- what the commands do (the palette calls these after it closes) ------------------------------


async def _run_action(app: Any, action: str) -> None:
    await app.run_action(action)


def _back_to_grid(app: Any) -> None:
    """Leave zoom / help screens so grid commands act on what the person sees."""
    from cockpit.ui.help import HelpScreen
    from cockpit.ui.zoom import ZoomScreen

    while len(app.screen_stack) > 1 and isinstance(app.screen, (ZoomScreen, HelpScreen)):
        app.pop_screen()


def _goto(app: Any, session_id: str) -> None:
    _back_to_grid(app)
    if session_id in app.grid.panes:
        app.focus_session(session_id)


def _zoom(app: Any, session_id: str) -> None:
    from cockpit.ui.zoom import ZoomScreen

    _back_to_grid(app)
    if session_id in app.grid.panes:
        app.focus_session(session_id)
    app.push_screen(ZoomScreen(app, session_id))


async def _command(app: Any, command: dict[str, Any]) -> None:
    await app.run_command(command)


def _show_repo(app: Any, repo: str) -> None:
    _back_to_grid(app)
    app.show_repo(repo)


def _set_layout(app: Any, name: str, settings: Any) -> None:
    if settings is not None:
        app.grid.settings = settings
    app.grid.set_layout(name)
    app.notify(f"layout: {name}", timeout=2)
    refresh: Callable[[], None] | None = getattr(app, "_refresh_status", None)
    if refresh is not None:
        refresh()
