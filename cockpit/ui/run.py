"""Starting the cockpit screen on an in-process engine."""

from __future__ import annotations

from pathlib import Path

from cockpit.config import Config


async def run_cockpit(config: Config, *, home: Path | None = None, agents: bool = True, repo: str = ".") -> None:
    """Open the engine, run the app until the person quits, close the engine."""
    from cockpit.core.engine import Engine
    from cockpit.ui.app import CockpitApp
    from cockpit.ui.keymap import known_bindings, validate_keymap

    validate_keymap(config.keys, known_bindings())  # a bad [keys] entry is one line, before any screen
    from cockpit.ui.themes import check_config_theme

    check_config_theme(config)  # so is an unknown theme, before agents are restored
    factory = None
    if agents:
        from cockpit.agents.factory import make_agent

        factory = make_agent
    engine = await Engine.open(home, config, agent_factory=factory)
    try:
        await CockpitApp(engine, config, repo=repo).run_async()
    finally:
        await engine.close()
