"""A scripted ACP agent for the tests: a real agent program on the `acp` package's agent side.

Each prompt's text is a script; its first word picks what the agent does:

    hello                 a thought, then "Hello, world" in chunks; a cost update; token usage
    plan                  a three-step plan
    edit PATH TEXT        a tool call asking permission, then fs/write_text_file if allowed
    write PATH TEXT       fs/write_text_file without asking (to test confinement)
    read PATH             fs/read_text_file, the content echoed back
    run COMMAND…          terminal/create + wait_for_exit + output + release
    sleep                 a running tool call, then wait until session/cancel
    stubborn              like sleep, but ignore session/cancel
    crash                 one chunk, then the process exits with code 3 mid-turn
    quit                  end the turn, then exit (code 0) while idle
    env NAME…             say which of the named variables are set
    selfwrite PATH TEXT   the agent's own process writes PATH (no client involved); says how it went
    selfread PATH         the agent's own process reads PATH; says what it read or the error
    fetch URL             GET URL through $HTTP_PROXY (even for localhost); says the body or the error

Hostile scripts (attack replays, tests/security/test_security_acp.py):

    fifo N NAME           terminal/create `mkfifo NAME`, then N concurrent fs/read_text_file of it
                          and one fs/write_text_file; records the errors
    escape TOKEN          start `setsid sleep TOKEN` itself (holding its stdio), outside any terminal
    spawn [NAME=VALUE…] COMMAND…
                          terminal/create COMMAND (leading NAME=VALUE words as its ACP env) without
                          reporting a tool call; records the outcome (exit code and output, or
                          the client's refusal)

Options: `--spew-stderr N` writes N bytes to stderr before serving; `--restore resume|load|fork|none`
picks the session capability advertised; `--auth new|prompt` makes session/new or every prompt demand authentication;
`--record FILE` appends one JSON line per request the agent received, for assertions on its side.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import acp
from acp import schema

_ids = itertools.count(1)


class FakeAgent:
    def __init__(self, options: argparse.Namespace):
        self.options = options
        self.conn: Any = None
        self.cwd: dict[str, str] = {}
        self.cancelled: dict[str, asyncio.Event] = {}

    def on_connect(self, conn: Any) -> None:
        self.conn = conn

    def record(self, method: str, **data: Any) -> None:
        if self.options.record:
            with open(self.options.record, "a", encoding="utf-8") as out:
                out.write(json.dumps({"method": method, **data}, default=str) + "\n")

    # -- session set-up --------------------------------------------------------------------------

    async def initialize(self, protocol_version: int, client_capabilities: Any = None, client_info: Any = None,
                         **_: Any) -> schema.InitializeResponse:
        self.record("initialize", capabilities=client_capabilities.model_dump(by_alias=True, exclude_none=True),
                    client=client_info.name if client_info else "", pid=os.getpid())
        restore = self.options.restore
        caps = schema.AgentCapabilities(
            load_session=restore == "load",
            session_capabilities=schema.SessionCapabilities(
                resume=schema.SessionResumeCapabilities() if restore == "resume" else None,
                fork=schema.SessionForkCapabilities() if restore == "fork" else None),
        )
        return schema.InitializeResponse(protocol_version=acp.PROTOCOL_VERSION, agent_capabilities=caps,
                                         agent_info=schema.Implementation(name="fake-acp", title="Fake ACP",
                                                                          version="1"))

    async def new_session(self, cwd: str, mcp_servers: Any = None, **_: Any) -> schema.NewSessionResponse:
        if self.options.auth == "new":
            raise acp.RequestError.auth_required()
        session_id = f"fake-{os.getpid()}-{next(_ids)}"
        self.cwd[session_id] = cwd
        self.record("new_session", cwd=cwd, session=session_id)
        return schema.NewSessionResponse(session_id=session_id)

    async def load_session(self, cwd: str, session_id: str, mcp_servers: Any = None, **_: Any) -> None:
        self.cwd[session_id] = cwd
        self.record("load_session", session=session_id)
        await self.say(session_id, "(replayed history)")
        await self.conn.session_update(session_id, acp.update_user_message_text("(replayed prompt)"))

    async def fork_session(self, session_id: str, cwd: str, **_: Any) -> schema.ForkSessionResponse:
        forked = f"fake-{os.getpid()}-{next(_ids)}"
        self.cwd[forked] = cwd
        self.record("fork_session", session=session_id, forked=forked, cwd=cwd)
        return schema.ForkSessionResponse(session_id=forked)

    async def resume_session(self, session_id: str, cwd: str, **_: Any) -> schema.ResumeSessionResponse:
        self.cwd[session_id] = cwd
        self.record("resume_session", session=session_id)
        return schema.ResumeSessionResponse()

    async def cancel(self, session_id: str, **_: Any) -> None:
        self.record("cancel", session=session_id)
        self.cancelled.setdefault(session_id, asyncio.Event()).set()

    # -- prompts ---------------------------------------------------------------------------------

    async def prompt(self, prompt: list[Any], session_id: str, **_: Any) -> schema.PromptResponse:
        text = " ".join(block.text for block in prompt if isinstance(block, schema.TextContentBlock))
        self.record("prompt", session=session_id, text=text)
        if self.options.auth == "prompt":
            raise acp.RequestError.auth_required()
        self.cancelled[session_id] = asyncio.Event()
        word, _, rest = text.strip().partition(" ")
        script = getattr(self, f"do_{word}", None)
        if script is None:
            await self.say(session_id, f"unknown script {word!r}")
            return schema.PromptResponse(stop_reason="end_turn")
        return await script(session_id, rest) or schema.PromptResponse(stop_reason="end_turn")

    async def say(self, session_id: str, text: str) -> None:
        await self.conn.session_update(session_id, acp.update_agent_message_text(text))

    def path(self, session_id: str, rel: str) -> str:
        """Absolute under the session's cwd, as ACP agents send paths (absolute ones kept)."""
        return rel if os.path.isabs(rel) else str(Path(self.cwd[session_id]) / rel)

    async def do_hello(self, session_id: str, rest: str) -> schema.PromptResponse:
        await self.conn.session_update(session_id, acp.update_agent_thought_text("The person greets me."))
        for chunk in ("Hel", "lo, ", "world"):
            await self.say(session_id, chunk)
        await self.conn.session_update(session_id, schema.UsageUpdate(
            session_update="usage_update", used=1200, size=200_000, cost=schema.Cost(amount=0.25, currency="USD")))
        return schema.PromptResponse(stop_reason="end_turn", usage=schema.Usage(
            total_tokens=150, input_tokens=100, output_tokens=50))

    async def do_plan(self, session_id: str, rest: str) -> None:
        await self.conn.session_update(session_id, acp.update_plan([
            acp.plan_entry("read the code", status="completed"),
            acp.plan_entry("write the fix", status="in_progress"),
            acp.plan_entry("run the tests", status="pending"),
        ]))

    async def do_edit(self, session_id: str, rest: str) -> None:
        rel, _, content = rest.partition(" ")
        call_id = f"call-{next(_ids)}"
        await self.conn.session_update(session_id, acp.start_edit_tool_call(call_id, f"Write {rel}", rel, content))
        response = await self.conn.request_permission(
            session_id=session_id,
            tool_call=acp.update_tool_call(call_id, title=f"Write {rel}", kind="edit", raw_input={"path": rel}),
            options=[
                schema.PermissionOption(option_id="yes", name="Allow", kind="allow_once"),
                schema.PermissionOption(option_id="always", name="Always allow", kind="allow_always"),
                schema.PermissionOption(option_id="no", name="Reject", kind="reject_once"),
            ],
        )
        outcome = response.outcome
        chosen = outcome.option_id if isinstance(outcome, schema.AllowedOutcome) else "cancelled"
        self.record("permission", outcome=chosen)
        if chosen not in ("yes", "always"):
            await self.conn.session_update(session_id, acp.update_tool_call(
                call_id, status="failed", content=[acp.tool_content(acp.text_block(f"not allowed ({chosen})"))]))
            await self.say(session_id, f"permission: {chosen}")
            return
        error = await self.write(session_id, rel, content)
        await self.conn.session_update(session_id, acp.update_tool_call(
            call_id, status="failed" if error else "completed",
            content=[acp.tool_content(acp.text_block(error))] if error
            else [acp.tool_diff_content(rel, content, None)]))
        await self.say(session_id, f"permission: {chosen}; " + (f"write refused: {error}" if error else "written"))

    async def write(self, session_id: str, rel: str, content: str) -> str:
        """"" on success, else the client's error message."""
        try:
            await self.conn.write_text_file(session_id=session_id, path=self.path(session_id, rel), content=content)
        except acp.RequestError as exc:
            self.record("write_refused", path=rel, code=exc.code, message=str(exc))
            return str(exc)
        return ""

    async def do_write(self, session_id: str, rest: str) -> None:
        rel, _, content = rest.partition(" ")
        error = await self.write(session_id, rel, content)
        await self.say(session_id, f"write refused: {error}" if error else "written")

    async def do_read(self, session_id: str, rest: str) -> None:
        try:
            response = await self.conn.read_text_file(session_id=session_id, path=self.path(session_id, rest.strip()))
        except acp.RequestError as exc:
            await self.say(session_id, f"read refused: {exc}")
            return
        await self.say(session_id, f"read: {response.content}")

    async def do_run(self, session_id: str, rest: str) -> None:
        call_id = f"call-{next(_ids)}"
        created = await self.conn.create_terminal(session_id=session_id, command=rest)
        terminal_id = created.terminal_id
        await self.conn.session_update(session_id, acp.start_tool_call(
            call_id, f"Run {rest}", kind="execute", status="in_progress", raw_input={"command": rest},
            content=[acp.tool_terminal_ref(terminal_id)]))
        exit_status = await self.conn.wait_for_terminal_exit(session_id=session_id, terminal_id=terminal_id)
        output = await self.conn.terminal_output(session_id=session_id, terminal_id=terminal_id)
        await self.conn.session_update(session_id, acp.update_tool_call(
            call_id, status="completed" if exit_status.exit_code == 0 else "failed",
            content=[acp.tool_terminal_ref(terminal_id)]))
        await self.conn.release_terminal(session_id=session_id, terminal_id=terminal_id)
        self.record("terminal", exit_code=exit_status.exit_code, output=output.output)
        await self.say(session_id, f"exit {exit_status.exit_code}: {output.output.strip()}")

    async def do_fifo(self, session_id: str, rest: str) -> None:
        count, _, name = rest.partition(" ")
        made = await self.conn.create_terminal(session_id=session_id, command=f"mkfifo {name}")
        await self.conn.wait_for_terminal_exit(session_id=session_id, terminal_id=made.terminal_id)
        await self.conn.release_terminal(session_id=session_id, terminal_id=made.terminal_id)
        path = self.path(session_id, name)
        reads = await asyncio.gather(*(self.conn.read_text_file(session_id=session_id, path=path)
                                       for _ in range(int(count))), return_exceptions=True)
        try:
            await self.conn.write_text_file(session_id=session_id, path=path, content="x")
            wrote = "written"
        except acp.RequestError as exc:
            wrote = str(exc)
        errors = [str(r) for r in reads if isinstance(r, acp.RequestError)]
        self.record("fifo", errors=errors, write=wrote)
        await self.say(session_id, f"{len(errors)} of {count} reads refused")

    async def do_escape(self, session_id: str, rest: str) -> None:
        subprocess.Popen(["setsid", "sleep", rest.strip()])  # inherits the agent's stdio on purpose
        await self.say(session_id, "escaped")

    async def do_spawn(self, session_id: str, rest: str) -> None:
        env = []
        while "=" in rest.partition(" ")[0]:
            word, _, rest = rest.partition(" ")
            name, _, value = word.partition("=")
            env.append(schema.EnvVariable(name=name, value=value))
        try:
            made = await self.conn.create_terminal(session_id=session_id, command=rest, env=env)
        except acp.RequestError as exc:
            self.record("spawn", refused=str(exc))
            await self.say(session_id, f"refused: {exc}")
            return
        status = await self.conn.wait_for_terminal_exit(session_id=session_id, terminal_id=made.terminal_id)
        output = await self.conn.terminal_output(session_id=session_id, terminal_id=made.terminal_id)
        await self.conn.release_terminal(session_id=session_id, terminal_id=made.terminal_id)
        self.record("spawn", exit_code=status.exit_code, output=output.output)
        await self.say(session_id, f"spawned: exit {status.exit_code}")

    async def do_sleep(self, session_id: str, rest: str) -> schema.PromptResponse:
        await self.conn.session_update(session_id, acp.start_tool_call(
            f"call-{next(_ids)}", "Think hard", kind="think", status="in_progress"))
        await self.cancelled[session_id].wait()
        return schema.PromptResponse(stop_reason="cancelled")

    async def do_stubborn(self, session_id: str, rest: str) -> None:
        await self.say(session_id, "not stopping")
        await asyncio.sleep(3600)

    async def do_crash(self, session_id: str, rest: str) -> None:
        await self.say(session_id, "about to crash")
        await asyncio.sleep(0.2)  # let the chunk reach the client
        os._exit(3)

    async def do_quit(self, session_id: str, rest: str) -> None:
        asyncio.get_running_loop().call_later(0.2, os._exit, 0)

    async def do_env(self, session_id: str, rest: str) -> None:
        found = {name: ("set" if name in os.environ else "unset") for name in rest.split()}
        await self.say(session_id, json.dumps(found, sort_keys=True))


    async def do_selfwrite(self, session_id: str, rest: str) -> None:
        rel, _, content = rest.partition(" ")
        try:
            Path(self.path(session_id, rel)).write_text(content, encoding="utf-8")
        except OSError as exc:
            await self.say(session_id, f"selfwrite failed: {exc.strerror}")
            return
        await self.say(session_id, "selfwrite ok")

    async def do_selfread(self, session_id: str, rest: str) -> None:
        try:
            text = Path(self.path(session_id, rest.strip())).read_text(encoding="utf-8")
        except OSError as exc:
            await self.say(session_id, f"selfread failed: {exc.strerror}")
            return
        await self.say(session_id, f"selfread: {text}")

    async def do_fetch(self, session_id: str, rest: str) -> None:
        proxy = urllib.request.ProxyHandler({"http": os.environ.get("HTTP_PROXY", "")})
        for name in ("NO_PROXY", "no_proxy"):  # urllib would go to localhost directly
            os.environ.pop(name, None)
        opener = urllib.request.build_opener(proxy)
        try:
            body = await asyncio.to_thread(lambda: opener.open(rest.strip(), timeout=20).read())
        except (OSError, ValueError) as exc:
            await self.say(session_id, f"fetch failed: {exc}")
            return
        await self.say(session_id, f"fetched: {body.decode().strip()}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spew-stderr", type=int, default=0)
    parser.add_argument("--restore", choices=("resume", "load", "fork", "none"), default="none")
    parser.add_argument("--auth", choices=("new", "prompt"), default="")
    parser.add_argument("--record", default="")
    options = parser.parse_args()
    if options.spew_stderr:
        line = b"x" * 1023 + b"\n"
        for _ in range(options.spew_stderr // len(line)):
            sys.stderr.buffer.write(line)
        sys.stderr.buffer.flush()
    asyncio.run(acp.run_agent(FakeAgent(options), use_unstable_protocol=True))


if __name__ == "__main__":
    main()
