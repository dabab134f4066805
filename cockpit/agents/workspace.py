"""Confinement of the built-in agent's file tools to its worktree.

The model chooses paths, so every path it names is untrusted. We resolve the real path (every
symlink along it, `..` after symlinks, as the kernel would) and compare it with the real path of
the worktree, instead of inspecting the string, because only the resolved path says where a read
or write would really land. `.git` is off limits as well: it is the repository's metadata (in a
worktree a `.git` file pointing at the shared repository), and an agent that edits it can rewrite
other sessions' branches or install hooks that run outside any approval.
"""

from __future__ import annotations

import os
from pathlib import Path

GIT_DIR = ".git"


class PathRefused(Exception):
    """A path the agent may not touch; the message is one line written for the model."""


class Workspace:
    """The worktree an agent's file tools are confined to."""

    def __init__(self, root: Path | str):
        self.root = Path(os.path.realpath(root))

    def resolve(self, path: str, *, for_write: bool = False) -> Path:
        """The real path of `path` (relative to the root), or `PathRefused` when it leaves the root.

        A path that does not exist yet resolves through its deepest existing ancestor, so writing
        a new file in a new folder works while a dangling symlink aimed outside is still refused.
        With `for_write`, the root and existing folders are refused too, since a file cannot be
        written there.
        """
        if not path or "\0" in path:
            raise PathRefused(f"refused: {path!r} is not a usable path; name one relative to the worktree, "
                              "e.g. 'src/app.py'")
        if os.path.isabs(path):
            raise PathRefused(f"refused: {path!r} is absolute; {self._absolute_hint(path)}")
        if _names_git(Path(path).parts):
            raise PathRefused(f"refused: {path!r} is inside {GIT_DIR}; git metadata is off limits to file tools")
        real = Path(os.path.realpath(self.root / path))
        if not real.is_relative_to(self.root):
            raise PathRefused(f"refused: {path!r} resolves to {real}, outside the worktree{self._symlink_note(path)}")
        if _names_git(real.relative_to(self.root).parts):
            raise PathRefused(f"refused: {path!r} resolves into {GIT_DIR}; git metadata is off limits to file tools")
        if for_write and real.is_dir():
            raise PathRefused(f"refused: {path!r} is a folder; name a file to write")
        return real

    def relative(self, real: Path) -> str:
        """How a resolved path is shown to the model: relative to the root, '.' for the root."""
        return real.relative_to(self.root).as_posix() or "."

    def _absolute_hint(self, path: str) -> str:
        real = Path(os.path.realpath(path))
        if real.is_relative_to(self.root) and real != self.root:
            return f"use the relative path {self.relative(real)!r}"
        return "use a path relative to the worktree root"

    def _symlink_note(self, path: str) -> str:
        """' through a symlink' when a symlink, not '..', is what leads out."""
        lexical = Path(os.path.normpath(self.root / path))
        return "" if not lexical.is_relative_to(self.root) else " through a symlink"


def _names_git(parts: tuple[str, ...]) -> bool:
    return any(part.casefold() == GIT_DIR for part in parts)
