"""The merge desk's side of the engine: verify, preview, merge, rebase, compare, queue, PR.

`Landing` ties the git-only building blocks (`merge`, `verify`, `pull_request`,
`merge_queue`) to sessions: it picks the target, checks the session may land, emits VERIFY
and MERGED events, marks the session merged and cleans up per `[review] after_merge`.

Every ref move happens under the repository's lock; building the result commit only writes
objects, so a conflict or a failure before the ref moves leaves everything as it was.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cockpit.config import ReviewConfig
from cockpit.core import events as ev
from cockpit.core import merge_queue, pull_request
from cockpit.core.diffstat import diffstat
from cockpit.core.git import GitFailed, git, git_out
from cockpit.core.merge import (
    STRATEGIES, MergeConflict, Prepared, SessionTip, already_on, build, changed_files, dirty_files, dirty_refusal,
    draft_message, merge_tree, move_target, read_tip, record_on_branch, resolve_target, tip_commit,
)
from cockpit.core.model import Session
from cockpit.core.setup import bring_local_files
from cockpit.core.states import LIVE, State
from cockpit.core.verify import RUNNING, VerifyResult, passed_on, run_verify
from cockpit.core.worktrees import RepoInfo, snapshot_tree
from cockpit.errors import CockpitError, GitError, NotFound

if TYPE_CHECKING:
    from cockpit.core.ports import LandingEngine


class Landing:
    def __init__(self, engine: LandingEngine):
        self.engine = engine
        self._verifying: dict[str, asyncio.Lock] = {}  # one verify at a time per session

    def review(self, session: Session) -> ReviewConfig:
        """The merge desk settings of the session's repository."""
        return self.engine.config_for(session).review

    # -- verify ----------------------------------------------------------------------------------

    async def verify(self, ref: str) -> dict[str, Any]:
        """Run the verify command in the session's worktree and keep the result on the session."""
        session = self.engine.get(ref)
        session.refuse_read_only("run verify in it")
        command = self.engine.verify_command(session)
        self._need_worktree(session)
        async with self._verifying.setdefault(session.id, asyncio.Lock()):
            tree = await snapshot_tree(session.path)
            self._emit(session, ev.VERIFY, {"state": RUNNING, "tree": tree, "command": command})
            result = await run_verify(command, session.path, self.engine.command_env(session),
                                      self.review(session).verify_timeout, tree,
                                      sandbox=self.engine.sandbox(session, session.path))
            session.verify = result.to_dict()
            self._emit(session, ev.VERIFY, result.to_dict())
            if session.id in self.engine.sessions:
                self.engine.store.save_session_nowait(session)
        return result.to_dict()

    @property
    def scratch_root(self) -> Path:
        return self.engine.home / "scratch"

    def clear_scratch(self) -> bool:
        """Delete scratch worktrees an earlier run left behind (killed mid-verify); whether there
        were any, so the caller has git forget them (`worktree prune`)."""
        if not self.scratch_root.is_dir() or not any(self.scratch_root.iterdir()):
            return False
        shutil.rmtree(self.scratch_root, ignore_errors=True)
        return True

    async def verify_commit(self, session: Session, commit: str, scope: dict[str, Any]) -> VerifyResult:
        """Verify `commit` (e.g. a merge result) in a scratch detached worktree, removed afterwards.

        The scratch worktree gets the session's local files and set-up script like a new
        session would; a failing set-up counts as red, with its output.
        """
        command = self.engine.verify_command(session)
        info = await self.engine.repo_info(session.repo_id)
        tree = await git_out(info.root, "rev-parse", f"{commit}^{{tree}}")
        self._emit(session, ev.VERIFY, {"state": RUNNING, "tree": tree, "command": command, "commit": commit, **scope})
        self.scratch_root.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=f"verify-{session.slug}-", dir=self.scratch_root))
        try:
            async with await self.repo_lock(session):
                await git(info.root, "worktree", "add", "--detach", "--quiet", str(path), commit)
            cfg = self.engine.config_for(session).worktrees
            await asyncio.to_thread(bring_local_files, info.root, path, cfg)
            env = self.engine.command_env(session, COCKPIT_WORKTREE=str(path))
            result = None
            sandbox = self.engine.sandbox(session, path)
            if cfg.setup:
                result = await run_verify(cfg.setup, path, env, cfg.setup_timeout, tree, sandbox=sandbox)
            if result is None or result.passed:
                result = await run_verify(command, path, env, self.review(session).verify_timeout, tree, sandbox=sandbox)
        finally:
            await self.engine.worktrees.remove(info, path, "")
            shutil.rmtree(path, ignore_errors=True)
        self._emit(session, ev.VERIFY, {**result.to_dict(), "commit": commit, **scope})
        return result

    # -- preview, message, merge -----------------------------------------------------------------

    async def preview(self, ref: str, target: str | None = None) -> dict[str, Any]:
        """What merging would do: conflicting files (merge-tree), files changed, the target commit,
        and why landing would be refused right now ("" when it would not)."""
        session = self.engine.get(ref)
        self._need_worktree(session)
        info = await self.engine.repo_info(session.repo_id)
        name = self.target_name(session, target)
        target_commit = await resolve_target(info.root, name)
        tip = await read_tip(session.path)
        commit = await tip_commit(info.root, tip, "cockpit: preview")
        merged = await merge_tree(info.root, target_commit, commit)
        return {
            "session": session.id, "target": name, "target_commit": target_commit,
            "clean": merged.clean, "conflicts": merged.conflicts,
            "files": await changed_files(info.root, target_commit, tip), "tree": tip.tree,
            "verified": passed_on(session.verify, tip.tree), "refusal": await self._refusal(session, info, name, tip),
        }

    async def _refusal(self, session: Session, info: RepoInfo, target: str, tip: SessionTip) -> str:
        """Why `merge` would refuse right now, or ""."""
        try:
            self._check_mergeable(session)
            self._check_gate(session, tip)
            checkout = await self._checkout_of(info, target)
        except CockpitError as exc:
            return str(exc)
        if checkout is None:
            return ""
        dirty = await dirty_files(checkout)
        return dirty_refusal(checkout, target, dirty) if dirty else ""

    async def message(self, ref: str, target: str | None = None) -> str:
        """A drafted commit message: the task, later instructions, the files, the turn count."""
        session = self.engine.get(ref)
        events = await self.engine.transcript(session.id)
        files: list[str] = []
        if session.path.is_dir():
            info = await self.engine.repo_info(session.repo_id)
            target_commit = await resolve_target(info.root, self.target_name(session, target))
            files = await changed_files(info.root, target_commit, await read_tip(session.path))
        return draft_message(
            task=session.task, name=session.name,
            instructions=[
                e.data.get("text", "") for e in events
                if e.kind == ev.USER_MESSAGE and not e.data.get("text", "").startswith(_CONFLICT_INTRO)
            ],
            turns=sum(1 for e in events if e.kind == ev.TURN_END), files=files,
            session_label=f"@{session.number} ({session.branch})",
        )

    async def merge(self, ref: str, strategy: str | None = None, message: str | None = None,
                    target: str | None = None) -> dict[str, Any]:
        """Land the session on its target; on a conflict or refusal nothing changes anywhere."""
        session = self.engine.get(ref)
        async with await self.repo_lock(session):
            prepared = await self.prepare(session, strategy=strategy, message=message, target=target)
            await self.land(prepared)
        return await self.finish(prepared)

    def target_name(self, session: Session, target: str | None = None) -> str:
        """The branch a session lands on: the argument, `[review] target`, or its base branch."""
        return (target or self.review(session).target or session.base_ref).removeprefix("refs/heads/")

    async def prepare(self, session: Session, *, strategy: str | None = None, message: str | None = None,
                      target: str | None = None, gate: bool = True) -> Prepared:
        """Check the session may land and build the result commit (objects only, nothing moves)."""
        self._check_mergeable(session)
        strategy = strategy or self.review(session).strategy
        if strategy not in STRATEGIES:
            raise CockpitError(f"unknown merge strategy {strategy!r} (use one of: {', '.join(STRATEGIES)})")
        message = message if message is not None else await self.message(session.id, target)
        if not message.strip():
            raise CockpitError(f"the merge message for @{session.number} is empty; write one or leave it out")
        info = await self.engine.repo_info(session.repo_id)
        name = self.target_name(session, target)
        target_commit = await resolve_target(info.root, name)
        tip = await read_tip(session.path)
        if gate:
            self._check_gate(session, tip)
        carried = await tip_commit(info.root, tip, message)
        where = f"@{session.number} into {name}"
        try:
            commit = await build(info.root, strategy, target_commit, carried, message)
        except MergeConflict as exc:
            raise MergeConflict(
                f"{where}: {exc}; nothing was changed (rebase_onto_target hands the conflicts to its agent)",
                exc.files,
            ) from None
        except GitError as exc:
            raise GitError(f"{where}: {exc}") from None
        return Prepared(session, name, target_commit, tip, carried, commit, strategy)

    async def land(self, prepared: Prepared) -> None:
        """Move the target to the prepared commit (the caller holds the repository lock), then
        record the snapshot on the session's branch so the branch holds exactly what landed."""
        session = prepared.session
        self._check_mergeable(session)  # its agent may have started a turn since it was prepared
        info = await self.engine.repo_info(session.repo_id)
        checkout = await self._checkout_of(info, prepared.target)
        await move_target(info.root, prepared.target, prepared.commit, prepared.target_commit, checkout)
        try:
            await record_on_branch(session.path, prepared.tip, prepared.tip_commit)
        except CockpitError as exc:
            self._emit(session, ev.NOTICE, {"text": f"merged, but the session branch was not updated: {exc}"})

    async def finish(self, prepared: Prepared, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Mark the session merged, say so, and clean up per `[review] after_merge`."""
        session = prepared.session
        data = {"target": prepared.target, "strategy": prepared.strategy, "commit": prepared.commit,
                "previous": prepared.target_commit, **(extra or {})}
        self.engine.set_state(session, State.MERGED, f"{prepared.strategy} into {prepared.target}")
        self._emit(session, ev.MERGED, data)
        after = self.review(session).after_merge
        if after != "keep" and session.path.is_dir():
            # A pull request is still open on the branch, so it is never deleted for one.
            delete_branch = after == "remove" and prepared.strategy != "pull-request"
            try:
                await self.engine.remove_worktree(session, delete_branch=delete_branch)
            except CockpitError as exc:
                self._emit(session, ev.NOTICE, {"text": f"merged, but cleaning up failed: {exc}"})
        await self.engine.store.flush()
        return {"session": session.id, **data}

    # -- rebase onto the target ------------------------------------------------------------------

    async def rebase_onto_target(self, ref: str, target: str | None = None) -> dict[str, Any]:
        """Rebase the session's branch onto its target in its own worktree.

        Uncommitted work is committed first (a rebase needs a clean tree). On conflicts the
        rebase is left stopped with markers in the files and the agent is told which files and
        what to do; the session's base moves to the target either way, so its diff shows only
        its own change.
        """
        session = self.engine.get(ref)
        self._check_mergeable(session)
        info = await self.engine.repo_info(session.repo_id)
        name = self.target_name(session, target)
        async with await self.repo_lock(session):
            target_commit = await resolve_target(info.root, name)
            tip = await read_tip(session.path)
            if tip.dirty:
                work = await tip_commit(info.root, tip, f"cockpit: work of session @{session.number} before rebasing")
                if not await record_on_branch(session.path, tip, work):
                    raise GitError(
                        f"{session.path}: HEAD is not on the session's branch; cannot commit its work to rebase it"
                    )
            done = await git(session.path, "rebase", "--quiet", target_commit, check=False)
            unmerged = await git_out(session.path, "diff", "--name-only", "-z", "--diff-filter=U")
            conflicts = sorted(path for path in unmerged.split("\0") if path)
            if done.code != 0 and not conflicts:
                await git(session.path, "rebase", "--abort", check=False)
                raise GitFailed(("rebase", target_commit), done)
        session.base_commit = target_commit
        await self.engine._updated(session)
        if conflicts:
            await self.engine.send(session.id, _conflict_instruction(name, target_commit, conflicts))
        return {"session": session.id, "target": name, "onto": target_commit,
                "conflicts": conflicts, "done": not conflicts}

    # -- compare ---------------------------------------------------------------------------------

    async def compare(self, sessions: list[str] | None = None, group: str | None = None) -> list[dict[str, Any]]:
        """Side by side: change size, verify result, tokens, cost and state per session."""
        if sessions:
            chosen = [self.engine.get(ref) for ref in sessions]
        elif group:
            chosen = [s for s in self.engine.sessions.values() if s.group == group]
            if not chosen:
                raise NotFound(f"no sessions in group {group!r} (a group is made by creating with count > 1)")
        else:
            raise CockpitError("compare needs sessions (ids or @numbers) or a group")
        ordered = sorted(chosen, key=lambda s: s.number)
        return list(await asyncio.gather(*(self._compare_row(s) for s in ordered)))

    async def _compare_row(self, session: Session) -> dict[str, Any]:
        stat: dict[str, Any] = {"files": None, "added": None, "removed": None}
        current = False
        if session.path.is_dir():
            stat = (await diffstat(session.path, session.base_commit)).to_dict()
            current = passed_on(session.verify, await snapshot_tree(session.path)) if session.verify else False
        return {
            "session": session.id, "number": session.number, "name": session.name, **stat,
            "verify": session.verify.get("state", ""), "verify_current": current,
            "tokens": session.usage.total_tokens, "cost": session.usage.cost_usd, "state": session.state.value,
        }

    # -- queue and pull request ------------------------------------------------------------------

    async def queue_plan(self, sessions: list[str] | None = None) -> dict[str, Any]:
        return await merge_queue.plan(self, sessions)

    async def queue_run(self, order: list[str]) -> dict[str, Any]:
        return await merge_queue.run(self, order)

    async def open_pull_request(self, ref: str, target: str | None = None) -> dict[str, Any]:
        """Push the session's work to the remote and open a pull request instead of merging."""
        session = self.engine.get(ref)
        self._check_mergeable(session)
        gh = pull_request.find_gh()
        info = await self.engine.repo_info(session.repo_id)
        remote = await pull_request.remote_of(info.root)
        name = self.target_name(session, target)
        message = await self.message(session.id, target)
        title, _, body = message.partition("\n")
        async with await self.repo_lock(session):
            target_commit = await resolve_target(info.root, name)
            tip = await read_tip(session.path)
            carried = await tip_commit(info.root, tip, message)
            if await already_on(info.root, carried, target_commit):
                raise GitError(f"@{session.number}: nothing to propose, the change is already on {name}")
            await record_on_branch(session.path, tip, carried)
            await pull_request.push(info.root, remote, carried, session.branch)
        url = await pull_request.create(gh, info.root, title=title, body=body.strip(), base=name, head=session.branch)
        prepared = Prepared(session, name, target_commit, tip, carried, carried, "pull-request")
        return await self.finish(prepared, {"pr_url": url, "remote": remote})

    # -- helpers ---------------------------------------------------------------------------------

    async def repo_lock(self, session: Session) -> asyncio.Lock:
        """The lock every ref move in the session's repository is made under."""
        info = await self.engine.repo_info(session.repo_id)
        return self.engine.worktrees.locks.for_repo(info.common_dir)

    def _emit(self, session: Session, kind: str, data: dict[str, Any]) -> None:
        if session.id in self.engine.sessions:
            self.engine.emit(session.id, kind, data)

    @staticmethod
    def _need_worktree(session: Session) -> None:
        if not session.path.is_dir():
            raise CockpitError(f"session @{session.number} has no worktree any more ({session.worktree})")

    def _check_mergeable(self, session: Session) -> None:
        session.refuse_read_only("merge, rebase or open a pull request")
        if session.state in LIVE:
            raise CockpitError(
                f"session @{session.number} is {session.state.value}; wait for its turn to end "
                "(or interrupt it) before merging"
            )
        if session.state in (State.MERGED, State.ARCHIVED):
            raise CockpitError(f"session @{session.number} is {session.state.value}; there is nothing to land")
        self._need_worktree(session)

    def _check_gate(self, session: Session, tip: SessionTip) -> None:
        if self.review(session).gate_on_verify and not passed_on(session.verify, tip.tree):
            raise CockpitError(
                f"session @{session.number}: [review] gate_on_verify is on and verify has not passed on "
                "its current change; run verify first"
            )

    async def _checkout_of(self, info: RepoInfo, target: str) -> Path | None:
        """The user's checkout when it has `target` checked out; refuse when another worktree has it."""
        for entry in await self.engine.worktrees.list(info):
            if entry.branch != target:
                continue
            if entry.path.resolve() == info.root:
                return info.root
            raise GitError(
                f"branch {target!r} is checked out in {entry.path}; switch that worktree to another "
                "branch (or merge there), then merge again"
            )
        return None


#: How the rebase instruction starts; the drafted merge message leaves it out of the instructions.
_CONFLICT_INTRO = "Your branch was rebased onto "


def _conflict_instruction(target: str, commit: str, files: list[str]) -> str:
    names = "\n".join(f"- {name}" for name in files)
    return (
        f"{_CONFLICT_INTRO}{target} ({commit[:10]}) to bring it up to date, and the rebase "
        f"stopped with conflicts in these files:\n{names}\n"
        "Resolve each conflict (edit out the <<<<<<< ======= >>>>>>> markers, keeping both intents), "
        "`git add` the files and run `git rebase --continue`; repeat until the rebase finishes. "
        "Do not run `git rebase --abort`. Then check that the tests still pass."
    )
