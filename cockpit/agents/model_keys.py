"""Which environment variable a model's API key comes from, to say so before a call fails.

Without a key litellm answers with a long message that a pane cut mid-word ("…ANTHROP"). This
names the variable to set, where a model and its key variable are configured, and that
`cockpit demo` needs none. A small table of the usual providers (no litellm import, so the CLI
can warn at `cockpit new` in milliseconds); models it does not know and local servers reached
through `api_base` are not checked, litellm still reports those.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from cockpit.config import Config, ModelConfig

#: litellm's provider prefix → the variables it reads the key from.
PROVIDER_KEYS: dict[str, tuple[str, ...]] = {
    "anthropic": ("ANTHROPIC_API_KEY",),
    "openai": ("OPENAI_API_KEY",),
    "gemini": ("GEMINI_API_KEY",),
    "mistral": ("MISTRAL_API_KEY",),
    "groq": ("GROQ_API_KEY",),
    "deepseek": ("DEEPSEEK_API_KEY",),
    "openrouter": ("OPENROUTER_API_KEY",),
    "xai": ("XAI_API_KEY",),
}
#: Model names litellm routes without a prefix.
_BARE_PREFIXES = {"claude": "anthropic", "gpt-": "openai", "o1": "openai", "o3": "openai", "o4": "openai"}


def model_name(config: Config, requested: str) -> str:
    """The `[models]` key a session runs on: the one asked for, else `default` (as `Config.model`)."""
    return requested if requested in config.models else "default"


def key_variables(model: ModelConfig) -> tuple[str, ...]:
    """The variables the key may be in; () when none is needed or the provider is unknown."""
    if model.api_key_env:
        return (model.api_key_env,)
    if model.api_base:
        return ()
    provider, slash, _ = model.model.partition("/")
    if not slash:
        provider = next((p for bare, p in _BARE_PREFIXES.items() if model.model.startswith(bare)), "")
    return PROVIDER_KEYS.get(provider, ())


def missing_key(model: ModelConfig, name: str, environ: Mapping[str, str] = os.environ) -> str:
    """"" when the key is set (or not needed), else one line: what to set and where.

    `name` is the model's key under `[models]`, where another model or `api_key_env` is chosen.
    """
    variables = key_variables(model)
    if not variables or any(environ.get(v) for v in variables):
        return ""
    return (f"no API key for {model.model}: set {' or '.join(variables)} in the environment the cockpit "
            f"runs in, or choose another model (model, api_key_env) under [models.{name}] in config.toml; "
            "`cockpit demo` needs no key")
