"""Attack replays for issue #13.6 (config and names): files brought from outside the repository,
numbers that crashed or were accepted silently, and a session name that shadowed a number.

Real git repositories, the real engine and the real `cockpit` command line."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import make_repo
from server_kit import cockpit

from cockpit.config import load_config
from cockpit.core.states import State


async def test_worktreeinclude_never_brings_files_from_outside_the_repository(open_engine, tmp_path):
    """Row: `.worktreeinclude` line `../outside_secret.txt` copied a file from outside the repo;
    `/etc/hostname` raised NotImplementedError and left the session `starting`."""
    (tmp_path / "outside_secret.txt").write_text("secret\n")
    repo = make_repo(tmp_path / "repo", {
        ".worktreeinclude": "../outside_secret.txt\n/etc/hostname\n# a comment\n.env\nlink.txt\n",
        ".gitignore": ".env\nlink.txt\n",
    })
    (repo / ".env").write_text("LOCAL=1\n")
    os.symlink(tmp_path / "outside_secret.txt", repo / "link.txt")  # inside by name, outside in fact
    engine = await open_engine()
    (session,) = await engine.create_sessions(repo, name="s")
    assert session.state == State.IDLE
    worktree = session.path
    assert (worktree / ".env").read_text() == "LOCAL=1\n"  # inside: brought
    assert not (worktree / "link.txt").exists() and not (worktree / "outside_secret.txt").exists()
    assert not (worktree.parent / "outside_secret.txt").exists()
    notices = [e.data["text"] for e in await engine.transcript(session.id) if e.kind == "notice"]
    assert f"{repo / '.worktreeinclude'}:1: '../outside_secret.txt' climbs out with '..'; only paths inside " \
           "the repository are brought" in notices
    assert f"{repo / '.worktreeinclude'}:2: '/etc/hostname' is not relative to the repository; only paths " \
           "inside the repository are brought" in notices
    assert any(n.startswith("link.txt: not brought, it leads outside the repository") for n in notices)


def test_config_copy_outside_and_bad_numbers_are_one_line(cockpit_env, tmp_path):
    """Rows: `copy = ["/etc/passwd"]` crashed; `port_block = 0` → ZeroDivisionError; budget -1,
    nan, temperature inf, `port_base = -70000` were accepted silently."""
    repo = make_repo(tmp_path / "repo")
    cases = {
        '[worktrees]\ncopy = ["/etc/passwd"]\n':
            "key 'worktrees.copy[0]' must be a path inside the repository (relative, no '..'), got '/etc/passwd'",
        '[worktrees]\nsymlink = ["../x"]\n':
            "key 'worktrees.symlink[0]' must be a path inside the repository (relative, no '..'), got '../x'",
        "[worktrees]\nport_block = 0\n": "key 'worktrees.port_block' must be between 1 and 1000, got 0",
        "[worktrees]\nport_base = -70000\n": "key 'worktrees.port_base' must be between 1024 and 65534, got -70000",
        "[budgets]\nsession_usd = -1\n": "key 'budgets.session_usd' must be at least 0.0, got -1.0",
        "[budgets]\ntotal_usd = nan\n": "key 'budgets.total_usd' must be a finite number, got nan",
        "[models.default]\ntemperature = inf\n": "key 'models.default.temperature' must be a finite number, got inf",
    }
    for text, message in cases.items():
        cockpit_env.write_user_config(text)
        done = cockpit("--repo", str(repo), "ls", "--local")
        line = 2 if text.count("\n") == 2 else 1
        assert (done.returncode, done.stderr) == (2, f"cockpit: {cockpit_env.user_config}: line {line}: {message}\n"), text
    cockpit_env.write_user_config("")
    assert load_config().worktrees.port_block == 10


async def test_numbers_win_over_names_and_digit_names_are_refused(cockpit_env, open_engine, tmp_path):
    """Row: a session named "47" and another numbered 47: `cockpit rm 47 --yes` removed the named one."""
    repo = make_repo(tmp_path / "repo")
    refused = cockpit("--repo", str(repo), "new", "47", "--local")
    assert refused.returncode == 2 and "cannot be only digits" in refused.stderr and "\n" == refused.stderr[-1]

    engine = await open_engine()
    first, second = (await engine.create_sessions(repo, name="x", count=2))
    first.name = "2"  # as an older cockpit could have named it; it comes first in every listing
    await engine.store.save_session(first)
    assert engine.get("2") is second and engine.get("@2") is second
    await engine.close()

    done = cockpit("--repo", str(repo), "rm", "2", "--yes", "--json", "--local")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"removed": [second.id]}
    left = json.loads(cockpit("--repo", str(repo), "ls", "--json", "--local").stdout)
    assert [s["id"] for s in left] == [first.id]
    renamed = cockpit("--repo", str(repo), "new", "ok-47", "--local")
    assert renamed.returncode == 0, renamed.stderr


def test_a_task_made_only_of_digits_names_no_number(cockpit_env, tmp_path):
    repo = make_repo(tmp_path / "repo")
    done = cockpit("--repo", str(repo), "new", "--task", "12", "--json", "--local")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["name"] == "session-12"
    assert Path(json.loads(done.stdout)[0]["worktree"]).is_dir()


def test_a_config_file_linked_to_a_device_is_one_line_not_a_hang(cockpit_env, tmp_path):
    """Row: a committed `.cockpit.toml` symlink to `/dev/zero` (or a FIFO) made every command read forever."""
    repo = make_repo(tmp_path / "repo")
    (repo / ".cockpit.toml").symlink_to("/dev/zero")
    done = cockpit("--repo", str(repo), "ls", "--local", timeout=30)
    assert (done.returncode, done.stderr) == (2, f"cockpit: {repo / '.cockpit.toml'}: cannot read config: not a regular file\n")
    (repo / ".cockpit.toml").unlink()
    (repo / ".cockpit.toml").write_text("# " + "x" * (1 << 20) + "\n")
    done = cockpit("--repo", str(repo), "ls", "--local", timeout=30)
    assert done.returncode == 2 and "more than 1048576" in done.stderr and "\n" == done.stderr[-1]
