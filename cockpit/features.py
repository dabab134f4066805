"""The features built on the engine, handed to it at start-up (core imports none of them).

`install()` runs wherever an engine is opened outside core (the server, `--local`, the demos,
the tests' conftest); it is idempotent.
"""

from __future__ import annotations

from typing import Any

from cockpit.alerts.collisions import COLLISION_COMMANDS, Collisions
from cockpit.alerts.phone import PhoneNotifier
from cockpit.core.registry import Feature, register
from cockpit.experiment.commands import EXPERIMENT_COMMANDS
from cockpit.experiment.runner import ExperimentManager
from cockpit.inbox.service import INBOX_COMMANDS, InboxService
from cockpit.plan.commands import PLAN_COMMANDS
from cockpit.plan.manager import PlanManager


def _conductor(engine: Any, host: Any) -> Any:
    """The plan's conductor agent, imported when one starts: the built-in agent's modules (and
    its HTTP client) are a fifth of a second the screen's start-up need not pay."""
    from cockpit.plan.conductor import make_conductor

    return make_conductor(engine, host)


def install() -> None:
    register(Feature("experiments", ExperimentManager, EXPERIMENT_COMMANDS))
    register(Feature("plans", PlanManager, PLAN_COMMANDS, agents={"conductor": _conductor}))
    register(Feature("collisions", Collisions, COLLISION_COMMANDS))
    register(Feature("phone", PhoneNotifier, {}))
    register(Feature("inbox", InboxService, INBOX_COMMANDS))
