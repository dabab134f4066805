"""What an approval request asks, reduced to its *shape*: requests of one shape are answered together.

A shell command's shape is its program and, for programs that take one, its subcommand
(`pytest …`, `npm test`, `git status …`, `python -m pytest …`, `npm run build`), read with the
policy's own bash lexer so that `cd app && pytest -q` is the shape of two commands. A file tool's
request is shaped by its file, anything else by its tool and title. The allow patterns of a shape
are globs for `[approval] shell_allow`; whether they really let a command run is left to the
policy (`rule_refusal`), never guessed here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cockpit.agents.policy import SHELL_TOOL, ApprovalPolicy
from cockpit.agents.shell_syntax import parse
from cockpit.config import ApprovalConfig

#: Programs whose first plain word is a subcommand worth telling apart (`git status` ≠ `git push`).
SUBCOMMAND_PROGRAMS = frozenset({
    "git", "npm", "pnpm", "yarn", "bun", "deno", "npx", "pnpx", "bunx", "cargo", "go", "uv", "uvx", "pip", "pip3",
    "poetry", "pdm", "hatch", "tox", "nox", "make", "just", "docker", "podman", "kubectl", "helm", "terraform",
    "gh", "dotnet", "mvn", "gradle", "bundle", "rake", "rails", "mix", "composer", "brew", "apt", "apt-get",
    "systemctl", "conda", "swift", "flutter", "dart", "rustup", "pre-commit", "ruff", "mypy",
})
#: (program, subcommand) pairs whose next plain word names what runs (`npm run build`, `uv run pytest`).
RUNNERS = frozenset({
    ("npm", "run"), ("npm", "exec"), ("pnpm", "run"), ("pnpm", "exec"), ("yarn", "run"), ("bun", "run"),
    ("uv", "run"), ("poetry", "run"), ("pdm", "run"), ("hatch", "run"), ("bundle", "exec"), ("cargo", "run"),
    ("go", "run"), ("dotnet", "run"),
})
_PLAIN = re.compile(r"[A-Za-z][\w:.+-]*")
_PYTHON = re.compile(r"python(\d+(\.\d+)?)?")
#: Tools that name a file their request is about (the built-in agent's; ACP agents send a path too).
_PATH_KEYS = ("path", "file_path", "filePath", "abs_path")


@dataclass(frozen=True)
class Shape:
    """What a request asks, as the inbox groups it."""

    key: str  # requests with the same key are one group
    label: str  # how the person reads it: `pytest …` (more words follow), `npm test`, `src/app.py`
    #: shell_allow globs that cover the shape with any arguments; () when no rule can
    patterns: tuple[str, ...] = ()


def request_command(tool: str, title: str, detail: str) -> str | None:
    """The shell command a request would run, or None when it runs none.

    The built-in agent's `run_shell` asks with the command as its title; an ACP agent's
    `execute` request carries it in its raw input (the detail's JSON)."""
    if tool == SHELL_TOOL:
        return title
    command = _detail_json(detail).get("command")
    if isinstance(command, list) and command and all(isinstance(w, str) for w in command):
        command = " ".join(command)
    return command if isinstance(command, str) and command.strip() else None


def request_path(detail: str) -> str | None:
    data = _detail_json(detail)
    return next((data[k] for k in _PATH_KEYS if isinstance(data.get(k), str) and data[k]), None)


def _detail_json(detail: str) -> dict[str, object]:
    """The JSON object a request's detail starts with ({} when there is none); an ACP request
    puts a line of options after it."""
    text = detail.split("\noptions: ", 1)[0].strip()
    if not text.startswith("{"):
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def shape_of(tool: str, title: str, detail: str = "") -> Shape:
    command = request_command(tool, title, detail)
    if command is not None:
        return command_shape(command)
    path = request_path(detail)
    if path is not None:
        return Shape(f"file\0{path}", path)
    return Shape(f"ask\0{tool}\0{title}", f"{tool}: {title}")


def command_shape(command: str) -> Shape:
    """The shape of a command line; a line that cannot be read for sure is its own shape."""
    parsed = parse(command)
    prefixes: list[tuple[str, bool]] = []  # (prefix words, more words follow)
    for cmd in parsed.commands:
        words, computed = cmd.without_assignments()
        if not words:
            continue
        if computed[0] or len(words) < len(cmd.words):
            prefixes = []  # a computed program, or `NAME=value cmd`: only the exact line is its shape
            break
        prefix = _prefix_length(words)
        prefixes.append((" ".join(words[:prefix]), prefix < len(words)))
    line = " ".join(command.split())
    if parsed.problems or not prefixes:
        return Shape(f"line\0{line}", line)
    unique = list(dict.fromkeys(prefixes))
    names = list(dict.fromkeys(p for p, _ in unique))
    label = " ; ".join(f"{p} …" if more else p for p, more in unique)
    patterns = tuple(pattern for p in names for pattern in (p, f"{p} *"))
    return Shape("shell\0" + " ; ".join(names), label, patterns)


def _prefix_length(words: list[str]) -> int:
    """How many leading words name what runs: the program, `-m module`, a subcommand, a script."""
    program = words[0].rsplit("/", 1)[-1]
    if _PYTHON.fullmatch(program) and len(words) > 2 and words[1] == "-m":
        return 3
    count = 1
    if program in SUBCOMMAND_PROGRAMS and len(words) > 1 and _PLAIN.fullmatch(words[1]):
        count = 2
        if (program, words[1]) in RUNNERS and len(words) > 2 and _PLAIN.fullmatch(words[2]):
            count = 3
    return count


def rule_refusal(approval: ApprovalConfig, patterns: Iterable[str], commands: Iterable[str]) -> str:
    """"" when adding `patterns` to `approval`'s shell_allow lets every command run unasked;
    else why not, in one line (the policy's own reason: a deny pattern, a redirection…)."""
    patterns = list(patterns)
    if not patterns:
        return "only a shell command's shape can be allowed by a rule"
    return policy_refusal(approval, commands, patterns)


def policy_refusal(approval: ApprovalConfig, commands: Iterable[str], extra_allow: Iterable[str] = ()) -> str:
    """"" when `approval` (with `extra_allow` patterns) runs every command unasked, else why not."""
    policy = ApprovalPolicy(approval.preset, approval.tools, [*approval.shell_allow, *extra_allow],
                            approval.shell_deny)
    for command in commands:
        verdict = policy.decide(SHELL_TOOL, {"command": command})
        if verdict.decision != "auto":
            return f"{command!r} would still not run unasked: {verdict.reason}"
    return ""
