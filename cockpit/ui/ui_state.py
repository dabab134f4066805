"""Small UI preferences the cockpit remembers between runs: `$COCKPIT_HOME/ui-state.json`.

Kept apart from the person's config file, which cockpit never writes. A missing or damaged
file reads as empty (it only holds preferences); writes replace the file atomically and keep
keys written by others.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from cockpit.config import cockpit_home

FILENAME = "ui-state.json"


def ui_state_path(home: Path | None = None) -> Path:
    return (home or cockpit_home()) / FILENAME


def load_ui_state(home: Path | None = None) -> dict[str, Any]:
    try:
        data = json.loads(ui_state_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_ui_state(updates: dict[str, Any], home: Path | None = None) -> None:
    """Merge `updates` into the stored state. Failing to save a preference is not an error."""
    path = ui_state_path(home)
    state = {**load_ui_state(home), **updates}
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".ui-state-", suffix=".json", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
