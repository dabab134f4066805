"""The tools the built-in agent's model can call, their JSON schemas and how a call is run.

Each tool is declared once (name, description, typed parameters, implementation); its OpenAI
schema and the checking of the model's arguments both come from that declaration, so they
cannot drift apart. A call never raises for a model mistake: bad arguments, refused paths,
failed commands and unreadable files all come back as an `error: …` result the model can act
on, and every result is cut to a size its context can afford.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cockpit.core.process import ShellResult, elide, run_process
from cockpit.agents.file_io import read_regular, write_regular
from cockpit.agents.workspace import GIT_DIR, PathRefused, Workspace

#: Characters of one result the model reads; head and tail survive when it is longer.
DEFAULT_MAX_CHARS = 16_000
MAX_READ_LINES = 2_000
MAX_READ_BYTES = 20_000_000
MAX_SEARCH_MATCHES = 200
MAX_MATCH_CHARS = 300  # of one matching line
MAX_SHELL_TIMEOUT_S = 3_600
_SUBPROCESS_TIMEOUT_S = 60  # git ls-files, rg
_LISTING_CAPTURE_CHARS = 10_000_000
_WALK_LIMIT = 50_000
_BINARY_SNIFF = 8_192

ShellFn = Callable[[str, float], Awaitable[ShellResult]]
Impl = Callable[..., Awaitable[str]]  # async def tool(ctx, **args) -> str


class ToolError(Exception):
    """A tool call that cannot be done as asked; the message tells the model what to change."""


@dataclass(frozen=True)
class ToolOutcome:
    ok: bool
    output: str


@dataclass(frozen=True)
class ToolContext:
    workspace: Workspace
    shell: ShellFn
    max_chars: int


_REQUIRED = object()
_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array",
               dict: "object", type(None): "null"}


@dataclass(frozen=True)
class Param:
    type: type
    description: str
    default: Any = _REQUIRED  # None: optional without a default

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    def schema(self) -> dict[str, Any]:
        schema = {"type": _JSON_TYPES[self.type], "description": self.description}
        if not self.required and self.default is not None:
            schema["default"] = self.default
        return schema


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    impl: Impl
    params: dict[str, Param] = field(default_factory=dict)

    def spec(self) -> dict[str, Any]:
        return {"type": "function", "function": {
            "name": self.name,
            "description": self.description,
            "parameters": {
                "type": "object",
                "properties": {name: p.schema() for name, p in self.params.items()},
                "required": [name for name, p in self.params.items() if p.required],
                "additionalProperties": False,
            },
        }}

    def bind(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """The implementation's keyword arguments from the model's, or `ToolError` saying what is wrong."""
        if not isinstance(args, Mapping):
            raise ToolError(f"{self.name}: arguments must be a JSON object; {self._usage()}")
        unknown = [name for name in args if name not in self.params]
        if unknown:
            raise ToolError(f"{self.name} has no argument {', '.join(map(repr, unknown))}; {self._usage()}")
        bound: dict[str, Any] = {}
        for name, param in self.params.items():
            value = args.get(name)
            if value is None:  # absent, or null for an optional argument
                if param.required:
                    raise ToolError(f"{self.name} is missing the required argument {name!r}; {self._usage()}")
                value = param.default
            elif type(value) is not param.type:  # bool is an int subclass; `type` keeps True out
                raise ToolError(f"{self.name}: argument {name!r} must be {_JSON_TYPES[param.type]}, "
                                f"got {_JSON_TYPES.get(type(value), type(value).__name__)} {_preview(value)}")
            bound[name] = value
        return bound

    def _usage(self) -> str:
        listed = ", ".join(
            f"{name} ({_JSON_TYPES[p.type]}{', required' if p.required else ''})" for name, p in self.params.items()
        )
        return f"it takes: {listed}"


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_TOOLS: dict[str, Tool] = {}


def _tool(description: str, **params: Param) -> Callable[[Impl], Impl]:
    """Register the decorated `async def name(ctx, **args) -> str` as the tool `name`."""
    def register(impl: Impl) -> Impl:
        _TOOLS[impl.__name__] = Tool(impl.__name__, description, impl, params)
        return impl
    return register


def tool_specs() -> list[dict[str, Any]]:
    """The OpenAI function-calling schemas of every tool."""
    return [tool.spec() for tool in _TOOLS.values()]


async def run_tool(
    workspace: Workspace,
    name: str,
    args: Mapping[str, Any],
    *,
    shell_runner: ShellFn,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> ToolOutcome:
    """Run one call; model mistakes and file-system failures become an `ok=False` outcome."""
    try:
        tool = _TOOLS.get(name)
        if tool is None:
            raise ToolError(f"there is no tool {name!r}; tools are: {', '.join(_TOOLS)}")
        output = await tool.impl(ToolContext(workspace, shell_runner, max_chars), **tool.bind(args))
        ok = True
    except (ToolError, PathRefused, OSError) as exc:
        output, ok = f"error: {exc}", False
    return ToolOutcome(ok, elide(output, max_chars))


# -- the tools ----------------------------------------------------------------------------------

_PATH_NOTE = "relative to the worktree root"


@_tool(
    "List the files under a folder of the worktree, recursively, one path per line (relative to "
    "the worktree root). Files ignored by .gitignore and the .git folder are left out.",
    path=Param(str, f"Folder to list, {_PATH_NOTE}.", "."),
    max_entries=Param(int, "Most paths to show.", 500),
)
async def list_files(ctx: ToolContext, path: str, max_entries: int) -> str:
    if max_entries < 1:
        raise ToolError("list_files: max_entries must be at least 1")
    base = _existing(ctx.workspace, path)
    entries = await _files_under(ctx.workspace, base)
    if not entries:
        return f"no files under {ctx.workspace.relative(base)}"
    return _capped(entries, max_entries,
                   f"{len(entries) - max_entries} more files not shown; list a subfolder or use search")


@_tool(
    "Read a text file, with line numbers. Long files come in slices: pass start_line to read on.",
    path=Param(str, f"File to read, {_PATH_NOTE}."),
    start_line=Param(int, "First line to show (1-based).", 1),
    end_line=Param(int, "Last line to show (inclusive); default: the end of the file.", None),
)
async def read_file(ctx: ToolContext, path: str, start_line: int, end_line: int | None) -> str:
    real = _existing_file(ctx.workspace, path)
    rel = ctx.workspace.relative(real)
    size = real.stat().st_size
    if size > MAX_READ_BYTES:
        raise ToolError(f"{rel} is too large to read ({size} bytes); use search, or run_shell with head/sed")
    data = await asyncio.to_thread(read_regular, real, rel, MAX_READ_BYTES)  # a FIFO is refused, not waited on
    if b"\0" in data[:_BINARY_SNIFF]:
        raise ToolError(f"{rel} looks binary ({size} bytes); it is not shown")
    lines = _lines(data.decode("utf-8", errors="replace"))
    if not lines:
        return f"{rel} is empty"
    total = len(lines)
    if not 1 <= start_line <= total:
        raise ToolError(f"start_line {start_line} is outside {rel}, which has {total} lines")
    if end_line is not None and end_line < start_line:
        raise ToolError(f"end_line {end_line} is before start_line {start_line}")
    last = min(end_line or total, total, start_line + MAX_READ_LINES - 1)
    shown: list[str] = []
    budget = ctx.max_chars - 200  # room for the note
    for number in range(start_line, last + 1):
        line = f"{number:>6}\t{lines[number - 1]}"
        budget -= len(line) + 1
        if budget < 0 and shown:
            break
        shown.append(line)
    end = start_line + len(shown) - 1
    if end < total and end < (end_line or total):
        shown.append(f"[lines {start_line}-{end} of {total} shown; read on with start_line={end + 1}]")
    return "\n".join(shown)


@_tool(
    "Create or overwrite a file with the given content; missing folders are created.",
    path=Param(str, f"File to write, {_PATH_NOTE}."),
    content=Param(str, "The whole new content of the file."),
)
async def write_file(ctx: ToolContext, path: str, content: str) -> str:
    real = ctx.workspace.resolve(path, for_write=True)
    existed = real.exists()
    data = content.encode("utf-8", errors="surrogateescape")
    await asyncio.to_thread(_write, real, data)
    verb = "overwrote" if existed else "created"
    return f"{verb} {ctx.workspace.relative(real)} ({len(_lines(content))} lines, {len(data)} bytes)"


@_tool(
    "Replace one exact piece of a file. `search` must occur exactly once in the file, matching "
    "whitespace and indentation; include a few surrounding lines to make it unique. Read the "
    "file first. To create a file use write_file.",
    path=Param(str, f"File to edit, {_PATH_NOTE}."),
    search=Param(str, "The exact text to replace."),
    replace=Param(str, "The text to put in its place."),
)
async def edit_file(ctx: ToolContext, path: str, search: str, replace: str) -> str:
    real = ctx.workspace.resolve(path, for_write=True)
    rel = ctx.workspace.relative(real)
    if not real.is_file():
        raise ToolError(f"{rel} does not exist; create it with write_file")
    if not search:
        raise ToolError("search is empty; give the exact text to replace")
    # surrogateescape: bytes that are not UTF-8 survive the round trip untouched.
    text = (await asyncio.to_thread(read_regular, real, rel, MAX_READ_BYTES)).decode("utf-8", errors="surrogateescape")
    if search not in text and "\r\n" in text:  # the model writes \n; the file uses CRLF
        search, replace = search.replace("\n", "\r\n"), replace.replace("\n", "\r\n")
    count = text.count(search)
    if count == 0:
        raise ToolError(f"search text not found in {rel}; read the file with read_file and copy the "
                        "exact text, including indentation and line breaks")
    if count > 1:
        starts = [m.start() for m in re.finditer(re.escape(search), text)]
        where = ", ".join(str(text.count("\n", 0, start) + 1) for start in starts[:10])
        raise ToolError(f"search text occurs {count} times in {rel} (at lines {where}); include more "
                        "surrounding lines so that it matches exactly once")
    at = text.index(search)
    new = text[:at] + replace + text[at + len(search):]
    await asyncio.to_thread(_write, real, new.encode("utf-8", errors="surrogateescape"))
    line = text.count("\n", 0, at) + 1
    return (f"edited {rel} at line {line}: replaced {search.count(chr(10)) + 1} lines "
            f"with {replace.count(chr(10)) + 1} lines")


@_tool(
    f"Search file contents with a regular expression; prints path:line:text for each match, at "
    f"most {MAX_SEARCH_MATCHES}. Ignored files and .git are skipped. Use (?i) for case-insensitive.",
    pattern=Param(str, "Regular expression to look for, matched against each line."),
    path=Param(str, f"Folder or file to search, {_PATH_NOTE}.", "."),
)
async def search(ctx: ToolContext, pattern: str, path: str) -> str:
    base = _existing(ctx.workspace, path)
    rg = find_rg()
    if rg is not None:
        matches = await _rg_matches(rg, ctx.workspace, base, pattern)
    else:
        matches = await _python_matches(ctx.workspace, base, pattern)
    if not matches:
        return f"no matches for {pattern!r} in {ctx.workspace.relative(base)}"
    return _capped(matches, MAX_SEARCH_MATCHES,
                   f"showing the first {MAX_SEARCH_MATCHES} matches; narrow the pattern or the path")


@_tool(
    "Run a bash command in the worktree root and return its exit code and output (stdout and "
    "stderr together). There is no input: interactive programs get end-of-file. Background jobs "
    "are stopped when the command ends, so start a server and its client in one command.",
    command=Param(str, "The bash command line."),
    timeout=Param(int, f"Seconds before the command is stopped (at most {MAX_SHELL_TIMEOUT_S}).", 120),
)
async def run_shell(ctx: ToolContext, command: str, timeout: int) -> str:
    if not command.strip():
        raise ToolError("command is empty")
    if not 1 <= timeout <= MAX_SHELL_TIMEOUT_S:
        raise ToolError(f"timeout must be between 1 and {MAX_SHELL_TIMEOUT_S} seconds, got {timeout}")
    result = await ctx.shell(command, timeout)
    output = result.output or "(no output)"
    if result.timed_out:
        raise ToolError(f"timed out after {timeout} s; the command and its background jobs were stopped\n{output}")
    if result.interrupted:
        raise ToolError(f"interrupted; the command and its background jobs were stopped\n{output}")
    if result.exit_code != 0:
        raise ToolError(f"exit code {result.exit_code}\n{output}")
    return f"exit code 0\n{output}"


# -- helpers ------------------------------------------------------------------------------------

def find_rg() -> str | None:
    """ripgrep's path, or None to search in Python."""
    return shutil.which("rg")


def _existing(workspace: Workspace, path: str) -> Path:
    real = workspace.resolve(path)
    if not real.exists():
        raise ToolError(f"{path!r} does not exist; use list_files to see what there is")
    return real


def _existing_file(workspace: Workspace, path: str) -> Path:
    real = _existing(workspace, path)
    if real.is_dir():
        raise ToolError(f"{path!r} is a folder; use list_files to see its files")
    return real


def _capped(lines: list[str], limit: int, note: str) -> str:
    """The first `limit` lines, then `[note]` when some were left out."""
    text = "\n".join(lines[:limit])
    return f"{text}\n[{note}]" if len(lines) > limit else text


def _lines(text: str) -> list[str]:
    """Lines split at \\n only, as editors and ripgrep number them."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _write(real: Path, data: bytes) -> None:
    write_regular(real, real.name, data)  # a FIFO or a device is refused, never opened


async def _files_under(workspace: Workspace, base: Path) -> list[str]:
    """Files under `base` relative to the root, sorted: git's view when it has one, else a walk."""
    if base.is_file():
        return [workspace.relative(base)]
    listed = await _git_files(workspace, base)
    return listed or await asyncio.to_thread(_walk, workspace, base)


async def _git_files(workspace: Workspace, base: Path) -> list[str]:
    """Tracked and untracked, not ignored, files under `base`; [] outside a repository."""
    argv = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "."]
    try:
        result = await run_process(argv, base, None, _SUBPROCESS_TIMEOUT_S, capture_chars=_LISTING_CAPTURE_CHARS)
    except FileNotFoundError:  # no git
        return []
    if result.exit_code != 0:
        return []
    prefix = base.relative_to(workspace.root)

    def existing() -> list[str]:  # the index still lists deleted files; stray stderr is no path
        paths = (prefix / name for name in dict.fromkeys(result.output.split("\0")) if name)
        return sorted(p.as_posix() for p in paths if os.path.lexists(workspace.root / p))

    return await asyncio.to_thread(existing)


def _walk(workspace: Workspace, base: Path) -> list[str]:
    found: list[str] = []
    for folder, dirs, files in os.walk(base):
        dirs[:] = sorted(d for d in dirs if d != GIT_DIR)
        here = Path(folder).relative_to(workspace.root)
        found.extend((here / name).as_posix() for name in sorted(files) if name != GIT_DIR)
        if len(found) >= _WALK_LIMIT:
            break
    return sorted(found)


async def _rg_matches(rg: str, workspace: Workspace, base: Path, pattern: str) -> list[str]:
    target = workspace.relative(base)
    argv = [rg, "--line-number", "--no-heading", "--with-filename", "--color", "never", "--sort", "path",
            "--hidden", "--glob", f"!{GIT_DIR}", "--max-columns", str(MAX_MATCH_CHARS),
            "--max-columns-preview", "--no-messages", "--regexp", pattern, "--", target]
    result = await run_process(argv, workspace.root, None, _SUBPROCESS_TIMEOUT_S)
    if result.timed_out:
        raise ToolError(f"search timed out after {_SUBPROCESS_TIMEOUT_S} s; narrow the path")
    if result.exit_code == 1:
        return []
    if result.exit_code != 0:
        raise ToolError(f"search failed: {result.output.strip()}")
    return [line.removeprefix("./") for line in result.output.splitlines()]


async def _python_matches(workspace: Workspace, base: Path, pattern: str) -> list[str]:
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ToolError(f"invalid regular expression {pattern!r}: {exc}") from None
    files = await _files_under(workspace, base)

    def scan() -> list[str]:
        matches: list[str] = []
        for rel in files:
            try:  # a listed symlink may point out of the worktree
                real = workspace.resolve(rel)
            except PathRefused:
                continue
            if not real.is_file() or real.stat().st_size > MAX_READ_BYTES:
                continue
            data = real.read_bytes()
            if b"\0" in data[:_BINARY_SNIFF]:
                continue
            for number, line in enumerate(_lines(data.decode("utf-8", errors="replace")), 1):
                if regex.search(line):
                    matches.append(f"{rel}:{number}:{line[:MAX_MATCH_CHARS]}")
                    if len(matches) > MAX_SEARCH_MATCHES:
                        return matches
        return matches

    return await asyncio.to_thread(scan)
