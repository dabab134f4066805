"""Making a fresh worktree runnable: local files, a set-up script, per-session environment.

A new worktree has only tracked files; `.env`, local settings and similar files are copied or
symlinked from the main checkout (listed in config or in the repository's `.worktreeinclude`).
Each session also gets its own environment, including a private block of ports so that parallel
dev servers do not collide.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from cockpit.config import WorktreeConfig

INCLUDE_FILE = ".worktreeinclude"
_OUTPUT_CAP = 64_000


@dataclass(frozen=True)
class ScriptResult:
    ok: bool
    exit_code: int
    output: str
    timed_out: bool = False


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
    """(patterns to copy, patterns to symlink) from config plus `.worktreeinclude`."""
    copy = list(cfg.copy)
    listed = repo_root / INCLUDE_FILE
    if listed.is_file():
        for line in listed.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                copy.append(line)
    return copy, list(cfg.symlink)


def bring_local_files(repo_root: Path, worktree: Path, cfg: WorktreeConfig) -> list[str]:
    """Copy/symlink the configured files from the main checkout; return what was brought."""
    copy, link = include_patterns(repo_root, cfg)
    brought: list[str] = []
    for patterns, mode in ((copy, "copy"), (link, "link")):
        for pattern in patterns:
            for source in sorted(repo_root.glob(pattern)):
                rel = source.relative_to(repo_root)
                if rel.parts and rel.parts[0] == ".git":
                    continue
                target = worktree / rel
                if target.exists() or target.is_symlink():
                    continue  # tracked files and earlier matches win
                target.parent.mkdir(parents=True, exist_ok=True)
                if mode == "link":
                    target.symlink_to(source)
                elif source.is_dir():
                    shutil.copytree(source, target, symlinks=True)
                else:
                    shutil.copy2(source, target)
                brought.append(str(rel))
    return brought


async def run_script(command: str, cwd: Path, env: dict[str, str], timeout: float) -> ScriptResult:
    """Run a set-up or tear-down command; never raises for the script's own failure."""
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", command, cwd=str(cwd), env={**os.environ, **env},
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        _kill_group(proc.pid)
        out, _ = await proc.communicate()
        return ScriptResult(False, -1, _tail(out), timed_out=True)
    code = proc.returncode or 0
    return ScriptResult(code == 0, code, _tail(out))


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _tail(raw: bytes) -> str:
    text = raw.decode(errors="replace")
    return text if len(text) <= _OUTPUT_CAP else "[…]\n" + text[-_OUTPUT_CAP:]
