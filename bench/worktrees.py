"""How fast the worktree manager makes 32 worktrees, against plain `git worktree add` doing the same.

Figures:
- `manager_s`: 32 `WorktreeManager.create` calls awaited together with `asyncio.gather` (what
  `Engine.create_sessions(count=32)` does), in a repository of ~5,000 small files.
- `plain_s`: a loop of 32 `git worktree add -q -b <branch> <path> HEAD` subprocesses.
- `worktree_create_ratio` = manager_s / plain_s (median of the rounds). Target ≤ 1.3.
Rounds alternate which side goes first; worktrees and branches are removed between rounds
(untimed). Scratch files go to /dev/shm when it exists: both sides write the same files, and
on a tmpfs the figure shows the manager's own cost instead of the disk's mood (on a busy VM
disk one round can take 2 s or 90 s). `--dir` measures somewhere else.

Usage: python bench/worktrees.py [--quick] [--json] [--dir SCRATCH]
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import Report, Timer, median, parse_args

from cockpit.core.worktrees import WorktreeManager

COUNT = 32


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def make_repo(root: Path, files: int) -> Path:
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "bench")
    git(repo, "config", "user.email", "bench@cockpit.invalid")
    for i in range(files):
        folder = repo / f"pkg{i // 100:03d}" / f"mod{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file{i:05d}.py").write_text(f"# file {i}\nVALUE = {i}\n\ndef f():\n    return VALUE * 2\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "files")
    git(repo, "gc", "-q")  # one pack, as a real clone would have
    return repo


def plain_round(repo: Path, folder: Path, tag: str) -> float:
    folder.mkdir(parents=True)
    with Timer() as timer:
        for i in range(COUNT):
            git(repo, "worktree", "add", "-q", "-b", f"plain/{tag}-{i}", str(folder / f"w{i}"), "HEAD")
    return timer.seconds


async def manager_round(repo: Path, home: Path, tag: str) -> float:
    manager = WorktreeManager(home)
    info = await manager.inspect_repo(repo)
    with Timer() as timer:
        made = await asyncio.gather(*(manager.create(info, f"{tag}-{i}") for i in range(COUNT)))
    assert len({m.path for m in made}) == COUNT
    return timer.seconds


def clean(repo: Path, folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    git(repo, "worktree", "prune")
    branches = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/plain/", "refs/heads/cockpit/").split()
    if branches:
        git(repo, "branch", "-q", "-D", *branches)


async def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    files = 1_500 if args.quick else 5_000
    rounds = 2 if args.quick else 3
    report = Report("worktrees", args.quick)
    print(f"worktree bench: {COUNT} worktrees, repo of {files:,} files, {rounds} rounds (median), "
          f"{subprocess.run(['git', '--version'], capture_output=True, text=True).stdout.strip()}", flush=True)
    manager_s: list[float] = []
    plain_s: list[float] = []
    scratch = args.dir or ("/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    print(f"  scratch: {scratch or tempfile.gettempdir()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-wt-", dir=scratch) as tmp:
        root = Path(tmp)
        repo = make_repo(root, files)
        for r in range(rounds):
            order = ("plain", "manager") if r % 2 == 0 else ("manager", "plain")
            for side in order:
                if side == "plain":
                    plain_s.append(plain_round(repo, root / "plain", f"r{r}"))
                    clean(repo, root / "plain")
                else:
                    manager_s.append(await manager_round(repo, root / "home", f"r{r}"))
                    clean(repo, root / "home")
            print(f"  round {r + 1}: manager {manager_s[-1]:.2f} s, plain {plain_s[-1]:.2f} s", flush=True)
    report.add("files", files)
    report.add("scratch", scratch or tempfile.gettempdir())
    report.add("plain_s", median(plain_s), f"plain `git worktree add` loop, {COUNT} worktrees", "s")
    report.add("manager_s", median(manager_s), f"WorktreeManager.create × {COUNT} via gather", "s")
    report.add("manager_per_worktree_ms", 1000 * median(manager_s) / COUNT, "manager, per worktree", "ms")
    report.add("worktree_create_ratio", median(manager_s) / median(plain_s))
    report.target("worktree_create_ratio", lambda v: v <= 1.3, "≤ 1.3")
    report.finish(args.json)


if __name__ == "__main__":
    if sys.platform == "win32":  # pragma: no cover
        raise SystemExit("the worktree bench needs a POSIX system")
    asyncio.run(main())
