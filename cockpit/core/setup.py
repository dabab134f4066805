"""Making a fresh worktree runnable: local files, a set-up script, per-session environment.

A new worktree has only tracked files; `.env`, local settings and similar files are copied or
symlinked from the main checkout (listed in config or in the repository's `.worktreeinclude`).
Each session also gets its own environment, including a private block of ports so that parallel
dev servers do not collide.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cockpit.config import WorktreeConfig, outside_reason
from cockpit.core.process import ShellResult
from cockpit.core.sandbox import Sandbox, run_confined

INCLUDE_FILE = ".worktreeinclude"
_OUTPUT_CAP = 64_000


def session_env(
    *, session_id: str, name: str, worktree: Path, branch: str, port: int, port_count: int
) -> dict[str, str]:
    """The variables every process started for a session sees."""
    return {
        "COCKPIT_SESSION": session_id,
        "COCKPIT_SESSION_NAME": name,
        "COCKPIT_WORKTREE": str(worktree),
        "COCKPIT_BRANCH": branch,
        "COCKPIT_PORT": str(port),
        "COCKPIT_PORT_COUNT": str(port_count),
    }


def port_block(number: int, cfg: WorktreeConfig) -> int:
    """First port of session `number`'s block; blocks never overlap below 65535."""
    slots = max(1, (65535 - cfg.port_base) // cfg.port_block)
    return cfg.port_base + (number % slots) * cfg.port_block


def include_patterns(repo_root: Path, cfg: WorktreeConfig) -> tuple[list[str], list[str]]:
    """(patterns to copy, patterns to symlink) from config plus `.worktreeinclude`; lines that
    would reach outside the repository are left out (`include_problems` names them)."""
    copy = list(cfg.copy)
    copy += [line for line, _ in _listed(repo_root) if not outside_reason(line)]
    return copy, list(cfg.symlink)


def include_problems(repo_root: Path) -> list[str]:
    """One line per `.worktreeinclude` line that points outside the repository (file:line)."""
    return [f"{repo_root / INCLUDE_FILE}:{number}: {line!r} {outside_reason(line)}; only paths inside "
            f"the repository are brought" for line, number in _listed(repo_root) if outside_reason(line)]


def _listed(repo_root: Path) -> list[tuple[str, int]]:
    listed = repo_root / INCLUDE_FILE
    if not listed.is_file():
        return []
    lines = listed.read_text(encoding="utf-8", errors="replace").splitlines()
    return [(line.strip(), n) for n, line in enumerate(lines, 1) if line.strip() and not line.strip().startswith("#")]


@dataclass(frozen=True)
class Brought:
    files: list[str]  # copied or symlinked, relative to the repository root
    refused: list[str]  # one line each: what was not brought, and why


def bring_local_files(repo_root: Path, worktree: Path, cfg: WorktreeConfig) -> Brought:
    """Copy/symlink the configured files from the main checkout; say what was brought.

    A symlink to a folder is refused when the main checkout ignores that folder but git would
    not ignore the link (a `data/` pattern matches folders only, and git sees a link as a
    file): the link would show up as a new file that an agent might commit. Only what lies inside
    the repository is brought (a committed `.worktreeinclude` is written by someone else): a
    pattern or a symlink leading out is refused with one line, never followed.
    """
    copy, link = include_patterns(repo_root, cfg)
    brought: list[str] = []
    refused: list[str] = include_problems(repo_root)
    for patterns, mode in ((copy, "copy"), (link, "link")):
        for pattern in patterns:
            try:
                sources = sorted(repo_root.glob(pattern))
            except (ValueError, NotImplementedError) as exc:
                refused.append(f"worktrees.{'symlink' if mode == 'link' else 'copy'}: {pattern!r}: {exc}")
                continue
            for source in sources:
                rel = source.relative_to(repo_root)
                if rel.parts and rel.parts[0] == ".git":
                    continue
                try:
                    problem = _bring(repo_root, worktree, rel, mode)
                except OSError as exc:
                    problem = f"{rel}: not brought: {exc.strerror or exc}"
                if problem:
                    refused.append(problem)
                elif problem is not None:
                    brought.append(str(rel))
    return Brought(brought, refused)


def _bring(repo_root: Path, worktree: Path, rel: Path, mode: str) -> str | None:
    """Copy or link one file or folder; a line saying why not, "" when done, None when skipped."""
    source, target = repo_root / rel, worktree / rel
    if not source.resolve().is_relative_to(repo_root.resolve()):
        return f"{rel}: not brought, it leads outside the repository (to {source.resolve()})"
    if target.exists() or target.is_symlink():
        return None  # tracked files and earlier matches win
    if not target.parent.resolve().is_relative_to(worktree.resolve()):
        return f"{rel}: not brought, its folder in the worktree leads outside it"
    target.parent.mkdir(parents=True, exist_ok=True)
    if mode == "link":
        target.symlink_to(source)
        if source.is_dir() and _ignored(repo_root, rel) and not _ignored(worktree, rel):
            target.unlink()
            return (f"{rel}: not symlinked, git would not ignore the link (ignore it as "
                    f"`/{rel}` without a trailing slash, or copy it instead)")
    elif source.is_dir():
        shutil.copytree(source, target, symlinks=True)
    else:
        shutil.copy2(source, target)
    return ""


def _ignored(checkout: Path, rel: Path) -> bool:
    done = subprocess.run(
        ["git", "check-ignore", "-q", "--", str(rel)], cwd=checkout,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return done.returncode == 0


async def run_script(
    command: str, cwd: Path, env: dict[str, str], timeout: float, *, sandbox: Sandbox | None
) -> ShellResult:
    """Run a set-up, tear-down or verify command with exactly the environment `env` (see
    `cockpit.core.environment`); never raises for the script's own failure.

    It runs in `sandbox` (None: unconfined) and in its own process group, which ends with it:
    background jobs a script starts do not outlive it. A timed-out script still shows what it
    printed.
    """
    return await run_confined(["bash", "-c", command], cwd, env, timeout,
                              sandbox=sandbox, capture_chars=_OUTPUT_CAP)
