"""The cockpit's side of an ACP connection: what an agent may ask of its client.

An agent streams `session/update` notifications, asks permission before it acts, reads and writes
files and runs commands through its client. Here those become the cockpit's own mechanisms:
updates go on a queue (a handler must return at once, since `conn.prompt()` waits for every
update handler still running before it returns), permission requests become the approval flow,
file access is confined to the worktree like the built-in agent's tools, and commands run in the
worktree in their own process groups. A refusal is an ACP error whose message the agent reads.

Nothing an agent asks may stall the server: files are opened without blocking and only regular
ones are read or written (`file_io`), on two threads of this client's own with a time limit, so
a FIFO, a device or a hung file system ties up at most those threads, never the event loop's
shared pool that the rest of the server needs. A command (`terminal/create`) goes through the
same approval policy as the built-in shell tool (`ApprovalGate`, as `run_shell`) and is shown in
the transcript as a `run_shell` call with its output, whether or not the agent reports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import os
import re
import shlex
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from acp import RequestError, schema

from cockpit.agents.acp_terminals import ExitStatus, Terminals, UnknownTerminal
from cockpit.agents.acp_updates import MAX_RESULT_CHARS, UpdateMapper
from cockpit.agents.approval_gate import ApprovalGate
from cockpit.agents.file_io import read_regular, write_regular
from cockpit.agents.policy import SHELL_TOOL
from cockpit.agents.workspace import PathRefused, Workspace
from cockpit.core import events as ev
from cockpit.core.agent_api import AgentHost, ApprovalDecision
from cockpit.core.process import elide

#: Largest file an agent may read through the client; beyond it the read is refused.
MAX_READ_BYTES = 20_000_000
#: Threads serving one agent's file requests, and how long one request may take.
FILE_WORKERS = 2
FILE_TIMEOUT_S = 30.0
_INVALID_PARAMS = -32602
_INTERNAL_ERROR = -32603
_DETAIL_CHARS = 4_000
_run_ids = itertools.count(1)
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: Permission option kinds to pick, best first, for (approved, always).
_OPTION_PREFERENCE = {
    (True, True): ("allow_always", "allow_once"),
    (True, False): ("allow_once", "allow_always"),
    (False, True): ("reject_once", "reject_always"),
    (False, False): ("reject_once", "reject_always"),
}


def permission_outcome(options: list[schema.PermissionOption],
                       decision: ApprovalDecision) -> schema.RequestPermissionResponse:
    """The option that says what the person decided; `cancelled` when the agent offered none.

    "Always" is the agent's to remember, so it is chosen only when the person said so; a plain
    approval takes "always" only when the agent offers nothing narrower.
    """
    by_kind = {option.kind: option for option in options}
    for kind in _OPTION_PREFERENCE[(decision.approved, decision.always)]:
        if kind in by_kind:
            return schema.RequestPermissionResponse(
                outcome=schema.AllowedOutcome(outcome="selected", option_id=by_kind[kind].option_id))
    return cancelled_outcome()


def cancelled_outcome() -> schema.RequestPermissionResponse:
    return schema.RequestPermissionResponse(outcome=schema.DeniedOutcome(outcome="cancelled"))


class ConfinedFiles:
    """File access for an agent, confined to its worktree.

    ACP paths are absolute. One inside the worktree (as the agent was told it, or its real path)
    is checked like a relative path of the built-in agent's tools (symlinks resolved, `.git`
    refused); any other absolute path is refused.
    """

    def __init__(self, worktree: Path):
        self.workspace = Workspace(worktree)
        self._roots = (str(self.workspace.root), os.path.normpath(os.path.abspath(worktree)))

    def resolve(self, path: str, *, for_write: bool = False) -> Path:
        if not os.path.isabs(path):
            return self.workspace.resolve(path, for_write=for_write)
        lexical = os.path.normpath(path)
        for root in self._roots:
            if lexical == root or lexical.startswith(root.rstrip(os.sep) + os.sep):
                return self.workspace.resolve(os.path.relpath(lexical, root), for_write=for_write)
        raise PathRefused(f"refused: {path} is outside the worktree {self.workspace.root}")

    def read(self, path: str, line: int | None, limit: int | None) -> str:
        """The file's text from 1-based `line`, at most `limit` lines (blocking: run in a thread)."""
        text = read_regular(self.resolve(path), path, MAX_READ_BYTES).decode("utf-8", errors="replace")
        if line is None and limit is None:
            return text
        lines = text.splitlines(keepends=True)
        start = max((line or 1) - 1, 0)
        return "".join(lines[start:start + limit] if limit is not None else lines[start:])

    def write(self, path: str, content: str) -> None:
        """Write the file, making its folders (blocking: run in a thread)."""
        write_regular(self.resolve(path, for_write=True), path, content.encode("utf-8"))


class CockpitClient:
    """The `acp.Client` one agent process talks to."""

    def __init__(self, host: AgentHost, updates: asyncio.Queue[Any], mapper: UpdateMapper, terminals: Terminals,
                 follow_up: Callable[[str], None]):
        self._host = host
        self._updates = updates
        self._mapper = mapper
        self._terminals = terminals
        #: Queues text for the agent after its current prompt: ACP has no place for why a request
        #: was denied, so the person's reason follows as a message.
        self._follow_up = follow_up
        self.files = ConfinedFiles(host.worktree)
        self.gate = ApprovalGate(host, host.config.approval, sandboxed=terminals.sandbox is not None)
        self._io = ThreadPoolExecutor(max_workers=FILE_WORKERS, thread_name_prefix=f"acp-files-{host.session.id}")
        #: While a stored session is loaded the agent replays its history, which the store holds already.
        self.replaying = False

    # -- session updates and permissions ---------------------------------------------------------

    async def session_update(self, session_id: str, update: Any, **_: Any) -> None:
        if not self.replaying:
            self._updates.put_nowait(update)

    async def request_permission(self, session_id: str, tool_call: schema.ToolCallUpdate,
                                 options: list[schema.PermissionOption], **_: Any) -> schema.RequestPermissionResponse:
        await self._updates.join()  # the call's own updates are shown before the question
        title = self._mapper.announce(tool_call)
        lines = [] if tool_call.raw_input is None else [
            json.dumps(tool_call.raw_input, ensure_ascii=False, indent=1, default=str)]
        lines.append("options: " + " / ".join(option.name for option in options))
        detail = elide("\n".join(lines), _DETAIL_CHARS)  # a long input loses its middle, not the options
        try:
            await self._host.hold()  # nothing starts while it could not be recorded (a full disk)
            decision = await self._host.request_approval(tool_call.kind or "tool", title, detail)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the connection is closing
            return cancelled_outcome()  # the person interrupted the turn: ACP's answer is "cancelled"
        if not decision.approved and decision.reason:
            self._follow_up(f"I did not allow “{title}”: {decision.reason}")
        command = tool_call.raw_input.get("command") if isinstance(tool_call.raw_input, dict) else None
        if decision.approved and isinstance(command, str):
            self.gate.grant_once(SHELL_TOOL, command)  # its terminal/create is not asked again
        return permission_outcome(options, decision)

    # -- files -----------------------------------------------------------------------------------

    async def read_text_file(self, session_id: str, path: str, line: int | None = None,
                             limit: int | None = None, **_: Any) -> schema.ReadTextFileResponse:
        content = await self._file_call("read", path, self.files.read, path, line, limit)
        return schema.ReadTextFileResponse(content=content)

    async def write_text_file(self, session_id: str, path: str, content: str,
                              **_: Any) -> schema.WriteTextFileResponse:
        await self._host.hold()
        await self._file_call("write", path, self.files.write, path, content)
        return schema.WriteTextFileResponse()

    async def _file_call(self, verb: str, path: str, work: Any, *args: Any) -> Any:
        job = asyncio.get_running_loop().run_in_executor(self._io, functools.partial(work, *args))
        try:
            return await asyncio.wait_for(job, FILE_TIMEOUT_S)
        except TimeoutError:
            raise RequestError(_INTERNAL_ERROR, f"cannot {verb} {path}: no answer within {FILE_TIMEOUT_S:g}s") from None
        except PathRefused as exc:
            self._host.emit(ev.NOTICE, {"text": f"agent's {verb} of {path} {exc}", "refused": True})
            raise RequestError(_INVALID_PARAMS, str(exc)) from None
        except FileNotFoundError:
            raise RequestError.resource_not_found(path) from None
        except OSError as exc:
            raise RequestError(_INTERNAL_ERROR, f"cannot {verb} {path}: {exc.strerror or exc}") from None

    # -- terminals -------------------------------------------------------------------------------

    async def create_terminal(self, session_id: str, command: str, args: list[str] | None = None,
                              env: list[schema.EnvVariable] | None = None, cwd: str | None = None,
                              output_byte_limit: int | None = None, **_: Any) -> schema.CreateTerminalResponse:
        await self._host.hold()
        try:
            folder = self.files.resolve(cwd) if cwd else self.files.workspace.root
        except PathRefused as exc:
            self._host.emit(ev.NOTICE, {"text": f"agent's command {command!r} {exc}", "refused": True})
            raise RequestError(_INVALID_PARAMS, str(exc)) from None
        if not folder.is_dir():
            raise RequestError(_INVALID_PARAMS, f"cwd {cwd} is not a folder")
        variables = {v.name: v.value for v in env or ()}
        odd = next((name for name in variables if not _VARIABLE_NAME.fullmatch(name)), None)
        if odd is not None:
            raise RequestError(_INVALID_PARAMS, f"variable name {odd!r} is not a NAME of letters, digits and _")
        # The variables are part of what is approved: `LD_PRELOAD=… ls` is not `ls`.
        line = " ".join([*(f"{name}={shlex.quote(value)}" for name, value in variables.items()),
                         shlex.join([command, *args]) if args else command])
        call_id = f"acp-run-{next(_run_ids)}"
        arguments = {"command": line} if cwd is None else {"command": line, "cwd": cwd}
        self._host.emit(ev.TOOL_CALL, {"id": call_id, "name": SHELL_TOOL, "kind": "execute", "arguments": arguments,
                                       "via": "terminal/create"})
        refusal = await self._command_refusal(line)
        if refusal:
            self._host.emit(ev.TOOL_RESULT, {"id": call_id, "name": SHELL_TOOL, "ok": False, "output": refusal,
                                             "denied": True})
            raise RequestError(_INVALID_PARAMS, f"{line}: {refusal}")
        terminal_id = self._terminals.create(command, args or [], variables, folder, output_byte_limit,
                                             on_exit=functools.partial(self._command_ended, call_id))
        return schema.CreateTerminalResponse(terminal_id=terminal_id)

    async def _command_refusal(self, line: str) -> str:
        """"" when the policy (or the person) lets the command run, else why not."""
        try:
            return await self.gate.refusal(SHELL_TOOL, {"command": line})
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the connection is closing
            return "not run: the person interrupted the turn"

    def _command_ended(self, call_id: str, output: str, status: ExitStatus) -> None:
        """The command's result in the transcript, worded like the shell tool's."""
        how = f"killed by {status.signal}" if status.signal else f"exit code {status.exit_code}"
        self._host.emit(ev.TOOL_RESULT, {"id": call_id, "name": SHELL_TOOL, "ok": status.exit_code == 0,
                                         "output": elide(f"{how}\n{output or '(no output)'}", MAX_RESULT_CHARS)})

    def close(self) -> None:
        """Let go of the file threads (one stuck in a hung file system is abandoned, not awaited)."""
        self._io.shutdown(wait=False, cancel_futures=True)

    async def terminal_output(self, session_id: str, terminal_id: str, **_: Any) -> schema.TerminalOutputResponse:
        with _known_terminal():
            output, truncated, status = self._terminals.output(terminal_id)
        exit_status = None if status is None else schema.TerminalExitStatus(exit_code=status.exit_code,
                                                                            signal=status.signal)
        return schema.TerminalOutputResponse(output=output, truncated=truncated, exit_status=exit_status)

    async def wait_for_terminal_exit(self, session_id: str, terminal_id: str,
                                     **_: Any) -> schema.WaitForTerminalExitResponse:
        with _known_terminal():
            status = await self._terminals.wait(terminal_id)
        return schema.WaitForTerminalExitResponse(exit_code=status.exit_code, signal=status.signal)

    async def kill_terminal(self, session_id: str, terminal_id: str, **_: Any) -> schema.KillTerminalResponse:
        with _known_terminal():
            await self._terminals.kill(terminal_id)
        return schema.KillTerminalResponse()

    async def release_terminal(self, session_id: str, terminal_id: str,
                               **_: Any) -> schema.ReleaseTerminalResponse:
        with _known_terminal():
            await self._terminals.release(terminal_id)
        return schema.ReleaseTerminalResponse()


@contextlib.contextmanager
def _known_terminal() -> Iterator[None]:
    """An unknown terminal id is the agent's mistake: an ACP error it reads, not a crash."""
    try:
        yield
    except UnknownTerminal as exc:
        raise RequestError(_INVALID_PARAMS, str(exc)) from None
