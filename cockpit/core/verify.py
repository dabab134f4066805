"""Verification: the repository's `[review] verify` command run in a worktree, tied to a tree.

A result names the snapshot tree it ran on, so "green" means green for that exact change: once
the agent edits a file the result still shows, but it no longer gates a merge. The command runs
in its own process group under a timeout (`cockpit.core.setup.run_script`), so a hung test
suite and anything it started in the background end with it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cockpit.config import ReviewConfig
from cockpit.core.sandbox import Sandbox
from cockpit.core.setup import run_script
from cockpit.errors import CockpitError

RUNNING, PASSED, FAILED, TIMED_OUT = "running", "passed", "failed", "timed-out"
#: Characters of output kept with a result: enough for a failing test's report.
OUTPUT_TAIL_CHARS = 4000


@dataclass(frozen=True)
class VerifyResult:
    state: str  # running | passed | failed | timed-out
    tree: str  # the snapshot tree (or commit tree) the command ran on
    command: str = ""
    exit_code: int | None = None
    output_tail: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.state == PASSED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def passed_on(result: dict[str, Any], tree: str) -> bool:
    """Whether a stored result (a session's `verify`) is green for exactly this tree."""
    return result.get("state") == PASSED and result.get("tree") == tree


def verify_command(review: ReviewConfig) -> str:
    """The configured command, or a one-line error saying where to configure it."""
    command = review.verify.strip()
    if not command:
        raise CockpitError(
            'no verify command configured: set [review] verify = "pytest -q" in the repository\'s .cockpit.toml'
        )
    return command


async def run_verify(
    command: str, cwd: Path, env: dict[str, str], timeout: float, tree: str, *, sandbox: Sandbox | None
) -> VerifyResult:
    """Run `command` in `cwd` (in `sandbox`); never raises for the command's own failure."""
    started = time.monotonic()
    result = await run_script(command, cwd, env, timeout, sandbox=sandbox)
    state = TIMED_OUT if result.timed_out else (PASSED if result.ok else FAILED)
    return VerifyResult(
        state=state, tree=tree, command=command, exit_code=result.exit_code,
        output_tail=result.output[-OUTPUT_TAIL_CHARS:], seconds=round(time.monotonic() - started, 3),
    )
