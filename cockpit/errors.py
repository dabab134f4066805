"""User-facing errors.

Every error a person can cause by bad input (config, arguments, repository state) is a
`CockpitError`: its message is one line that names what to fix. The CLI prints it and exits 2
instead of showing a traceback.
"""


class CockpitError(Exception):
    """An error whose message is meant for the person, not for a developer."""

    exit_code = 2


class ConfigError(CockpitError):
    """A config file is unreadable, has an unknown key or a value of the wrong type."""


class GitError(CockpitError):
    """A git operation failed for a reason the person can act on."""


class StateError(CockpitError):
    """A command asked for a session state change that is not allowed."""


class RouteError(CockpitError):
    """An instruction line names targets that do not exist."""


class NotFound(CockpitError):
    """A session, repository or other object named by the person does not exist."""
