"""The environment of what an agent runs: its own process (ACP) and the commands it starts.

Built from nothing but a few basics, the agent's `pass_env` (its API keys), its configured `env`
and the session's variables, never the cockpit's whole environment: a command's output goes
into the transcript, the database and the next model request, so `echo $MY_API_KEY` must find
nothing there. ACP agents and the shell tool share this one function.
"""

from __future__ import annotations

import os

from acp import default_environment

from cockpit.config import AgentConfig

#: Besides ACP's defaults (HOME, LOGNAME, PATH, SHELL, TERM, USER): a locale, a temp folder and
#: where tools keep their config, so an agent finds its own login and settings.
EXTRA_BASE_ENV = ("LANG", "LC_ALL", "LC_CTYPE", "TMPDIR",
                  "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")


def agent_environment(agent: AgentConfig, session_env: dict[str, str]) -> dict[str, str]:
    """The whole environment of the agent's process (and of the commands it runs)."""
    env = default_environment()
    env.update({name: os.environ[name] for name in (*EXTRA_BASE_ENV, *agent.pass_env) if name in os.environ})
    env.update(agent.env)
    env.update(session_env)
    return env
