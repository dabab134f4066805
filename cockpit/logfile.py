"""Where log records go: a private file, never the terminal.

The screen owns the terminal, and libraries we host (the ACP client, litellm) log through
Python's logging; with no handler installed, their warnings reach stderr and scramble the screen.
So every process that shows a screen or serves one routes the root logger to a file in the
cockpit home, created 0600 because records can quote session text.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def open_private(path: Path) -> BinaryIO:
    """`path` opened for appending, created 0600 in a 0700 folder."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")


@contextlib.contextmanager
def logging_to(path: Path) -> Iterator[Path]:
    """Send every logger's records to `path` (the cockpit's own from INFO, others' from WARNING)."""
    open_private(path).close()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    logging.getLogger("cockpit").setLevel(logging.INFO)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        handler.close()
