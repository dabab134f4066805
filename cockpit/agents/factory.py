"""Choosing the backend for a session from its agent config."""

from __future__ import annotations

from cockpit.core.agent_api import AgentBackend, AgentHost
from cockpit.errors import ConfigError


def make_agent(host: AgentHost) -> AgentBackend:
    session, config = host.session, host.config
    agent = config.agent(session.agent)
    if agent.kind == "llm":
        from cockpit.agents.llm import LLMAgent

        from cockpit.agents.model_keys import model_name

        name = model_name(config, session.model or agent.model)
        try:
            return LLMAgent(host, config.model(name), name)
        except ValueError as exc:  # the approval policy refused its settings
            raise ConfigError(f"config: [approval]: {exc}") from None
    if agent.kind == "terminal":
        from cockpit.agents.terminal import TerminalAgent

        return TerminalAgent(host, session.agent, agent)
    if agent.kind == "acp":
        from cockpit.agents.acp_agent import AcpAgent

        return AcpAgent(host, session.agent, agent)
    raise ConfigError(f"agent {session.agent!r}: kind {agent.kind!r} is not supported yet")
