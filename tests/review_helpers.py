"""A fixed repository and session change for the merge view's Pilot and snapshot tests.

The change has one of each kind of file the view must show sensibly: a Python file with two
hunks, an added file, a deleted file, a rename with an edit, a mode change and a binary file.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import make_repo, run_git

from cockpit.core.engine import Engine
from cockpit.core.model import Session

CACHE_BASE = "".join(
    ["import time\n", "\n", "\n", "class Cache:\n", '    """A small cache of computed pages."""\n', "\n",
     "    def __init__(self, size=128):\n", "        self.size = size\n", "        self.items = {}\n", "\n"]
    + [f"    def helper_{n}(self):\n        return {n}\n\n" for n in range(8)]
    + ["    def key(self, page):\n", "        return page.number\n"]
)
UTIL = "".join(f"def util_{n}(x):\n    return x + {n}\n\n" for n in range(6))

BASE_FILES = {
    "README.md": "hello\n",
    "src/cache.py": CACHE_BASE,
    "src/util.py": UTIL,
    "scripts/run.sh": "#!/bin/sh\necho run\n",
    "old_notes.txt": "first note\nsecond note\n",
}
PNG_BASE = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
PNG_NEW = b"\x89PNG\r\n\x1a\n" + bytes(range(64, 200))

#: The session's version of src/cache.py: a new import near the top, the key fixed at the end.
CACHE_NEW = (
    CACHE_BASE.replace("import time\n", "import time\nfrom dataclasses import dataclass\n", 1)
    .replace("        return page.number\n", "        return (page.number, page.size)\n")
)


def review_repo(path: Path) -> Path:
    """The base repository: the text files above and a binary logo, one commit on main."""
    repo = make_repo(path, BASE_FILES)
    (repo / "assets").mkdir()
    (repo / "assets" / "logo.png").write_bytes(PNG_BASE)
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", "logo")
    return repo


def edit_worktree(root: Path) -> None:
    """The session's (uncommitted) work: one change of each kind."""
    (root / "src" / "cache.py").write_text(CACHE_NEW)
    (root / "src" / "util.py").rename(root / "src" / "helpers.py")
    (root / "src" / "helpers.py").write_text(UTIL.replace("return x + 5", "return x + 50"))
    os.chmod(root / "scripts" / "run.sh", 0o755)
    (root / "old_notes.txt").unlink()
    (root / "docs").mkdir()
    (root / "docs" / "usage.md").write_text("# Usage\n\nRun `cache --size 64`.\n")
    (root / "assets" / "logo.png").write_bytes(PNG_NEW)


async def review_session(engine: Engine, repo: Path, name: str = "fix-flaky-test") -> Session:
    session = (await engine.create_sessions(repo, name=name, task="Make the page cache key include the size"))[0]
    edit_worktree(session.path)
    return session


def conflict_on_main(repo: Path) -> None:
    """Someone else changed the same line on main since the session started."""
    text = (repo / "src" / "cache.py").read_text().replace("return page.number\n", "return str(page.number)\n")
    (repo / "src" / "cache.py").write_text(text)
    run_git(repo, "commit", "-q", "-am", "keys are strings")


async def until(pilot: Any, condition: Callable[[], Any], what: str = "the merge desk to get there",
                timeout: float = 20.0) -> None:
    """Let the app run until `condition()` holds; fail naming `what` after `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)
