"""The built-in agent: a streaming tool-calling loop on litellm.

A turn streams the model's answer, runs the tools it asks for (after the approval policy and,
where asked, the person agree) and calls the model again with the results, until the model
answers without tool calls. Everything it does is reported to its `AgentHost` as events; its
conversation is rebuilt from those events, so it survives a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

from cockpit.agents import conversation
from cockpit.agents.approval_gate import ApprovalGate
from cockpit.agents.llm_client import (
    Completion, FatalLLMError, ToolCallDraft, TransientLLMError, context_window, stream_completion,
)
from cockpit.agents.model_keys import missing_key
from cockpit.agents.shell import ShellRunner
from cockpit.agents.tools import ToolOutcome, run_tool, tool_specs
from cockpit.agents.workspace import Workspace
from cockpit.config import ModelConfig
from cockpit.core import events as ev
from cockpit.core.agent_api import AgentHost
from cockpit.core.environment import agent_environment
from cockpit.core.sandbox import host_sandbox
from cockpit.core.states import State

MEMORY_FILES = ("AGENTS.md", "CLAUDE.md")
_CONTEXT_SHARE = 0.8  # leave room for the answer and for estimate error
_MEMORY_CAP = 20_000

SYSTEM_PROMPT = """You are a coding agent working in a git worktree at {root}.
Use the tools to inspect and change files and to run commands; every path is relative to the
worktree and you cannot leave it. Make focused changes, run the project's tests when you change
code, and finish with a short summary of what you did."""
#: Said instead of the first line for a read-only session, so the model does not try to write.
READ_ONLY_PROMPT = """You are a coding agent reading the main checkout of a git repository at {root}.
This session is read-only: writing or editing files is refused and commands cannot change any
file. Read, search and run read-only commands, then answer with what you found."""


class LLMAgent:
    def __init__(self, host: AgentHost, model: ModelConfig, model_name: str = "default"):
        self.host = host
        self.model = model
        self.model_name = model_name  # its key under [models], named when its API key is missing
        self.workspace = Workspace(host.worktree)
        sandbox = host_sandbox(host)
        self.gate = ApprovalGate(host, host.config.approval, sandboxed=sandbox is not None)
        self.shell = ShellRunner(sandbox=sandbox)
        self.env = agent_environment(host.config.agent(host.session.agent), host.env)
        self._messages: list[dict[str, Any]] | None = None
        self._queued: list[str] = []
        self._turn: asyncio.Task[None] | None = None

    # -- AgentBackend --------------------------------------------------------------------------

    async def start(self) -> None:
        self._messages = conversation.rebuild(await self.host.history())

    async def send(self, text: str) -> None:
        """Queue the text for the model; start a turn unless one is running (it picks it up).

        Empty text resumes: the model is called again on the conversation as it stands.
        """
        if text:
            self._queued.append(text)
        elif self._messages and self._messages[-1]["role"] == "assistant":
            self._queued.append("Continue where you left off.")
        if self._turn is None or self._turn.done():
            self._turn = asyncio.create_task(self._run_turn(), name=f"turn-{self.host.session.id}")

    async def interrupt(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None and not turn.done():
            turn.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await turn

    async def close(self) -> None:
        await self.interrupt()

    # -- the loop ------------------------------------------------------------------------------

    def _system_prompt(self) -> str:
        prompt = (READ_ONLY_PROMPT if self.host.session.read_only else SYSTEM_PROMPT).format(root=self.host.worktree)
        for name in MEMORY_FILES:
            path = Path(self.host.worktree) / name
            if path.is_file():
                memory = path.read_text(encoding="utf-8", errors="replace")[:_MEMORY_CAP]
                return f"{prompt}\n\n# Project instructions ({name})\n\n{memory}"
        return prompt

    async def _run_turn(self) -> None:
        host = self.host
        assert self._messages is not None, "start() must run before send()"
        host.set_state(State.RUNNING)
        host.emit(ev.TURN_START, {})
        try:
            while True:
                self._take_queued()
                await host.hold()
                reason = await host.budget_exceeded()
                if reason:
                    host.emit(ev.ERROR, {"text": f"stopped: {reason}", "budget": True})
                    host.set_state(State.IDLE, reason)
                    return
                completion = await self._complete_with_retries()
                self._messages.append(self._assistant_message(completion))
                if not completion.tool_calls:
                    if self._queued:
                        continue
                    break
                for call in completion.tool_calls:
                    output = await self._run_call(call)
                    self._messages.append({"role": "tool", "tool_call_id": call.id, "content": output})
            host.emit(ev.TURN_END, {})
            host.set_state(State.IDLE)
        except asyncio.CancelledError:
            host.emit(ev.NOTICE, {"text": "interrupted"})
            host.emit(ev.TURN_END, {"interrupted": True})
            self._messages = conversation.rebuild(await host.history())
            raise
        except (TransientLLMError, FatalLLMError) as exc:
            host.emit(ev.ERROR, {"text": str(exc)})
            host.emit(ev.TURN_END, {"error": str(exc)})
            host.set_state(State.ERROR, str(exc))

    def _take_queued(self) -> None:
        assert self._messages is not None
        for text in self._queued:
            self._messages.append({"role": "user", "content": text})
        self._queued.clear()

    @staticmethod
    def _assistant_message(completion: Completion) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": "assistant", "content": completion.text or None}
        if completion.tool_calls:
            msg["tool_calls"] = [
                conversation.tool_call_message(c.id, c.name, c.arguments) for c in completion.tool_calls
            ]
        return msg

    async def _complete_with_retries(self) -> Completion:
        host, model = self.host, self.model
        assert self._messages is not None
        missing = missing_key(model, self.model_name)
        if missing:  # say which variable to set, not litellm's long message cut in the pane
            raise FatalLLMError(missing)
        budget = int(context_window(model) * _CONTEXT_SHARE) - model.max_output_tokens
        fitted, note = conversation.fit_context(self._messages, max(budget, 1000))
        if note:
            host.emit(ev.NOTICE, {"text": note, "context": True})
            self._messages = fitted
        request = [{"role": "system", "content": self._system_prompt()}, *self._messages]
        attempt = 0
        while True:
            streamed = False  # whether this attempt has shown text that a retry must discard

            def on_text(delta: str) -> None:
                nonlocal streamed
                streamed = True
                host.emit(ev.TEXT_DELTA, {"text": delta})

            try:
                completion = await stream_completion(
                    model, request, self.tool_specs(),
                    on_text=on_text,
                    on_thought=lambda delta: host.emit(ev.THOUGHT_DELTA, {"text": delta}),
                    headers={"X-Cockpit-Session": host.session.id},
                )
            except TransientLLMError as exc:
                if streamed:
                    host.emit(ev.MESSAGE_END, {"discarded": True})
                attempt += 1
                if attempt > model.retries:
                    raise TransientLLMError(f"gave up after {attempt} tries: {exc}") from exc
                delay = model.retry_base_s * 2 ** (attempt - 1)
                host.emit(ev.NOTICE, {"text": f"{exc}; retry {attempt}/{model.retries} in {delay:.1f}s",
                                      "retry": attempt})
                await asyncio.sleep(delay)
                continue
            host.emit(ev.MESSAGE_END, {"finish_reason": completion.finish_reason})
            host.add_usage(model.model, completion.usage)
            return completion

    async def _run_call(self, call: ToolCallDraft) -> str:
        """Run one tool call through the policy; return what the model is told."""
        host = self.host
        try:
            args = json.loads(call.arguments or "{}")
            if not isinstance(args, dict):
                raise ValueError("arguments must be a JSON object")
        except ValueError as exc:
            output = f"error: the arguments of {call.name} are not valid JSON ({exc}); send a JSON object"
            host.emit(ev.TOOL_CALL, {"id": call.id, "name": call.name, "raw_arguments": call.arguments})
            host.emit(ev.TOOL_RESULT, {"id": call.id, "name": call.name, "ok": False, "output": output})
            return output
        host.emit(ev.TOOL_CALL, {"id": call.id, "name": call.name, "arguments": args})
        refusal = await self.refusal(call.name, args)
        if refusal:
            host.emit(ev.TOOL_RESULT, {"id": call.id, "name": call.name, "ok": False, "output": refusal,
                                       "denied": True})
            return refusal
        await host.hold()
        outcome = await self.run_tool(call.name, args)
        host.emit(ev.TOOL_RESULT, {"id": call.id, "name": call.name, "ok": outcome.ok, "output": outcome.output})
        return outcome.output

    # -- the tools: an agent with other tools (the conductor) overrides these three ------------

    def tool_specs(self) -> list[dict[str, Any]]:
        return tool_specs()

    async def refusal(self, name: str, args: dict[str, Any]) -> str:
        """"" when the call may run (the policy, then the person when it asks), else why not."""
        return await self.gate.refusal(name, args)

    async def run_tool(self, name: str, args: dict[str, Any]) -> ToolOutcome:
        return await run_tool(self.workspace, name, args, shell_runner=self._shell_in_worktree)

    async def _shell_in_worktree(self, command: str, timeout: float):  # noqa: ANN202 - ShellResult
        return await self.shell.run(command, Path(self.host.worktree), self.env, timeout)

