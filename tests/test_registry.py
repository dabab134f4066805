"""Features reach the engine through `cockpit.core.registry`: a registered feature's service is
built for every engine opened afterwards, its commands run through `Engine.execute`, and it is
closed with the engine. (Core never imports a feature; the experiments register this way.)"""

from __future__ import annotations

from typing import Any

import pytest

from cockpit.core import commands, registry
from cockpit.errors import CockpitError


class Counter:
    """A feature's service: remembers its engine and whether it was closed."""

    def __init__(self, engine: Any):
        self.engine = engine
        self.closed = False

    def owns(self, session_id: str) -> bool:
        return False

    async def close(self) -> None:
        self.closed = True


async def _count(engine: Any, extra: int = 0) -> int:
    return len(engine.sessions) + extra


@pytest.fixture(autouse=True)
def own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations here must not leak into the other tests' engines and command lists."""
    table = dict(commands.COMMANDS)
    monkeypatch.setattr(commands, "COMMANDS", table)
    monkeypatch.setattr(registry, "COMMANDS", table)
    monkeypatch.setattr(registry, "_FEATURES", dict(registry._FEATURES))


async def test_a_registered_feature_has_a_service_on_each_engine_and_its_commands(open_engine, repo):
    registry.register(registry.Feature("counter", Counter, {"count": _count}))
    engine = await open_engine()
    await engine.create_sessions(repo, task="")
    assert engine.counter.engine is engine
    assert engine.experiments is not engine.counter  # the features installed at start-up stay
    assert await engine.execute({"cmd": "count", "extra": 2}) == 3
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        engine.nothing  # noqa: B018
    await engine.close()
    assert engine.counter.closed


async def test_a_feature_cannot_take_a_command_name_that_exists():
    with pytest.raises(CockpitError, match="feature 'clash': command 'ls' exists already"):
        registry.register(registry.Feature("clash", Counter, {"ls": _count}))
    assert "clash" not in {feature.name for feature in registry.features()}


async def test_registering_a_feature_again_replaces_it():
    registry.register(registry.Feature("counter", Counter, {"count": _count, "count_more": _count}))
    registry.register(registry.Feature("counter", Counter, {"count": _count}))
    assert "count" in commands.COMMANDS and "count_more" not in commands.COMMANDS
