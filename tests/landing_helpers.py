"""Helpers shared by the merge-desk tests (verify, merge, queue, pull request): sessions with
real changes in real worktrees, and exact views of a checkout and of a branch's content."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from conftest import run_git

from cockpit.config import Config, parse_config_text
from cockpit.core.engine import Engine
from cockpit.core.model import Session


def review_config(**review: object) -> Config:
    """A Config whose [review] table has `review` (Python values written as TOML)."""
    lines = ["[review]"]
    for key, value in review.items():
        text = ("true" if value else "false") if isinstance(value, bool) else (
            f'"{value}"' if isinstance(value, str) else str(value))
        lines.append(f"{key} = {text}")
    return parse_config_text("\n".join(lines) + "\n")


def write(root: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


AGENT = ("-c", "user.name=Agent", "-c", "user.email=agent@cockpit.invalid")


def commit(root: Path, files: Mapping[str, str], message: str, *, by_agent: bool = False) -> str:
    """Write `files` in `root`, commit everything (as "Agent" when asked), return the new commit."""
    write(root, files)
    run_git(root, "add", "-A")
    run_git(root, *(AGENT if by_agent else ()), "commit", "-q", "-m", message)
    return run_git(root, "rev-parse", "HEAD").strip()


async def session_with(engine: Engine, repo: Path, name: str, *, committed: Mapping[str, str] | None = None,
                       uncommitted: Mapping[str, str] | None = None, task: str = "") -> Session:
    """A session whose worktree has one commit of `committed` and `uncommitted` files on top."""
    session = (await engine.create_sessions(repo, name=name, task=task or f"change {name}"))[0]
    if committed:
        commit(session.path, committed, f"{name}: committed work", by_agent=True)
    write(session.path, uncommitted or {})
    return session


def checkout_state(root: Path) -> tuple[dict[str, str], str, str]:
    """(sha256 of every file outside .git, `git status --porcelain`, HEAD) of a checkout."""
    hashes = {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.relative_to(root).parts
    }
    status = run_git(root, "status", "--porcelain", "--untracked-files=all")
    return hashes, status, run_git(root, "rev-parse", "HEAD").strip()


def content(repo: Path, ref: str) -> dict[str, str]:
    """Every file of `ref`'s tree with its text."""
    names = run_git(repo, "ls-tree", "-r", "--name-only", ref).split()
    return {name: run_git(repo, "show", f"{ref}:{name}") for name in names}


def rev(repo: Path, ref: str) -> str:
    return run_git(repo, "rev-parse", ref).strip()


def fail_ref_updates(repo: Path, ref: str) -> None:
    """Install a reference-transaction hook that aborts any update of `ref` (a failure half way)."""
    hook = repo / ".git" / "hooks" / "reference-transaction"
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text(f'#!/bin/sh\n[ "$1" = prepared ] || exit 0\ngrep -q " {ref}$" && exit 1\nexit 0\n')
    hook.chmod(0o755)
