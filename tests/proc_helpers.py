"""Finding a test's own processes from outside a sandbox, whose pid namespace hides their pids."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

_made = itertools.count()


def unique_sleep(seconds: int = 60) -> str:
    """A `sleep` duration (about `seconds`) no other process on the machine uses, to find that sleep by."""
    return f"{seconds}.{os.getpid()}{next(_made):04d}"


def pids_of(argv: list[str]) -> list[int]:
    """Pids (in our namespace) of the processes whose command line is exactly `argv`."""
    wanted = "\0".join(argv) + "\0"
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_text() == wanted:
                found.append(int(entry.name))
        except OSError:
            continue
    return found
