"""The experiment commands, for `Engine.execute` (the UI, the CLI and a remote client alike).

    {"cmd": "experiment_start", "repo": ".", "file": "experiment.toml", "overrides": {"agents": 4}}
    {"cmd": "experiment_resume", "name": "tiny-fit", "overrides": {"budget.runs": 40}}
    {"cmd": "experiment_stop", "name": "tiny-fit"}
    {"cmd": "experiment_status", "name": "tiny-fit"}
    {"cmd": "experiment_list"}
    {"cmd": "experiment_note", "name": "tiny-fit", "text": "try weight decay", "agents": ["@2"]}

Start, resume, stop and status answer with the experiment's status (see `runner.describe`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cockpit.core.engine import Engine


async def _start(engine: Engine, repo: str, file: str | None = None,
                 overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    return (await engine.experiments.start(repo, file, overrides)).status()


async def _resume(engine: Engine, name: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    return (await engine.experiments.resume(name, overrides)).status()


async def _stop(engine: Engine, name: str) -> dict[str, Any]:
    return await engine.experiments.stop(name)


async def _status(engine: Engine, name: str) -> dict[str, Any]:
    return engine.experiments.status(name)


async def _list(engine: Engine) -> list[dict[str, Any]]:
    return engine.experiments.list()


async def _note(engine: Engine, name: str, text: str, agents: list[str] | None = None) -> list[str]:
    return await engine.experiments.note(name, text, agents or ())


EXPERIMENT_COMMANDS: dict[str, Callable[..., Awaitable[Any]]] = {
    "experiment_start": _start,
    "experiment_resume": _resume,
    "experiment_stop": _stop,
    "experiment_status": _status,
    "experiment_list": _list,
    "experiment_note": _note,
}
