"""The conductor: the built-in agent whose tools are the cockpit's own verbs.

It reads the repository (read-only: list_files, read_file, search), proposes a plan
(`propose_plan`, which returns once the person approved, edited or rejected it), and then
drives the plan's sessions: `new`, `send`, `wait`, `answer`, `diff`, `verify`, `merge`, `note`,
`status`.
Every verb is one JSON command through `CommandPort.execute`, the engine's own command entry,
so the same tools work wherever the engine is (in this process today; over a pipe from an agent
worker later). Model mistakes and refused commands come back as `error: …` results.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cockpit.agents.llm import LLMAgent
from cockpit.agents.model_keys import model_name
from cockpit.agents.policy import READ_TOOLS
from cockpit.agents.tools import Param, Tool, ToolError, ToolOutcome, run_tool, tool_specs
from cockpit.config import ModelConfig
from cockpit.core.agent_api import AgentHost
from cockpit.core.process import ShellResult, elide
from cockpit.errors import CockpitError, ConfigError
from cockpit.plan.manager import describe_started
from cockpit.plan.model import Plan

SYSTEM_PROMPT = """You are the conductor of a coding cockpit: you split a task into parallel
sub-tasks, each done by its own coding agent in its own git worktree, and land their work.
The repository is at {root}; you may read it but not change it. Give each sub-task the files it
may touch so that parallel sub-tasks do not collide, and `after` when it needs another merged
first. Propose the plan with propose_plan; after the person approves, wait for the sessions,
look at their diffs, verify and merge them, start what comes next with new, and note anything
the person should know. When a session waits for an approval, answer it if it is safe: the
person's policy decides what you may approve, and the rest waits for them."""

_MAX_DIFF_CHARS = 12_000


class CommandPort(Protocol):
    """The engine as the conductor's tools reach it: one JSON command in, a JSON-able result out."""

    async def execute(self, command: dict[str, Any]) -> Any: ...


@dataclass(frozen=True)
class _ListParam(Param):
    """A list argument whose items have a schema (model APIs refuse an array without one)."""

    items: dict[str, Any] | None = None

    def schema(self) -> dict[str, Any]:
        return {**super().schema(), "items": self.items or {"type": "string"}}


_SUBTASK_ITEMS = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "Short id: lower-case letters, digits, '-' (e.g. s1, api)."},
        "title": {"type": "string", "description": "A few words the person reads in the plan tree."},
        "task": {"type": "string", "description": "The full instruction the sub-task's agent gets."},
        "files": {"type": "array", "items": {"type": "string"},
                  "description": "Paths or globs this sub-task may change; keep parallel sub-tasks apart."},
        "after": {"type": "array", "items": {"type": "string"},
                  "description": "Ids of sub-tasks that must be merged before this one starts."},
    },
    "required": ["id", "task", "files"],
}

ConductorImpl = Callable[..., Any]
_VERBS: dict[str, Tool] = {}


def _verb(description: str, **params: Param) -> Callable[[ConductorImpl], ConductorImpl]:
    def register(impl: ConductorImpl) -> ConductorImpl:
        _VERBS[impl.__name__] = Tool(impl.__name__, description, impl, params)
        return impl
    return register


class ConductorAgent(LLMAgent):
    """The built-in agent loop with the conductor's tools, bound to one plan."""

    def __init__(self, host: AgentHost, model: ModelConfig, commands: CommandPort, model_name: str = "default"):
        super().__init__(host, model, model_name)
        self.commands = commands
        self.plan = plan_of(host.session.tags)

    def _system_prompt(self) -> str:
        return SYSTEM_PROMPT.format(root=self.host.worktree)

    def tool_specs(self) -> list[dict[str, Any]]:
        reading = [spec for spec in tool_specs() if spec["function"]["name"] in READ_TOOLS]
        return [*reading, *(verb.spec() for verb in _VERBS.values())]

    async def refusal(self, name: str, args: dict[str, Any]) -> str:
        return ""  # reads only, and verbs on a plan the person approved; merges go through the queue

    async def run_tool(self, name: str, args: dict[str, Any]) -> ToolOutcome:
        if name in READ_TOOLS:
            return await run_tool(self.workspace, name, args, shell_runner=_no_shell)
        verb = _VERBS.get(name)
        try:
            if verb is None:
                raise ToolError(f"there is no tool {name!r}; tools are: {', '.join([*READ_TOOLS, *_VERBS])}")
            output = await verb.impl(self, **verb.bind(args))
        except (ToolError, CockpitError) as exc:
            return ToolOutcome(False, f"error: {exc}")
        return ToolOutcome(True, elide(output, _MAX_DIFF_CHARS))

    async def call(self, cmd: str, **args: Any) -> Any:
        """One of the plan's commands, for this plan."""
        return await self.commands.execute({"cmd": cmd, "plan": self.plan, **args})


def plan_of(tags: list[str]) -> str:
    """The plan id a conductor session works for, from its `plan-<id>` tag."""
    for tag in tags:
        if tag.startswith("plan-"):
            return tag.removeprefix("plan-")
    raise CockpitError("a conductor session needs a plan: start one with `cockpit plan \"task\"`")


async def _no_shell(command: str, timeout: float) -> ShellResult:
    raise ToolError("the conductor runs no commands; give the work to a sub-task")


def _json(value: Any) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False)


# -- the verbs ------------------------------------------------------------------------------------


@_verb(
    "Propose the plan to the person: sub-tasks that run in parallel, each in its own session. "
    "Returns once the person approved (possibly after editing or dropping sub-tasks) or rejected it; "
    "on approval the ready sub-tasks' sessions have started.",
    summary=Param(str, "One or two sentences: how the task is split and why."),
    subtasks=_ListParam(list, "The sub-tasks, in the order they should land.", items=_SUBTASK_ITEMS),
)
async def propose_plan(agent: ConductorAgent, summary: str, subtasks: list[Any]) -> str:
    answer = await agent.call("plan_propose", subtasks=subtasks, summary=summary)
    plan = Plan.from_dict(answer["plan"])
    if not answer["approved"]:
        return f"rejected by the person: {answer.get('reason') or 'no reason given'}. Propose a different plan."
    lines = [f"approved. {describe_started(plan, answer['started'])}", "The plan as approved:"]
    lines += [f"- {s.id} [{s.status}] {s.title}: files {', '.join(s.files) or 'any'}"
              + (f"; after {', '.join(s.after)}" if s.after else "") for s in plan.subtasks]
    return "\n".join(lines)


@_verb("Start the session of a sub-task whose `after` sub-tasks have merged.",
       subtask=Param(str, "The sub-task's id."))
async def new(agent: ConductorAgent, subtask: str) -> str:
    started = await agent.call("plan_start", subtask=subtask)
    return f"started {started['subtask']} as @{started['number']}"


@_verb("Send an instruction to a sub-task's session (it continues its conversation).",
       subtask=Param(str, "The sub-task's id."), text=Param(str, "What to tell its agent."))
async def send(agent: ConductorAgent, subtask: str, text: str) -> str:
    await agent.call("plan_send", subtask=subtask, text=text)
    return f"sent to {subtask}"


@_verb("Wait until sub-tasks' sessions stop working (done, failed, or waiting for the person); "
       "returns each one's state, diffstat and last verify.",
       subtasks=_ListParam(list, "Sub-task ids; default: every started one.", None),
       timeout=Param(int, "Most seconds to wait.", 600))
async def wait(agent: ConductorAgent, subtasks: list[Any] | None, timeout: int) -> str:
    return _json(await agent.call("plan_wait", subtasks=subtasks, timeout=timeout))


@_verb("Answer a sub-task's pending approval request (wait shows them). A no always goes through; "
       "a yes only for what the person's policy lets the conductor approve, else it stays with the person.",
       subtask=Param(str, "The sub-task's id."), approve=Param(bool, "true to approve, false to deny."),
       reason=Param(str, "Why, for the sub-task's agent.", ""))
async def answer(agent: ConductorAgent, subtask: str, approve: bool, reason: str) -> str:
    result = await agent.call("plan_answer", subtask=subtask, approve=approve, reason=reason)
    return f"approved {result['approved']}" if "approved" in result else f"denied {result['denied']}"


@_verb("The change a sub-task's session made so far, as a unified diff.", subtask=Param(str, "The sub-task's id."))
async def diff(agent: ConductorAgent, subtask: str) -> str:
    session = await _session(agent, subtask)
    change = await agent.commands.execute({"cmd": "diff", "session": session})
    lines = []
    for f in change["files"]:
        lines.append(f"{f['status']} {f['path']} +{f['added']} -{f['removed']}")
        for hunk in f["hunks"]:
            lines.append(f"@@ -{hunk['old_start']},{hunk['old_count']} +{hunk['new_start']},{hunk['new_count']} @@")
            lines += [line["kind"] + line["text"] for line in hunk["lines"]]
    return "\n".join(lines) or f"{subtask} has changed nothing yet"


@_verb("Run the repository's verify command in a sub-task's worktree.", subtask=Param(str, "The sub-task's id."))
async def verify(agent: ConductorAgent, subtask: str) -> str:
    result = await agent.commands.execute({"cmd": "verify", "session": await _session(agent, subtask)})
    return f"verify {result.get('state')} (exit {result.get('exit_code')})\n{result.get('output_tail', '')}".rstrip()


@_verb("Land sub-tasks on the target branch through the merge queue, in the plan's order. A sub-task "
       "that changed files it was not given is refused. Returns what landed and what is ready to start.",
       subtasks=_ListParam(list, "Sub-task ids; default: every started one.", None))
async def merge(agent: ConductorAgent, subtasks: list[Any] | None) -> str:
    return _json(await agent.call("plan_merge", subtasks=subtasks))


@_verb("Add a note to the plan, shown to the person in the plan tree.", text=Param(str, "The note."))
async def note(agent: ConductorAgent, text: str) -> str:
    await agent.call("plan_note", text=text)
    return "noted"


@_verb("The plan: every sub-task with its status, session state, diffstat and last verify.")
async def status(agent: ConductorAgent) -> str:
    return _json(await agent.call("plan_status"))


async def _session(agent: ConductorAgent, subtask: str) -> str:
    plan = await agent.call("plan_status")
    for row in plan["rows"]:
        if row["id"] == subtask:
            if not row.get("session"):
                raise ToolError(f"sub-task {subtask!r} has not started (start it with new)")
            return row["session"]
    raise ToolError(f"plan {agent.plan} has no sub-task {subtask!r} "
                    f"(sub-tasks: {', '.join(r['id'] for r in plan['rows'])})")


def make_conductor(engine: CommandPort, host: AgentHost) -> ConductorAgent:
    """The conductor of `host`'s session, its commands going to `engine` (the feature's agent kind)."""
    config = host.config
    name = model_name(config, host.session.model or config.agent(host.session.agent).model)
    try:
        return ConductorAgent(host, config.model(name), engine, name)
    except ValueError as exc:  # the approval policy refused its settings
        raise ConfigError(f"config: [approval]: {exc}") from None
