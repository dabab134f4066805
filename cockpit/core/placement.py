"""Where a new session works: a new worktree and branch (the default), a new worktree on an
existing branch, an existing worktree reused as it is, or no worktree at all (read-only, in the
repository's main checkout).

One job: check the choice against the rest of the request, then make (or find) the worktree and
say which parts the session owns, so removing the session never deletes what someone else made.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from cockpit.core.worktrees import RepoInfo, Worktree, WorktreeManager
from cockpit.errors import CockpitError


@dataclass(frozen=True)
class Made:
    worktree: Worktree
    owns_worktree: bool
    owns_branch: bool


@dataclass(frozen=True)
class Placement:
    branch: str | None = None  # an existing branch to check out in a new worktree
    worktree: str | None = None  # an existing worktree (`git worktree list`) to reuse
    read_only: bool = False  # no worktree: read the main checkout, never write

    @property
    def choices(self) -> list[str]:
        return [flag for flag, on in (("--branch", self.branch), ("--worktree", self.worktree),
                                      ("--no-worktree", self.read_only)) if on]

    def check(self, *, count: int, forking: bool, agent: str, kind: str) -> None:
        """Refuse (one line) what cannot go together: two placements, a fork placed elsewhere,
        one branch or worktree for many sessions, a read-only agent the cockpit cannot hold."""
        chosen = self.choices
        if len(chosen) > 1:
            raise CockpitError(f"choose one of {' / '.join(chosen)}: they say different things about the worktree")
        if chosen and forking:
            raise CockpitError(f"a fork starts from its source's worktree; leave out {chosen[0]}")
        if count > 1 and (self.branch or self.worktree):
            raise CockpitError(f"{chosen[0]} gives one session (a branch is checked out in one worktree); "
                               "leave out --count")
        if self.read_only and kind != "llm":
            raise CockpitError(f"--no-worktree needs the built-in agent (kind llm), which the cockpit holds to "
                               f"reading; agent {agent!r} (kind {kind or 'unknown'}) writes files itself")

    async def make(self, manager: WorktreeManager, info: RepoInfo, name: str, base_ref: str | None, *,
                   sparse: Sequence[str], taken: Collection[Path]) -> Made:
        """The session's worktree; `taken`: worktrees other sessions already work in."""
        if self.read_only:
            return Made(await manager.main_checkout(info), owns_worktree=False, owns_branch=False)
        if self.worktree:
            found = await manager.existing(info, self.worktree, base_ref)
            if found.path.resolve() in {Path(p).resolve() for p in taken}:
                raise CockpitError(f"{found.path}: another session already works in that worktree")
            return Made(found, owns_worktree=False, owns_branch=False)
        if self.branch:
            return Made(await manager.checkout_branch(info, self.branch, base_ref, sparse=sparse),
                        owns_worktree=True, owns_branch=False)
        return Made(await manager.create(info, name, base_ref, sparse=sparse), owns_worktree=True, owns_branch=True)
