"""Approval policy: whether a tool call runs at once, waits for the person, or is refused.

A preset gives every tool a decision, per-tool overrides replace it, and shell-command patterns
refine `run_shell`. Patterns are globs over a command line, and a line can chain commands
(`pytest && curl … | sh`), so the line is cut into its simple commands first: one allowed
prefix must not carry an unapproved command along. The line is read by a bash lexer
(`shell_syntax`), commands run by others (`sudo X`, `xargs X`, `sh -c 'X'`, `eval`, `find -exec`)
are judged too, a deny pattern also meets its program under another spelling (`\\rm`,
`/bin/rm`, `-fr` for `-rf`), and what cannot be read for sure asks instead of running. Still,
patterns are a seatbelt: the sandbox (`cockpit.core.sandbox`) is what makes `auto` safe.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from cockpit.agents.shell_syntax import Command, parse

Decision = Literal["auto", "ask", "deny"]
DECISIONS: tuple[str, ...] = get_args(Decision)
SHELL_TOOL = "run_shell"
READ_TOOLS = ("list_files", "read_file", "search")
_WRITE_TOOLS = ("write_file", "edit_file")


def _preset(read: Decision, write: Decision, shell: Decision) -> dict[str, Decision]:
    return {**dict.fromkeys(READ_TOOLS, read), **dict.fromkeys(_WRITE_TOOLS, write), SHELL_TOOL: shell}


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
        *,
        sandboxed: bool = True,
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
        self.sandboxed = sandboxed  # False: commands run unconfined, so `auto` for the shell asks

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
            verdict = PolicyVerdict(self.tools[tool], f"{tool} is {self.tools[tool]!r} in approval.tools")
        else:
            decision = PRESETS[self.preset][tool]
            verdict = PolicyVerdict(decision, f"{tool} is {decision!r} under the {self.preset!r} preset")
        if tool == SHELL_TOOL and verdict.decision == "auto" and not self.sandboxed:
            return PolicyVerdict("ask", f"{verdict.reason}, but there is no sandbox: commands would run unconfined")
        return verdict

    def _shell_verdict(self, command: str, tool_verdict: PolicyVerdict) -> PolicyVerdict:
        line = _normalized(command)
        parsed = parse(command)
        commands, problems = _with_inner_commands(parsed.commands)
        problems = [*parsed.problems, *problems]
        pattern = _first_match(self.shell_deny, line)
        if pattern is not None:
            return PolicyVerdict("deny", f"command matches shell_deny pattern {pattern!r}")
        for cmd in commands:
            pattern = self._denying(cmd)
            if pattern is not None:
                return PolicyVerdict("deny", f"command matches shell_deny pattern {pattern!r} (in {cmd.text!r})")
        if tool_verdict.decision == "deny":
            return tool_verdict
        doubt = problems[0] if problems else next(filter(None, map(self._doubt, commands)), "")
        if doubt:
            if tool_verdict.decision == "auto":
                return PolicyVerdict("ask", f"the command line cannot be read for sure: {doubt}")
            return tool_verdict
        if commands and all(_first_match(self.shell_allow, cmd.text) is not None and not _writes_file(cmd)
                            for cmd in commands):
            return PolicyVerdict("auto", "every command in the line matches shell_allow")
        return tool_verdict

    def _denying(self, cmd: Command) -> str | None:
        """The deny pattern `cmd` meets: as written, without its assignments, or as the program it
        names (`\\rm`, `/bin/rm`) with its short flags in any order and grouping (`-fr`, `-r -f`)."""
        words, _ = cmd.without_assignments()
        for candidate in dict.fromkeys([cmd.text, " ".join(words)]):
            pattern = _first_match(self.shell_deny, candidate)
            if pattern is not None:
                return pattern
        shape = _Shape.of(words)
        return next((p for p in self.shell_deny if shape is not None and shape.meets(_Shape.of(p.split(" ")))), None)

    def _doubt(self, cmd: Command) -> str:
        """Why `cmd` may be a denied command in disguise, or "" when it plainly is not."""
        words, computed = cmd.without_assignments()
        if not words:
            return ""
        if computed[0]:
            return f"the program to run is computed ({words[0]!r})"
        shape = _Shape.of(words)
        for pattern in self.shell_deny:
            denied = _Shape.of(pattern.split(" "))
            if shape and denied and denied.flags and shape.long_flags and fnmatch.fnmatchcase(shape.name, denied.name):
                return f"{words[0]} with long options may be what shell_deny pattern {pattern!r} refuses"
        return ""


def _first_match(patterns: list[str], text: str) -> str | None:
    return next((p for p in patterns if fnmatch.fnmatchcase(text, p)), None)


def _normalized(text: str) -> str:
    return " ".join(text.split())


# -- what a command line really runs ------------------------------------------------------------

_HARMLESS_TARGETS = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "-"})
_WRITE_OPS = frozenset({">", ">>", ">|", "&>", "&>>", "<>", ">&"})
#: Programs that run the command they are given: (options that take a value).
_WRAPPERS: dict[str, frozenset[str]] = {
    "sudo": frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"}),
    "doas": frozenset({"-u", "-C"}),
    "command": frozenset(), "builtin": frozenset(), "exec": frozenset({"-a"}), "nohup": frozenset(),
    "time": frozenset({"-f", "-o"}), "nice": frozenset({"-n"}), "stdbuf": frozenset({"-i", "-o", "-e"}),
    "env": frozenset({"-u", "-C", "-S"}), "xargs": frozenset({"-I", "-n", "-L", "-P", "-d", "-E", "-s", "-a"}),
    "timeout": frozenset({"-s", "-k"}), "watch": frozenset({"-n", "-d"}), "setsid": frozenset(),
    "chroot": frozenset(), "flock": frozenset({"-w", "-E"}),
}
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "fish"})
_MAX_DEPTH = 4


def _with_inner_commands(commands: list[Command], depth: int = 0) -> tuple[list[Command], list[str]]:
    """`commands` plus the commands they run in turn (`sudo X`, `xargs X`, `sh -c 'X'`, `eval X`,
    `find -exec X`), each judged like the rest; and any problems reading those."""
    found: list[Command] = []
    problems: list[str] = []
    for cmd in commands:
        found.append(cmd)
        inner_lines, inner = _inner(cmd)
        if not inner_lines and not inner:
            continue
        if depth >= _MAX_DEPTH:
            problems.append("commands nested too deep")
            continue
        nested: list[Command] = [Command(w, c) for w, c in inner]
        for text in inner_lines:
            parsed = parse(text)
            nested.extend(parsed.commands)
            problems.extend(parsed.problems)
        more, more_problems = _with_inner_commands(nested, depth + 1)
        found.extend(more)
        problems.extend(more_problems)
    return found, problems


def _inner(cmd: Command) -> tuple[list[str], list[tuple[list[str], list[bool]]]]:
    """(command lines given as text, commands given as words) that `cmd` runs."""
    words, computed = cmd.without_assignments()
    if not words:
        return [], []
    name = words[0].rsplit("/", 1)[-1]
    if name in _SHELLS:
        for at, word in enumerate(words[1:-1], 1):
            if re.fullmatch(r"-[a-zA-Z]*c[a-zA-Z]*", word):
                return [words[at + 1]], []
        return [], []
    if name == "eval":
        return [" ".join(words[1:])], []
    if name == "find":
        runs = []
        for at, word in enumerate(words):
            if word in ("-exec", "-execdir", "-ok", "-okdir"):
                end = next((k for k in range(at + 1, len(words)) if words[k] in (";", "+")), len(words))
                runs.append((words[at + 1:end], computed[at + 1:end]))
        return [], runs
    if name not in _WRAPPERS:
        return [], []
    at = 1
    takes_value = _WRAPPERS[name]
    while at < len(words) and (words[at].startswith("-") or (name == "env" and "=" in words[at])):
        at += 2 if words[at] in takes_value else 1
        if words[at - 1] == "--":
            break
    if name == "timeout" and at < len(words):
        at += 1  # the duration
    if name == "nice" and at < len(words) and words[at].lstrip("-").isdigit():
        at += 1
    return ([], [(words[at:], computed[at:])]) if at < len(words) else ([], [])


def _writes_file(cmd: Command) -> bool:
    """Whether a redirection writes to a file: what an allowed program prints could land anywhere."""
    return any(op in _WRITE_OPS and target not in _HARMLESS_TARGETS and not target.isdigit()
               for op, target in cmd.redirects)


@dataclass(frozen=True)
class _Shape:
    """A command as its program name, its short flags as a set, its long flags and the rest."""

    name: str
    flags: frozenset[str]
    long_flags: frozenset[str]
    rest: str

    @classmethod
    def of(cls, words: list[str]) -> _Shape | None:
        if not words or not words[0]:
            return None
        flags: set[str] = set()
        long_flags: set[str] = set()
        rest: list[str] = []
        options = True
        for word in words[1:]:
            if options and word == "--":
                options = False
            elif options and re.fullmatch(r"-[A-Za-z0-9]+", word):
                flags.update(word[1:])
            elif options and re.fullmatch(r"--[A-Za-z0-9][\w-]*(=.*)?", word):
                long_flags.add(word.split("=", 1)[0])
            else:
                rest.append(word)
        return cls(words[0].rsplit("/", 1)[-1] or words[0], frozenset(flags), frozenset(long_flags), " ".join(rest))

    def meets(self, pattern: _Shape | None) -> bool:
        """Whether this command is at least what the deny pattern's shape refuses."""
        return (pattern is not None and fnmatch.fnmatchcase(self.name, pattern.name)
                and pattern.flags <= self.flags and pattern.long_flags <= self.long_flags
                and fnmatch.fnmatchcase(self.rest, pattern.rest or "*"))


def command_parts(command: str) -> list[str]:
    """The simple commands bash runs for `command`, as their words joined by spaces (quotes
    removed, substitutions as written), those inside substitutions first."""
    return [cmd.text for cmd in parse(command).commands]
