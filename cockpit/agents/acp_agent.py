"""An ACP agent (Claude Code, Gemini CLI, Codex, Goose, OpenCode …) as a session's backend.

The agent is a program speaking the Agent Client Protocol on its stdin/stdout. It runs in the
session's worktree, in the session's sandbox (`core.sandbox`: it writes its worktree, its /tmp
and the folders its `[agents.<name>] writable` names, such as its own "~/.claude", and reaches
only `allow_hosts`), in its own process group (closing the session ends it and everything it
started), with an environment built from nothing but a few basics, the agent's `pass_env` (its
API keys), its configured `env` and the session's variables: ACP's default would pass no keys,
ours would pass every secret the cockpit has. Its stderr is read without pause into a log file
rotated at a few MiB (`log_pump`), since an unread pipe freezes an agent that writes more than
64 KiB there. It joins its session's cgroup (`core.containment`), so whatever it starts, even
with `setsid`, ends with the session.

The process is started and the ACP session opened in the background when the backend starts, so
creating a session never waits for `npx` to download an agent; a turn waits for it. Each `send`
is one `session/prompt` run as a task. A restarted cockpit resumes (or loads) the agent's own
session when the agent can, from the session id kept in a notice event; if the agent process
dies, the turn ends in an error naming the log and the next instruction starts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import time
from dataclasses import dataclass
from typing import Any

from acp import PROTOCOL_VERSION, RequestError, connect_to_agent, schema, text_block
from acp.client.connection import ClientSideConnection
from acp.core import DEFAULT_STDIO_BUFFER_LIMIT_BYTES

from cockpit import __version__
from cockpit.agents.acp_client import CockpitClient
from cockpit.agents.acp_terminals import Terminals
from cockpit.agents.acp_updates import UpdateMapper
from cockpit.agents.log_pump import RotatingLog, start_log_pump
from cockpit.agents.terminal import exit_text
from cockpit.config import AgentConfig
from cockpit.core import events as ev
from cockpit.core.agent_api import AgentHost
from cockpit.core.containment import contained, end_session_processes
from cockpit.core.environment import agent_environment
from cockpit.core.fork_conversation import acp_fork_source, acp_session_of
from cockpit.core.process import KILL_GRACE_S, terminate_group
from cockpit.core.sandbox import child_exit_code, host_sandbox
from cockpit.core.states import State
from cockpit.errors import CockpitError, ConfigError

#: First start of an `npx` agent downloads it; longer than this is a hung agent.
HANDSHAKE_TIMEOUT_S = 120.0
#: How long an interrupted agent gets to end its turn before it is stopped the hard way.
CANCEL_GRACE_S = 5.0
_CLOSE_TIMEOUT_S = 2.0
_AUTH_REQUIRED = -32000
_CONTINUE = "Continue where you left off."
_INSTALL_HINTS = {
    "npx": "install Node.js for npx",
    "gemini": "install Gemini CLI: npm install -g @google/gemini-cli",
    "opencode": "install OpenCode: npm install -g opencode-ai",
    "goose": "install the Goose CLI",
}
_STOP_NOTES = {
    "max_tokens": "the agent stopped: it reached its token limit",
    "max_turn_requests": "the agent stopped: it reached its limit of model requests for one turn",
    "refusal": "the agent refused to continue",
}


class AgentFailed(CockpitError):
    """The agent could not be started, or its process or connection was lost."""


@dataclass
class _Link:
    """One running agent process, its connection and the ACP session opened on it."""

    proc: asyncio.subprocess.Process
    conn: ClientSideConnection
    session_id: str = ""
    watcher: asyncio.Task[None] | None = None
    stderr_pump: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None


class AcpAgent:
    def __init__(self, host: AgentHost, name: str, agent: AgentConfig):
        if not agent.command:
            raise ConfigError(f"agent {name!r}: kind 'acp' needs a command (set [agents.{name}] command)")
        self.host = host
        self.name = name
        self._argv = list(agent.command)
        self._env = agent_environment(agent, host.env)
        self.log_path = host.home / "logs" / f"acp-{host.session.id}.log"
        self._updates: asyncio.Queue[Any] = asyncio.Queue()
        self._sandbox = host_sandbox(host, name, agent)
        self._terminals = Terminals(self._env, self._sandbox)
        self._mapper = UpdateMapper(host, f"acp/{name}", self._terminals.output_text)
        self._queued: list[str] = []  # prompts waiting for the turn's current one to end
        self._client = CockpitClient(host, self._updates, self._mapper, self._terminals, self._queued.append)
        self._link: _Link | None = None
        self._link_lock = asyncio.Lock()
        self._turn: asyncio.Task[None] | None = None
        self._warmup: asyncio.Task[None] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._cancel_requested = False

    # -- AgentBackend --------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the command now (a missing one is a config mistake); connect in the background."""
        self._check_command()
        self._pump = asyncio.create_task(self._apply_updates(), name=f"acp-updates-{self.host.session.id}")
        self._warmup = asyncio.create_task(self._warm_up(), name=f"acp-start-{self.host.session.id}")

    async def send(self, text: str) -> None:
        """Queue the text as a prompt; start a turn unless one runs (it sends the queue next).

        Empty text resumes: a task never sent (recorded by the CLI) goes now, else the agent is
        asked to continue.
        """
        self._queued.append(text or await self._resume_text())
        if self._turn is None or self._turn.done():
            self._turn = asyncio.create_task(self._run_turn(), name=f"acp-turn-{self.host.session.id}")

    async def interrupt(self) -> None:
        """`session/cancel`; an agent that does not end its turn in time is stopped (and restarted
        by the next instruction)."""
        self._queued.clear()
        turn = self._turn
        if turn is None or turn.done():
            return
        link = self._link
        if link is not None and link.alive and link.session_id:
            self._cancel_requested = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(link.conn.cancel(session_id=link.session_id), _CLOSE_TIMEOUT_S)
            await asyncio.wait({turn}, timeout=CANCEL_GRACE_S)
        if turn.done():
            return
        stubborn = link is not None and link.alive and bool(link.session_id)
        if stubborn:
            self.host.emit(ev.NOTICE, {"text": f"{self.name} did not stop within {CANCEL_GRACE_S:g}s; "
                                               "stopping its process (the next instruction starts it again)"})
        turn.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await turn
        if stubborn:
            async with self._link_lock:
                await self._drop_link()

    async def close(self) -> None:
        """End the turn, the agent's process group and every command it started."""
        for task in (self._warmup, self._turn):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._drop_link()
        self._client.close()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump

    # -- the process ---------------------------------------------------------------------------

    def _check_command(self) -> None:
        program = self._argv[0]
        if os.sep in program and not os.path.isabs(program):
            program = os.path.join(self.host.worktree, program)
        if shutil.which(program, path=self._env.get("PATH")) is None:
            hint = _INSTALL_HINTS.get(os.path.basename(program), "install it")
            raise ConfigError(f"agent {self.name!r}: command not found: {self._argv[0]} "
                              f"({hint} or change [agents.{self.name}] command)")

    async def _warm_up(self) -> None:
        try:
            await self._connect()
        except AgentFailed as exc:
            if self._turn is None or self._turn.done():  # a turn reports its own failure
                self.host.emit(ev.ERROR, {"text": str(exc)})
                self.host.set_state(State.ERROR, str(exc))

    async def _connect(self) -> _Link:
        """The live link, (re)starting the agent and opening its session when there is none."""
        async with self._link_lock:
            if self._link is not None and self._link.alive and self._link.session_id:
                return self._link
            await self._drop_link()
            link = self._link = await self._spawn()
            try:
                await asyncio.wait_for(self._open_session(link), HANDSHAKE_TIMEOUT_S)
            except AgentFailed:
                await self._drop_link()
                raise
            except Exception as exc:  # noqa: BLE001 - whatever broke the handshake, said in one line
                message = await self._failure(link, exc, "while starting")
                await self._drop_link()
                raise AgentFailed(message) from None
            except asyncio.CancelledError:
                await self._drop_link()
                raise
            return link

    async def _spawn(self) -> _Link:
        log = RotatingLog(self.log_path)
        confined = "" if self._sandbox is None else " (sandboxed)"
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {shlex.join(self._argv)}{confined}\n".encode())
        # Our own pipe, not asyncio's: Process.wait() waits for its pipes, which a process the
        # agent started may hold open.
        stderr, pump = await start_log_pump(log, f"acp-stderr-{self.host.session.id}")
        argv = self._argv if self._sandbox is None else self._sandbox.wrap(self._argv, configured=True)
        try:
            proc = await asyncio.create_subprocess_exec(
                *contained(argv, self._env), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=stderr, cwd=self.host.worktree, env=self._env, start_new_session=True,
                limit=DEFAULT_STDIO_BUFFER_LIMIT_BYTES,
            )
        except OSError as exc:
            pump.cancel()
            raise AgentFailed(f"agent {self.name!r}: cannot start {shlex.join(self._argv)}: "
                              f"{exc.strerror or exc}") from None
        finally:
            os.close(stderr)
        assert proc.stdin is not None and proc.stdout is not None
        link = _Link(proc, connect_to_agent(self._client, proc.stdin, proc.stdout), stderr_pump=pump)
        link.watcher = asyncio.create_task(self._watch(link), name=f"acp-process-{self.host.session.id}")
        return link

    async def _watch(self, link: _Link) -> None:
        """When the process ends, close its connection so that a waiting prompt fails at once
        (a child holding stdout open would otherwise keep it waiting), and say so when neither a
        turn nor the start-up is there to report it."""
        code = self._exit_code(await link.proc.wait())
        with contextlib.suppress(Exception):
            await asyncio.wait_for(link.conn.close(), _CLOSE_TIMEOUT_S)
        if link is self._link and link.session_id and (self._turn is None or self._turn.done()):
            self.host.emit(ev.NOTICE, {"text": f"{self.name} {exit_text(code)}; the next instruction starts it "
                                               f"again (log: {self.log_path})"})

    def _exit_code(self, code: int) -> int:
        """The agent's own exit code (bubblewrap reports a killed one as 128 + N)."""
        return code if self._sandbox is None else child_exit_code(code)

    async def _drop_link(self) -> None:
        link, self._link = self._link, None
        if link is None:
            return
        await self._terminals.close()
        ending = asyncio.create_task(terminate_group(link.proc))
        await asyncio.wait({ending}, timeout=KILL_GRACE_S + _CLOSE_TIMEOUT_S)
        if not ending.done():
            # Its group is gone, but something it started (setsid) holds its stdout open, and
            # the process counts as ended only once that closes: end the session's processes.
            await end_session_processes(self._env)
            await asyncio.wait({ending}, timeout=_CLOSE_TIMEOUT_S)
            ending.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(link.conn.close(), _CLOSE_TIMEOUT_S)
        for task in (link.watcher, link.stderr_pump):
            if task is not None:
                task.cancel()

    async def _open_session(self, link: _Link) -> None:
        """Initialize, then resume or load the session a restarted cockpit had, else a new one."""
        init = await link.conn.initialize(
            protocol_version=PROTOCOL_VERSION,
            client_capabilities=schema.ClientCapabilities(
                fs=schema.FileSystemCapabilities(read_text_file=True, write_text_file=True), terminal=True),
            client_info=schema.Implementation(name="cockpit", title="Cockpit", version=__version__),
        )
        caps = init.agent_capabilities or schema.AgentCapabilities()
        cwd = str(self.host.worktree)
        stored = await self._stored_session_id()
        how = "new"
        if stored:
            try:
                if caps.session_capabilities is not None and caps.session_capabilities.resume is not None:
                    await link.conn.resume_session(session_id=stored, cwd=cwd, mcp_servers=[])
                    how = "resumed"
                elif caps.load_session:
                    self._client.replaying = True
                    await link.conn.load_session(session_id=stored, cwd=cwd, mcp_servers=[])
                    how = "loaded"
            except RequestError as exc:
                self.host.emit(ev.NOTICE, {"text": f"{self.name} could not restore its session ({exc}); "
                                                   "starting a new one"})
            finally:
                self._client.replaying = False
        if how == "new":
            link.session_id, how = await self._fork_or_new(link, caps, cwd, stored)
        else:
            link.session_id = stored
        self._mapper.start_session(restored=how != "new")
        shown = (init.agent_info.title or init.agent_info.name) if init.agent_info else self.name
        self.host.emit(ev.NOTICE, {"text": f"{shown} ready ({how} ACP session)", "acp_session": link.session_id,
                                   "agent": self.name})

    async def _fork_or_new(self, link: _Link, caps: schema.AgentCapabilities, cwd: str, stored: str) -> tuple[str, str]:
        """A new ACP session: forked from the source's when this session is a fork that has none
        yet and the agent can fork (`session/fork`), else a fresh one (the fork is told why)."""
        source = "" if stored else acp_fork_source(await self.host.history(), self.name)
        if source:
            forks = caps.session_capabilities is not None and caps.session_capabilities.fork is not None
            if forks:
                try:
                    return (await link.conn.fork_session(session_id=source, cwd=cwd, mcp_servers=[])).session_id, "forked"
                except RequestError as exc:
                    self.host.emit(ev.NOTICE, {"text": f"{self.name} could not fork its session ({exc}); "
                                                       "starting a new one"})
            else:
                self.host.emit(ev.NOTICE, {"text": f"{self.name} cannot fork its sessions: "
                                                   "this fork starts a new conversation"})
        return (await link.conn.new_session(cwd=cwd, mcp_servers=[])).session_id, "new"

    async def _stored_session_id(self) -> str:
        return acp_session_of(await self.host.history(), self.name)

    async def _failure(self, link: _Link | None, exc: BaseException, when: str) -> str:
        """One line: what went wrong with the agent, and where its log is."""
        if link is not None and link.alive and isinstance(exc, ConnectionError):
            # A lost connection is usually the process ending: give it a moment to say how.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(link.proc.wait()), _CLOSE_TIMEOUT_S)
        if isinstance(exc, RequestError) and exc.code == _AUTH_REQUIRED:
            return (f"agent {self.name!r} needs authentication: set its API key (listed in [agents.{self.name}] "
                    "pass_env) or log in with its own CLI")
        if link is not None and not link.alive:
            what = exit_text(self._exit_code(link.proc.returncode or 0))
        elif isinstance(exc, RequestError):
            what = f"answered with an error: {exc}"
        elif isinstance(exc, TimeoutError):
            what = f"did not answer within {HANDSHAKE_TIMEOUT_S:.0f}s"
        else:
            what = f"lost its connection ({exc or type(exc).__name__})"
        return f"agent {self.name!r} {what} {when}; see {self.log_path}"

    # -- turns ---------------------------------------------------------------------------------

    async def _resume_text(self) -> str:
        """The last instruction if no turn ever took it up (a task the CLI recorded), else a nudge."""
        for event in reversed(await self.host.history()):
            if event.kind == ev.TURN_START:
                break
            if event.kind == ev.USER_MESSAGE and event.data.get("text"):
                return str(event.data["text"])
        return _CONTINUE

    async def _run_turn(self) -> None:
        host = self.host
        host.set_state(State.RUNNING)
        host.emit(ev.TURN_START, {})
        link: _Link | None = None
        stop_reason = ""
        self._cancel_requested = False
        try:
            link = await self._connect()
            while self._queued and stop_reason != "cancelled":
                await host.hold()
                reason = await host.budget_exceeded()
                if reason:
                    self._queued.clear()
                    host.emit(ev.ERROR, {"text": f"stopped: {reason}", "budget": True})
                    self._end_turn(State.IDLE, reason, stop_reason="budget")
                    return
                text = "\n\n".join(self._queued)
                self._queued.clear()
                response = await link.conn.prompt(session_id=link.session_id, prompt=[text_block(text)])
                await self._updates.join()
                self._mapper.end_message()
                self._mapper.turn_usage(response.usage)
                stop_reason = response.stop_reason
                if stop_reason in _STOP_NOTES:
                    host.emit(ev.NOTICE, {"text": _STOP_NOTES[stop_reason]})
        except asyncio.CancelledError:
            self._end_interrupted("interrupted")
            raise
        except AgentFailed as exc:
            self._end_failed(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - the agent's error or a lost process, told to the person
            self._end_failed(await self._failure(link, exc, "during the turn"))
            return
        if stop_reason == "cancelled":
            self._end_interrupted("interrupted" if self._cancel_requested else "cancelled by the agent")
        else:
            self._end_turn(State.IDLE, stop_reason=stop_reason)

    def _end_turn(self, state: State, detail: str = "", **turn_end: Any) -> None:
        self._mapper.end_message()
        self._mapper.finish_open_calls("the turn ended before this call finished")
        self.host.emit(ev.TURN_END, turn_end)
        self.host.set_state(state, detail)

    def _end_interrupted(self, detail: str) -> None:
        self.host.emit(ev.NOTICE, {"text": detail})
        self._end_turn(State.IDLE, detail, interrupted=True, stop_reason="cancelled")

    def _end_failed(self, message: str) -> None:
        self.host.emit(ev.ERROR, {"text": message})
        self._end_turn(State.ERROR, message, error=message)

    async def _apply_updates(self) -> None:
        """The one consumer of the update queue: the handlers only enqueue."""
        while True:
            update = await self._updates.get()
            try:
                self._mapper.apply(update)
            except Exception as exc:  # noqa: BLE001 - one odd update must not stop the stream
                self.host.emit(ev.NOTICE, {"text": f"could not show an update from {self.name}: {exc}"})
            finally:
                self._updates.task_done()
