"""Opening a pull request instead of merging: a real bare remote, and a stand-in `gh` on PATH
that records its arguments and prints a URL, as `gh pr create` does."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import run_git
from landing_helpers import content, review_config, rev, session_with

from cockpit.core import events as ev
from cockpit.core.states import State
from cockpit.errors import CockpitError

URL = "https://github.com/acme/repo/pull/7"


@pytest.fixture
def gh_argv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put a fake `gh` first on PATH; returns the file where it writes its arguments."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    record = tmp_path / "gh-argv.json"
    script = bin_dir / "gh"
    script.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        f"print('Creating pull request for the branch')\nprint({URL!r})\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return record


def add_remote(repo: Path, tmp_path: Path) -> Path:
    remote = tmp_path / "remote.git"
    run_git(tmp_path, "init", "--bare", "-q", "-b", "main", str(remote))
    run_git(repo, "remote", "add", "origin", str(remote))
    run_git(repo, "push", "-q", "origin", "main")
    return remote


async def test_pr_pushes_the_work_and_opens_a_pull_request(open_engine, repo, tmp_path, gh_argv):
    remote = add_remote(repo, tmp_path)
    engine = await open_engine(config=review_config(after_merge="remove"))
    session = await session_with(engine, repo, "pr", committed={"a.txt": "a\n"}, uncommitted={"b.txt": "b\n"},
                                 task="Add a and b\n\nBecause both are needed.")
    main = rev(repo, "main")

    result = await engine.execute({"cmd": "pr", "session": session.id})

    assert result["pr_url"] == URL and result["target"] == "main"
    assert content(remote, session.branch) == {**content(repo, "main"), "a.txt": "a\n", "b.txt": "b\n"}
    argv = json.loads(gh_argv.read_text())
    assert argv[:2] == ["pr", "create"]
    options = dict(zip(argv[2::2], argv[3::2]))
    assert options["--title"] == "Add a and b" and options["--base"] == "main" and options["--head"] == session.branch
    assert options["--body"].startswith("Because both are needed.") and "Files: a.txt, b.txt" in options["--body"]
    assert rev(repo, "main") == main  # nothing merged locally
    assert session.state == State.MERGED
    merged = [e.data for e in await engine.transcript(session.id) if e.kind == ev.MERGED]
    assert merged[0]["pr_url"] == URL and merged[0]["strategy"] == "pull-request"
    # The worktree is cleaned up, but the branch the pull request is open on stays.
    assert not session.path.exists() and rev(repo, session.branch) == rev(remote, session.branch)


async def test_pr_without_gh_says_so_in_one_line(open_engine, repo, tmp_path, monkeypatch):
    add_remote(repo, tmp_path)
    engine = await open_engine()
    session = await session_with(engine, repo, "nogh", uncommitted={"x.txt": "x\n"})
    only_git = tmp_path / "only-git"
    only_git.mkdir()
    (only_git / "git").symlink_to(shutil.which("git"))
    monkeypatch.setenv("PATH", str(only_git))

    with pytest.raises(CockpitError) as caught:
        await engine.landing.open_pull_request(session.id)
    assert "`gh`" in str(caught.value) and "\n" not in str(caught.value)
    assert session.state == State.IDLE


async def test_pr_without_a_remote_says_so_in_one_line(open_engine, repo, gh_argv):
    engine = await open_engine()
    session = await session_with(engine, repo, "noremote", uncommitted={"x.txt": "x\n"})

    with pytest.raises(CockpitError, match="has no remote; add one") as caught:
        await engine.landing.open_pull_request(session.id)
    assert "\n" not in str(caught.value) and not gh_argv.exists() and session.state == State.IDLE
