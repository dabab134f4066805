"""Scripted scenarios: what the simulated model answers, step by step, and where it fails.

A scenario is an ordered list of steps, and every conversation has its own cursor in it (a
conversation is named by the `X-Cockpit-Session` request header, else by a hash of its system
prompt and first user message), so one scenario serves many sessions at once. Each request is
answered by the first step, from the conversation's cursor on, whose `when` matches the
request; the cursor then moves past it (steps skipped over are not revisited, which is how a
script branches on what the agent did). A step with `times = N` answers N requests before the
cursor moves on, so "429 twice, then succeed" is two steps. Past the end, or when no step
matches, the reply is the scenario's `final` text without tool calls, so an agent loop always
ends.

Scenarios load from TOML or JSON files or from plain dicts; unknown keys and wrong types are a
`ScenarioError` naming the step and key, so a typo never silently changes a script:

    name = "fix-and-test"
    final = "Nothing more to do."     # the reply once the script is exhausted
    tokens_per_s = 30                 # pace of every step unless it sets its own (0 = no pacing)

    [[steps]]                         # rate limited twice, then the answer below
    status = 429
    retry_after = 1
    times = 2

    [[steps]]
    text = "Running the tests."
    tool_calls = [{ name = "run_shell", arguments = { command = "pytest -q" } }]

    [[steps]]
    when = { last_role = "tool", contains = "passed" }
    text = "All green: {last_tool_result_tail}"

`text` may use `{last_tool_result}`, `{last_tool_result_tail}` (its last non-empty line),
`{last_user}` and `{session}`; other braces are left alone. `{sent_at}` becomes the time each
chunk holding it is sent (for latency benches that cannot see `x_sent_at`).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from cockpit.errors import CockpitError
from cockpit.sim.facts import Facts


class ScenarioError(CockpitError):
    """A scenario file or dict is malformed."""


@dataclass(frozen=True)
class ToolCall:
    name: str
    #: JSON text exactly as streamed: a dict in the scenario is encoded once at load time.
    arguments: str


@dataclass(frozen=True)
class When:
    """Conditions on the request, all of which must hold; matching is case-sensitive."""

    last_role: str | None = None  # role of the last message: "user", "tool", …
    contains: str | None = None  # substring of the last message's text
    last_user_contains: str | None = None  # substring of the latest user message

    def matches(self, facts: Facts) -> bool:
        return (
            (self.last_role is None or facts.last_role == self.last_role)
            and (self.contains is None or self.contains in facts.last_text)
            and (self.last_user_contains is None or self.last_user_contains in facts.last_user)
        )


@dataclass(frozen=True)
class Step:
    """One scripted answer: a reply, optionally disturbed by a fault.

    Fault fields: `status` (>= 400) answers with an OpenAI-style error instead of a reply
    (`retry_after` seconds go in the Retry-After header of a 429); `stall` sleeps that many
    seconds after the first chunk; `malformed_chunk = N` sends a non-JSON data line after N
    deltas; `disconnect = N` drops the connection after N deltas; `malformed_tool_args` cuts
    the closing brace off every tool call's arguments.
    """

    text: str = ""
    thought: str = ""  # reasoning, streamed as `reasoning_content` deltas before the text
    tool_calls: tuple[ToolCall, ...] = ()
    tokens_per_s: float | None = None  # None: the scenario's rate; 0: as fast as possible
    prompt_tokens: int | None = None  # None: estimated from the request
    completion_tokens: int | None = None  # None: estimated from the reply
    finish_reason: str | None = None  # None: "tool_calls" when there are tool calls, else "stop"
    when: When | None = None
    times: int = 1
    status: int = 0
    retry_after: float = 1.0
    error_message: str = ""
    stall: float = 0.0
    malformed_chunk: int | None = None
    disconnect: int | None = None
    malformed_tool_args: bool = False

    def matches(self, facts: Facts) -> bool:
        return self.when is None or self.when.matches(facts)


@dataclass(frozen=True)
class Scenario:
    steps: tuple[Step, ...] = ()
    name: str = "scenario"
    final: str = "Done."  # the reply once the script is exhausted
    tokens_per_s: float = 0.0  # default pace of every step

    @property
    def final_step(self) -> Step:
        return Step(text=self.final)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        _check_keys(data, {"steps", "name", "final", "tokens_per_s", "description"}, "scenario")
        steps = data.get("steps", [])
        if not isinstance(steps, list):
            raise ScenarioError("scenario: 'steps' must be a list of tables")
        return cls(
            steps=tuple(_step(raw, f"step {i + 1}") for i, raw in enumerate(steps)),
            name=_typed(data, "name", str, "scenario", "scenario"),
            final=_typed(data, "final", str, "Done.", "scenario"),
            tokens_per_s=float(_typed(data, "tokens_per_s", (int, float), 0.0, "scenario")),
        )

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        """Read a `.toml` or `.json` scenario file; the file's stem is the default name."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except (OSError, ValueError) as exc:
            raise ScenarioError(f"{path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ScenarioError(f"{path}: the top level must be a table with 'steps'")
        try:
            return cls.from_dict({"name": path.stem, **data})
        except ScenarioError as exc:
            raise ScenarioError(f"{path}: {exc}") from exc

    @classmethod
    def builtin(cls, name: str) -> Scenario:
        """A scenario shipped in `cockpit/sim/scenarios/`, by name (see `builtin_names()`)."""
        if name not in builtin_names():
            raise ScenarioError(f"no built-in scenario {name!r}; choose from {', '.join(builtin_names())}")
        with resources.as_file(resources.files(__package__) / "scenarios" / f"{name}.toml") as path:
            return cls.load(path)


def builtin_names() -> list[str]:
    folder = resources.files(__package__) / "scenarios"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


ScenarioLike = Scenario | Mapping[str, Any] | str | Path


def as_scenario(value: ScenarioLike) -> Scenario:
    """Accept a Scenario, a dict, a `.toml`/`.json` path or a built-in scenario's name."""
    if isinstance(value, Scenario):
        return value
    if isinstance(value, Mapping):
        return Scenario.from_dict(value)
    if isinstance(value, Path) or value.endswith((".toml", ".json")):
        return Scenario.load(value)
    return Scenario.builtin(value)


class Cursor:
    """Where one conversation is in its scenario; see the module docstring for the rules."""

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self._index = 0
        self._uses = 0  # requests the step at _index has answered so far

    def next_step(self, facts: Facts) -> Step:
        steps = self.scenario.steps
        for index in range(self._index, len(steps)):
            step = steps[index]
            if not step.matches(facts):
                continue
            if index != self._index:
                self._index, self._uses = index, 0
            self._uses += 1
            if self._uses >= step.times:
                self._index, self._uses = index + 1, 0
            return step
        return self.scenario.final_step


# -- loading --------------------------------------------------------------------------------------

_STEP_TYPES: dict[str, type | tuple[type, ...]] = {
    "text": str, "thought": str, "tokens_per_s": (int, float), "prompt_tokens": int, "completion_tokens": int,
    "finish_reason": str, "times": int, "status": int, "retry_after": (int, float),
    "error_message": str, "stall": (int, float), "malformed_chunk": int, "disconnect": int,
    "malformed_tool_args": bool,
}


def _step(raw: object, where: str) -> Step:
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where}: must be a table")
    _check_keys(raw, {f.name for f in fields(Step)}, where)
    values: dict[str, Any] = {}
    for key, kind in _STEP_TYPES.items():
        if key in raw:
            value = _typed(raw, key, kind, None, where)
            values[key] = float(value) if kind == (int, float) else value  # 1 in TOML is an int
    if "tool_calls" in raw:
        values["tool_calls"] = _tool_calls(raw["tool_calls"], where)
    if "when" in raw:
        values["when"] = _when(raw["when"], where)
    step = Step(**values)
    if step.times < 1:
        raise ScenarioError(f"{where}: 'times' must be at least 1")
    if step.status and not 400 <= step.status <= 599:
        raise ScenarioError(f"{where}: 'status' must be an HTTP error status (400-599)")
    if step.malformed_tool_args and not step.tool_calls:
        raise ScenarioError(f"{where}: 'malformed_tool_args' needs 'tool_calls' to corrupt")
    return step


def _tool_calls(raw: object, where: str) -> tuple[ToolCall, ...]:
    if not isinstance(raw, list):
        raise ScenarioError(f"{where}: 'tool_calls' must be a list of {{name, arguments}} tables")
    calls = []
    for i, call in enumerate(raw):
        at = f"{where} tool call {i + 1}"
        if not isinstance(call, Mapping):
            raise ScenarioError(f"{at}: must be a table")
        _check_keys(call, {"name", "arguments"}, at)
        name = _typed(call, "name", str, None, at)
        if not name:
            raise ScenarioError(f"{at}: 'name' is required")
        arguments = _typed(call, "arguments", (str, Mapping), {}, at)
        calls.append(ToolCall(name, arguments if isinstance(arguments, str) else json.dumps(arguments)))
    return tuple(calls)


def _when(raw: object, where: str) -> When:
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where}: 'when' must be a table")
    _check_keys(raw, {f.name for f in fields(When)}, f"{where} when")
    return When(**{key: _typed(raw, key, str, None, f"{where} when") for key in raw})


def _check_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ScenarioError(f"{where}: unknown key {unknown[0]!r}; expected one of {', '.join(sorted(allowed))}")


def _typed(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any, where: str) -> Any:
    if key not in data:
        return default
    value = data[key]
    # bool is an int in Python; only accept it where a bool is asked for.
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ScenarioError(f"{where}: {key!r} must be {names}, got {type(value).__name__}")
    return value

