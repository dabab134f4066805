"""The features built on the engine, handed to it at start-up (core imports none of them).

`install()` runs wherever an engine is opened outside core (the server, `--local`, the demos,
the tests' conftest); it is idempotent.
"""

from __future__ import annotations

from cockpit.alerts.collisions import COLLISION_COMMANDS, Collisions
from cockpit.alerts.phone import PhoneNotifier
from cockpit.core.registry import Feature, register
from cockpit.experiment.commands import EXPERIMENT_COMMANDS
from cockpit.experiment.runner import ExperimentManager
from cockpit.inbox.service import INBOX_COMMANDS, InboxService
from cockpit.plan.commands import PLAN_COMMANDS
from cockpit.plan.conductor import make_conductor
from cockpit.plan.manager import PlanManager


def install() -> None:
    register(Feature("experiments", ExperimentManager, EXPERIMENT_COMMANDS))
    register(Feature("plans", PlanManager, PLAN_COMMANDS, agents={"conductor": make_conductor}))
    register(Feature("collisions", Collisions, COLLISION_COMMANDS))
    register(Feature("phone", PhoneNotifier, {}))
    register(Feature("inbox", InboxService, INBOX_COMMANDS))
