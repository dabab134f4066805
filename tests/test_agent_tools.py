"""The built-in agent's tools on real files and real processes: confinement, editing, listing,
searching (with and without ripgrep) and shell commands that must not outlive their call."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from cockpit.agents import tools
from cockpit.agents.shell import ShellRunner
from cockpit.core.process import elide
from cockpit.agents.tools import run_tool, tool_specs
from cockpit.agents.workspace import PathRefused, Workspace

pytestmark = pytest.mark.timeout(30)


# -- fixtures and helpers -----------------------------------------------------------------------

@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("needle outside\n")
    return folder


@pytest.fixture
def root(tmp_path: Path, outside: Path) -> Path:
    """A worktree with nested files, a `.git` folder and symlinks planted to lead out of it."""
    wt = tmp_path / "wt"
    (wt / "src" / "pkg").mkdir(parents=True)
    (wt / "src" / "pkg" / "mod.py").write_text("def f():\n    return 1\n")
    (wt / ".git").mkdir()
    (wt / ".git" / "config").write_text("[core]\n")
    (wt / "file_link").symlink_to(outside / "secret.txt")
    (wt / "dir_link").symlink_to(outside)
    (wt / "dangling").symlink_to(outside / "not-yet.txt")
    (wt / "git_link").symlink_to(wt / ".git")
    (wt / "inner_link").symlink_to(wt / "src")
    return wt


@pytest.fixture
def ws(root: Path) -> Workspace:
    return Workspace(root)


async def call(ws: Workspace, name: str, args: dict, **kwargs) -> tools.ToolOutcome:
    runner = ShellRunner()
    return await run_tool(ws, name, args, shell_runner=lambda cmd, t: runner.run(cmd, ws.root, {}, t), **kwargs)


def alive(pid: int) -> bool:
    """Whether `pid` runs. A zombie counts as dead: in a container whose init does not reap,
    orphans we killed stay zombies and `os.kill(pid, 0)` still succeeds on them."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def wait_for_file(path: Path, within: float = 5.0) -> str:
    deadline = time.monotonic() + within
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.02)
    return path.read_text().strip()


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


# -- confinement --------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "../x",
    "/etc/passwd",
    "sub/../../x",
    "src/../../outside/secret.txt",
    "file_link",  # a planted symlink to a file outside
    "dir_link/secret.txt",  # a symlinked directory
    "dir_link",
    ".git/config",
    ".git",
    "sub/../.git/config",
    ".GIT/config",
    "git_link/config",  # a symlink into .git
])
def test_escapes_are_refused(ws: Workspace, path: str) -> None:
    with pytest.raises(PathRefused) as refused:
        ws.resolve(path)
    message = str(refused.value)
    assert repr(path) in message and "\n" not in message


@pytest.mark.parametrize("path", ["dangling", "dir_link/new.txt", "../new.txt", ".git/hooks/pre-commit"])
def test_writes_that_would_land_outside_are_refused(ws: Workspace, path: str) -> None:
    with pytest.raises(PathRefused):
        ws.resolve(path, for_write=True)


def test_the_git_file_of_a_worktree_is_refused(tmp_path: Path) -> None:
    wt = tmp_path / "linked"
    wt.mkdir()
    (wt / ".git").write_text("gitdir: /somewhere/.git/worktrees/linked\n")
    with pytest.raises(PathRefused, match="git metadata"):
        Workspace(wt).resolve(".git")
    with pytest.raises(PathRefused):
        Workspace(wt).resolve(".git", for_write=True)


def test_messages_say_why(ws: Workspace, root: Path) -> None:
    with pytest.raises(PathRefused, match="outside the worktree through a symlink"):
        ws.resolve("dir_link/secret.txt")
    with pytest.raises(PathRefused, match="use the relative path 'src/pkg/mod.py'"):
        ws.resolve(str(root / "src" / "pkg" / "mod.py"))
    with pytest.raises(PathRefused, match="is a folder"):
        ws.resolve("src", for_write=True)


def test_paths_inside_are_allowed(ws: Workspace, root: Path) -> None:
    real_root = Path(os.path.realpath(root))
    assert ws.resolve("src/pkg/mod.py") == real_root / "src" / "pkg" / "mod.py"
    assert ws.resolve("sub/../src/pkg/mod.py") == real_root / "src" / "pkg" / "mod.py"
    assert ws.resolve("inner_link/pkg/mod.py") == real_root / "src" / "pkg" / "mod.py"
    assert ws.resolve(".") == real_root
    assert ws.resolve(".gitignore", for_write=True) == real_root / ".gitignore"
    assert ws.resolve("new/deeper/file.txt", for_write=True) == real_root / "new" / "deeper" / "file.txt"


def test_a_symlinked_root_is_resolved(tmp_path: Path, root: Path) -> None:
    (tmp_path / "root_link").symlink_to(root)
    assert Workspace(tmp_path / "root_link").resolve("src") == Path(os.path.realpath(root)) / "src"


async def test_tools_report_refusals_to_the_model(ws: Workspace) -> None:
    outcome = await call(ws, "read_file", {"path": "dir_link/secret.txt"})
    assert not outcome.ok and outcome.output.startswith("error: refused:")
    outcome = await call(ws, "write_file", {"path": ".git/config", "content": "x"})
    assert not outcome.ok and "git metadata" in outcome.output
    assert (ws.root / ".git" / "config").read_text() == "[core]\n"


# -- reading, writing, editing ------------------------------------------------------------------

async def test_write_then_read(ws: Workspace) -> None:
    outcome = await call(ws, "write_file", {"path": "new/sub/notes.txt", "content": "alpha\nbeta\ngamma\n"})
    assert outcome.ok and outcome.output == "created new/sub/notes.txt (3 lines, 17 bytes)"
    outcome = await call(ws, "read_file", {"path": "new/sub/notes.txt"})
    assert outcome == tools.ToolOutcome(True, "     1\talpha\n     2\tbeta\n     3\tgamma")
    outcome = await call(ws, "write_file", {"path": "new/sub/notes.txt", "content": "one"})
    assert outcome.output.startswith("overwrote") and (ws.root / "new/sub/notes.txt").read_text() == "one"


async def test_read_file_ranges(ws: Workspace) -> None:
    (ws.root / "ten.txt").write_text("".join(f"line {n}\n" for n in range(1, 11)))
    outcome = await call(ws, "read_file", {"path": "ten.txt", "start_line": 3, "end_line": 5})
    assert outcome.output == "     3\tline 3\n     4\tline 4\n     5\tline 5"
    outcome = await call(ws, "read_file", {"path": "ten.txt", "start_line": 9, "end_line": None})
    assert outcome.output.splitlines() == ["     9\tline 9", "    10\tline 10"]
    outcome = await call(ws, "read_file", {"path": "ten.txt", "start_line": 11})
    assert not outcome.ok and "has 10 lines" in outcome.output
    outcome = await call(ws, "read_file", {"path": "ten.txt", "start_line": 5, "end_line": 4})
    assert not outcome.ok and "before start_line" in outcome.output


async def test_read_file_slices_long_files(ws: Workspace) -> None:
    (ws.root / "long.txt").write_text("".join(f"{'x' * 40} {n}\n" for n in range(1, 101)))
    outcome = await call(ws, "read_file", {"path": "long.txt"}, max_chars=1000)
    last = outcome.output.splitlines()[-1]
    assert outcome.ok and last.startswith("[lines 1-") and "of 100 shown; read on with start_line=" in last
    assert len(outcome.output) <= 1000


async def test_read_file_mistakes(ws: Workspace) -> None:
    (ws.root / "blob.bin").write_bytes(b"\x00\x01\x02")
    (ws.root / "empty.txt").write_text("")
    assert "looks binary" in (await call(ws, "read_file", {"path": "blob.bin"})).output
    assert (await call(ws, "read_file", {"path": "empty.txt"})).output == "empty.txt is empty"
    assert "does not exist" in (await call(ws, "read_file", {"path": "nope.txt"})).output
    assert "is a folder" in (await call(ws, "read_file", {"path": "src"})).output


async def test_edit_file(ws: Workspace) -> None:
    target = ws.root / "src" / "pkg" / "mod.py"
    outcome = await call(ws, "edit_file", {"path": "src/pkg/mod.py", "search": "return 1", "replace": "return 2\n"})
    assert outcome.ok and outcome.output == "edited src/pkg/mod.py at line 2: replaced 1 lines with 2 lines"
    assert target.read_text() == "def f():\n    return 2\n\n"


async def test_edit_file_not_found_says_to_read_the_file(ws: Workspace) -> None:
    outcome = await call(ws, "edit_file", {"path": "src/pkg/mod.py", "search": "return  1", "replace": "x"})
    assert not outcome.ok and "not found" in outcome.output and "read_file" in outcome.output
    outcome = await call(ws, "edit_file", {"path": "missing.py", "search": "a", "replace": "b"})
    assert not outcome.ok and "write_file" in outcome.output


async def test_edit_file_not_unique_names_the_lines(ws: Workspace) -> None:
    (ws.root / "dup.txt").write_text("x = 1\ny = 2\nx = 1\n")
    outcome = await call(ws, "edit_file", {"path": "dup.txt", "search": "x = 1", "replace": "x = 3"})
    assert not outcome.ok and "occurs 2 times" in outcome.output and "lines 1, 3" in outcome.output
    assert (ws.root / "dup.txt").read_text() == "x = 1\ny = 2\nx = 1\n"


async def test_edit_file_keeps_crlf_and_odd_bytes(ws: Workspace) -> None:
    (ws.root / "dos.txt").write_bytes(b"a\r\nb\xff\r\nc\r\n")
    outcome = await call(ws, "edit_file", {"path": "dos.txt", "search": "a\nb", "replace": "A\nB"})
    assert outcome.ok, outcome.output
    assert (ws.root / "dos.txt").read_bytes() == b"A\r\nB\xff\r\nc\r\n"


# -- listing ------------------------------------------------------------------------------------

def _plant_project(root: Path) -> None:
    (root / ".gitignore").write_text("ignored/\n")
    (root / "ignored").mkdir()
    (root / "ignored" / "big.log").write_text("needle in ignored\n")
    (root / "a.py").write_text("needle = 1\n")
    (root / "src" / "pkg" / "mod.py").write_text("x = 0\n# needle here\n")


async def test_list_files_in_a_git_repo_skips_git_and_ignored(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "src" / "pkg").mkdir(parents=True)
    git(root, "init", "-q")
    _plant_project(root)
    git(root, "add", "a.py")
    (root / "untracked.txt").write_text("u\n")
    ws = Workspace(root)
    outcome = await call(ws, "list_files", {})
    assert outcome.output.splitlines() == [".gitignore", "a.py", "src/pkg/mod.py", "untracked.txt"]
    outcome = await call(ws, "list_files", {"path": "src"})
    assert outcome.output == "src/pkg/mod.py"


async def test_list_files_without_git_walks_and_skips_dot_git(ws: Workspace) -> None:
    (ws.root / "b.txt").write_text("b\n")
    outcome = await call(ws, "list_files", {"path": "."})
    listed = outcome.output.splitlines()
    assert "b.txt" in listed and "src/pkg/mod.py" in listed
    assert not any(entry.startswith(".git") for entry in listed)
    outcome = await call(ws, "list_files", {"max_entries": 1})
    assert outcome.output.splitlines()[0] == "b.txt"
    assert "more files not shown" in outcome.output.splitlines()[1]


# -- searching ----------------------------------------------------------------------------------

@pytest.fixture(params=["rg", "python"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "rg" and shutil.which("rg") is None:
        pytest.skip("ripgrep is not installed")
    if request.param == "python":
        monkeypatch.setattr(tools, "find_rg", lambda: None)
    return request.param


async def test_search_finds_matches_with_line_numbers(ws: Workspace, engine: str) -> None:
    _plant_project(ws.root)
    git(ws.root, "init", "-q")  # for .gitignore to count
    outcome = await call(ws, "search", {"pattern": r"needle\b"})
    assert outcome.ok
    assert outcome.output.splitlines() == ["a.py:1:needle = 1", "src/pkg/mod.py:2:# needle here"]
    outcome = await call(ws, "search", {"pattern": "(?i)NEEDLE", "path": "src"})
    assert outcome.output == "src/pkg/mod.py:2:# needle here"


async def test_search_without_matches_or_with_a_bad_pattern(ws: Workspace, engine: str) -> None:
    outcome = await call(ws, "search", {"pattern": "nowhere-to-be-found"})
    assert outcome.ok and outcome.output == "no matches for 'nowhere-to-be-found' in ."
    outcome = await call(ws, "search", {"pattern": "(unclosed"})
    assert not outcome.ok and outcome.output.startswith("error:")


async def test_search_caps_matches(ws: Workspace, engine: str) -> None:
    (ws.root / "many.txt").write_text("hit\n" * (tools.MAX_SEARCH_MATCHES + 50))
    lines = (await call(ws, "search", {"pattern": "hit"})).output.splitlines()
    assert len(lines) == tools.MAX_SEARCH_MATCHES + 1
    assert lines[-1].startswith(f"[showing the first {tools.MAX_SEARCH_MATCHES} matches")


# -- argument checking --------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "args", "expected"), [
    ("read_file", {}, "missing the required argument 'path'"),
    ("read_file", {"path": "a", "lines": 3}, "has no argument 'lines'"),
    ("read_file", {"path": "a", "start_line": "3"}, "'start_line' must be integer, got string '3'"),
    ("run_shell", {"command": "true", "timeout": True}, "'timeout' must be integer, got boolean"),
    ("write_file", {"path": 7, "content": ""}, "'path' must be string, got integer 7"),
    ("edit_file", ["a"], "arguments must be a JSON object"),
    ("delete_everything", {}, "there is no tool 'delete_everything'; tools are: list_files"),
    ("run_shell", {"command": "  "}, "command is empty"),
    ("run_shell", {"command": "true", "timeout": 0}, "timeout must be between 1"),
])
async def test_model_mistakes_become_errors(ws: Workspace, name: str, args: dict, expected: str) -> None:
    outcome = await call(ws, name, args)
    assert not outcome.ok and outcome.output.startswith("error: ") and expected in outcome.output


def test_specs_match_what_run_tool_accepts() -> None:
    specs = {spec["function"]["name"]: spec["function"] for spec in tool_specs()}
    assert set(specs) == {"list_files", "read_file", "write_file", "edit_file", "search", "run_shell"}
    assert specs["edit_file"]["parameters"]["required"] == ["path", "search", "replace"]
    assert specs["read_file"]["parameters"]["properties"]["start_line"] == {
        "type": "integer", "description": "First line to show (1-based).", "default": 1}
    assert all(spec["parameters"]["additionalProperties"] is False for spec in specs.values())


async def test_every_result_is_capped_keeping_head_and_tail(ws: Workspace) -> None:
    command = "python3 -c \"print('A' * 3000 + 'B' * 50000 + 'Z' * 3000)\""
    outcome = await call(ws, "run_shell", {"command": command}, max_chars=2000)
    assert outcome.ok and len(outcome.output) < 2100
    assert outcome.output.startswith("exit code 0\nAAA") and outcome.output.endswith("ZZZ\n")
    assert "[output truncated: 2000 of 56013 chars shown]" in outcome.output


def test_elide() -> None:
    assert elide("short", 10) == "short"
    assert elide("a" * 10 + "b" * 10, 10) == "aaaaa\n[output truncated: 10 of 20 chars shown]\nbbbbb"


# -- the shell ----------------------------------------------------------------------------------

async def test_run_shell_output_and_exit_code(ws: Workspace) -> None:
    outcome = await call(ws, "run_shell", {"command": "echo out; echo err >&2; pwd"})
    assert outcome == tools.ToolOutcome(True, f"exit code 0\nout\nerr\n{ws.root}\n")
    outcome = await call(ws, "run_shell", {"command": "echo failing; exit 3"})
    assert outcome == tools.ToolOutcome(False, "error: exit code 3\nfailing\n")


async def test_shell_gets_env_and_no_stdin(root: Path) -> None:
    result = await ShellRunner().run("echo $COCKPIT_X; cat; command -v bash", root, {"COCKPIT_X": "42"}, 5)
    assert result.exit_code == 0 and result.output.splitlines()[0] == "42"
    assert result.output.splitlines()[1].endswith("bash")  # our PATH is kept under the overlay


async def test_timeout_kills_the_whole_group(root: Path) -> None:
    start = time.monotonic()
    result = await ShellRunner().run("sleep 60 & echo $! > bg.pid; echo started; sleep 60", root, {}, 0.5)
    assert time.monotonic() - start < 3
    assert result.timed_out and not result.interrupted and result.output == "started\n"
    assert not alive(int((root / "bg.pid").read_text()))


async def test_timeout_through_the_tool(ws: Workspace) -> None:
    outcome = await call(ws, "run_shell", {"command": "echo begun; sleep 60", "timeout": 1})
    assert not outcome.ok and outcome.output.startswith("error: timed out after 1 s") and "begun" in outcome.output


async def test_cancellation_kills_the_group_within_a_second(root: Path) -> None:
    command = "echo $$ > lead.pid; sleep 60 & echo $! > bg.pid; sleep 60; echo never"
    task = asyncio.create_task(ShellRunner().run(command, root, {}, 100))
    lead = int(await wait_for_file(root / "lead.pid"))
    background = int(await wait_for_file(root / "bg.pid"))
    start = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - start < 1
    assert not alive(lead) and not alive(background)


async def test_background_jobs_end_with_the_command(root: Path) -> None:
    start = time.monotonic()
    result = await ShellRunner().run("sleep 60 & echo $! > bg.pid; echo done", root, {}, 30)
    assert time.monotonic() - start < 3
    assert result.exit_code == 0 and result.output == "done\n" and not result.timed_out
    assert not alive(int((root / "bg.pid").read_text()))


async def test_interrupt_ends_running_commands(root: Path) -> None:
    runner = ShellRunner()
    task = asyncio.create_task(runner.run("echo $$ > lead.pid; sleep 60", root, {}, 100))
    lead = int(await wait_for_file(root / "lead.pid"))
    runner.interrupt()
    result = await asyncio.wait_for(task, 2)
    assert result.interrupted and not result.timed_out and not alive(lead)


async def test_big_output_keeps_head_and_tail(root: Path) -> None:
    result = await ShellRunner(capture_chars=1000).run("seq 1 30000", root, {}, 10)
    total = sum(len(f"{n}\n") for n in range(1, 30001))
    assert result.output.startswith("1\n2\n3\n") and result.output.endswith("29999\n30000\n")
    assert f"[output truncated: 1000 of {total} chars shown]" in result.output


async def test_multibyte_output_survives_chunking(root: Path) -> None:
    result = await ShellRunner().run("python3 -c \"print('é' * 100000)\"", root, {}, 10)
    assert result.output == "é" * 100000 + "\n"


async def test_shell_does_not_block_the_event_loop(root: Path) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    await ShellRunner().run("sleep 0.3", root, {}, 5)
    ticker.cancel()
    assert ticks >= 10
