"""The config each repository's sessions run under, kept current while the engine runs.

One engine (the server's above all) serves sessions of many repositories, started from any
folder. So config is resolved per repository: the base (the user's `config.toml`, or the
`Config` the engine was opened with) overlaid by *that* repository's `.cockpit.toml`, as far as
trust allows (`cockpit/trust.py`). One repository's file never reaches another's sessions.

Files are re-read when they change: every question checks the files' signatures (a few
`stat`s), so a session created right after an edit sees it, and `watch()` re-reads on change in
the background so the screen can say "config reloaded". A broken file is reported in one line
and the last good config stays in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchfiles import awatch

from cockpit.config import Config, RepoFile, load_config, load_config_report, user_config_path
from cockpit.errors import ConfigError
from cockpit.trust import REPO_FILE, TrustStore, repo_key

log = logging.getLogger("cockpit.config")

Signature = tuple[object, ...]


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


@dataclass
class _Resolved:
    signature: Signature
    config: Config
    report: RepoFile | None
    error: str = ""  # the last reload's failure; `config` is then the last good one


class RepoConfigs:
    def __init__(self, base: Config | None = None, trust: TrustStore | None = None):
        """`base`: a fixed base config; None reads (and re-reads) the user's `config.toml`."""
        self.trust = trust or TrustStore()
        self._from_files = base is None
        self._user_file = user_config_path()
        self._user_signature = _stat(self._user_file)
        self.base = base if base is not None else load_config(user_file=self._user_file)
        self._generation = 0  # bumped when the base changes, so every repository re-resolves
        self.base_error = ""
        self._repos: dict[str, _Resolved] = {}
        self._unsaid: list[tuple[str, str]] = []  # re-reads `refresh()` has not reported yet
        self._stop = asyncio.Event()

    # -- questions -------------------------------------------------------------------------------

    def for_repo(self, root: Path | str) -> Config:
        """The config of sessions in the repository at `root` (raises ConfigError only when its
        file never loaded)."""
        return self._resolve(root).config

    def report(self, root: Path | str) -> RepoFile | None:
        return self._resolve(root).report

    def _signature(self, root: Path | str) -> Signature:
        return (self._generation, _stat(Path(root) / REPO_FILE), self.trust.signature())

    def _resolve(self, root: Path | str) -> _Resolved:
        self._refresh_base()
        key = repo_key(root)
        signature = self._signature(key)
        known = self._repos.get(key)
        if known is not None and known.signature == signature:
            return known
        try:
            config, report = load_config_report(Path(key), base=self.base, trust=self.trust)
        except ConfigError as exc:
            if known is None:
                raise
            known.signature, known.error = signature, str(exc)
            self._unsaid.append(("error", f"{exc} (the last good config stays in force)"))
            return known
        self._repos[key] = resolved = _Resolved(signature, config, report)
        if known is not None and known.signature[0] == signature[0] and config != known.config:
            self._unsaid.append(("reloaded", f"config reloaded: {Path(key) / REPO_FILE}"))
        return resolved

    def _refresh_base(self) -> None:
        """Re-read the user's file if it changed (what happened waits in `_unsaid`)."""
        if not self._from_files:
            return
        signature = _stat(self._user_file)
        if signature == self._user_signature:
            return
        self._user_signature = signature
        try:
            self.base = load_config(user_file=self._user_file)
        except ConfigError as exc:
            self.base_error = str(exc)
            self._unsaid.append(("error", f"{self.base_error} (the last good config stays in force)"))
            return
        self.base_error = ""
        self._generation += 1
        self._unsaid.append(("reloaded", f"config reloaded: {self._user_file}"))

    # -- on change -------------------------------------------------------------------------------

    def refresh(self) -> list[tuple[str, str]]:
        """Re-read whatever changed; (status, one line) per file re-read since the last call:
        "reloaded" or "error". A file can also be re-read on use (a session created right after
        an edit); what that found is said here too, so no change goes untold."""
        self._refresh_base()
        for key in list(self._repos):
            self._resolve(key)
        said, self._unsaid = self._unsaid, []
        return said

    def watched_folders(self) -> list[Path]:
        folders = {self._user_file.parent, self.trust.path.parent} if self._from_files else {self.trust.path.parent}
        folders.update(Path(key) for key in self._repos)
        return sorted(folders)

    async def watch(self, tell: Callable[[str, str], None]) -> None:
        """Re-read on change until cancelled; `tell(status, line)` for each file re-read."""
        names = {REPO_FILE, self._user_file.name, self.trust.path.name}
        while True:
            folders = self.watched_folders()
            for folder in folders:
                with contextlib.suppress(OSError):
                    folder.mkdir(parents=True, exist_ok=True)
            if self._stop.is_set():
                return
            try:
                async for _changes in awatch(*folders, recursive=False, stop_event=self._stop, debounce=200,
                                            yield_on_timeout=True, rust_timeout=2_000,
                                            watch_filter=lambda _change, path: Path(path).name in names):
                    for status, line in self.refresh():
                        tell(status, line)
                    if self.watched_folders() != folders:  # a new repository: watch its folder too
                        break
            except (OSError, RuntimeError) as exc:  # e.g. out of inotify watches: stat on use still works
                log.warning("config watch stopped: %s", exc)
                return

    def stop_watching(self) -> None:
        """Let `watch()` end within a step of its file watcher (before its task is cancelled)."""
        self._stop.set()
