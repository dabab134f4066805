"""Where a session works: an existing branch, a reused worktree, no worktree (read-only), a
sparse monorepo checkout, and forks that keep the conversation. Real git repositories, the real
engine and, for the agent, the built-in one talking to the scripted model server.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_git
from test_llm_agent import agent_config, of, server, wait_state  # noqa: F401 - `server` is a fixture

from cockpit.agents.factory import make_agent
from cockpit.config import parse_config_text
from cockpit.core import events as ev
from cockpit.core.sandbox import availability
from cockpit.core.states import State
from cockpit.errors import CockpitError, ConfigError, GitError

pytestmark = pytest.mark.asyncio


def _worktrees(repo: Path) -> list[Path]:
    return [Path(line.split(" ", 1)[1]) for line in run_git(repo, "worktree", "list", "--porcelain").splitlines()
            if line.startswith("worktree ")]


def _branch_at(repo: Path, branch: str) -> str:
    return run_git(repo, "rev-parse", f"refs/heads/{branch}").strip()


def _commit_on(repo: Path, branch: str, rel: str, text: str) -> str:
    run_git(repo, "switch", "-q", "-c", branch)
    (repo / rel).write_text(text)
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-qm", f"work on {branch}")
    run_git(repo, "switch", "-q", "main")
    return _branch_at(repo, branch)


# -- an existing branch --------------------------------------------------------------------------


async def test_a_session_on_an_existing_branch_keeps_the_branch_when_removed(engine, repo):
    tip = _commit_on(repo, "feature", "feature.txt", "feature work\n")
    (session,) = await engine.create_sessions(repo, branch="feature")
    assert session.branch == "feature" and session.name == "feature"
    assert (session.owns_worktree, session.owns_branch) == (True, False)
    assert (session.path / "feature.txt").read_text() == "feature work\n"
    assert session.base_ref == "main" and session.base_commit == _branch_at(repo, "main")
    await engine.remove(session.id, delete_branch=True)
    assert not session.path.exists()
    assert _branch_at(repo, "feature") == tip  # someone else's branch is never deleted


async def test_existing_branch_errors_are_one_line(engine, repo):
    with pytest.raises(GitError, match="no branch 'nope'"):
        await engine.create_sessions(repo, branch="nope")
    with pytest.raises(GitError, match=r"branch 'main' is checked out at .*reuse that worktree"):
        await engine.create_sessions(repo, branch="main")
    _commit_on(repo, "feature", "f.txt", "x\n")
    with pytest.raises(CockpitError, match="leave out --count"):
        await engine.create_sessions(repo, branch="feature", count=2)
    with pytest.raises(CockpitError, match="choose one of --branch / --no-worktree"):
        await engine.create_sessions(repo, branch="feature", read_only=True)
    assert engine.sessions == {}


# -- reusing a worktree --------------------------------------------------------------------------


async def test_a_reused_worktree_is_adopted_as_is_and_never_deleted(engine, repo, tmp_path):
    mine = tmp_path / "my-worktree"
    run_git(repo, "worktree", "add", "-q", "-b", "mine", str(mine))
    (mine / "draft.txt").write_text("uncommitted\n")
    (session,) = await engine.create_sessions(repo, worktree=str(mine))
    assert session.path == mine.resolve() and session.branch == "mine"
    assert (session.owns_worktree, session.owns_branch) == (False, False)
    with pytest.raises(CockpitError, match="another session already works in that worktree"):
        await engine.create_sessions(repo, worktree=str(mine))
    await engine.remove(session.id, delete_branch=True)
    assert (mine / "draft.txt").read_text() == "uncommitted\n"
    assert mine.resolve() in [p.resolve() for p in _worktrees(repo)] and _branch_at(repo, "mine")


async def test_only_worktrees_git_lists_can_be_reused(engine, repo, tmp_path):
    stray = tmp_path / "stray"
    stray.mkdir()
    with pytest.raises(GitError, match=r"stray: not a worktree of .*none besides the main checkout"):
        await engine.create_sessions(repo, worktree=str(stray))
    with pytest.raises(GitError, match="is the main checkout"):
        await engine.create_sessions(repo, worktree=str(repo))
    detached = tmp_path / "detached"
    run_git(repo, "worktree", "add", "-q", "--detach", str(detached))
    with pytest.raises(GitError, match="HEAD is detached"):
        await engine.create_sessions(repo, worktree=str(detached))


# -- sparse checkouts (monorepos) ----------------------------------------------------------------


async def test_sparse_folders_are_the_only_ones_checked_out(open_engine, make_repo, tmp_path):
    mono = make_repo(tmp_path / "mono", {"services/api/main.py": "api\n", "services/web/app.js": "web\n",
                                         "libs/common/util.py": "util\n", "README.md": "top\n"})
    config = parse_config_text('[worktrees]\nsparse = ["services/api", "libs/common"]\n')
    engine = await open_engine(config)
    (session,) = await engine.create_sessions(mono, name="api")
    assert (session.path / "services/api/main.py").is_file() and (session.path / "libs/common/util.py").is_file()
    assert (session.path / "README.md").is_file()  # cone mode keeps the top-level files
    assert not (session.path / "services/web").exists()
    assert run_git(session.path, "status", "--porcelain") == ""
    assert (mono / "services/web/app.js").is_file()  # the main checkout is whole


async def test_sparse_paths_are_checked(open_engine, make_repo, tmp_path):
    with pytest.raises(ConfigError, match=r"worktrees.sparse\[0\]' must be a path inside the repository"):
        parse_config_text('[worktrees]\nsparse = ["../elsewhere"]\n')
    mono = make_repo(tmp_path / "mono", {"services/api/main.py": "api\n"})
    engine = await open_engine(parse_config_text('[worktrees]\nsparse = ["services/apl"]\n'))
    with pytest.raises(GitError, match="worktrees.sparse: 'services/apl' is not a folder"):
        await engine.create_sessions(mono, name="typo")
    assert _worktrees(mono) == [mono]


# -- read-only sessions ----------------------------------------------------------------------------


async def test_a_read_only_session_reads_the_main_checkout_and_cannot_write(open_engine, make_repo, off_tmp, server):
    repo = make_repo(off_tmp / "repo")  # the sandbox's private /tmp would hide a repository there
    engine = await open_engine(agent_config(server.url), make_agent)
    (session,) = await engine.create_sessions(repo, read_only=True)
    assert session.read_only and session.path == repo and session.branch == "main" and session.name == "read-only"
    server.set_scenario({"steps": [
        {"text": "Reading.", "tool_calls": [{"name": "read_file", "arguments": {"path": "README.md"}}]},
        {"when": {"last_role": "tool"}, "text": "Writing.",
         "tool_calls": [{"name": "write_file", "arguments": {"path": "README.md", "content": "changed\n"}}]},
        {"when": {"last_role": "tool"}, "text": "Shell.",
         "tool_calls": [{"name": "run_shell", "arguments": {"command": "echo x > written.txt"}}]},
        {"when": {"last_role": "tool"}, "text": "Done."},
    ]}, session=session.id)
    await engine.send(session.id, "look around")
    await wait_state(engine, session.id, State.IDLE, State.WAITING, timeout=60)
    if engine.sessions[session.id].state == State.WAITING:  # a sandboxed shell may still ask (ask-shell)
        await engine.approve(session.id)
        await wait_state(engine, session.id, State.IDLE, timeout=60)
    results = of(await engine.transcript(session.id), ev.TOOL_RESULT)
    assert "This session is read-only" in server.requests[0]["messages"][0]["content"]
    assert "hello" in results[0]["output"]
    assert results[1]["output"].startswith("denied: this session is read-only")
    assert (repo / "README.md").read_text() == "hello\n" and not (repo / "written.txt").exists()
    assert ("Read-only file system" if availability().ok else "is read-only") in results[2]["output"]
    for refused in (engine.landing.merge(session.id), engine.landing.verify(session.id),
                    engine.review.rollback(session.id, 0)):
        with pytest.raises(CockpitError, match=r"is read-only \(it runs in the main checkout .*\): it cannot"):
            await refused
    await engine.remove(session.id, delete_branch=True)
    assert repo.is_dir() and (repo / "README.md").is_file() and _branch_at(repo, "main")


async def test_read_only_needs_the_built_in_agent(open_engine, repo):
    config = parse_config_text('[agents.shell]\nkind = "terminal"\ncommand = ["bash"]\n')
    engine = await open_engine(config)
    with pytest.raises(CockpitError, match="--no-worktree needs the built-in agent"):
        await engine.create_sessions(repo, read_only=True, agent="shell")


# -- forks keep the conversation -------------------------------------------------------------------


async def test_a_fork_of_a_built_in_session_continues_its_conversation(open_engine, repo, server):
    engine = await open_engine(agent_config(server.url), make_agent)
    (source,) = await engine.create_sessions(repo, name="src")
    server.set_scenario({"steps": [{"text": "The answer is 42."}]}, session=source.id)
    await engine.send(source.id, "what is the answer?")
    await wait_state(engine, source.id, State.IDLE, timeout=60)
    (fork,) = await engine.create_sessions(repo, fork_of=source.id)
    assert fork.agent == source.agent and fork.forked_from == source.id
    server.set_scenario({"steps": [{"text": "Still 42."}]}, session=fork.id)
    await engine.send(fork.id, "and now?")
    await wait_state(engine, fork.id, State.IDLE, timeout=60)
    sent = [(m["role"], m["content"]) for m in server.requests[-1]["messages"][1:]]
    assert sent == [("user", "what is the answer?"), ("assistant", "The answer is 42."), ("user", "and now?")]
    notices = [d["text"] for d in of(await engine.transcript(fork.id), ev.NOTICE)]
    assert f"forked from @{source.number} with its conversation (1 messages)" in notices
