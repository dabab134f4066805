"""Finding a test's own processes from outside a sandbox, whose pid namespace hides their pids."""

from __future__ import annotations

import os
import time
from pathlib import Path


def unique_sleep() -> str:
    """A `sleep` duration no other process on the machine uses, to find that sleep by."""
    return f"60.{os.getpid()}{time.monotonic_ns() % 100_000}"


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
