"""The `cockpit` command line, run as a real subprocess (`python -m cockpit`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import run_git

from cockpit import __version__


def cockpit(*args: str, cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cockpit", *args], cwd=cwd, env=dict(os.environ), capture_output=True,
        text=True, timeout=60, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def _assert_one_line_error(done: subprocess.CompletedProcess[str], message: str) -> None:
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"cockpit: {message}\n")


def test_version_and_help():
    done = cockpit("--version")
    assert (done.returncode, done.stdout) == (0, f"cockpit {__version__}\n")
    done = cockpit("--help")
    assert done.returncode == 0
    assert done.stdout.startswith("usage: cockpit")
    for command in ("new", "ls", "rm"):
        assert command in done.stdout


def test_new_ls_rm(repo, cockpit_env):
    done = cockpit("--repo", str(repo), "new", "first", "--tag", "api", "--json")
    assert done.returncode == 0, done.stderr
    (made,) = json.loads(done.stdout)
    assert made["name"] == "first" and made["branch"] == "cockpit/first" and made["tags"] == ["api"]
    assert made["state"] == "idle" and Path(made["worktree"]).is_dir()
    assert Path(made["worktree"]).parent == cockpit_env.home / "worktrees" / "repo"

    done = cockpit("new", "--task", "Make the flaky test deterministic", "--count", "2", cwd=repo)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["@2", "@3"]
    assert "on cockpit/make-the-flaky-test-determinis-1 at" in lines[0]

    done = cockpit("ls", "--json", cwd=repo)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert [(s["number"], s["name"]) for s in listed] == [
        (1, "first"), (2, "Make the flaky test determinis-1"), (3, "Make the flaky test determinis-2"),
    ]
    assert listed[0] == {**made, "state": "idle", "paused": ""}  # "" while the store can write

    text = cockpit("ls", cwd=repo).stdout.splitlines()
    assert len(text) == 3 and text[0].startswith("@1 ") and "#api" in text[0]

    done = cockpit("rm", "1", "--yes", cwd=repo)
    assert (done.returncode, done.stdout) == (0, "removed @1 first\n")
    assert not Path(made["worktree"]).exists()
    assert run_git(repo, "branch", "--list", "cockpit/first").strip() == "cockpit/first"  # branch kept
    done = cockpit("rm", "@2", "--yes", "--delete-branch", cwd=repo)
    assert done.returncode == 0
    assert run_git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/cockpit/").split() == [
        "cockpit/first", "cockpit/make-the-flaky-test-determinis-2"]
    assert [s["number"] for s in json.loads(cockpit("ls", "--json", cwd=repo).stdout)] == [3]


def test_rm_without_yes_and_without_a_terminal_refuses(repo):
    assert cockpit("new", "keep", cwd=repo).returncode == 0
    done = cockpit("rm", "1", cwd=repo)
    _assert_one_line_error(done, "refusing to remove without confirmation: pass --yes")
    assert [s["name"] for s in json.loads(cockpit("ls", "--json", cwd=repo).stdout)] == ["keep"]


def test_user_errors_are_one_line(tmp_path, repo):
    plain = tmp_path / "plain"
    plain.mkdir()
    _assert_one_line_error(
        cockpit("new", "x", cwd=plain), f"{plain}: not a git repository (run `git init` there, or pass --repo)"
    )
    _assert_one_line_error(cockpit("rm", "nobody", "--yes", cwd=repo), "no session 'nobody' (see `cockpit ls`)")
    _assert_one_line_error(
        cockpit("new", "x", "--base", "nope", cwd=repo),
        f"{repo}: unknown base ref 'nope' (no branch, tag or commit by that name)",
    )
    _assert_one_line_error(cockpit("new", "x", "--agent", "ghost", cwd=repo),
                           "unknown agent 'ghost' (configured agents: "
                           "builtin, claude, codex, conductor, gemini, goose, opencode, shell)")
    done = cockpit("ls", "--jsn", cwd=repo)  # argparse's own errors keep its usage line
    assert done.returncode == 2 and "unrecognized arguments: --jsn" in done.stderr and "Traceback" not in done.stderr


def test_new_on_an_existing_branch_a_reused_worktree_or_read_only(tmp_path, repo, cockpit_env, make_repo):
    run_git(repo, "branch", "feature")
    mine = tmp_path / "mine"
    run_git(repo, "worktree", "add", "-q", "-b", "mine", str(mine))
    done = cockpit("new", "--branch", "feature", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("@1 ") and " feature on feature at " in done.stdout
    done = cockpit("new", "--worktree", str(mine), cwd=repo)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith(f"mine on mine at {mine.resolve()}")
    done = cockpit("new", "--no-worktree", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith(f"read-only on main at {repo} (read-only)")
    other = make_repo(tmp_path / "other")
    assert cockpit("new", "elsewhere", cwd=other).returncode == 0
    listed = cockpit("ls", cwd=repo).stdout.splitlines()
    assert [line.split()[3] for line in listed] == ["repo:feature", "repo:mine", "repo:read-only", "other:elsewhere"]
    assert cockpit("rm", "2", "3", "--yes", "--delete-branch", cwd=repo).returncode == 0
    assert mine.is_dir() and repo.is_dir() and run_git(repo, "rev-parse", "--verify", "-q", "refs/heads/mine").strip()
    _assert_one_line_error(cockpit("new", "--worktree", str(tmp_path), cwd=repo),
                           f"{tmp_path}: not a worktree of {repo} (its worktrees: "
                           f"{cockpit_env.home / 'worktrees' / 'repo' / 'feature'}, {mine.resolve()})")
    _assert_one_line_error(cockpit("new", "--branch", "feature", "--no-worktree", cwd=repo),
                           "choose one of --branch / --no-worktree: they say different things about the worktree")


def test_ls_with_no_sessions(tmp_path):
    done = cockpit("ls", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "no sessions (create one with `cockpit new --task ...`)\n")
    assert json.loads(cockpit("ls", "--json", cwd=tmp_path).stdout) == []


def test_repo_option_works_before_and_after_the_subcommand(repo, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    after = cockpit("new", "after", "--repo", str(repo), cwd=elsewhere)
    before = cockpit("--repo", str(repo), "new", "before", cwd=elsewhere)
    assert after.returncode == 0 and before.returncode == 0, after.stderr + before.stderr
    assert "cockpit/after" in after.stdout and "cockpit/before" in before.stdout


def test_new_warns_when_the_models_key_is_not_set(repo):
    """Issue #12.5: `cockpit new` said nothing, and the first turn failed on the missing key."""
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    # the default model (conftest clears COCKPIT_MODEL) is anthropic/claude-sonnet-4-5
    run = [sys.executable, "-m", "cockpit", "--local", "new", "x", "--json"]
    done = subprocess.run(run, cwd=repo, env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("warning: no API key for anthropic/claude-sonnet-4-5: set ANTHROPIC_API_KEY ")
    assert "[models.default]" in done.stderr and json.loads(done.stdout)[0]["name"] == "x"
    done = subprocess.run([*run[:-2], "y", "--json"], cwd=repo, env={**env, "ANTHROPIC_API_KEY": "sk-test"},
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stderr) == (0, "")


def test_ls_into_a_pipe_whose_reader_is_gone_exits_quietly(repo):
    """Issue #12.8: `cockpit ls | head -1` printed a BrokenPipeError traceback. The read end of a
    real pipe is closed before `ls` writes, as it is once `head -1` has its line and exits."""
    assert cockpit("--local", "new", "one", cwd=repo).returncode == 0
    for args in (("ls",), ("ls", "--json")):
        read_end, write_end = os.pipe()
        os.close(read_end)
        with os.fdopen(write_end, "wb") as stdout:
            done = subprocess.run([sys.executable, "-m", "cockpit", "--local", *args], cwd=repo, env=dict(os.environ),
                                  stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=60,
                                  stdin=subprocess.DEVNULL)
        assert (done.returncode, done.stderr) == (141, ""), done.stderr


def test_the_screen_without_a_terminal_is_refused_in_one_line(repo):
    """Issue #12.8: `cockpit attach </dev/null` spun at ~96% CPU; the screen needs a terminal."""
    assert cockpit("ls", cwd=repo).returncode == 0  # the server runs, so attach gets as far as the screen
    message = ("the screen needs a terminal and stdin is not one: run it in a terminal, or use the verbs from "
               "scripts (`cockpit ls`, `cockpit logs`, see AGENTS.md)")
    for args in (("attach",), ("--local",), ()):
        done = cockpit(*args, cwd=repo)  # stdin is /dev/null
        _assert_one_line_error(done, message)


def test_ls_aligns_wide_names_and_shows_control_characters(repo):
    """Issue #12.9: emoji and accents misaligned `cockpit ls` and made `greet-f-r-n-c-d`; #13.6:
    a name with a newline or an escape sequence was printed raw to the terminal."""
    for name in ("plain", "greet François 🎉🎉", "evil\n\x1b]0;pwned\x07\x1b[31mred\u202e"):
        done = cockpit("--local", "new", name, "--json", cwd=repo)
        assert done.returncode == 0, done.stderr
    assert [s["branch"] for s in json.loads(cockpit("--local", "ls", "--json", cwd=repo).stdout)] == [
        "cockpit/plain", "cockpit/greet-francois", "cockpit/evil-0-pwned-31mred"]
    text = cockpit("--local", "ls", cwd=repo).stdout
    assert "\x1b" not in text and "\u202e" not in text
    lines = text.splitlines()
    assert len(lines) == 3
    assert "evil\\n\\x1b]0;pwned\\x07\\x1b[31mred\\u202e" in lines[2]
    from rich.cells import cell_len

    # the branch column starts at the same terminal cell on every row
    starts = {cell_len(line[:line.index("cockpit/")]) for line in lines}
    assert len(starts) == 1, lines
