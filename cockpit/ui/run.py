"""Starting the cockpit screen: on an in-process engine, or attached to a server's."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cockpit.config import Config, cockpit_home
from cockpit.errors import CockpitError
from cockpit.logfile import logging_to


async def run_cockpit(
    config: Config, *, home: Path | None = None, agents: bool = True, repo: str = ".",
    prepare: Callable[[Any], Awaitable[dict[str, Any]]] | None = None, engine_config: Config | None | bool = True,
) -> None:
    """Open the engine (under the home's engine lock), run the app until the person quits, close
    the engine.

    `prepare(engine)` runs once the engine is open (e.g. starts an experiment) and returns
    extra keyword arguments for the app. `engine_config`: the engine's base config (True: `config`;
    None: the user's file, each repository's own overlaid for its sessions, re-read on change).
    """
    from cockpit.client.local import local_engine
    from cockpit.ui.app import CockpitApp

    check_screen_config(config)  # before agents are restored
    factory = None
    if agents:
        from cockpit.workers.pool import WorkerPool

        factory = WorkerPool()
    base = config if engine_config is True else engine_config
    async with local_engine(base, home=home, agent_factory=factory) as engine:
        with logging_to(engine.home / "logs" / "cockpit.log"):
            options = await prepare(engine) if prepare is not None else {}
            await CockpitApp(engine, config, repo=repo, **options).run_async()


async def run_attached(config: Config, client: Any, *, repo: str = ".", label: str = "") -> None:
    """Connect the client (a server's, or several), run the app until the person detaches.

    Quitting only closes the connection: the agents go on in the server.
    """
    from cockpit.ui.app import CockpitApp

    check_screen_config(config)
    await client.connect()
    try:
        with logging_to(cockpit_home() / "logs" / "screen.log"):
            await CockpitApp(client, config, repo=repo, label=label).run_async()
    finally:
        await client.close()


def check_terminal() -> None:
    """The screen reads keys from a terminal: from /dev/null or a pipe Textual read end-of-file
    in a loop at ~96% CPU. textual-serve's browser tabs bring their own driver (TEXTUAL_DRIVER)."""
    if not sys.stdin.isatty() and not os.environ.get("TEXTUAL_DRIVER"):
        raise CockpitError("the screen needs a terminal and stdin is not one: run it in a terminal, "
                           "or use the verbs from scripts (`cockpit ls`, `cockpit logs`, see AGENTS.md)")


def check_screen_config(config: Config) -> None:
    """A bad [keys] entry or an unknown theme is one line, before any screen or connection."""
    from cockpit.ui.keymap import known_bindings, validate_keymap
    from cockpit.ui.themes import check_config_theme

    if config.keys:  # (knowing every binding imports every screen: not for nothing)
        validate_keymap(config.keys, known_bindings())
    check_config_theme(config)
