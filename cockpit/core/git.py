"""Running `git` without blocking the event loop, safely shared by many sessions.

Everything that writes to the shared repository (worktree add/remove, branch and ref updates,
merges) takes the repository's lock first, so concurrent sessions queue instead of colliding;
another process (a second cockpit, the user's own git) can still hold a `*.lock` file, so those
failures are retried with backoff before they reach the caller.

Each git process is started from a thread of its own pool, not with asyncio's subprocess
support: starting a process from the event loop holds the loop for a few milliseconds (fork,
exec, a waiter thread), so a hundred sessions ending their turns together (a checkpoint and a
diff stat each) held it for over half a second, and every command waited (measured: 200 spawns
at once, loop lag 569 ms from the loop, 38 ms from threads).
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cockpit.errors import GitError

_LOCK_MARKERS = (".lock': File exists", "could not lock", "Unable to create", "index.lock")
_LOCK_RETRIES = 12
#: Git processes running at once; more wait for a thread (a slow one cannot starve other work
#: that uses asyncio's default executor).
_SPAWNERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="cockpit-git")


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
    loop = asyncio.get_running_loop()
    for attempt in range(_LOCK_RETRIES):
        done = await loop.run_in_executor(_SPAWNERS, _run, ("git", *args), str(cwd), _git_env(env), stdin)
        result = GitResult(done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"))
        if result.code == 0 or not any(m in result.err for m in _LOCK_MARKERS):
            break
        if attempt < _LOCK_RETRIES - 1:
            await asyncio.sleep(min(0.02 * 2**attempt, 1.0) * (0.5 + random.random()))
    if check and result.code != 0:
        raise GitFailed(args, result)
    return result


def _run(argv: tuple[str, ...], cwd: str, env: dict[str, str], stdin: bytes | None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, cwd=cwd, env=env, input=stdin, capture_output=True,
                          stdin=None if stdin is not None else subprocess.DEVNULL)


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
