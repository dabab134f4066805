"""The user's config folder, for the modules below everything else (`config`, `trust`).

Its own module so that `trust` (which `config` uses to gate a repository's file) can find the
folder without importing `config` back.
"""

from __future__ import annotations

import os
from pathlib import Path


def xdg_config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
