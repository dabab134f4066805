"""Opening a pull request instead of merging locally: push the session's work, then `gh pr create`.

`gh` (the GitHub CLI) does the talking to the forge with the person's own login, so the cockpit
never handles a token. What is pushed is a commit of the worktree as it is (uncommitted and
untracked work included), pushed straight to the branch name on the remote.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from cockpit.core.git import git_out
from cockpit.core.process import run_process
from cockpit.errors import CockpitError, GitError

GH_TIMEOUT_S = 120.0
_URL = re.compile(r"https?://\S+")


def find_gh() -> str:
    found = shutil.which("gh")
    if not found:
        raise CockpitError(
            "`gh` (the GitHub CLI) is not on PATH; install it from https://cli.github.com or merge locally"
        )
    return found


async def remote_of(root: Path) -> str:
    """The remote to push to: `origin` when there is one, else the only (or first) remote."""
    remotes = (await git_out(root, "remote")).split()
    if not remotes:
        raise GitError(f"{root}: the repository has no remote; add one (`git remote add origin URL`) or merge locally")
    return "origin" if "origin" in remotes else remotes[0]


async def push(root: Path, remote: str, commit: str, branch: str) -> None:
    await git_out(root, "push", "--quiet", remote, f"{commit}:refs/heads/{branch}")


async def create(gh: str, root: Path, *, title: str, body: str, base: str, head: str) -> str:
    """Run `gh pr create` in the repository and return the pull request's URL."""
    argv = [gh, "pr", "create", "--title", title, "--body", body, "--base", base, "--head", head]
    result = await run_process(argv, root, dict(os.environ), GH_TIMEOUT_S)
    urls = _URL.findall(result.output)
    if not result.ok or not urls:
        last = next((line for line in reversed(result.output.splitlines()) if line.strip()), "no output")
        why = "timed out" if result.timed_out else last.strip()
        raise CockpitError(f"gh pr create failed for {head}: {why}")
    return urls[-1]
