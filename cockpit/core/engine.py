"""The engine: the one API that the UI, the CLI and the socket server drive.

It owns the store, the worktree manager, the event bus and one `SessionHost` per session.
Commands are async methods (and `execute()` takes the same commands as JSON-able dicts);
everything that happens comes out as events on `subscribe()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import shutil
import string
from collections.abc import Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any

from cockpit.config import AgentConfig, Config, cockpit_home, untrusted_line
from cockpit.core import events as ev
from cockpit.core import net_proxy, registry
from cockpit.core.agent_api import AgentFactory, AgentRuntime, ApprovalDecision, TerminalBackend
from cockpit.core.bus import EventBus, EventFilter, Subscription
from cockpit.core.coalesce import TextCoalescer
from cockpit.core.containment import end_session_processes
from cockpit.core.environment import agent_environment
from cockpit.core.configs import RepoConfigs
from cockpit.core.events import Event
from cockpit.core.git import git_out
from cockpit.core.host import SessionHost
from cockpit.core.landing import Landing
from cockpit.core.fork_conversation import ACP_FORK_OF, acp_session_of, carry_conversation
from cockpit.core.model import Repo, Session, Usage
from cockpit.core.placement import Placement
from cockpit.core.review import Review
from cockpit.core.router import Route, route
from cockpit.core.sandbox import Sandbox, sandbox_for, session_tmp, unavailable_reason
from cockpit.core.setup import bring_local_files, port_block, run_script, session_env
from cockpit.core.states import LIVE, State, check_transition
from cockpit.core.store import Store
from cockpit.core.textcap import cap_text
from cockpit.core.worktrees import RepoInfo, Worktree, WorktreeManager
from cockpit.core.verify import verify_command
from cockpit.errors import CockpitError, ConfigError, NotFound

COALESCE_INTERVAL = 0.5
#: Sessions whose post-turn work (checkpoint, diff stat, verify) runs at once; the rest wait.
#: Each starts git processes, and starting one holds the event loop for a few milliseconds: a
#: hundred sessions ending their turns together otherwise stalled commands for a quarter second.
AFTER_TURN_SLOTS = 4
_ID_ALPHABET = string.ascii_lowercase + string.digits


class Engine:
    def __init__(self, home: Path, config: Config | None, store: Store, agent_factory: AgentFactory | None):
        self.home = home
        #: per repository: `config` (None: the user's file) overlaid by that repository's own file
        self.configs = RepoConfigs(config)
        self.store = store
        self.worktrees = WorktreeManager(home)
        self.bus = EventBus()
        self.agent_factory = agent_factory
        self.repos: dict[int, Repo] = {}
        self._repo_info: dict[int, RepoInfo] = {}
        self.sessions: dict[str, Session] = {}
        self.hosts: dict[str, SessionHost] = {}
        self._seq: dict[str, int] = {}
        self._last_number = 0
        self._coalescer = TextCoalescer(store.append_nowait)
        self._writable = asyncio.Event()  # cleared while the store cannot write: agents hold
        self._writable.set()
        store.on_blocked = self._storage_changed
        self._flusher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # background work to finish before close
        self._after_turn_slots = asyncio.Semaphore(AFTER_TURN_SLOTS)
        self.review = Review(self)
        self.landing = Landing(self)
        self.services = {feature.name: feature.service(self) for feature in registry.features()}

    def __getattr__(self, name: str) -> Any:
        """A registered feature's service: `engine.experiments` (see `cockpit.core.registry`)."""
        services = self.__dict__.get("services", {})
        if name in services:
            return services[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- life cycle ------------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        home: Path | None = None,
        config: Config | None = None,
        agent_factory: AgentFactory | None = None,
    ) -> Engine:
        """Open the store, restore every session, adopt worktrees a crash left behind.

        `config` None: the user's `config.toml`; each repository's `.cockpit.toml` overlays it for
        that repository's sessions.
        """
        home = Path(home) if home is not None else cockpit_home()
        home.mkdir(parents=True, exist_ok=True)
        os.chmod(home, 0o700)
        store = await Store.open(home / "cockpit.db")
        try:
            engine = cls(home, config, store, agent_factory)
            await engine._restore()
        except BaseException:
            await store.close()
            raise
        engine._flusher = asyncio.create_task(engine._flush_loop(), name="cockpit-coalesce")
        engine.review.start()
        registry.opened(engine.services.values())
        return engine

    def watch_config(self) -> None:
        """Re-read config files as they change and say so (a `config` event): for long-lived
        engines. (Files are re-read on use anyway; this is what tells the screens.)"""
        self._background(self.configs.watch(self._config_changed))

    @property
    def config(self) -> Config:
        """The base config: the user's (or the one the engine was opened with), no repository's."""
        return self.configs.base

    def config_for(self, session: Session) -> Config:
        """The config a session runs under: the base overlaid by its own repository's file."""
        return self.configs.for_repo(self.repos[session.repo_id].path)

    def _config_changed(self, status: str, line: str) -> None:
        self.emit("", ev.CONFIG, {"status": status, "text": line})

    def verify_command(self, session: Session) -> str:
        """The session's verify command, or one line saying why there is none."""
        config = self.config_for(session)
        report = self.configs.report(self.repos[session.repo_id].path)
        if not config.review.verify.strip() and report is not None and "review.verify" in report.ignored:
            raise CockpitError(f"the verify command of {report.path} is ignored because that file is not trusted "
                               f"(if you trust it: `cockpit trust {report.path.parent}`)")
        return verify_command(config.review)

    async def _restore(self) -> None:
        self._last_number = int(await self.store.get_meta("last_number", "0"))
        self._seq = await self.store.last_seq()
        for repo in await self.store.repos():
            self.repos[repo.id] = repo
        for session in await self.store.sessions():
            self.sessions[session.id] = session
            session.repo = session.repo or self.repos[session.repo_id].slug  # made before sessions named it
            self._last_number = max(self._last_number, session.number)
            if session.state in LIVE:
                # The process that ran this turn is gone; say so instead of pretending.
                session.state, session.state_detail = State.IDLE, "interrupted by restart"
                self.store.save_session_nowait(session)
        for session in self.sessions.values():
            self.hosts[session.id] = SessionHost(self, session, self._env_for(session))
        scratch_left = self.landing.clear_scratch()  # a crash mid-verify leaves its folder
        for repo in list(self.repos.values()):
            with contextlib.suppress(CockpitError):
                if scratch_left:
                    await self.worktrees.prune(await self.repo_info(repo.id))
                await self._adopt_orphans(repo)

    async def close(self) -> None:
        """Stop every agent and make everything emitted so far durable (safe to call twice)."""
        if self.store.closed:
            return
        self.configs.stop_watching()
        for service in self.services.values():  # first: an experiment loop would otherwise start agents again
            await service.close()
        await self.review.close()
        for host in list(self.hosts.values()):
            await self._stop_agent(host)
        if isinstance(self.agent_factory, AgentRuntime):
            await self.agent_factory.shutdown()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        net_proxy.close_under(self.home)
        self._coalescer.flush()
        self.bus.close()
        await self.store.close()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(COALESCE_INTERVAL)
            self._coalescer.flush()

    # -- events ----------------------------------------------------------------------------------

    def subscribe(self, maxsize: int = 10_000, accept: EventFilter | None = None) -> Subscription:
        return self.bus.subscribe(maxsize, accept)

    def emit(self, session_id: str, kind: str, data: dict[str, Any] | None = None) -> Event:
        seq = self._seq.get(session_id, 0) + 1
        self._seq[session_id] = seq
        event = Event(kind, session_id, cap_text(data) if data else {}, seq)  # events carry text, not files
        self.bus.publish(event)
        self._coalescer.feed(event)
        if kind == ev.TURN_END:
            self._background(self._after_turn(session_id))
        return event

    async def _after_turn(self, session_id: str) -> None:
        """Work that follows every agent turn, off the agent's path: checkpoint the worktree,
        report how much the session has changed so far, verify it when configured, then give the
        agent the review notes that waited for the turn to end."""
        session = self.sessions.get(session_id)
        if session is None or not session.path.is_dir():
            return
        tree = None
        review = self.config_for(session).review
        async with self._after_turn_slots:  # (verify may take minutes: it does not hold a slot)
            if review.checkpoints and not any(s.owns(session.id) for s in self.services.values()):
                tree = await self.review.checkpoint_turn(session)
            await self.review.report_diffstat(session, tree)
        if review.verify_after_turn and review.verify and not session.read_only:
            await self.landing.verify(session.id)
        await self.review.deliver_notes(session)

    def _background(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `work` as a task that close() cancels and waits for."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def transcript(self, session_id: str, tail: int = 0) -> list[Event]:
        """The stored events of a session (only the last `tail` when given), text still being
        coalesced and events the store holds in memory (a full disk) included."""
        await self.readable()
        return await (self.store.tail(session_id, tail) if tail else self.store.events(session_id))

    async def readable(self) -> None:
        """Make everything emitted so far readable from the store: written, or held in memory
        by a store that cannot write (whose reads include it); never waits for a full disk."""
        self._coalescer.flush()
        await self.store.written_or_blocked()

    async def sync(self) -> None:
        """Make everything emitted so far durable."""
        self._coalescer.flush()
        await self.store.flush()

    # -- a store that cannot write -----------------------------------------------------------------

    @property
    def paused(self) -> str:
        """Why agents are held (the store cannot write) and the file, which names the folder to
        free; the reason first, so a narrow status bar that cuts the line keeps it."""
        if not self.store.blocked:
            return ""
        return f"agents paused: {self.store.blocked} (cannot write {self.store.path})"

    def _storage_changed(self, reason: str) -> None:
        """The store started or stopped failing to write: hold or release the agents and tell
        every screen (a cockpit event, stored too once the store can write: a record of the pause)."""
        if reason:
            self._writable.clear()
        else:
            self._writable.set()
        self.emit("", ev.STORAGE, {"paused": bool(reason), "reason": self.paused, "folder": str(self.home)})

    async def hold(self, session: Session) -> None:
        """Return at once while the store can write; else keep the session's agent here (its
        state detail saying why) until it can, so nothing more happens that cannot be recorded."""
        if self._writable.is_set():
            return
        state, detail = session.state, session.state_detail
        self.set_state(session, state, self.paused)
        await self._writable.wait()
        if session.state == state:
            self.set_state(session, state, detail)

    def snapshot(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in sorted(self.sessions.values(), key=lambda s: s.number)]

    def snapshot_point(self) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """The sessions and each one's last event seq, at one instant.

        Streamed text is handed to the store right here, so once `store.flush()` returns the
        store holds every stored event up to those seqs and no text run that straddles one: a
        subscriber taken just before this call, plus the store read up to those seqs after it,
        see every event exactly once (the server's attach).
        """
        self._coalescer.flush()
        return self.snapshot(), dict(self._seq)

    # -- repositories ----------------------------------------------------------------------------

    async def add_repo(self, path: Path | str) -> Repo:
        info = await self.worktrees.inspect_repo(path)
        repo = await self.store.add_repo(str(info.root), info.slug)
        self.repos[repo.id] = repo
        self._repo_info[repo.id] = RepoInfo(info.root, info.common_dir, repo.slug)
        return repo

    async def repo_info(self, repo_id: int) -> RepoInfo:
        if repo_id not in self._repo_info:
            await self.add_repo(self.repos[repo_id].path)
        return self._repo_info[repo_id]

    async def _adopt_orphans(self, repo: Repo) -> None:
        info = await self.repo_info(repo.id)
        known = {Path(s.worktree) for s in self.sessions.values() if s.repo_id == repo.id}
        for entry in await self.worktrees.orphans(info, known):
            slug = entry.path.name
            base = await git_out(info.root, "merge-base", entry.head, "HEAD")
            made = Worktree(entry.path, entry.branch, slug, base, base)
            session = self._new_session(repo, made, name=slug, agent=self.configs.for_repo(repo.path).defaults.agent,
                                        model="", task="", tags=["adopted"])
            session.state = State.IDLE
            await self._register(session, notice=f"adopted worktree {entry.path} left by an earlier run")

    # -- sessions: create ------------------------------------------------------------------------

    async def create_sessions(
        self,
        repo_path: Path | str,
        *,
        name: str = "",
        base_ref: str | None = None,
        agent: str | None = None,
        model: str = "",
        task: str = "",
        tags: Sequence[str] = (),
        count: int = 1,
        fork_of: str | None = None,
        branch: str | None = None,
        worktree: str | None = None,
        read_only: bool = False,
    ) -> list[Session]:
        """Create `count` sessions (a fan-out of the same task when count > 1), concurrently.

        `branch`, `worktree` and `read_only` place a session elsewhere than a new branch (see
        `cockpit.core.placement`); a fork runs its source's agent unless told otherwise and, for
        the built-in agent, starts with its source's conversation."""
        if count < 1:
            raise CockpitError(f"count must be at least 1, got {count}")
        check_name(name)
        repo = await self.add_repo(repo_path)
        info = self._repo_info[repo.id]
        config = self.configs.for_repo(info.root)
        source = self.get(fork_of) if fork_of else None
        agent = agent or (source.agent if source else config.defaults.agent)
        placement = Placement(branch, worktree, read_only)
        placement.check(count=count, forking=source is not None, agent=agent, kind=config.agent(agent).kind)
        if base_ref is None and source is None:
            base_ref = config.defaults.base_ref or None
        await self.worktrees.resolve_base(info, base_ref if source is None else source.base_commit)
        base = (name or (task.split("\n")[0][:30] if task else "") or (f"fork-{source.slug}" if source else "")
                or (branch or "").removeprefix("refs/heads/") or (Path(worktree).name if worktree else "")
                or ("read-only" if read_only else "session"))
        base = f"session-{base}" if base.isdigit() else base  # a number names a session by number
        names = [base if count == 1 else f"{base}-{i + 1}" for i in range(count)]
        # Numbers follow the names (@1 is x-1), whichever worktree happens to be ready first.
        numbers = [self._next_number() for _ in names]
        group = self._new_id() if count > 1 else ""
        sparse = config.worktrees.sparse
        taken = [s.worktree for s in self.sessions.values() if s.repo_id == repo.id and not s.read_only]

        async def one(session_name: str, number: int) -> Session:
            owns_worktree = owns_branch = True
            if source is not None:
                made = await self.worktrees.fork(info, source.path, session_name, sparse=sparse)
                made = Worktree(made.path, made.branch, made.slug, source.base_ref, source.base_commit)
            else:
                placed = await placement.make(self.worktrees, info, session_name, base_ref, sparse=sparse, taken=taken)
                made, owns_worktree, owns_branch = placed.worktree, placed.owns_worktree, placed.owns_branch
            session = self._new_session(repo, made, name=session_name, agent=agent, model=model,
                                        task=task, tags=list(tags), number=number)
            session.group = group
            session.owns_worktree, session.owns_branch, session.read_only = owns_worktree, owns_branch, read_only
            if source is not None:
                session.forked_from = source.id
            await self._register(session)
            self._tell_untrusted(session, info.root)
            if source is not None:
                await self._carry_conversation(source, session)
            if owns_worktree:  # a worktree someone else made is used as it is
                await self._prepare(session, info)
            return session

        results = await asyncio.gather(*(one(n, k) for n, k in zip(names, numbers)), return_exceptions=True)
        created = [r for r in results if isinstance(r, Session)]
        for session in created:
            await self._start_agent(session, task)
        await self.sync()
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            # The sessions that were made stay (they are in the snapshot); report the first failure.
            raise failures[0]
        return created

    async def _carry_conversation(self, source: Session, fork: Session) -> None:
        """Give a fork its source's conversation: copied for the built-in agent, forked inside an
        ACP agent that can (its backend asks), else the fork starts afresh and says so."""
        if source.agent != fork.agent or fork.kind not in ("llm", "acp"):
            self.emit(fork.id, ev.NOTICE, {"text": f"forked from @{source.number}: files only, "
                                                   f"agent {fork.agent!r} starts a new conversation"})
            return
        events = await self.transcript(source.id)
        if fork.kind == "acp":
            acp_session = acp_session_of(events, source.agent)
            if acp_session:
                self.emit(fork.id, ev.NOTICE, {"text": f"forked from @{source.number}: asking {fork.agent} to "
                                                       "fork its conversation", ACP_FORK_OF: acp_session,
                                               "agent": fork.agent})
            return
        carried = carry_conversation(events, lambda kind, data: self.emit(fork.id, kind, data))
        self.emit(fork.id, ev.NOTICE, {"text": f"forked from @{source.number} with its conversation "
                                               f"({carried} messages)"})

    def _next_number(self) -> int:
        self._last_number += 1
        self.store.set_meta_nowait("last_number", str(self._last_number))
        return self._last_number

    def _new_session(self, repo: Repo, made: Worktree, *, name: str, agent: str, model: str,
                     task: str, tags: list[str], number: int | None = None) -> Session:
        number = self._next_number() if number is None else number
        config = self.configs.for_repo(repo.path)
        return Session(
            id=self._new_id(), number=number, name=name, slug=made.slug, repo_id=repo.id, repo=repo.slug,
            branch=made.branch, base_ref=made.base_ref, base_commit=made.base_commit,
            worktree=str(made.path), agent=agent, kind=getattr(config.agents.get(agent), "kind", ""),
            model=model, task=task, tags=tags, port=port_block(number, config.worktrees),
        )

    def _new_id(self) -> str:
        while True:
            candidate = "".join(secrets.choice(_ID_ALPHABET) for _ in range(5))
            if candidate not in self.sessions and not candidate.isdigit():
                return candidate

    def _env_for(self, session: Session) -> dict[str, str]:
        try:
            block = self.config_for(session).worktrees.port_block
        except ConfigError:  # a repository file broken since: shown when the session is used
            block = self.config.worktrees.port_block
        return session_env(
            session_id=session.id, name=session.name, worktree=session.path, branch=session.branch,
            port=session.port, port_count=block,
        )

    def _tell_untrusted(self, session: Session, root: Path) -> None:
        """A session of a repository whose untrusted file wanted more than it got: say what was
        left out and how to trust it (on the session, and to screens, which may ask)."""
        report = self.configs.report(root)
        if report is None or not report.ignored:
            return
        line = untrusted_line(report)
        self.emit(session.id, ev.NOTICE, {"text": line})
        self.emit("", ev.CONFIG, {"status": "untrusted", "text": line, "repo": str(report.path.parent),
                                  "file": str(report.path), "digest": report.digest, "ignored": report.ignored})

    async def trust(self, repo: str, revoke: bool = False, digest: str = "") -> dict[str, Any]:
        """Trust (or stop trusting) a repository's `.cockpit.toml` as it is now (and still has
        `digest`, when given)."""
        root = Path(repo)
        if not root.is_absolute():  # the server's folder is not the person's
            raise CockpitError(f"trust: the repository must be an absolute path, got {repo!r}")
        if revoke:
            return {"repo": str(root.resolve()), "revoked": self.configs.trust.revoke(root)}
        return {"repo": str(root.resolve()), "digest": self.configs.trust.trust(root, digest)}

    async def _register(self, session: Session, notice: str = "") -> None:
        self.sessions[session.id] = session
        self.hosts[session.id] = SessionHost(self, session, self._env_for(session))
        await self.store.save_session(session)
        self.emit(session.id, ev.SESSION_CREATED, {"session": session.to_dict()})
        if notice:
            self.emit(session.id, ev.NOTICE, {"text": notice})
        unconfined = unavailable_reason(self.config_for(session).sandbox)
        if unconfined:
            self.emit(session.id, ev.NOTICE, {"sandbox": False, "text": f"{unconfined}: this session's commands run "
                                              "unconfined, and the built-in agent asks before each shell command"})

    async def _prepare(self, session: Session, info: RepoInfo) -> None:
        """Bring local files and run the set-up script; failures are shown, not fatal."""
        cfg = self.config_for(session).worktrees
        brought = await asyncio.to_thread(bring_local_files, info.root, session.path, cfg)
        if brought.files:
            self.emit(session.id, ev.NOTICE, {"text": f"brought from the main checkout: {', '.join(brought.files)}"})
        for line in brought.refused:
            self.emit(session.id, ev.NOTICE, {"text": line})
        if cfg.setup:
            result = await run_script(cfg.setup, session.path, self.command_env(session), cfg.setup_timeout,
                                      sandbox=self.sandbox(session, session.path))
            status = "ok" if result.ok else ("timed out" if result.timed_out else f"failed (exit {result.exit_code})")
            self.emit(session.id, ev.NOTICE, {
                "text": f"set-up script {status}", "output": result.output, "ok": result.ok, "setup": True,
            })

    async def _start_agent(self, session: Session, task: str = "") -> None:
        """Start the session's backend and give it `task` (the first instruction) if any."""
        host = self.hosts[session.id]
        if self.agent_factory is None:
            if task:  # no agents in this process (the CLI): record the task for later
                self.emit(session.id, ev.USER_MESSAGE, {"text": task})
            if session.state == State.STARTING:
                self.set_state(session, State.IDLE, "task not started: resume it (r) in the cockpit" if task else "")
            return
        try:
            host.backend = registry.engine_agent(self, host) or self.agent_factory(host)
            await host.backend.start()
        except CockpitError as exc:
            host.backend = None
            self.emit(session.id, ev.ERROR, {"text": str(exc)})  # the pane shows why it is red
            self.set_state(session, State.ERROR, str(exc))
            return
        if task:
            await self.send(session.id, task)
        elif session.state == State.STARTING:
            self.set_state(session, State.IDLE)

    async def _stop_agent(self, host: SessionHost, *, sweep: bool = False) -> None:
        """Close the backend, then kill whatever the session's processes left running (`setsid`
        and double-forked ones included); `sweep` does that even when no backend ran here."""
        host.cancel_approvals()
        ran = host.backend is not None
        if host.backend is not None:
            backend, host.backend = host.backend, None
            with contextlib.suppress(Exception):
                await backend.close()
        if ran or sweep:
            await end_session_processes(host.env)

    # -- sessions: state, usage, budget ----------------------------------------------------------

    def get(self, ref: str) -> Session:
        """A session by id, number (`3` or `@3`) or name."""
        key = ref.removeprefix("@")
        if key in self.sessions:
            return self.sessions[key]
        sessions = self.sessions.values()
        found = ([s for s in sessions if s.number == int(key)] if key.isdigit()  # numbers win, always
                 else [s for s in sessions if key in (s.name, s.slug)])
        if found:
            return found[0]
        raise NotFound(f"no session {ref!r} (see `cockpit ls`)")

    def set_state(self, session: Session, state: State, detail: str = "") -> None:
        check_transition(session.state, state)
        if state == session.state and detail == session.state_detail:
            return
        session.state, session.state_detail = state, detail
        self.emit(session.id, ev.SESSION_STATE, {"state": state.value, "detail": detail})
        self.store.save_session_nowait(session)
        host = self.hosts.get(session.id)
        if host is not None and host.on_state is not None:
            host.on_state(state, detail)

    def add_usage(self, session: Session, model: str, usage: Usage) -> None:
        session.usage.add(usage)
        self.store.record_usage_nowait(session.id, model, usage)
        self.emit(session.id, ev.USAGE, {
            "model": model, "turn": dataclasses.asdict(usage), "session": dataclasses.asdict(session.usage),
        })
        self.store.save_session_nowait(session)

    def total_usage(self) -> Usage:
        total = Usage()
        for session in self.sessions.values():
            total.add(session.usage)
        return total

    def budget_exceeded(self, session: Session) -> str:
        """Why the session must not spend more, or "" while every cap has room."""
        caps = self.config_for(session).budgets
        total = self.total_usage()
        checks = (
            (caps.session_usd, session.usage.cost_usd, "session budget ${cap:.2f}"),
            (caps.total_usd, total.cost_usd, "total budget ${cap:.2f}"),
            (caps.session_tokens, session.usage.total_tokens, "session budget of {cap:.0f} tokens"),
            (caps.total_tokens, total.total_tokens, "total budget of {cap:.0f} tokens"),
        )
        for cap, spent, label in checks:
            if cap and spent >= cap:
                return "reached the " + label.format(cap=cap)
        return ""

    # -- sessions: commands ----------------------------------------------------------------------

    def route(self, line: str, *, focused: str | None = None, marked: Iterable[str] = ()) -> Route:
        return route(line, sorted(self.sessions.values(), key=lambda s: s.number), focused=focused, marked=marked)

    async def send_line(self, line: str, *, focused: str | None = None, marked: Iterable[str] = ()) -> list[Session]:
        """Route an instruction line and send its text to every target."""
        routed = self.route(line, focused=focused, marked=marked)
        for session in routed.targets:
            await self.send(session.id, routed.text)
        return list(routed.targets)

    async def _open_session(self, ref: str) -> tuple[Session, SessionHost]:
        """A session that can take instructions, its agent started if it was not yet.

        Restored sessions (after a restart) and ones whose agent failed to start get their
        backend here, on first use, so start-up never pays for agents nobody talks to.
        """
        session = self.get(ref)
        if session.state in (State.ARCHIVED, State.MERGED):
            raise CockpitError(f"session @{session.number} is {session.state.value}; unarchive it first")
        host = self.hosts[session.id]
        if host.backend is None and self.agent_factory is not None:
            await self._start_agent(session)
        return session, host

    async def send(self, ref: str, text: str) -> None:
        session, host = await self._open_session(ref)
        self.emit(session.id, ev.USER_MESSAGE, {"text": text})
        if host.backend is not None:
            await host.backend.send(text)

    async def resume(self, ref: str) -> None:
        """Continue a session's conversation without new text (after an error, a restart, a CLI task)."""
        session, host = await self._open_session(ref)
        if host.backend is None:
            raise CockpitError(f"session @{session.number} has no agent running in this process")
        await host.backend.send("")

    async def terminal(self, ref: str, *, start: bool = True) -> TerminalBackend | None:
        """The program of a terminal session, for keys, resizes and its screen.

        With `start` its program is started first if it was not yet (typing into a restored
        session); without, None when it is not running here (a pane sizing itself must not
        start every terminal at start-up).
        """
        session = self.get(ref)
        agent = self.config_for(session).agents.get(session.agent)
        if agent is None or agent.kind != "terminal":
            raise CockpitError(f"session @{session.number} is not a terminal session (agent {session.agent!r})")
        host = self.hosts[session.id]
        if start and host.backend is None:
            session, host = await self._open_session(ref)
            if host.backend is None:
                raise CockpitError(f"session @{session.number} has no agent running in this process")
        backend = host.backend
        return backend if isinstance(backend, TerminalBackend) else None

    async def interrupt(self, ref: str) -> None:
        session = self.get(ref)
        host = self.hosts[session.id]
        host.cancel_approvals()
        if host.backend is not None:
            await host.backend.interrupt()
        if session.state in LIVE:
            self.set_state(session, State.IDLE, "interrupted")

    async def approve(self, ref: str, request_id: str | None = None, *, reason: str = "", always: bool = False) -> None:
        session = self.get(ref)
        self.hosts[session.id].resolve(request_id, ApprovalDecision(True, reason, always))

    async def deny(self, ref: str, request_id: str | None = None, *, reason: str = "") -> None:
        session = self.get(ref)
        self.hosts[session.id].resolve(request_id, ApprovalDecision(False, reason))

    async def tag(self, ref: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> Session:
        session = self.get(ref)
        gone = {t.lstrip("#") for t in remove}
        tags = [t for t in session.tags if t not in gone]
        tags += [t.lstrip("#") for t in add if t.lstrip("#") not in tags]
        session.tags = tags
        return await self._updated(session)

    async def rename(self, ref: str, name: str) -> Session:
        check_name(name)
        session = self.get(ref)
        session.name = name
        return await self._updated(session)

    async def _updated(self, session: Session) -> Session:
        self.emit(session.id, ev.SESSION_UPDATED, {"session": session.to_dict()})
        await self.store.save_session(session)
        return session

    async def archive(self, ref: str) -> Session:
        """Stop the agent and hide the session; its worktree and branch stay."""
        session = self.get(ref)
        await self._stop_agent(self.hosts[session.id])
        self.set_state(session, State.ARCHIVED)  # queues the record
        await self.store.flush()
        return session

    async def unarchive(self, ref: str) -> Session:
        session = self.get(ref)
        self.set_state(session, State.IDLE)  # queues the record
        await self._start_agent(session)
        await self.store.flush()
        return session

    async def remove(self, ref: str, *, delete_branch: bool = False) -> None:
        """Stop the agent, run the tear-down script, remove the worktree and forget the session."""
        session = self.get(ref)
        await self.remove_worktree(session, delete_branch=delete_branch)
        self.emit(session.id, ev.SESSION_REMOVED, {"branch_kept": not delete_branch})
        self._coalescer.flush()
        await self.store.delete_session(session.id)
        await self.review.forget(session)
        del self.sessions[session.id]
        del self.hosts[session.id]

    async def remove_worktree(self, session: Session, *, delete_branch: bool = False) -> None:
        """Stop the agent, run the tear-down script and remove the worktree (and the branch when
        asked); the session record stays, e.g. to show a merged session."""
        host = self.hosts[session.id]
        await self._stop_agent(host, sweep=True)
        info = await self.repo_info(session.repo_id)
        cfg = self.config_for(session).worktrees
        if cfg.teardown and session.owns_worktree and session.path.is_dir():
            result = await run_script(cfg.teardown, session.path, self.command_env(session), cfg.setup_timeout,
                                      sandbox=self.sandbox(session, session.path))
            if not result.ok:
                self.emit(session.id, ev.NOTICE, {"text": "tear-down script failed", "output": result.output})
            await end_session_processes(host.env)
        if session.owns_worktree:
            await self.worktrees.remove(info, session.path, session.branch,
                                        delete_branch=delete_branch and session.owns_branch)
        if delete_branch and not session.owns_branch:
            self.emit(session.id, ev.NOTICE, {"text": f"kept branch {session.branch}: the session did not make it"})
        shutil.rmtree(session_tmp(self.home, session.id), ignore_errors=True)
        net_proxy.close_under(self.home, session.id)

    def command_env(self, session: Session, **overrides: str) -> dict[str, str]:
        """The environment of set-up, tear-down and verify: the session's agent's (its `pass_env`)."""
        agent = self.config_for(session).agents.get(session.agent) or AgentConfig()
        return agent_environment(agent, {**self.hosts[session.id].env, **overrides})

    def sandbox(self, session: Session, worktree: Path) -> Sandbox | None:
        """Where set-up, tear-down and verify commands of `session` run in `worktree`."""
        return sandbox_for(self.config_for(session).sandbox, worktree, self.home, session.id,
                           notify=lambda text: self.emit(session.id, ev.NOTICE, {"text": text}))

    # -- JSON commands ---------------------------------------------------------------------------

    async def execute(self, command: dict[str, Any]) -> Any:
        """Run one command given as a JSON-able dict: {"cmd": name, ...arguments}."""
        from cockpit.core.commands import dispatch

        return await dispatch(self, command)


def check_name(name: str) -> None:
    """Names that are only digits are refused: `47` must always mean session number 47."""
    if name.strip().lstrip("@").isdigit():
        raise CockpitError(f"a session name cannot be only digits ({name!r}): `@{name.strip().lstrip('@')}` "
                           f"means session number {int(name.strip().lstrip('@'))}; add a letter, e.g. 'task-{name.strip()}'")
