"""Live "files changed" for pane headers: one file watcher over every live worktree.

One watchfiles notifier (inotify on Linux, so nothing polls the disk) covers all watched
worktrees; it is rebuilt when that set changes. Events in dependency, build and cache folders
(node_modules, target, .venv, …) are dropped, bursts are grouped (~300 ms), and a session whose
files changed gets one callback at a time: writes that arrive while its callback runs make one
more call afterwards, never a pile of them.

This drives watchfiles' `RustNotify` (the engine inside `awatch`) itself, for one reason:
building it walks every folder of every worktree to register them (~150 ms per 5,000 folders
measured), and `awatch` does that on the event loop; here it runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from watchfiles._rust_notify import RustNotify

#: Folders whose churn is never part of a reviewable change (or not worth a recount).
IGNORED_DIRS = frozenset({
    ".git", "node_modules", "__pycache__", ".venv", "venv", "build", "dist", "target", ".mypy_cache",
    ".pytest_cache", ".ruff_cache", ".tox", ".nox", ".hypothesis", ".cache", ".next", ".nuxt",
    ".parcel-cache", ".gradle", ".eggs", "htmlcov", ".idea",
})
_IGNORED_SUFFIXES = (".pyc", ".pyo", ".swp", ".swx", "~", ".egg-info")
DEBOUNCE_MS = 300  # longest a burst of writes is grouped before the sessions are told
STEP_MS = 100  # a quiet gap this long ends a burst early; also how often the watch thread wakes
#: How long changes to the set of worktrees are gathered before it is checked again.
REFRESH_AFTER_S = 0.05
#: A watch call returns after this long even when nothing changed, so that a thread whose task
#: vanished without setting the stop event (a loop torn down) still ends.
_TIMEOUT_MS = 5_000


class Watcher:
    def __init__(
        self,
        roots: Callable[[], dict[str, Path]],
        on_change: Callable[[str], Awaitable[None]],
        on_failure: Callable[[str], None],
    ):
        """`roots()`: the worktrees to watch by session id, asked again whenever the set may have
        changed; `on_change(session_id)`: its files changed; `on_failure(reason)`: watching stopped."""
        self._roots = roots
        self._on_change = on_change
        self._on_failure = on_failure
        self._watching: dict[str, str] = {}  # session id -> real path of its worktree
        self._watched_roots: dict[str, Path] = {}  # what `roots()` said when `_watching` was made
        self._refresh_due = False
        self._restart = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._closing = False

    def start(self, set_changes: AsyncIterator[object]) -> None:
        """Begin watching; every item of `set_changes` means "the set of worktrees may differ"."""
        self._tasks = [
            asyncio.create_task(self._watch_loop(), name="cockpit-watch"),
            asyncio.create_task(self._follow(set_changes), name="cockpit-watch-set"),
        ]

    async def close(self) -> None:
        self._closing = True
        self._restart.set()  # the notifier thread sees it within STEP_MS and returns
        tasks = [*self._tasks, *self._running.values()]
        for task in tasks[1:]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    @property
    def watching(self) -> dict[str, str]:
        return dict(self._watching)

    def refresh(self) -> None:
        """Restart the watch if the set of worktrees changed (cheap when it did not: every state
        change of every session asks, so paths are resolved only when `roots()` differs)."""
        roots = self._roots()
        if roots != self._watched_roots and _real(roots) != self._watching:
            self._restart.set()

    async def _follow(self, set_changes: AsyncIterator[object]) -> None:
        """Changes that arrive together are looked at once: 100 sessions ending their turns at
        the same moment are 200 state changes, and checking the set after each held the loop."""
        async for _ in set_changes:
            if not self._refresh_due:
                self._refresh_due = True
                asyncio.get_running_loop().call_later(REFRESH_AFTER_S, self._refresh_now)

    def _refresh_now(self) -> None:
        self._refresh_due = False
        if not self._closing:
            self.refresh()

    async def _watch_loop(self) -> None:
        before: dict[str, str] | None = None  # what the previous round watched (None: first round)
        while not self._closing:
            self._restart = asyncio.Event()
            self._watched_roots = self._roots()
            self._watching = _real(self._watched_roots)
            added = set(self._watching) - set(before) if before is not None else set()
            before = dict(self._watching)
            if not self._watching:
                await self._restart.wait()
                continue
            try:
                await self._watch(list(self._watching.values()), added)
            except (OSError, RuntimeError) as exc:
                if all(os.path.isdir(path) for path in self._watching.values()):
                    # Not a worktree vanishing under us (that just restarts): e.g. the inotify limit.
                    self._on_failure(str(exc) or type(exc).__name__)
                    await self._restart.wait()

    async def _watch(self, paths: list[str], added: set[str]) -> None:
        """Report changes under `paths` until the set of worktrees changes (or close). The
        sessions in `added` were not watched until now: each is checked once, since its files
        may have changed before the notifier was up."""
        notify = await asyncio.to_thread(RustNotify, paths, False, False, 0, True, True)
        for session_id in added:
            self._schedule(session_id)
        try:
            while True:
                changes = await asyncio.to_thread(notify.watch, DEBOUNCE_MS, STEP_MS, _TIMEOUT_MS, self._restart)
                if changes == "stop":
                    break
                if isinstance(changes, set):
                    owners = {self._owner(path) for _, path in changes if self._relevant(path)}
                    for session_id in owners - {None}:
                        self._schedule(session_id)  # type: ignore[arg-type]
        except asyncio.CancelledError:
            # The thread inside notify.watch() returns within STEP_MS and the notifier goes with it.
            self._restart.set()
            raise
        notify.close()

    def _owner(self, path: str) -> str | None:
        for session_id, root in self._watching.items():
            if path.startswith(root + os.sep):
                return session_id
        return None

    def _relevant(self, path: str) -> bool:
        owner = self._owner(path)
        if owner is None:
            return False
        parts = path[len(self._watching[owner]) + 1:].split(os.sep)
        return not (IGNORED_DIRS.intersection(parts) or parts[-1].endswith(_IGNORED_SUFFIXES))

    def _schedule(self, session_id: str) -> None:
        if session_id in self._running:
            self._again.add(session_id)
        else:
            self._running[session_id] = asyncio.create_task(self._report(session_id))

    async def _report(self, session_id: str) -> None:
        try:
            while True:
                self._again.discard(session_id)
                await self._on_change(session_id)
                if session_id not in self._again:
                    return
        finally:
            self._running.pop(session_id, None)


def _real(roots: dict[str, Path]) -> dict[str, str]:
    """Real paths: inotify reports them, and a symlinked home must still match."""
    real = {}
    for session_id, path in roots.items():
        with contextlib.suppress(OSError):
            real[session_id] = os.path.realpath(path)
    return real
