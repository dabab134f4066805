"""Approval policy: whether a tool call runs at once, waits for the person, or is refused.

A preset gives every tool a decision, per-tool overrides replace it, and shell-command patterns
refine `run_shell`. Patterns are globs over a command line, and a line can chain commands
(`pytest && curl … | sh`), so the line is cut into its simple commands first: one allowed
prefix must not carry an unapproved command along. Deny patterns are a seatbelt, not a sandbox
(`sh -c '…'` or `xargs rm` hide what runs): `ask` stays the safe default for the shell.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

Decision = Literal["auto", "ask", "deny"]
DECISIONS: tuple[str, ...] = get_args(Decision)
SHELL_TOOL = "run_shell"
_READ_TOOLS = ("list_files", "read_file", "search")
_WRITE_TOOLS = ("write_file", "edit_file")


def _preset(read: Decision, write: Decision, shell: Decision) -> dict[str, Decision]:
    return {**dict.fromkeys(_READ_TOOLS, read), **dict.fromkeys(_WRITE_TOOLS, write), SHELL_TOOL: shell}


#: Writes are confined to the worktree by `Workspace`, so `ask-shell` lets them run unasked.
PRESETS: dict[str, dict[str, Decision]] = {
    "read-only": _preset("auto", "deny", "deny"),
    "ask-shell": _preset("auto", "auto", "ask"),
    "auto": _preset("auto", "auto", "auto"),
}
KNOWN_TOOLS: tuple[str, ...] = tuple(PRESETS["auto"])


@dataclass(frozen=True)
class PolicyVerdict:
    decision: Decision
    reason: str  # one line, shown to the person and, on deny, to the model


class ApprovalPolicy:
    """Decides each tool call from a preset, per-tool overrides and shell allow/deny globs.

    For `run_shell`: a deny pattern matching the line or any command in it denies; a denied
    `run_shell` stays denied; a line whose every command matches an allow pattern runs unasked;
    anything else gets `run_shell`'s own decision.
    """

    def __init__(
        self,
        preset: str = "ask-shell",
        tools: Mapping[str, str] | None = None,
        shell_allow: Iterable[str] = (),
        shell_deny: Iterable[str] = (),
    ):
        if preset not in PRESETS:
            raise ValueError(f"unknown approval preset {preset!r}; choose one of: {', '.join(PRESETS)}")
        for tool, decision in (tools or {}).items():
            if tool not in KNOWN_TOOLS:
                raise ValueError(f"approval for unknown tool {tool!r}; tools are: {', '.join(KNOWN_TOOLS)}")
            if decision not in DECISIONS:
                raise ValueError(f"approval for tool {tool!r} is {decision!r}; choose one of: {', '.join(DECISIONS)}")
        self.preset = preset
        self.tools: dict[str, Decision] = dict(tools or {})  # type: ignore[arg-type]  # checked above
        self.shell_allow = [_normalized(p) for p in shell_allow if p.strip()]
        self.shell_deny = [_normalized(p) for p in shell_deny if p.strip()]

    def decide(self, tool: str, args: Mapping[str, object]) -> PolicyVerdict:
        if tool not in KNOWN_TOOLS:
            return PolicyVerdict("deny", f"unknown tool {tool!r}; tools are: {', '.join(KNOWN_TOOLS)}")
        verdict = self._tool_verdict(tool)
        command = args.get("command")
        if tool != SHELL_TOOL or not isinstance(command, str):
            return verdict
        return self._shell_verdict(command, verdict)

    def _tool_verdict(self, tool: str) -> PolicyVerdict:
        if tool in self.tools:
            return PolicyVerdict(self.tools[tool], f"{tool} is {self.tools[tool]!r} in approval.tools")
        decision = PRESETS[self.preset][tool]
        return PolicyVerdict(decision, f"{tool} is {decision!r} under the {self.preset!r} preset")

    def _shell_verdict(self, command: str, tool_verdict: PolicyVerdict) -> PolicyVerdict:
        line = _normalized(command)
        parts = command_parts(command)
        for candidate in dict.fromkeys([line, *parts, *map(_without_assignments, parts)]):
            pattern = _first_match(self.shell_deny, candidate)
            if pattern is not None:
                where = "" if candidate == line else f" (in {candidate!r})"
                return PolicyVerdict("deny", f"command matches shell_deny pattern {pattern!r}{where}")
        if tool_verdict.decision == "deny":
            return tool_verdict
        if parts and all(_first_match(self.shell_allow, part) is not None for part in parts):
            return PolicyVerdict("auto", "every command in the line matches shell_allow")
        return tool_verdict


def _first_match(patterns: list[str], text: str) -> str | None:
    return next((p for p in patterns if fnmatch.fnmatchcase(text, p)), None)


# -- cutting a command line into simple commands ------------------------------------------------

#: Words that open or close a compound command; the command proper follows them.
_RESERVED = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "time"})
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=\S*$")


def command_parts(command: str) -> list[str]:
    """The simple commands in a bash command line, whitespace-normalised.

    Cut at `;`, `&`, `&&`, `|`, `||`, newlines and parentheses outside quotes; the commands
    inside `$( )`, backticks and `<( )` / `>( )` are parts of their own as well (their text also
    stays inside the command that contains them). Leading reserved words (`if`, `then`, `do`, `{`
    …) are dropped so that `if x; then rm -rf /; fi` yields `x` and `rm -rf /`.
    """
    parts: list[str] = []
    _scan(command, 0, "", parts)
    return parts


def _scan(text: str, i: int, closer: str, parts: list[str]) -> int:
    """Add the parts of `text[i:]` up to `closer` (')' or '`', '' for the end); return the index after it."""
    start = i
    quote = ""

    def cut(end: int) -> None:
        part = _strip_reserved(_normalized(text[start:end]))
        if part:
            parts.append(part)

    while i < len(text):
        char, pair = text[i], text[i:i + 2]
        if quote == "'":
            quote = "" if char == "'" else quote
        elif char == "\\":
            i += 1  # the escaped character is literal
        elif closer and char == closer and not quote:
            cut(i)
            return i + 1
        elif pair == "$(" or (pair in ("<(", ">(") and not quote):
            i = _scan(text, i + 2, ")", parts)
            continue
        elif char == "`" and closer != "`":
            i = _scan(text, i + 1, "`", parts)
            continue
        elif char == '"':
            quote = "" if quote else '"'
        elif char == "'" and not quote:
            quote = "'"
        elif not quote and _is_separator(text, i):
            cut(i)
            start = i + 1
        i += 1
    cut(len(text))
    return len(text)


def _is_separator(text: str, i: int) -> bool:
    """Whether `text[i]` ends a simple command; `2>&1`, `&>` and `>|` are redirections, not separators."""
    char, before, after = text[i], text[i - 1:i], text[i + 1:i + 2]
    if char == "&":
        return before not in ("<", ">") and after != ">"
    if char == "|":
        return before != ">"
    return char in ";\n()"


def _normalized(text: str) -> str:
    return " ".join(text.split())


def _strip_reserved(part: str) -> str:
    words = part.split(" ")
    while words and words[0] in _RESERVED:
        words.pop(0)
    return " ".join(words)


def _without_assignments(part: str) -> str:
    """`part` without leading `NAME=value` words, so `X=1 rm -rf /` still meets a `rm *` deny."""
    words = part.split(" ")
    while len(words) > 1 and _ASSIGNMENT.match(words[0]):
        words.pop(0)
    return " ".join(words)
