"""A scripted OpenAI-compatible model server, so agents run through litellm with no API key.

    async with ScriptedLLMServer("demo") as server:
        await litellm.acompletion(model="openai/sim", api_base=server.url, api_key="x", ...)

Scenario files: `cockpit/sim/scenarios/*.toml`; format: `cockpit.sim.scenario`.
"""

from cockpit.sim.facts import SESSION_HEADER
from cockpit.sim.scenario import Cursor, Scenario, ScenarioError, Step, ToolCall, When, as_scenario, builtin_names
from cockpit.sim.server import ScriptedLLMServer
from cockpit.sim.wire import TIMESTAMP_FIELD

__all__ = [
    "SESSION_HEADER", "TIMESTAMP_FIELD", "Cursor", "Scenario", "ScenarioError", "ScriptedLLMServer", "Step",
    "ToolCall", "When", "as_scenario", "builtin_names",
]
