"""The review side of the engine: what a session changed, and what the person does about it.

`Review` answers "what did this session change" (the whole Change, and per turn through
checkpoints) and carries out the person's review actions: revert a hunk, comment on a line,
roll back to a checkpoint. The agent is told about each, so it builds on the reviewed state
instead of redoing what was undone; a note for an agent that is mid-turn waits (visible as a
NOTICE) and goes out when the turn ends.

Actions on one session's worktree run one at a time (a per-session lock), so an end-of-turn
checkpoint never interleaves with a rollback or a revert.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from cockpit.core import checkpoints
from cockpit.core import events as ev
from cockpit.core.checkpoints import Checkpoint
from cockpit.core.diffs import Change, FileDiff, Hunk, encoded, session_change, tree_change, visible
from cockpit.core.diffstat import DiffStat, diffstat, tree_diffstat
from cockpit.core.model import Session
from cockpit.core.states import LIVE, State
from cockpit.core.watch import Watcher
from cockpit.core.worktrees import snapshot_tree
from cockpit.errors import CockpitError, NotFound

if TYPE_CHECKING:
    from cockpit.core.ports import ReviewEngine

#: Events after which the set of worktrees worth watching may differ.
_WATCH_SET_EVENTS = frozenset({ev.SESSION_CREATED, ev.SESSION_REMOVED, ev.SESSION_STATE})
#: Sessions whose agent no longer works: notes are recorded, not sent.
_FINISHED = frozenset({State.ARCHIVED, State.MERGED})
_QUOTE_CAP = 4000  # characters of a reverted hunk quoted to the agent


class Review:
    def __init__(self, engine: ReviewEngine):
        self._engine = engine
        self._notes: dict[str, list[str]] = defaultdict(list)
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._turns: dict[str, int] = {}
        self._stats: dict[str, DiffStat] = {}  # the last DIFF_STAT of each session
        self._stat_locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._watcher: Watcher | None = None

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Watch the live worktrees (when `review.watch`), following sessions as they come and go."""
        if self._engine.config.review.watch:
            self._watcher = Watcher(self._watched, self._files_changed, self._watch_failed)
            self._watcher.start(self._engine.subscribe(accept=lambda e: e.kind in _WATCH_SET_EVENTS))

    async def close(self) -> None:
        if self._watcher is not None:
            await self._watcher.close()
            self._watcher = None

    @property
    def watching(self) -> dict[str, str]:
        """The worktrees watched right now, by session id (empty when watching is off)."""
        return self._watcher.watching if self._watcher is not None else {}

    def _watched(self) -> dict[str, Path]:
        return {
            s.id: s.path for s in self._engine.sessions.values() if s.state not in _FINISHED and s.path.is_dir()
        }

    async def _files_changed(self, session_id: str) -> None:
        session = self._engine.sessions.get(session_id)
        if session is not None and session.path.is_dir():
            with contextlib.suppress(CockpitError, OSError):  # e.g. the worktree is being removed
                await self.report_diffstat(session)

    def _watch_failed(self, reason: str) -> None:
        self._engine.emit("", ev.NOTICE, {
            "text": f"live file watching stopped ({reason}); pane headers update after each turn",
        })

    # -- the change ------------------------------------------------------------------------------

    async def report_diffstat(self, session: Session, tree: str | None = None) -> None:
        """Emit DIFF_STAT when the session's files/lines changed differ from the last report.

        `tree`: a snapshot of the worktree just taken (the turn's checkpoint); counting against
        it is one git call instead of scanning the worktree and reading untracked files again.
        One count at a time per session: the watcher and the end of a turn can ask together,
        and a count that started earlier must never be reported after a later one.
        """
        async with self._stat_locks[session.id]:
            if tree is None:
                stat = await diffstat(session.path, session.base_commit)
            else:
                stat = await tree_diffstat(session.path, session.base_commit, tree)
            if session.id in self._engine.sessions and self._stats.get(session.id) != stat:
                self._stats[session.id] = stat
                self._engine.emit(session.id, ev.DIFF_STAT, stat.to_dict())

    async def diff(self, ref: str, path: str | None = None) -> Change:
        """The session's change against its base; with `path`, that one file in full."""
        session = self._with_worktree(ref)
        return await session_change(session.path, session.base_commit, large_file_lines=self._fold(), path=path)

    def _fold(self) -> int:
        return self._engine.config.review.large_file_lines

    def _with_worktree(self, ref: str) -> Session:
        session = self._engine.get(ref)
        if not session.path.is_dir():
            raise CockpitError(f"session @{session.number} has no worktree any more ({session.path})")
        return session

    # -- telling the agent -----------------------------------------------------------------------

    async def tell(self, session: Session, text: str) -> None:
        """Send the agent a note now, or when its current turn ends (in order)."""
        if session.state in _FINISHED:
            self._engine.emit(session.id, ev.NOTICE, {"text": f"not sent ({session.state.value}): {text}"})
        elif session.state in LIVE:
            self._notes[session.id].append(text)
            self._engine.emit(session.id, ev.NOTICE, {
                "text": f"for the agent when its turn ends: {text}", "queued": True,
            })
        else:
            await self._engine.send(session.id, text)

    async def deliver_notes(self, session: Session) -> None:
        """Send the notes queued during the turn that just ended, as one message."""
        if session.state in LIVE or not self._notes.get(session.id):
            return
        notes = self._notes.pop(session.id)
        try:
            await self._engine.send(session.id, "\n\n".join(notes))
        except CockpitError as exc:
            self._engine.emit(session.id, ev.ERROR, {"text": f"could not give the agent the queued notes: {exc}"})

    # -- checkpoints -----------------------------------------------------------------------------

    async def checkpoint_turn(self, session: Session) -> str | None:
        """Snapshot the worktree at the end of a turn (no checkpoint when nothing changed);
        return the snapshot's tree, or None when it could not be taken (or a read-only session's
        main checkout, whose changes are the person's, not the agent's)."""
        if session.read_only:
            return None
        turn = await self._next_turn(session)
        try:
            async with self._locks[session.id]:
                tree = await snapshot_tree(session.path)
                await self._checkpoint(session, tree, turn=turn, reason=f"turn {turn}")
                return tree
        except CockpitError as exc:
            self._engine.emit(session.id, ev.NOTICE, {"text": f"no checkpoint after turn {turn}: {exc}"})
            return None

    async def _next_turn(self, session: Session) -> int:
        key = f"turns.{session.id}"
        if session.id not in self._turns:
            stored = int(await self._engine.store.get_meta(key, "0"))
            self._turns.setdefault(session.id, stored)  # another turn's end may have read it meanwhile
        self._turns[session.id] += 1
        self._engine.store.set_meta_nowait(key, str(self._turns[session.id]))
        return self._turns[session.id]

    async def _checkpoint(self, session: Session, tree: str, *, turn: int, reason: str) -> Checkpoint | None:
        point = await checkpoints.take(session.path, session.id, session.base_commit, tree, turn=turn, reason=reason)
        if point is not None:
            self._engine.emit(session.id, ev.CHECKPOINT, {
                "n": point.n, "commit": point.commit, "files": point.files, "added": point.added,
                "removed": point.removed, "turn": point.turn, "reason": point.reason,
            })
        return point

    async def checkpoints(self, ref: str) -> list[Checkpoint]:
        session = self._engine.get(ref)
        return await checkpoints.listing(await self._repo_root(session), session.id, session.base_commit)

    async def _repo_root(self, session: Session) -> Path:
        """Where to read a session's checkpoints: they outlive its worktree (e.g. after a merge)."""
        return (await self._engine.repo_info(session.repo_id)).root

    async def _points(self, cwd: Path, session: Session) -> list[Checkpoint]:
        """#0 (the base commit) and every checkpoint, in order."""
        base = await checkpoints.base_point(cwd, session.base_commit)
        return [base, *await checkpoints.listing(cwd, session.id, session.base_commit)]

    async def checkpoint_diff(self, ref: str, n: int, path: str | None = None) -> Change:
        """What turn `n`'s checkpoint changed: the diff from the checkpoint before it."""
        session = self._engine.get(ref)
        root = await self._repo_root(session)
        points = await self._points(root, session)
        point = _numbered(session, points, n)
        if point.n == 0:
            raise CockpitError("checkpoint #0 is the base commit; it changed nothing (ask for #1 or later)")
        before = points[points.index(point) - 1]
        return await tree_change(root, before.commit, point.commit, large_file_lines=self._fold(), path=path)

    async def rollback(self, ref: str, n: int) -> Checkpoint:
        """Put the worktree and branch back as they were at checkpoint `n` (0: the base commit).

        The current state is checkpointed first, so the rollback itself can be rolled back.
        """
        session = self._with_worktree(ref)
        session.refuse_read_only("roll back")
        if session.state in LIVE:
            raise CockpitError(f"session @{session.number} is {session.state.value}; interrupt it first (x)")
        async with self._locks[session.id]:
            points = await self._points(session.path, session)
            target = _numbered(session, points, n)
            tree = await snapshot_tree(session.path)
            saved = await self._checkpoint(session, tree, turn=0, reason=f"before rollback to #{n}")
            undo = saved or points[-1]
            changed = await checkpoints.restore(session.path, tree, target)
        self._engine.emit(session.id, ev.NOTICE, {
            "text": f"rolled back to checkpoint #{n} ({target.reason}); to undo, roll back to #{undo.n}",
            "rollback": n,
        })
        await self.report_diffstat(session)
        if changed:
            listed = ", ".join(changed[:20]) + (f" and {len(changed) - 20} more" if len(changed) > 20 else "")
            await self.tell(session, (
                f"The reviewer rolled your worktree and branch back to checkpoint #{n} ({target.reason}). "
                f"These files changed back: {listed}. Re-read them before you edit them."
            ))
        return target

    async def forget(self, session: Session) -> None:
        """Drop what review keeps for a session that is being removed, its checkpoints included."""
        self._notes.pop(session.id, None)
        self._turns.pop(session.id, None)
        self._locks.pop(session.id, None)
        self._stats.pop(session.id, None)
        self._stat_locks.pop(session.id, None)
        await checkpoints.forget((await self._engine.repo_info(session.repo_id)).root, session.id)

    # -- hunks and comments ----------------------------------------------------------------------

    async def revert_hunk(self, ref: str, path: str, hunk: int, digest: str) -> None:
        """Undo one hunk of the session's change in its worktree (never its index or branch).

        `hunk` is the hunk's index in the file (from 0) and `digest` its `Hunk.digest` as the
        person saw it: a file that changed since is refused.
        """
        session = self._with_worktree(ref)
        session.refuse_read_only("revert a hunk")
        async with self._locks[session.id]:
            tree = await snapshot_tree(session.path)
            change = await tree_change(session.path, session.base_commit, tree,
                                       large_file_lines=self._fold(), path=path, exact=True)
            diff = change.file(path)
            if diff is None:
                raise CockpitError(f"{path} has no change in session @{session.number} any more; reload the diff")
            if diff.binary or diff.status == "type-changed" or not diff.hunks:
                raise CockpitError(
                    f"{path} {_without_hunks(diff)}: there is no hunk to revert; roll back a checkpoint instead"
                )
            if not 0 <= hunk < len(diff.hunks) or diff.hunks[hunk].digest != digest:
                raise CockpitError(f"{path} changed since you looked at it; reload the diff")
            chosen = diff.hunks[hunk]
            await asyncio.to_thread(revert_in_file, session.path, diff, chosen)
        self._engine.emit(session.id, ev.NOTICE, {"text": f"reverted {chosen.header} in {diff.path}"})
        await self.report_diffstat(session)
        quoted = visible("\n".join(chosen.patch_lines()))
        if len(quoted) > _QUOTE_CAP:
            quoted = quoted[:_QUOTE_CAP] + "\n… (cut)"
        await self.tell(session, (
            f"The reviewer reverted this change of yours in {diff.path} ({chosen.header}); that part of "
            f"the file is back to how it was before. Do not make it again unless asked.\n```diff\n{quoted}\n```"
        ))

    async def comment(self, ref: str, path: str, line: int, text: str) -> None:
        """Send the agent the person's comment on line `line` of `path` (as it is now)."""
        session = self._with_worktree(ref)
        if not text.strip():
            raise CockpitError("the comment is empty: write what the agent should do about the line")
        target = _inside(session, path)
        try:
            lines = (await asyncio.to_thread(target.read_bytes)).split(b"\n")
        except OSError:
            raise NotFound(f"{path}: no such file in the worktree of session @{session.number}") from None
        count = len(lines) - (lines[-1] == b"")
        if not 1 <= line <= count:
            raise CockpitError(f"{path} has {count} lines; there is no line {line}")
        quoted = lines[line - 1].decode("utf-8", "replace").rstrip("\r")
        await self.tell(session, f"Review comment on {path}, line {line}:\n> {quoted}\n\n{text.strip()}")


def _numbered(session: Session, points: list[Checkpoint], n: int) -> Checkpoint:
    for point in points:
        if point.n == n:
            return point
    last = points[-1].n
    have = "only #0 (its base)" if last == 0 else f"#0 (its base) to #{last}"
    raise NotFound(f"session @{session.number} has no checkpoint #{n}; it has {have}")


def _without_hunks(diff: FileDiff) -> str:
    if diff.binary:
        return "is a binary file"
    if diff.status == "type-changed":
        return "changed type (file and symbolic link)"
    return "has no changed lines (a rename, a mode change or an empty file)"


def _inside(session: Session, path: str) -> Path:
    """`path` in the session's worktree, refusing anything that leads out of it or into .git."""
    root = session.path.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or target == root or ".git" in target.relative_to(root).parts:
        raise CockpitError(f"{path}: not a file of session @{session.number}'s worktree")
    return target


# -- reverting one hunk in a file ------------------------------------------------------------------


def revert_in_file(root: Path, diff: FileDiff, hunk: Hunk) -> None:
    """Replace the hunk's new lines in the worktree's file by its old lines, byte for byte.

    `hunk` comes from an exact parse (`tree_change(exact=True)`), so its texts give back the
    file's bytes. An added file whose only hunk is reverted is deleted; a deleted file comes
    back with its old mode. The file is replaced atomically, never half-written.
    """
    target = Path(root) / diff.path
    old_side, new_side = _sides(hunk)
    current = _read(target) if diff.status != "deleted" else b""
    lines = _split(current)
    at = hunk.new_start if hunk.new_count == 0 else hunk.new_start - 1
    if lines[at : at + len(new_side)] != new_side:
        raise CockpitError(f"{diff.path} changed since you looked at it; reload the diff")
    result = b"".join(lines[:at] + old_side + lines[at + len(new_side):])
    if diff.status == "added" and not result:
        checkpoints.remove_files(root, [diff.path])
        return
    mode = diff.old_mode if diff.status == "deleted" else ""
    _write(target, result, mode)


def _sides(hunk: Hunk) -> tuple[list[bytes], list[bytes]]:
    """The hunk's old and new lines as bytes with their newlines ("\\ No newline" honoured)."""
    old: list[bytes] = []
    new: list[bytes] = []
    touched: tuple[list[bytes], ...] = ()
    for line in hunk.lines:
        if line.kind == "\\":
            for side in touched:
                side[-1] = side[-1].removesuffix(b"\n")
            continue
        data = encoded(line.text) + b"\n"
        touched = (old, new) if line.kind == " " else (old,) if line.kind == "-" else (new,)
        for side in touched:
            side.append(data)
    return old, new


def _split(data: bytes) -> list[bytes]:
    """Lines with their "\\n" kept, split only on "\\n" as git does ("\\r" stays in the line)."""
    parts = data.split(b"\n")
    return [part + b"\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _read(target: Path) -> bytes:
    if target.is_symlink():  # git stores a symlink as its target path
        return os.fsencode(os.readlink(target))
    return target.read_bytes()


def _write(target: Path, data: bytes, mode: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.cockpit-revert")
    if mode == "120000" or (not mode and target.is_symlink()):
        temp.unlink(missing_ok=True)
        os.symlink(os.fsdecode(data), temp)
    else:
        temp.write_bytes(data)
        if mode:
            os.chmod(temp, 0o755 if mode == "100755" else 0o644)
        elif target.exists():
            os.chmod(temp, target.stat().st_mode & 0o7777)
    os.replace(temp, target)
