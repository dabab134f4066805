"""Text that leaves the machine (a phone notification) without the secrets it may quote.

An approval's title is the agent's command, and a command can carry a key
(`curl -H "Authorization: Bearer sk-…"`, `API_KEY=… ./deploy`); an error can quote one. Two
nets: the values of this process's secret-looking environment variables (and of the variables
the config names as keys), wherever they appear, and the shapes of common keys and
`name=value` pairs whose name says secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

from cockpit.config import Config

MASK = "•••"
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE|SESSION", re.I)
_MIN_SECRET = 6  # shorter values ("1", "true") would mask ordinary words
_SHAPES = re.compile(
    r"(?P<token>\bsk-[A-Za-z0-9_-]{12,}|\bgh[opsur]_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}"
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}|\bAKIA[0-9A-Z]{16}\b|\bAIza[0-9A-Za-z_-]{30,})"
    r"|(?P<bearer>\b(?:Bearer|Basic|token)\s+)[A-Za-z0-9._~+/=-]{8,}"
    r"|(?P<pair>[A-Za-z0-9_.-]*(?:key|token|secret|passw(?:or)?d|pwd|credential|auth)[A-Za-z0-9_.-]*"
    r"['\"]?\s*[=:]\s*['\"]?)(?!(?:Bearer|Basic|token)\s)[^\s'\"&;]+",
    re.I,
)


def secret_values(config: Config, environ: Mapping[str, str] | None = None) -> list[str]:
    """The values to mask: secret-looking variables of `environ` and the ones the config names."""
    environ = os.environ if environ is None else environ
    named = {m.api_key_env for m in config.models.values() if m.api_key_env}
    named.update(name for agent in config.agents.values() for name in agent.pass_env)
    values = {value for name, value in environ.items()
              if (name in named or _SECRET_NAME.search(name)) and len(value) >= _MIN_SECRET}
    return sorted(values, key=len, reverse=True)  # a longer value first: it may contain a shorter one


def redact(text: str, values: Iterable[str]) -> str:
    for value in values:
        text = text.replace(value, MASK)
    return _SHAPES.sub(_masked, text)


def _masked(match: re.Match[str]) -> str:
    keep = match.group("bearer") or match.group("pair") or ""
    return keep + MASK
