"""Landing a session's change on a target branch, built with plumbing so nothing half-merges.

The result commit is made from objects only (`merge-tree --write-tree` + `commit-tree`), never in
a checkout, so a conflict or a failure before the last step changes no file, index or ref
anywhere. Only then is the target moved, in one step: a fast-forward of the user's checkout when
it has the target checked out and is clean, otherwise a compare-and-swap `update-ref`.

These functions know git, not sessions; `cockpit.core.landing` ties them to the engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cockpit.core.git import GitFailed, git, git_out
from cockpit.core.model import Session
from cockpit.core.worktrees import snapshot_tree
from cockpit.errors import GitError

STRATEGIES = ("squash", "merge", "rebase")
TITLE_LIMIT = 72
_LISTED = 6  # file names spelled out in one-line messages before "and N more"
_IN_PROGRESS = {
    "rebase-merge": "a rebase", "rebase-apply": "a rebase", "MERGE_HEAD": "a merge",
    "CHERRY_PICK_HEAD": "a cherry-pick", "REVERT_HEAD": "a revert",
}


class MergeConflict(GitError):
    """The change does not merge cleanly; nothing was changed. `files` are the conflicting paths."""

    def __init__(self, message: str, files: Sequence[str]):
        super().__init__(message)
        self.files = list(files)


def listing(names: Sequence[str]) -> str:
    """'a, b, c' or 'a, b, … and 4 more': file lists that fit in a one-line message."""
    shown = ", ".join(names[:_LISTED])
    return shown if len(names) <= _LISTED else f"{shown} and {len(names) - _LISTED} more"


# -- the session side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionTip:
    """What a session's worktree holds right now: its HEAD plus the uncommitted and untracked work.

    The work is captured as a tree with a temporary index (see `snapshot_tree`) and carried as
    a commit built with plumbing (`tip_commit`), rather than committed on the session's branch
    first: a merge can still be refused after that point (a conflict, a dirty target, a red
    gate) and the agent's index, files and branch must then be exactly as they were. Only once
    the target has moved is that commit recorded on the branch (`record_on_branch`).
    """

    head: str
    head_tree: str
    tree: str  # the snapshot of every file (what a verify result is tied to)
    branch_ref: str  # "refs/heads/cockpit/x" when HEAD is on a branch, else ""

    @property
    def dirty(self) -> bool:
        return self.tree != self.head_tree


async def read_tip(worktree: Path) -> SessionTip:
    await _refuse_in_progress(worktree)
    head = await git_out(worktree, "rev-parse", "HEAD", "HEAD^{tree}")
    commit, head_tree = head.split()
    branch = await git(worktree, "symbolic-ref", "-q", "HEAD", check=False)
    return SessionTip(commit, head_tree, await snapshot_tree(worktree), branch.out.strip())


async def _refuse_in_progress(worktree: Path) -> None:
    """A worktree stopped in a rebase or merge has a detached or conflicted state that must not land."""
    asked = [arg for name in _IN_PROGRESS for arg in ("--git-path", name)]
    paths = (await git_out(worktree, "rev-parse", *asked)).splitlines()
    for name, path in zip(_IN_PROGRESS, paths):
        if (worktree / path).exists():
            raise GitError(
                f"{worktree}: {_IN_PROGRESS[name]} is in progress there; finish it "
                f"(`git {_IN_PROGRESS[name].split()[-1]} --continue`) or abort it first"
            )


async def tip_commit(root: Path, tip: SessionTip, message: str) -> str:
    """HEAD when there is no uncommitted work, else a commit of the snapshot on top of HEAD."""
    if not tip.dirty:
        return tip.head
    return await commit_tree(root, tip.tree, [tip.head], message)


async def record_on_branch(worktree: Path, tip: SessionTip, commit: str) -> bool:
    """Move the session's branch to `commit` (a commit of its snapshot) and re-read its index.

    Compare-and-swap against the HEAD the snapshot was taken on, so work committed since then is
    never dropped; the files are not touched (a mixed reset), so edits made since stay as edits.
    Returns False when there was nothing to record or the branch moved meanwhile.
    """
    if commit == tip.head or not tip.branch_ref:
        return False
    moved = await git(worktree, "update-ref", "-m", "cockpit: record uncommitted work",
                      tip.branch_ref, commit, tip.head, check=False)
    if moved.code != 0:
        return False
    await git(worktree, "reset", "-q")
    return True


@dataclass(frozen=True)
class Prepared:
    """A landing worked out but not done: the target still points at `target_commit`."""

    session: Session
    target: str
    target_commit: str
    tip: SessionTip
    tip_commit: str  # the session's HEAD, or a commit of its snapshot on top of it
    commit: str  # what the target will point at
    strategy: str


# -- building the result ------------------------------------------------------------------------


@dataclass(frozen=True)
class MergeTree:
    tree: str
    conflicts: list[str]

    @property
    def clean(self) -> bool:
        return not self.conflicts


async def merge_tree(root: Path, ours: str, theirs: str) -> MergeTree:
    """The three-way merge of two commits (base: their merge base), written as objects only."""
    args = ("merge-tree", "--write-tree", "--name-only", "-z", "--no-messages", ours, theirs)
    result = await git(root, *args, check=False)
    if result.code not in (0, 1):
        raise GitFailed(args, result)
    tree, *names = result.out.split("\0")
    return MergeTree(tree.strip(), sorted({n for n in names if n}) if result.code == 1 else [])


async def changed_files(root: Path, target_commit: str, tip: SessionTip) -> list[str]:
    """Files the session changed since it forked from the target's history (untracked included)."""
    base = await git_out(root, "merge-base", target_commit, tip.head)
    out = await git_out(root, "diff", "--name-only", "-z", "--no-renames", base, tip.tree)
    return [name for name in out.split("\0") if name]


async def commit_tree(root: Path, tree: str, parents: Iterable[str], message: str,
                      env: dict[str, str] | None = None) -> str:
    args = ["commit-tree", tree]
    for parent in parents:
        args += ["-p", parent]
    env = {**await identity_fallback(root), **(env or {})}
    return (await git(root, *args, "-F", "-", stdin=message.encode(), env=env)).out.strip()


_FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "cockpit", "GIT_AUTHOR_EMAIL": "cockpit@localhost",
    "GIT_COMMITTER_NAME": "cockpit", "GIT_COMMITTER_EMAIL": "cockpit@localhost",
}


async def identity_fallback(root: Path) -> dict[str, str]:
    """Nothing when the person has a git identity (their commits carry their name); else the
    cockpit's own, so a fresh box without `user.email` can still preview and land merges."""
    found = await git(root, "var", "GIT_COMMITTER_IDENT", check=False)
    return {} if found.code == 0 else dict(_FALLBACK_IDENTITY)


async def build(root: Path, strategy: str, target_commit: str, tip: str, message: str) -> str:
    """The commit the target would move to; raises MergeConflict (having changed nothing).

    squash: one commit on the target with the merged tree. merge: the same tree with the
    session's tip as second parent. rebase: the session's commits replayed one by one on the
    target (messages and authors kept), so the target fast-forwards to the last of them.
    """
    if strategy not in STRATEGIES:
        raise GitError(f"unknown merge strategy {strategy!r} (use one of: {', '.join(STRATEGIES)})")
    if await already_on(root, tip, target_commit):
        raise GitError("nothing to merge: the change is already on the target")
    if strategy == "rebase":
        return await replay(root, target_commit, tip)
    merged = await merge_tree(root, target_commit, tip)
    if not merged.clean:
        raise MergeConflict(f"conflicts in {listing(merged.conflicts)}", merged.conflicts)
    parents = [target_commit] if strategy == "squash" else [target_commit, tip]
    return await commit_tree(root, merged.tree, parents, message)


async def already_on(root: Path, commit: str, target_commit: str) -> bool:
    """Whether `commit` is already part of the target's history (nothing left to land)."""
    return (await git(root, "merge-base", "--is-ancestor", commit, target_commit, check=False)).code == 0


async def replay(root: Path, onto: str, tip: str) -> str:
    """Cherry-pick the non-merge commits of `onto..tip` onto `onto` without a checkout.

    git 2.39's merge-tree has no `--merge-base`: it always merges from the two commits' merge
    base. A stand-in commit holding the new head's tree with the picked commit's parent as its
    only parent makes that parent the merge base, so the merge is exactly a cherry-pick. A
    commit whose change is already there (the tree would not change) is dropped, as rebase does.
    """
    head = onto
    commits = (await git_out(root, "rev-list", "--reverse", "--no-merges", f"{onto}..{tip}")).split()
    for commit in commits:
        parent = await git_out(root, "rev-parse", f"{commit}^")
        stand_in = await commit_tree(root, f"{head}^{{tree}}", [parent], "cockpit: replay base")
        merged = await merge_tree(root, stand_in, commit)
        if not merged.clean:
            raise MergeConflict(
                f"replaying {commit[:10]} conflicts in {listing(merged.conflicts)}", merged.conflicts
            )
        if merged.tree == await git_out(root, "rev-parse", f"{head}^{{tree}}"):
            continue
        head = await commit_tree(root, merged.tree, [head], await _message_of(root, commit),
                                 env=await _author_of(root, commit))
    return head


async def _message_of(root: Path, commit: str) -> str:
    return (await git(root, "log", "-1", "--format=%B", commit)).out


async def _author_of(root: Path, commit: str) -> dict[str, str]:
    found = await git(root, "log", "-1", "--format=%an%x00%ae%x00%ad", "--date=raw", commit)
    name, email, date = found.out.strip().split("\0")
    return {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": date}


# -- the target ---------------------------------------------------------------------------------


async def resolve_target(root: Path, name: str) -> str:
    """The commit of local branch `name`; a one-line error when it is not a local branch."""
    branch = name.removeprefix("refs/heads/")
    found = await git(root, "rev-parse", "--verify", "-q", f"refs/heads/{branch}^{{commit}}", check=False)
    if found.code != 0:
        raise GitError(
            f"{root}: merge target {name!r} is not a local branch; set [review] target in "
            ".cockpit.toml or pass a target branch"
        )
    return found.out.strip()


async def dirty_files(checkout: Path) -> list[str]:
    """`git status --porcelain` paths: modified, staged, untracked (not ignored), unmerged."""
    out = (await git(checkout, "status", "--porcelain", "-z", "--no-renames", "--untracked-files=all")).out
    return [entry[3:] for entry in out.split("\0") if entry]


def dirty_refusal(checkout: Path, target: str, dirty: Sequence[str]) -> str:
    return (f"{checkout} has {target!r} checked out with uncommitted changes ({listing(dirty)}); "
            "commit or stash them, then merge again")


async def move_target(root: Path, target: str, new: str, old: str, checkout: Path | None) -> None:
    """Move branch `target` from `old` to `new`, or raise having moved nothing.

    `checkout` is the user's checkout when it has the target checked out (the caller refuses
    when another worktree has it): it is fast-forwarded only when clean. A failed fast-forward
    can leave files updated while the branch is not (git writes the files first); they are
    switched back from `new` to `old` with a two-tree read-tree, which refuses rather than
    overwrite an edit the user made meanwhile.
    """
    message = f"cockpit: land on {target}"
    if checkout is None:
        moved = await git(root, "update-ref", "-m", message, f"refs/heads/{target}", new, old, check=False)
        if moved.code != 0:
            raise GitError(f"{root}: branch {target!r} moved while merging (or is locked); try again")
        return
    if await git_out(checkout, "rev-parse", "HEAD") != old:
        raise GitError(f"{checkout}: branch {target!r} moved while merging; try again")
    dirty = await dirty_files(checkout)
    if dirty:
        raise GitError(dirty_refusal(checkout, target, dirty))
    done = await git(checkout, "merge", "--ff-only", "--quiet", new, env={"GIT_REFLOG_ACTION": message}, check=False)
    if done.code == 0:
        return
    if await git_out(checkout, "rev-parse", "HEAD") == old and await dirty_files(checkout):
        await git(checkout, "read-tree", "-m", "-u", new, old)
    raise GitFailed(("merge", "--ff-only", new), done)


def title_line(text: str, limit: int = TITLE_LIMIT) -> str:
    """The first non-empty line of `text`, cut at a word to at most `limit` characters."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    if len(line) <= limit:
        return line
    cut = line[: limit - 1].rsplit(" ", 1)[0] or line[: limit - 1]
    return cut.rstrip(" ,.;:") + "…"


def draft_message(*, task: str, name: str, instructions: Sequence[str], turns: int,
                  files: Sequence[str], session_label: str) -> str:
    """A commit message from the session's task and turns: title ≤ 72 chars, then a body."""
    if not task.strip() and instructions:  # sent after creation (the screen, `cockpit send`)
        task, instructions = instructions[0], instructions[1:]
    title = title_line(task) or title_line(name) or "Changes from a cockpit session"
    body: list[str] = []
    rest = "\n".join(task.strip().splitlines()[1:]).strip()
    if rest:
        body += [rest, ""]
    extra = [title_line(text, 100) for text in instructions if text.strip() and text.strip() != task.strip()]
    if extra:
        body += ["Instructions during the session:", *(f"- {line}" for line in extra), ""]
    if files:
        body += [f"Files: {listing(list(files))}", ""]
    plural = "" if turns == 1 else "s"
    body.append(f"Made by cockpit session {session_label} in {turns} agent turn{plural}.")
    return title + "\n\n" + "\n".join(body) + "\n"
