"""Running `git` without blocking the event loop, safely shared by many sessions.

Everything that writes to the shared repository (worktree add/remove, branch and ref updates,
merges) takes the repository's lock first, so concurrent sessions queue instead of colliding;
another process (a second cockpit, the user's own git) can still hold a `*.lock` file, so those
failures are retried with backoff before they reach the caller.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cockpit.errors import GitError

_LOCK_MARKERS = (".lock': File exists", "could not lock", "Unable to create", "index.lock")
_LOCK_RETRIES = 12


@dataclass(frozen=True)
class GitResult:
    code: int
    out: str
    err: str


class GitFailed(GitError):
    """A git command exited non-zero; keeps the command and stderr for callers that translate."""

    def __init__(self, args: tuple[str, ...], result: GitResult):
        self.args_ = args
        self.result = result
        super().__init__(f"git {' '.join(args)}: {_reason(result)}")


def _reason(result: GitResult) -> str:
    """The line of git's output that says what went wrong (git adds advice after it)."""
    lines = [line.strip() for line in (result.err or result.out).splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:")):
            return line
    return lines[-1] if lines else f"exit {result.code}"


def _git_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    # Never let git stop to ask something on a terminal the cockpit owns.
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_EDITOR": "true", "LC_ALL": "C"})
    if extra:
        env.update(extra)
    return env


async def git(
    cwd: Path | str,
    *args: str,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
) -> GitResult:
    """Run one git command; retry while another process holds a lock file."""
    for attempt in range(_LOCK_RETRIES):
        proc = await asyncio.create_subprocess_exec(
            "git", *args, cwd=str(cwd), env=_git_env(env),
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(stdin)
        result = GitResult(proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))
        if result.code == 0 or not any(m in result.err for m in _LOCK_MARKERS):
            break
        if attempt < _LOCK_RETRIES - 1:
            await asyncio.sleep(min(0.02 * 2**attempt, 1.0) * (0.5 + random.random()))
    if check and result.code != 0:
        raise GitFailed(args, result)
    return result


async def git_out(cwd: Path | str, *args: str, env: Mapping[str, str] | None = None) -> str:
    """Run git and return stdout stripped; raise GitFailed on failure."""
    return (await git(cwd, *args, env=env)).out.strip()


class RepoLocks:
    """One asyncio lock per repository (keyed by its common git dir)."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def for_repo(self, common_dir: Path | str) -> asyncio.Lock:
        key = os.path.realpath(common_dir)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock
