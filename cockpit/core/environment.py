"""The environment of what runs for a session: an ACP agent's process, the shell tool's commands,
set-up, tear-down and verify scripts.

Built from nothing but a few basics, the agent's `pass_env` (its API keys), its configured `env`
and the session's variables, never the cockpit's whole environment: a command's output goes
into the transcript, the database and the next model request, so `echo $MY_API_KEY` must find
nothing there. Everything launched for a session shares this one function.
"""

from __future__ import annotations

import os

from cockpit.config import AgentConfig

#: ACP's inherited basics (the POSIX part of its `default_environment`), a locale, a temp folder
#: and where tools keep their config, so an agent finds its own login and settings.
BASE_ENV = ("HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR",
            "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")


def agent_environment(agent: AgentConfig, session_env: dict[str, str]) -> dict[str, str]:
    """The whole environment of the agent's process (and of the commands run for its session)."""
    env = {name: os.environ[name] for name in BASE_ENV
           if name in os.environ and not os.environ[name].startswith("()")}  # not an exported bash function
    env.update({name: os.environ[name] for name in agent.pass_env if name in os.environ})
    env.update(agent.env)
    env.update(session_env)
    return env
