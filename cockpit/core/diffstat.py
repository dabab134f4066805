"""How much a session has changed: files, lines added and removed against its base commit.

Counts the branch's commits, uncommitted edits and untracked (not ignored) files together,
which is what the person will review and merge. Binary files count as changed files with no
lines.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from pathlib import Path

from cockpit.core.git import git, git_out

_UNTRACKED_READ_CAP = 2_000_000  # bytes read per untracked file to count its lines


@dataclass(frozen=True)
class DiffStat:
    files: int = 0
    added: int = 0
    removed: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


async def diffstat(worktree: Path, base_commit: str) -> DiffStat:
    tracked = await git(worktree, "diff", "--numstat", "--no-renames", base_commit, "--", check=False)
    files, added, removed = _numstat_totals(tracked.out)
    others = await git(worktree, "ls-files", "--others", "--exclude-standard", "-z", check=False)
    untracked = [name for name in others.out.split("\0") if name]
    new_lines = await asyncio.to_thread(_count_lines, worktree, untracked)
    return DiffStat(files + len(untracked), added + new_lines, removed)


async def changed_paths(worktree: Path, base_commit: str) -> frozenset[str]:
    """The paths a session changed against its base, counted as `diffstat` counts them."""
    tracked = await git(worktree, "diff", "--name-only", "-z", "--no-renames", base_commit, "--", check=False)
    others = await git(worktree, "ls-files", "--others", "--exclude-standard", "-z", check=False)
    return frozenset(name for name in (tracked.out + "\0" + others.out).split("\0") if name)


async def tree_diffstat(cwd: Path, old: str, new: str) -> DiffStat:
    """Files and lines changed between two tree-ish objects (e.g. two checkpoints)."""
    return DiffStat(*_numstat_totals(await git_out(cwd, "diff", "--numstat", "--no-renames", old, new, "--")))


def _numstat_totals(numstat: str) -> tuple[int, int, int]:
    files = added = removed = 0
    for line in numstat.splitlines():
        plus, minus, _ = line.split("\t", 2)
        files += 1
        added += int(plus) if plus.isdigit() else 0
        removed += int(minus) if minus.isdigit() else 0
    return files, added, removed


def _count_lines(root: Path, names: list[str]) -> int:
    total = 0
    for name in names:
        try:
            with open(root / name, "rb") as handle:
                data = handle.read(_UNTRACKED_READ_CAP)
        except OSError:
            continue
        if b"\0" not in data:  # text
            total += data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    return total
