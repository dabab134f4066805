"""The worktree manager and worktree set-up, on real git repositories.

Covers slugs, every user-facing error, remove/prune/adopt/fork, local files and scripts, the
per-session environment, 32 concurrent creations and lock files held by another process.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import make_repo, run_git

from cockpit.config import load_config, parse_config_text
from cockpit.core import events as ev
from cockpit.core.states import State
from cockpit.core.worktrees import WorktreeManager, slugify
from cockpit.errors import GitError


@pytest.fixture
def manager(cockpit_env) -> WorktreeManager:
    return WorktreeManager(cockpit_env.home)


def _branches(repo: Path) -> list[str]:
    return run_git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split()


def _worktree_paths(repo: Path) -> list[Path]:
    return [Path(line.split(" ", 1)[1]) for line in run_git(repo, "worktree", "list", "--porcelain").splitlines()
            if line.startswith("worktree ")]


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def _assert_fsck_clean(repo: Path) -> None:
    done = subprocess.run(["git", "fsck", "--no-progress", "--no-dangling"], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "" and "error" not in done.stderr


# -- slugs and creation -------------------------------------------------------------------------


def test_slugify():
    assert slugify("Fix the flaky test!") == "fix-the-flaky-test"
    assert slugify("  ***  ") == "session"
    assert slugify("Ünïcode  name") == "unicode-name"
    # issue #12.9: accents and emoji made `greet-f-r-n-c-d`
    assert slugify("greet François, Zoë & Ｆｕｌｌ 🎉 straße") == "greet-francois-zoe-full-strasse"
    assert slugify("修复 🎉") == "session"
    assert len(slugify("x" * 100)) == 40


async def test_create_makes_branch_and_worktree_from_the_current_branch(manager, repo, cockpit_env):
    info = await manager.inspect_repo(repo / "src")  # any folder inside the repository works
    assert info.root == repo and info.common_dir == repo / ".git" and info.slug == "repo"
    made = await manager.create(info, "Fix tests!")
    assert made.slug == "fix-tests" and made.branch == "cockpit/fix-tests"
    assert made.path == cockpit_env.home / "worktrees" / "repo" / "fix-tests"
    assert made.base_ref == "main" and made.base_commit == run_git(repo, "rev-parse", "HEAD").strip()
    assert (made.path / "src" / "app.py").read_text() == "print('hi')\n"
    assert run_git(made.path, "symbolic-ref", "--short", "HEAD").strip() == "cockpit/fix-tests"
    assert made.path in _worktree_paths(repo)


async def test_slug_collisions_get_a_numeric_suffix(manager, repo, cockpit_env):
    info = await manager.inspect_repo(repo)
    first = await manager.create(info, "api")
    second = await manager.create(info, "API")
    run_git(repo, "branch", "cockpit/api-3")  # a branch made by hand also counts as taken
    (cockpit_env.home / "worktrees" / "repo" / "api-4").mkdir()  # and so does a leftover folder
    third = await manager.create(info, "api")
    assert [first.slug, second.slug, third.slug] == ["api", "api-2", "api-5"]
    assert third.branch == "cockpit/api-5"


async def test_create_from_an_explicit_base_and_path(manager, repo, tmp_path):
    run_git(repo, "tag", "v1")
    (repo / "later.txt").write_text("later\n")
    run_git(repo, "add", "later.txt")
    run_git(repo, "commit", "-qm", "later")
    info = await manager.inspect_repo(repo)
    made = await manager.create(info, "old", "v1", path=tmp_path / "elsewhere" / "old")
    assert made.path == tmp_path / "elsewhere" / "old"
    assert made.base_ref == "v1" and not (made.path / "later.txt").exists()


# -- errors a person can cause --------------------------------------------------------------------


async def test_not_a_directory_and_not_a_repository(manager, tmp_path):
    with pytest.raises(GitError) as caught:
        await manager.inspect_repo(tmp_path / "missing")
    assert str(caught.value) == f"{tmp_path / 'missing'}: no such directory"
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(GitError) as caught:
        await manager.inspect_repo(plain)
    assert str(caught.value) == f"{plain}: not a git repository (run `git init` there, or pass --repo)"


async def test_repository_without_commits(manager, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    run_git(empty, "init", "-q")
    with pytest.raises(GitError) as caught:
        await manager.inspect_repo(empty)
    assert str(caught.value) == f"{empty.resolve()}: the repository has no commits yet; commit something first"


async def test_unknown_base_ref(manager, repo):
    info = await manager.inspect_repo(repo)
    with pytest.raises(GitError) as caught:
        await manager.create(info, "x", "no-such-branch")
    assert str(caught.value) == f"{repo}: unknown base ref 'no-such-branch' (no branch, tag or commit by that name)"
    assert _branches(repo) == ["main"]


async def test_detached_head_needs_an_explicit_base(manager, repo):
    run_git(repo, "checkout", "-q", "--detach", "HEAD")
    info = await manager.inspect_repo(repo)
    with pytest.raises(GitError) as caught:
        await manager.create(info, "x")
    assert str(caught.value) == (
        f"{repo}: HEAD is detached, so there is no current branch to start from; pass a base ref (--base main)"
    )
    made = await manager.create(info, "x", "main")  # an explicit base still works
    assert made.base_ref == "main"


async def test_explicit_path_that_exists(manager, repo, tmp_path):
    info = await manager.inspect_repo(repo)
    taken = tmp_path / "taken"
    taken.mkdir()
    with pytest.raises(GitError) as caught:
        await manager.create(info, "x", path=taken)
    assert str(caught.value) == f"{taken}: path exists; choose another path or remove it"
    assert _branches(repo) == ["main"]


# -- remove, prune, adopt -------------------------------------------------------------------------


async def test_remove_keeps_the_branch_unless_asked(manager, repo):
    info = await manager.inspect_repo(repo)
    keep = await manager.create(info, "keep")
    drop = await manager.create(info, "drop")
    (keep.path / "dirty.txt").write_text("uncommitted work is removed with the worktree\n")
    (keep.path / "README.md").write_text("changed\n")
    await manager.remove(info, keep.path, keep.branch)
    assert not keep.path.exists() and keep.path not in _worktree_paths(repo)
    assert "cockpit/keep" in _branches(repo)
    await manager.remove(info, drop.path, drop.branch, delete_branch=True)
    assert not drop.path.exists()
    assert _branches(repo) == ["cockpit/keep", "main"]
    _assert_fsck_clean(repo)


async def test_prune_forgets_a_deleted_worktree_folder(manager, repo):
    info = await manager.inspect_repo(repo)
    gone = await manager.create(info, "gone")
    kept = await manager.create(info, "kept")
    shutil.rmtree(gone.path)
    assert [e.path for e in await manager.list(info) if e.prunable] == [gone.path]
    assert await manager.prune(info) == [gone.path]
    assert _worktree_paths(repo) == [repo, kept.path]
    assert await manager.prune(info) == []
    # The branch survives, so a new worktree with that name gets a suffix.
    assert (await manager.create(info, "gone")).slug == "gone-2"


async def test_orphaned_worktrees_are_adopted_when_the_engine_reopens(open_engine, repo, cockpit_env, tmp_path):
    engine = await open_engine()
    (known,) = await engine.create_sessions(repo, name="known")
    await engine.close()
    folder = cockpit_env.home / "worktrees" / "repo"
    run_git(repo, "worktree", "add", "-q", "-b", "cockpit/orphan", str(folder / "orphan"))
    run_git(repo, "worktree", "add", "-q", "-b", "not-ours", str(folder / "not-ours"))  # not a cockpit branch
    run_git(repo, "worktree", "add", "-q", "-b", "cockpit/outside", str(tmp_path / "outside"))  # not our folder

    engine = await open_engine()
    by_name = {s.name: s for s in engine.sessions.values()}
    assert sorted(by_name) == ["known", "orphan"]
    orphan = by_name["orphan"]
    assert orphan.branch == "cockpit/orphan" and orphan.path == folder / "orphan"
    assert orphan.state == State.IDLE and orphan.tags == ["adopted"]
    assert orphan.base_commit == known.base_commit and orphan.number == known.number + 1
    notices = [e.data["text"] for e in await engine.transcript(orphan.id) if e.kind == ev.NOTICE]
    assert notices == [f"adopted worktree {folder / 'orphan'} left by an earlier run"]
    await engine.close()

    engine = await open_engine()  # adopted once, not again
    assert sorted(s.name for s in engine.sessions.values()) == ["known", "orphan"]


# -- fork -----------------------------------------------------------------------------------------


async def test_fork_carries_uncommitted_work_and_leaves_the_source_alone(manager, repo):
    info = await manager.inspect_repo(repo)
    source = await manager.create(info, "source")
    (source.path / "committed.txt").write_text("on the branch\n")
    run_git(source.path, "add", "committed.txt")
    run_git(source.path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "work")
    (source.path / "src" / "app.py").write_text("print('changed')\n")  # modified, unstaged
    (source.path / "README.md").unlink()  # deleted
    (source.path / "notes").mkdir()
    (source.path / "notes" / "new.txt").write_text("untracked\n")  # new, untracked
    (source.path / "staged.txt").write_text("staged\n")
    run_git(source.path, "add", "staged.txt")  # new, staged
    before = {
        "status": run_git(source.path, "status", "--porcelain=v1", "-uall"),
        "index": run_git(source.path, "ls-files", "--stage"),
        "files": _files(source.path),
        "head": run_git(source.path, "rev-parse", "HEAD"),
    }

    fork = await manager.fork(info, source.path, "copy")

    after = {
        "status": run_git(source.path, "status", "--porcelain=v1", "-uall"),
        "index": run_git(source.path, "ls-files", "--stage"),
        "files": _files(source.path),
        "head": run_git(source.path, "rev-parse", "HEAD"),
    }
    assert after == before
    assert _files(fork.path) == before["files"]
    assert fork.branch == "cockpit/copy"
    assert run_git(fork.path, "rev-parse", "HEAD") == before["head"]
    assert sorted(run_git(fork.path, "status", "--porcelain=v1", "-uall").splitlines()) == [
        " D README.md", " M src/app.py", "?? notes/new.txt", "?? staged.txt",
    ]


async def test_fork_through_the_engine_keeps_the_source_base(engine, repo):
    (source,) = await engine.create_sessions(repo, name="src")
    (source.path / "README.md").write_text("edited\n")
    (fork,) = await engine.create_sessions(repo, fork_of=f"@{source.number}")
    assert fork.name == "fork-src" and fork.forked_from == source.id
    assert (fork.base_ref, fork.base_commit) == (source.base_ref, source.base_commit)
    assert (fork.path / "README.md").read_text() == "edited\n"


# -- set-up: local files, scripts, environment ------------------------------------------------------


@pytest.fixture
def setup_repo(tmp_path) -> Path:
    repo = make_repo(tmp_path / "proj", {
        ".gitignore": ".env\nlocal/\ndata/\n/assets\nsecrets/\nport.txt\nsession.txt\n",
        ".worktreeinclude": "# files every worktree needs\nsecrets/*.json\n",
        "app.py": "print('app')\n",
    })
    (repo / ".env").write_text("TOKEN=abc\n")
    (repo / "local").mkdir()
    (repo / "local" / "settings.json").write_text("{}\n")
    (repo / "data").mkdir()
    (repo / "data" / "big.bin").write_bytes(b"\0" * 1000)
    (repo / "assets").mkdir()
    (repo / "assets" / "logo.svg").write_text("<svg/>\n")
    (repo / "secrets").mkdir()
    (repo / "secrets" / "key.json").write_text('{"k": 1}\n')
    (repo / "secrets" / "skip.txt").write_text("not listed\n")
    return repo


def _config(text: str):
    return parse_config_text(text)


async def test_local_files_are_copied_and_symlinked(open_engine, setup_repo):
    engine = await open_engine(_config('[worktrees]\ncopy = [".env", "local"]\nsymlink = ["assets", "data"]\n'))
    (session,) = await engine.create_sessions(setup_repo, name="s")
    wt = session.path
    assert (wt / ".env").read_text() == "TOKEN=abc\n" and not (wt / ".env").is_symlink()
    assert (wt / "local" / "settings.json").read_text() == "{}\n"
    assert (wt / "assets").is_symlink() and (wt / "assets").resolve() == setup_repo / "assets"
    assert (wt / "secrets" / "key.json").read_text() == '{"k": 1}\n'  # from .worktreeinclude
    assert not (wt / "secrets" / "skip.txt").exists()
    # `data/` ignores the folder but not a link to it, which would show up as a new file.
    assert not (wt / "data").exists() and not (wt / "data").is_symlink()
    notices = [e.data["text"] for e in await engine.transcript(session.id) if e.kind == ev.NOTICE]
    assert notices == [
        "brought from the main checkout: .env, local, secrets/key.json, assets",
        "data: not symlinked, git would not ignore the link (ignore it as `/data` without a trailing "
        "slash, or copy it instead)",
    ]
    assert run_git(wt, "status", "--porcelain").strip() == ""  # nothing brought shows up as a change


async def test_setup_script_output_is_kept_and_sees_the_session_env(open_engine, setup_repo):
    engine = await open_engine(_config(
        '[worktrees]\nport_base = 30000\nport_block = 5\n'
        'setup = "echo hello from setup; echo $COCKPIT_PORT > port.txt; '
        'echo $COCKPIT_SESSION $COCKPIT_PORT_COUNT $COCKPIT_BRANCH > session.txt; pwd"\n'
    ))
    sessions = await engine.create_sessions(setup_repo, name="env", count=3)
    ports = []
    for session in sessions:
        port = int((session.path / "port.txt").read_text())
        ports.append(port)
        assert port == session.port
        assert (session.path / "session.txt").read_text().split() == [session.id, "5", session.branch]
        env = engine.hosts[session.id].env
        assert env["COCKPIT_SESSION"] == session.id and env["COCKPIT_WORKTREE"] == str(session.path)
        assert env["COCKPIT_SESSION_NAME"] == session.name and env["COCKPIT_PORT"] == str(port)
        (notice,) = [e for e in await engine.transcript(session.id) if e.kind == ev.NOTICE and e.data.get("setup")]
        assert notice.data["text"] == "set-up script ok" and notice.data["ok"] is True
        assert notice.data["output"] == f"hello from setup\n{session.path}\n"
        assert session.state == State.IDLE
    assert len(set(ports)) == 3
    assert all(30000 <= p and p % 5 == 0 for p in ports)
    assert all(abs(a - b) >= 5 for a in ports for b in ports if a != b)  # blocks never overlap


async def test_a_failing_setup_script_is_shown_not_fatal(open_engine, setup_repo):
    engine = await open_engine(_config('[worktrees]\nsetup = "echo building; echo broken >&2; exit 3"\n'))
    (session,) = await engine.create_sessions(setup_repo, name="broken")
    assert session.state == State.IDLE and session.path.is_dir()
    (notice,) = [e for e in await engine.transcript(session.id) if e.data.get("setup")]
    assert notice.data == {"text": "set-up script failed (exit 3)", "output": "building\nbroken\n",
                           "ok": False, "setup": True}


async def test_setup_script_timeout(open_engine, setup_repo):
    engine = await open_engine(_config('[worktrees]\nsetup = "echo started; sleep 30"\nsetup_timeout = 0.5\n'))
    (session,) = await engine.create_sessions(setup_repo, name="slow")
    (notice,) = [e for e in await engine.transcript(session.id) if e.data.get("setup")]
    assert notice.data["text"] == "set-up script timed out" and notice.data["output"] == "started\n"


async def test_teardown_runs_on_remove(open_engine, setup_repo, tmp_path):
    marker = tmp_path / "out" / "torn-down.txt"  # outside the worktree: [sandbox] writable lets it write
    engine = await open_engine(_config(f'[worktrees]\nteardown = "echo $COCKPIT_SESSION $PWD >> {marker}"\n'
                                       f'[sandbox]\nwritable = ["{marker.parent}"]\n'))
    (session,) = await engine.create_sessions(setup_repo, name="t")
    assert not marker.exists()
    await engine.remove(session.id)
    assert marker.read_text() == f"{session.id} {session.path}\n"
    assert not session.path.exists()


# -- many at once, and other processes' lock files --------------------------------------------------


def _assert_sessions_in_git(repo: Path, sessions) -> None:
    paths = _worktree_paths(repo)
    assert len(sessions) == 32 and len({s.id for s in sessions}) == 32
    assert len({s.branch for s in sessions}) == 32 and len({s.port for s in sessions}) == 32
    for session in sessions:
        assert session.path in paths and session.path.is_dir()
        assert session.branch in _branches(repo)
        assert run_git(session.path, "symbolic-ref", "--short", "HEAD").strip() == session.branch
    assert len(paths) == 33
    _assert_fsck_clean(repo)


@pytest.mark.slow
async def test_32_sessions_fanned_out_in_one_call(engine, repo):
    sessions = await engine.create_sessions(repo, name="x", count=32)
    assert [s.name for s in sessions] == [f"x-{i}" for i in range(1, 33)]
    assert [s.number for s in sessions] == list(range(1, 33))
    _assert_sessions_in_git(repo, sessions)


@pytest.mark.slow
async def test_32_concurrent_create_calls(engine, repo):
    results = await asyncio.gather(*(engine.create_sessions(repo, name="x") for _ in range(32)))
    sessions = [s for created in results for s in created]
    assert sorted(s.slug for s in sessions) == sorted(["x"] + [f"x-{i}" for i in range(2, 33)])
    assert len(engine.repos) == 1  # one repository row, however many calls raced to register it
    _assert_sessions_in_git(repo, sessions)


async def _release_after(path: Path, seconds: float) -> None:
    await asyncio.sleep(seconds)
    path.unlink()


async def test_create_waits_out_a_ref_lock_held_by_another_process(manager, repo):
    info = await manager.inspect_repo(repo)
    lock = repo / ".git" / "refs" / "heads" / "cockpit" / "locked.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("")  # what another git process holds while it writes that ref
    release = asyncio.create_task(_release_after(lock, 0.3))
    made = await manager.create(info, "locked")
    await release
    assert made.branch == "cockpit/locked" and made.path.is_dir()
    assert "cockpit/locked" in _branches(repo)
    _assert_fsck_clean(repo)


async def test_branch_delete_waits_out_a_packed_refs_lock(manager, repo):
    info = await manager.inspect_repo(repo)
    made = await manager.create(info, "gone")
    lock = repo / ".git" / "packed-refs.lock"
    lock.write_text("")
    release = asyncio.create_task(_release_after(lock, 0.3))
    await manager.remove(info, made.path, made.branch, delete_branch=True)
    await release
    assert _branches(repo) == ["main"]


async def test_a_lock_that_is_never_released_is_reported(manager, repo, monkeypatch):
    from cockpit.core import git as git_module

    monkeypatch.setattr(git_module, "_LOCK_RETRIES", 3)
    run_git(repo, "config", "core.packedRefsTimeout", "0")  # git's own wait is 1 s per try
    info = await manager.inspect_repo(repo)
    made = await manager.create(info, "stuck")
    lock = repo / ".git" / "packed-refs.lock"
    lock.write_text("")
    with pytest.raises(GitError) as caught:
        await manager.remove(info, made.path, made.branch, delete_branch=True)
    assert str(caught.value) == (
        f"git branch -D cockpit/stuck: error: could not delete reference refs/heads/cockpit/stuck: "
        f"Unable to create '{lock}': File exists."
    )
    assert "cockpit/stuck" in _branches(repo)


def test_config_defaults_for_worktrees():
    cfg = load_config().worktrees
    assert (cfg.port_base, cfg.port_block, cfg.setup, cfg.copy) == (20000, 10, "", [])
    assert os.environ["COCKPIT_HOME"]  # the autouse fixture isolates every test
