"""The features built on the engine, registered at start-up so that core never imports them.

A feature (the experiment loops) sits above core: it imports the engine, never the reverse. The
program's entry points (`cockpit.features.install()`, called where an engine is opened) register
each feature here; every engine opened afterwards builds the feature's service (reachable as
`engine.<name>`) and `Engine.execute` takes the feature's JSON commands like its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cockpit.core.agent_api import AgentBackend, AgentHost
from cockpit.core.commands import COMMANDS
from cockpit.errors import CockpitError


class Service(Protocol):
    """What the engine asks of a feature's service."""

    def owns(self, session_id: str) -> bool:
        """Whether the feature commits this session's work itself (no per-turn checkpoints then)."""
        ...

    async def close(self) -> None:
        """Stop everything the feature runs; called first when the engine closes."""
        ...


def opened(services: Iterable[object]) -> None:
    """Tell the services that have an `on_open()` that the engine is open: its sessions are
    restored, so a service that follows the events starts from every session there is."""
    for service in services:
        on_open = getattr(service, "on_open", None)
        if callable(on_open):
            on_open()


@dataclass(frozen=True)
class Feature:
    name: str  # the engine's attribute for the service: engine.<name>
    service: Callable[[Any], Service]  # called with the engine, once per engine opened
    commands: Mapping[str, Callable[..., Awaitable[Any]]]  # {"cmd" name: handler(engine, **arguments)}
    #: Agent kinds the feature runs inside the engine's process because they drive the engine
    #: itself (the plan's conductor): {kind: make(engine, host)}; every other kind comes from the
    #: engine's agent factory.
    agents: Mapping[str, Callable[[Any, AgentHost], AgentBackend]] = field(default_factory=dict)


_FEATURES: dict[str, Feature] = {}


def register(feature: Feature) -> None:
    """Add (or, under the same name, replace) a feature; its commands join `Engine.execute`'s."""
    previous = _FEATURES.get(feature.name)
    taken = set(COMMANDS) - set(previous.commands if previous else ())
    clash = sorted(taken & set(feature.commands))
    if clash:
        raise CockpitError(f"feature {feature.name!r}: command {clash[0]!r} exists already")
    for name in previous.commands if previous else ():
        del COMMANDS[name]
    COMMANDS.update(feature.commands)
    _FEATURES[feature.name] = feature


def features() -> list[Feature]:
    return list(_FEATURES.values())


def engine_agent(engine: Any, host: AgentHost) -> AgentBackend | None:
    """The backend of a feature's own agent kind for `host`'s session, else None (then the
    engine's agent factory makes it)."""
    kind = host.config.agent(host.session.agent).kind
    for feature in _FEATURES.values():
        if kind in feature.agents:
            return feature.agents[kind](engine, host)
    return None
