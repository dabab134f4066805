"""The worktree manager shared by every session of every repository.

A session's worktree lives at `$COCKPIT_HOME/worktrees/<repo-slug>/<session-slug>/` on the
branch `cockpit/<session-slug>`. Reads go straight to git; anything that changes the shared
repository runs under that repository's lock (see `cockpit.core.git`).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cockpit.core.git import GitFailed, RepoLocks, git, git_out
from cockpit.errors import GitError

BRANCH_PREFIX = "cockpit/"


@dataclass(frozen=True)
class RepoInfo:
    root: Path  # top of the main checkout
    common_dir: Path  # the shared .git directory
    slug: str


@dataclass(frozen=True)
class Worktree:
    path: Path
    branch: str  # full branch name, e.g. cockpit/fix-tests
    slug: str
    base_ref: str
    base_commit: str


@dataclass(frozen=True)
class WorktreeEntry:
    """One line of `git worktree list --porcelain`."""

    path: Path
    head: str
    branch: str  # "" when detached
    prunable: bool


#: Letters NFKD does not take apart into an ASCII letter and accents.
_LETTERS = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ł": "l", "þ": "th", "ð": "d"})


def slugify(text: str, limit: int = 40) -> str:
    """A branch and folder name: `Grüße an François 🎉` → `grusse-an-francois`.

    Accented and compatibility forms become their ASCII letters (NFKD), so a name is not cut into
    single letters at every accent; what has no ASCII form (emoji, other scripts) is left out.
    """
    ascii_text = unicodedata.normalize("NFKD", text.lower().translate(_LETTERS)).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:limit].strip("-")
    return slug or "session"


class WorktreeManager:
    def __init__(self, home: Path):
        self.root = Path(home) / "worktrees"
        self.locks = RepoLocks()

    # -- repositories -------------------------------------------------------------------------

    async def inspect_repo(self, path: Path | str) -> RepoInfo:
        """Validate that `path` is inside a git repository with at least one commit."""
        path = Path(path).expanduser().absolute()  # messages name the folder, not "."
        if not path.is_dir():
            raise GitError(f"{path}: no such directory")
        top = await git(path, "rev-parse", "--show-toplevel", "--git-common-dir", check=False)
        if top.code != 0:
            raise GitError(f"{path}: not a git repository (run `git init` there, or pass --repo)")
        root_line, common_line = top.out.strip().splitlines()[:2]
        root = Path(root_line).resolve()
        common = Path(common_line)
        common = (path / common).resolve() if not common.is_absolute() else common.resolve()
        if (await git(root, "rev-parse", "--verify", "-q", "HEAD", check=False)).code != 0:
            raise GitError(f"{root}: the repository has no commits yet; commit something first")
        return RepoInfo(root=root, common_dir=common, slug=slugify(root.name))

    async def resolve_base(self, repo: RepoInfo, base_ref: str | None) -> tuple[str, str]:
        """Return (ref name, commit sha) for a base; default: the current branch (one git call)."""
        if not base_ref:
            found = await git(repo.root, "rev-parse", "HEAD^{commit}", "--abbrev-ref", "HEAD", check=False)
            commit, _, branch = found.out.strip().partition("\n")
            if found.code != 0 or not branch or branch == "HEAD":
                raise GitError(
                    f"{repo.root}: HEAD is detached, so there is no current branch to start from; "
                    "pass a base ref (--base main)"
                )
            return branch, commit
        found = await git(repo.root, "rev-parse", "--verify", "-q", f"{base_ref}^{{commit}}", check=False)
        if found.code != 0:
            raise GitError(f"{repo.root}: unknown base ref {base_ref!r} (no branch, tag or commit by that name)")
        return base_ref, found.out.strip()

    def repo_dir(self, repo: RepoInfo) -> Path:
        return self.root / repo.slug

    # -- create / fork --------------------------------------------------------------------------

    async def create(
        self,
        repo: RepoInfo,
        name: str,
        base_ref: str | None = None,
        *,
        path: Path | None = None,
        sparse: Sequence[str] = (),
    ) -> Worktree:
        """Make a new worktree on a new branch `cockpit/<slug>` from `base_ref`.

        A slug already taken by a branch or a folder gets a numeric suffix; the check, the new
        branch and the worktree's registration happen under the repository lock, so concurrent
        creations never race. Writing the files (the slow part) touches only the new worktree,
        so it runs outside the lock and many creations check out in parallel.
        """
        ref, commit = await self.resolve_base(repo, base_ref)
        await check_sparse(repo.root, commit, sparse)
        if path is not None and Path(path).exists():
            raise GitError(f"{path}: path exists; choose another path or remove it")
        async with self.locks.for_repo(repo.common_dir):
            slug = await self._free_slug(repo, slugify(name), explicit_path=path)
            target = Path(path) if path is not None else self.repo_dir(repo) / slug
            target.parent.mkdir(parents=True, exist_ok=True)
            branch = BRANCH_PREFIX + slug
            await git(repo.root, "worktree", "add", "--quiet", "--no-checkout", "-b", branch, str(target), commit)
        await self._fill(repo, target, branch, sparse, delete_branch=True)
        return Worktree(path=target, branch=branch, slug=slug, base_ref=ref, base_commit=commit)

    async def _fill(self, repo: RepoInfo, target: Path, branch: str, sparse: Sequence[str], *,
                    delete_branch: bool) -> None:
        """Check out a worktree registered with `--no-checkout`: only the `sparse` folders when
        given (cone mode), so a monorepo session gets the part it works on; undone on failure."""
        try:
            if sparse:
                await git(target, "sparse-checkout", "set", "--cone", "--", *sparse)
            # Fills the index and the files, and runs a post-checkout hook like `worktree add` would.
            await git(target, "checkout", "--quiet", "--force")
        except BaseException:
            await self.remove(repo, target, branch, delete_branch=delete_branch)
            raise

    async def checkout_branch(self, repo: RepoInfo, branch: str, base_ref: str | None = None, *,
                              sparse: Sequence[str] = ()) -> Worktree:
        """A new worktree on the existing `branch` (made and owned by someone else: never deleted
        here). Its base is where it left `base_ref` (default: the current branch), so its change
        is what the branch added."""
        branch = branch.removeprefix("refs/heads/")
        if not await _branch_exists(repo.root, branch):
            raise GitError(f"{repo.root}: no branch {branch!r} (see `git branch`); --base makes a new one from a ref")
        for entry in await self.list(repo):
            if entry.branch == branch and not entry.prunable:
                raise GitError(f"branch {branch!r} is checked out at {entry.path}; "
                               f"reuse that worktree (--worktree {entry.path}) or pick another branch")
        ref, base_commit = await self.resolve_base(repo, base_ref)
        await check_sparse(repo.root, branch, sparse)
        async with self.locks.for_repo(repo.common_dir):
            slug = await self._free_slug(repo, slugify(branch), explicit_path=None)
            target = self.repo_dir(repo) / slug
            target.parent.mkdir(parents=True, exist_ok=True)
            await git(repo.root, "worktree", "add", "--quiet", "--no-checkout", str(target), branch)
        await self._fill(repo, target, branch, sparse, delete_branch=False)
        return Worktree(path=target, branch=branch, slug=slug, base_ref=ref,
                        base_commit=await _fork_point(repo.root, branch, base_commit))

    async def existing(self, repo: RepoInfo, path: Path | str, base_ref: str | None = None) -> Worktree:
        """A worktree `git worktree list` shows for this repository, as it is (nothing is checked
        out or moved); anything else is refused with one line."""
        wanted = Path(path).expanduser().resolve()
        entries = await self.list(repo)
        entry = next((e for e in entries if e.path.resolve() == wanted), None)
        if entry is None or entry.prunable:
            listed = ", ".join(str(e.path) for e in entries[1:] if not e.prunable) or "none besides the main checkout"
            raise GitError(f"{wanted}: not a worktree of {repo.root} (its worktrees: {listed})")
        if wanted == repo.root:
            raise GitError(f"{wanted} is the main checkout: an agent works in a worktree of its own "
                           "(or use --no-worktree for a read-only session there)")
        if not entry.branch:
            raise GitError(f"{wanted}: HEAD is detached; check out a branch there first (git switch -c NAME)")
        ref, base_commit = await self.resolve_base(repo, base_ref)
        return Worktree(path=entry.path, branch=entry.branch, slug=slugify(entry.path.name), base_ref=ref,
                        base_commit=await _fork_point(repo.root, entry.head, base_commit))

    async def main_checkout(self, repo: RepoInfo) -> Worktree:
        """The repository's own checkout, for a read-only session: its branch is its base."""
        ref, commit = await self.resolve_base(repo, None)
        return Worktree(path=repo.root, branch=ref, slug=slugify(repo.root.name), base_ref=ref, base_commit=commit)

    async def _free_slug(self, repo: RepoInfo, wanted: str, explicit_path: Path | None) -> str:
        branches = set(
            (await git_out(repo.root, "for-each-ref", "--format=%(refname:short)", "refs/heads/cockpit/")).split()
        )
        candidate, n = wanted, 1
        while (
            BRANCH_PREFIX + candidate in branches
            or (explicit_path is None and (self.repo_dir(repo) / candidate).exists())
        ):
            n += 1
            candidate = f"{wanted}-{n}"
        return candidate

    async def fork(self, repo: RepoInfo, source: Path, name: str, *, sparse: Sequence[str] = ()) -> Worktree:
        """A new worktree that starts from `source`'s current state, uncommitted work included.

        The source's working tree is captured with a temporary index (its own index and files
        are not touched), the new worktree is made at the source's HEAD, and the captured tree
        is laid over it as uncommitted changes.
        """
        snapshot = await snapshot_tree(source)
        head = await git_out(source, "rev-parse", "HEAD")
        made = await self.create(repo, name, head, sparse=sparse)
        await git(made.path, "read-tree", "-m", "-u", "HEAD", snapshot)
        await git(made.path, "reset", "-q")  # keep the files, leave the changes uncommitted
        return made

    # -- list / remove / prune / adopt ----------------------------------------------------------

    async def list(self, repo: RepoInfo) -> list[WorktreeEntry]:
        out = await git_out(repo.root, "worktree", "list", "--porcelain")
        entries: list[WorktreeEntry] = []
        for block in out.split("\n\n"):
            fields: dict[str, str] = {}
            for line in block.splitlines():
                key, _, value = line.partition(" ")
                fields[key] = value
            if "worktree" not in fields:
                continue
            branch = fields.get("branch", "").removeprefix("refs/heads/")
            entries.append(
                WorktreeEntry(Path(fields["worktree"]), fields.get("HEAD", ""), branch, "prunable" in fields)
            )
        return entries

    async def remove(self, repo: RepoInfo, path: Path, branch: str, *, delete_branch: bool = False) -> None:
        """Remove a session's worktree (even with uncommitted changes); keep its branch unless asked."""
        async with self.locks.for_repo(repo.common_dir):
            if Path(path).exists():
                result = await git(repo.root, "worktree", "remove", "--force", "--force", str(path), check=False)
                if result.code != 0 and Path(path).exists():
                    shutil.rmtree(path, ignore_errors=True)
            await git(repo.root, "worktree", "prune")
            if delete_branch and branch:
                deleted = await git(repo.root, "branch", "-D", branch, check=False)
                if deleted.code != 0 and await _branch_exists(repo.root, branch):
                    raise GitFailed(("branch", "-D", branch), deleted)

    async def prune(self, repo: RepoInfo) -> list[Path]:
        """Forget worktrees whose folders are gone; return the paths that were pruned."""
        stale = [e.path for e in await self.list(repo) if e.prunable]
        async with self.locks.for_repo(repo.common_dir):
            await git(repo.root, "worktree", "prune")
        return stale

    async def orphans(self, repo: RepoInfo, known: set[Path]) -> list[WorktreeEntry]:
        """Cockpit worktrees git knows but the caller does not: left behind by a crash."""
        ours = self.repo_dir(repo).resolve()
        known_real = {Path(p).resolve() for p in known}
        return [
            e for e in await self.list(repo)
            if not e.prunable
            and e.branch.startswith(BRANCH_PREFIX)
            and e.path.resolve().parent == ours
            and e.path.resolve() not in known_real
        ]


async def check_sparse(root: Path, commit: str, sparse: Sequence[str]) -> None:
    """Each `[worktrees] sparse` entry must be a folder of `commit` (cone mode checks out folders):
    a typo would otherwise give an agent an empty worktree."""
    for entry in sparse:
        rel = entry.strip("/")
        kind = await git(root, "cat-file", "-t", f"{commit}:{rel}", check=False) if rel else None
        if kind is None or kind.out.strip() != "tree":
            raise GitError(f"worktrees.sparse: {entry!r} is not a folder of {commit[:12]} in {root} "
                           "(list folders relative to the repository top)")


async def _fork_point(root: Path, head: str, base_commit: str) -> str:
    """Where `head` left the base: their merge base, or the base itself when they share none."""
    found = await git(root, "merge-base", head, base_commit, check=False)
    return found.out.strip() if found.code == 0 and found.out.strip() else base_commit


async def _branch_exists(root: Path, branch: str) -> bool:
    found = await git(root, "show-ref", "--verify", "--quiet", f"refs/heads/{branch}", check=False)
    return found.code == 0


async def snapshot_tree(worktree: Path) -> str:
    """Write the worktree's files (tracked changes and untracked, not ignored) as a tree object.

    The temporary index starts as a copy of the worktree's own index, whose file stats let
    `add -A` re-read only the files that changed (from a bare `read-tree HEAD` it would hash
    every file); an index that cannot be copied or used falls back to HEAD.
    """
    with tempfile.TemporaryDirectory(prefix="cockpit-index-") as tmp:
        index = os.path.join(tmp, "index")
        env = {"GIT_INDEX_FILE": index}
        own = await git_out(worktree, "rev-parse", "--path-format=absolute", "--git-path", "index")
        try:
            shutil.copy2(own, index)
            await git(worktree, "add", "-A", ".", env=env)
        except (OSError, GitFailed):
            await git(worktree, "read-tree", "HEAD", env=env)
            await git(worktree, "add", "-A", ".", env=env)
        return await git_out(worktree, "write-tree", env=env)

