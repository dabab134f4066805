"""Checkpoints: the worktree as it was at the end of each agent turn, kept in git.

Each checkpoint is a commit of a snapshot tree (tracked and untracked files, not ignored ones)
on the hidden ref `refs/cockpit/checkpoints/<session-id>`: outside `refs/heads`, so it is no
branch, and in the shared repository, so it survives restarts. Its first parent is the previous
checkpoint (the session's base commit for the first), and the branch HEAD of that moment is a
second parent, so a rollback that moves the branch back never leaves the commits it dropped
unreachable. Number, turn, HEAD and stats are trailers of the message: listing is one `git log`.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cockpit.core.diffstat import tree_diffstat
from cockpit.core.git import git, git_out

REF_PREFIX = "refs/cockpit/checkpoints/"
#: Who checkpoint commits are by: fixed, so a repository without user.name still works.
_IDENTITY = {
    "GIT_AUTHOR_NAME": "cockpit", "GIT_AUTHOR_EMAIL": "cockpit@localhost",
    "GIT_COMMITTER_NAME": "cockpit", "GIT_COMMITTER_EMAIL": "cockpit@localhost",
}
_FIELDS, _RECORDS = "\x1f", "\x1e"


@dataclass(frozen=True)
class Checkpoint:
    n: int  # 1, 2, …; 0 stands for the session's base commit
    commit: str
    tree: str
    head: str  # the session branch's HEAD when it was taken
    turn: int  # the agent turn it ended; 0 when taken for another reason
    reason: str  # "turn 3", "before rollback to #2"
    files: int = 0  # changed since the previous checkpoint
    added: int = 0
    removed: int = 0
    created_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ref_of(session_id: str) -> str:
    return REF_PREFIX + session_id


async def listing(cwd: Path, session_id: str, base_commit: str, *, last_only: bool = False) -> list[Checkpoint]:
    """A session's checkpoints, oldest first (only the newest with `last_only`)."""
    out = await git_out(
        cwd, "log", "--ignore-missing", "--first-parent", *(["-1"] if last_only else []),
        f"--format=%H{_FIELDS}%T{_FIELDS}%ct{_FIELDS}%B{_RECORDS}", ref_of(session_id), f"^{base_commit}", "--",
    )
    points = [_parse(record) for record in out.split(_RECORDS) if record.strip()]
    return points[::-1]


def _parse(record: str) -> Checkpoint:
    commit, tree, when, message = record.strip("\n").split(_FIELDS, 3)
    trailers = dict(
        line.split(": ", 1) for line in message.splitlines() if line.startswith("Cockpit-") and ": " in line
    )
    files, added, removed = (int(x) for x in trailers.get("Cockpit-Stat", "0 0 0").split())
    return Checkpoint(
        n=int(trailers["Cockpit-Checkpoint"]), commit=commit, tree=tree, head=trailers["Cockpit-Head"],
        turn=int(trailers.get("Cockpit-Turn", "0")), reason=message.splitlines()[0].partition(": ")[2],
        files=files, added=added, removed=removed, created_at=float(when),
    )


async def base_point(cwd: Path, base_commit: str) -> Checkpoint:
    """The session's starting point, as checkpoint #0 (what rolling back everything returns to)."""
    tree = await git_out(cwd, "rev-parse", f"{base_commit}^{{tree}}")
    return Checkpoint(0, base_commit, tree, base_commit, 0, "the base commit")


async def take(cwd: Path, session_id: str, base_commit: str, tree: str, *, turn: int, reason: str) -> Checkpoint | None:
    """Record `tree` (a snapshot of the worktree at `cwd`) as the next checkpoint.

    Nothing is recorded (None) when neither the files nor the branch HEAD changed since the
    previous checkpoint. The ref moves only if nobody else moved it meanwhile.
    """
    last = (await listing(cwd, session_id, base_commit, last_only=True) or [await base_point(cwd, base_commit)])[0]
    head = await git_out(cwd, "rev-parse", "HEAD")
    if (tree, head) == (last.tree, last.head):
        return None
    n = last.n + 1
    stat = await tree_diffstat(cwd, last.tree, tree)
    message = (
        f"cockpit checkpoint {n}: {reason}\n\n"
        f"Cockpit-Checkpoint: {n}\nCockpit-Turn: {turn}\nCockpit-Head: {head}\n"
        f"Cockpit-Stat: {stat.files} {stat.added} {stat.removed}\n"
    )
    parents = ["-p", last.commit] + (["-p", head] if head != last.commit else [])
    now = int(time.time())
    stamp = f"{now} +0000"
    made = await git(cwd, "commit-tree", "--no-gpg-sign", tree, *parents, "-F", "-", stdin=message.encode(),
                     env={**_IDENTITY, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp})
    commit = made.out.strip()
    await git(cwd, "update-ref", "-m", "cockpit checkpoint", ref_of(session_id), commit,
              last.commit if last.n else "")
    return Checkpoint(n, commit, tree, head, turn, reason, stat.files, stat.added, stat.removed, float(now))


async def restore(cwd: Path, current_tree: str, target: Checkpoint) -> list[str]:
    """Make the worktree at `cwd` exactly `target`'s files and its branch `target`'s HEAD.

    Only the files that differ from `current_tree` (a snapshot taken just before) are
    written or removed, ignored files are left alone, and the branch and index are reset to
    the recorded HEAD (files added since that HEAD come back as untracked, as they were).
    Returns the paths that changed.
    """
    out = await git_out(cwd, "diff-tree", "-r", "-z", "--no-renames", "--name-status", current_tree, target.tree)
    fields = out.split("\0")
    changes = list(zip(fields[0::2], fields[1::2]))
    await asyncio.to_thread(remove_files, cwd, [path for status, path in changes if status == "D"])
    written = [path for status, path in changes if status != "D"]
    if written:
        with tempfile.TemporaryDirectory(prefix="cockpit-index-") as tmp:
            env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
            await git(cwd, "read-tree", target.tree, env=env)
            await git(cwd, "checkout-index", "-f", "-q", "-z", "--stdin", env=env,
                      stdin="".join(f"{path}\0" for path in written).encode())
    await git(cwd, "reset", "-q", target.head, "--")
    return [path for _, path in changes]


def remove_files(root: Path, paths: list[str]) -> None:
    """Delete files of the worktree and the folders they leave empty (never `root` itself)."""
    root = Path(root)
    for path in paths:
        target = root / path
        if target.is_symlink() or target.exists():
            target.unlink()
        parent = target.parent
        while parent != root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent


async def forget(cwd: Path, session_id: str) -> None:
    """Drop a removed session's checkpoints (their objects go with git's next gc)."""
    await git(cwd, "update-ref", "-d", ref_of(session_id), check=False)
