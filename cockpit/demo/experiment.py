"""`cockpit experiment demo`: the tiny-fit example run by scripted agents, no API key needed.

The example (`examples/tiny-fit`) is copied into a fresh repository under
`$COCKPIT_HOME/experiment-demo`, the scripted model server plays the `experiment` scenario (each
agent gets its ideas rotated to start at a different one, so they race and share), and real
built-in agents go through litellm's real HTTP path to it. Everything else is the real loop.
This module sets the demo up; the verb that shows or follows it is in `cockpit.cli_experiment`.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path
from typing import Any

from cockpit.config import cockpit_home
from cockpit.errors import CockpitError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny-fit"
EXAMPLE_FILES = ("experiment.toml", "program.md", "fit.py", "params.py", "README.md")
DEMO_LABEL = "DEMO: scripted agents, no API key"
STEPS_PER_IDEA = 2  # the edit, then the summary


def make_example_repo(path: Path) -> Path:
    """A git repository holding the tiny-fit example at its top, one commit on `main`."""
    if not EXAMPLE.is_dir():
        raise CockpitError(f"{EXAMPLE}: the tiny-fit example is not here (it ships with the source checkout)")
    path.mkdir(parents=True, exist_ok=True)
    for name in EXAMPLE_FILES:
        shutil.copy2(EXAMPLE / name, path / name)
    (path / ".gitignore").write_text("__pycache__/\n", encoding="utf-8")
    for command in (("init", "-q", "-b", "main"), ("config", "user.name", "Cockpit Demo"),
                    ("config", "user.email", "demo@cockpit.invalid"), ("add", "-A"),
                    ("commit", "-q", "-m", "tiny-fit: baseline")):
        subprocess.run(["git", *command], cwd=path, check=True, capture_output=True)
    return path


def rotated(scenario: Any, start: int) -> Any:
    """The scenario with its ideas rotated to begin at idea `start` (0-based, wraps)."""
    steps = scenario.steps
    ideas = max(1, len(steps) // STEPS_PER_IDEA)
    cut = (start % ideas) * STEPS_PER_IDEA
    return dataclasses.replace(scenario, steps=steps[cut:] + steps[:cut])


async def open_demo(home: Path | None = None) -> tuple[Any, Any, Path]:
    """(engine, server, repository) for a fresh demo; the caller closes the engine and the server."""
    from cockpit.core.engine import Engine
    from cockpit.demo.run import demo_config
    from cockpit.features import install
    from cockpit.sim import ScriptedLLMServer
    from cockpit.workers.pool import WorkerPool

    home = home or cockpit_home() / "experiment-demo"
    shutil.rmtree(home, ignore_errors=True)  # every demo starts from the same clean state
    repo = make_example_repo(home / "tiny-fit")
    server = ScriptedLLMServer()
    await server.start()
    try:
        install()
        engine = await Engine.open(home, demo_config(server.url), agent_factory=WorkerPool())
    except BaseException:
        await server.stop()
        raise
    return engine, server, repo


async def begin_demo(engine: Any, server: Any, repo: Path, agents: int, runs: int) -> str:
    """Start the experiment and script each agent; return its name."""
    from cockpit.sim import Scenario

    experiment = await engine.experiments.start(repo, overrides={"agents": agents, "budget.runs": runs})
    scenario = Scenario.builtin("experiment")
    for index, session_id in enumerate(experiment.state.sessions):  # before any agent's first request
        server.set_scenario(rotated(scenario, index), session=session_id)
    return experiment.name
