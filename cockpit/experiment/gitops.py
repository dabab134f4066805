"""The git steps of an iteration, in one agent's worktree: what changed, commit it, go back.

Only the agent's own branch and worktree are touched (a commit moves its branch; a reset moves
it back), so agents never wait on each other and never touch each other's files. Files the
cockpit brought into the worktree (`.worktreeinclude`, `[worktrees] copy/symlink`) are not the
agent's work: they never count as changes and a clean leaves them alone.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from pathlib import Path

from cockpit.core.git import git, git_out

_SUMMARY_SHA = re.compile(r" ([0-9a-f]{40,64})\]")
#: Used only when the repository has no identity of its own (git refuses to commit without one).
FALLBACK_IDENTITY = ("-c", "user.name=cockpit experiment", "-c", "user.email=experiment@cockpit.invalid")


async def commit_identity(repo: Path) -> tuple[str, ...]:
    """`-c` options for commits: none when the person's identity is configured."""
    found = await git(repo, "config", "user.email", check=False)
    return () if found.out.strip() else FALLBACK_IDENTITY


async def changed_paths(worktree: Path, protected: Sequence[str] = ()) -> list[str]:
    """Files changed, added or deleted since HEAD (untracked included, ignored not)."""
    out = (await git(worktree, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames")).out
    paths = [entry[3:] for entry in out.split("\0") if len(entry) > 3]
    return [p for p in paths if not any(fnmatch.fnmatchcase(p, pattern) for pattern in protected)]


async def commit(worktree: Path, paths: Sequence[str], message: str, identity: Sequence[str] = ()) -> str:
    """Commit exactly `paths` (deletions included) on the worktree's branch; return the sha.

    Hooks are skipped: the commit is the cockpit's bookkeeping, and the run that follows is
    the check that matters.
    """
    await git(worktree, "add", "-A", "--", *paths)
    # Unabbreviated, the summary line names the new commit: one process less than a rev-parse.
    made = await git(worktree, *identity, "-c", "core.abbrev=no", "commit", "--no-verify", "--allow-empty",
                     "-m", message)
    found = _SUMMARY_SHA.search(made.out.partition("\n")[0])
    return found.group(1) if found else await head(worktree)


async def head(worktree: Path) -> str:
    return await git_out(worktree, "rev-parse", "HEAD")


async def restore(worktree: Path, commit: str, protected: Sequence[str] = ()) -> None:
    """Make the worktree exactly `commit`: branch moved there, files reset, run leftovers cleaned.

    Untracked files that git does not ignore are removed (a run's outputs, an agent's scratch
    files); ignored ones (caches, data) stay.
    """
    await git(worktree, "reset", "-q", "--hard", commit)
    excludes = [arg for pattern in protected for arg in ("-e", pattern)]
    await git(worktree, "clean", "-q", "-f", "-d", *excludes)
