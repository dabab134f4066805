"""Checkpoints at the end of agent turns, what each turn changed, and rollback (and its undo),
on real repositories with an engine driving a scripted backend."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from conftest import run_git
from turn_backend import TurnBackend, events_of, settled, turn

from cockpit.config import parse_config_text
from cockpit.core import events as ev
from cockpit.core.checkpoints import REF_PREFIX
from cockpit.core.diffs import Change
from cockpit.core.worktrees import snapshot_tree
from cockpit.errors import CockpitError, NotFound


@pytest.fixture
async def engine(open_engine):
    return await open_engine(agent_factory=TurnBackend)


@pytest.fixture
async def session(engine, repo: Path):
    (made,) = await engine.create_sessions(repo, name="cp")
    return made


def write(rel: str, data: bytes | str):
    def edit(root: Path) -> None:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            target.write_bytes(data)
        else:
            target.write_text(data)
    return edit


def files_of(root: Path) -> dict[str, bytes]:
    """Every file of a worktree but its .git pointer, with its bytes."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".git"
    }


async def test_each_turn_that_changes_files_leaves_a_checkpoint(engine, session, repo: Path):
    await turn(engine, session, write("a.txt", "one\ntwo\n"))
    await turn(engine, session)  # changes nothing: no checkpoint
    await turn(engine, session, write("README.md", "hello\nagain\n"))

    points = await engine.execute({"cmd": "checkpoints", "session": session.id})
    assert [(p["n"], p["turn"], p["reason"]) for p in points] == [(1, 1, "turn 1"), (2, 3, "turn 3")]
    assert [(p["files"], p["added"], p["removed"]) for p in points] == [(1, 2, 0), (1, 1, 0)]
    events = await events_of(engine, session, ev.CHECKPOINT)
    assert [(e["n"], e["commit"], e["files"], e["added"]) for e in events] == [
        (p["n"], p["commit"], p["files"], p["added"]) for p in points]
    # Hidden: the ref exists, but no branch shows it.
    assert run_git(repo, "for-each-ref", "--format=%(refname)", REF_PREFIX).split() == [REF_PREFIX + session.id]
    assert "checkpoint" not in run_git(repo, "branch", "-a")


async def test_a_checkpoint_diff_shows_what_that_turn_changed(engine, session):
    await turn(engine, session, write("a.txt", "one\n"))
    await turn(engine, session, write("b.txt", "two\nlines\n"))
    second = Change.from_dict(await engine.execute({"cmd": "checkpoint_diff", "session": session.id, "n": 2}))
    assert [(f.path, f.status, f.added) for f in second.files] == [("b.txt", "added", 2)]
    first = Change.from_dict(await engine.execute({"cmd": "checkpoint_diff", "session": session.id, "n": 1}))
    assert [f.path for f in first.files] == ["a.txt"] and first.base_commit == session.base_commit
    with pytest.raises(NotFound, match="no checkpoint #7; it has #0 .* to #2"):
        await engine.review.checkpoint_diff(session.id, 7)


async def test_rollback_restores_exact_bytes_removes_later_files_and_can_be_undone(engine, session):
    root = session.path
    (root / ".gitignore").write_text("cache/\n")
    run_git(root, "add", ".gitignore")
    run_git(root, "commit", "-q", "-m", "ignore the cache")
    await turn(engine, session, write("data.bin", b"\x00\x01\xff\r\nraw"))
    await turn(engine, session, write("notes/todo.txt", "first\n"))
    at_two = files_of(root)
    head_two = run_git(root, "rev-parse", "HEAD").strip()

    def later(root: Path) -> None:
        (root / "data.bin").write_bytes(b"changed")
        (root / "src" / "app.py").unlink()
        (root / "deep" / "er").mkdir(parents=True)
        (root / "deep" / "er" / "new.py").write_text("x = 1\n")
        os.chmod(root / "README.md", 0o755)
        run_git(root, "add", "-A")
        run_git(root, "commit", "-q", "-m", "the agent commits")
        (root / "notes" / "todo.txt").write_text("first\nsecond\n")
    await turn(engine, session, later)
    (root / "cache").mkdir()
    (root / "cache" / "blob").write_text("ignored, must stay\n")
    (root / "scratch.txt").write_text("written after the last turn\n")  # only the rollback saves it
    at_three = files_of(root)
    head_three = run_git(root, "rev-parse", "HEAD").strip()
    tree_three = await snapshot_tree(root)

    back = await engine.execute({"cmd": "rollback", "session": session.id, "n": 2})
    assert back["n"] == 2
    assert files_of(root) == {**at_two, "cache/blob": b"ignored, must stay\n"}
    assert not (root / "deep").exists()  # folders left empty are gone too
    assert run_git(root, "rev-parse", "HEAD").strip() == head_two
    assert run_git(root, "rev-parse", session.branch).strip() == head_two
    assert not os.access(root / "README.md", os.X_OK)

    points = await engine.review.checkpoints(session.id)
    undo = points[-1]
    assert (undo.n, undo.reason, undo.turn, undo.tree) == (4, "before rollback to #2", 0, tree_three)
    notices = [e["text"] for e in await events_of(engine, session, ev.NOTICE)]
    assert any("to undo, roll back to #4" in text for text in notices)
    told = TurnBackend.by_session[session.id].received[-1]
    assert "rolled your worktree and branch back" in told and "deep/er/new.py" in told

    await engine.execute({"cmd": "rollback", "session": session.id, "n": 4})
    assert files_of(root) == at_three
    assert run_git(root, "rev-parse", "HEAD").strip() == head_three
    assert os.access(root / "README.md", os.X_OK)
    assert await snapshot_tree(root) == tree_three


async def test_rollback_to_zero_returns_to_the_base_commit(engine, session):
    await turn(engine, session, write("a.txt", "one\n"))
    run_git(session.path, "commit", "-q", "--allow-empty", "-m", "empty")
    await engine.review.rollback(session.id, 0)
    assert not (session.path / "a.txt").exists()
    assert run_git(session.path, "rev-parse", "HEAD").strip() == session.base_commit
    assert (await engine.review.diff(session.id)).files == []


async def test_rollback_is_refused_while_the_agent_works(engine, session):
    await turn(engine, session, write("a.txt", "one\n"))
    backend = TurnBackend.by_session[session.id]
    backend.hold = asyncio.Event()
    backend.edits.append(write("a.txt", "two\n"))
    await engine.send(session.id, "keep going")
    await asyncio.sleep(0)
    with pytest.raises(CockpitError, match=r"is running; interrupt it first \(x\)"):
        await engine.execute({"cmd": "rollback", "session": session.id, "n": 1})
    assert (session.path / "a.txt").read_text() == "two\n"
    backend.hold.set()


async def test_no_checkpoints_when_turned_off(open_engine, repo: Path):
    engine = await open_engine(parse_config_text("[review]\ncheckpoints = false\n"), TurnBackend)
    (session,) = await engine.create_sessions(repo, name="off")
    await turn(engine, session, write("a.txt", "one\n"))
    assert await engine.review.checkpoints(session.id) == []
    assert [e["files"] for e in await events_of(engine, session, ev.DIFF_STAT)] == [1]


async def test_removing_a_session_drops_its_checkpoints(engine, session, repo: Path):
    await turn(engine, session, write("a.txt", "one\n"))
    assert run_git(repo, "for-each-ref", REF_PREFIX).strip()
    await engine.remove(session.id)
    assert run_git(repo, "for-each-ref", REF_PREFIX).strip() == ""


async def test_turn_numbers_survive_a_restart(open_engine, repo: Path):
    engine = await open_engine(agent_factory=TurnBackend)
    (session,) = await engine.create_sessions(repo, name="restart")
    await turn(engine, session, write("a.txt", "one\n"))
    await engine.close()
    engine = await open_engine(agent_factory=TurnBackend)
    session = engine.get(session.id)
    await engine.send(session.id, "wake")  # starts the agent again
    await TurnBackend.by_session[session.id].turns[-1]
    await settled(engine, session)
    await turn(engine, session, write("b.txt", "two\n"))
    assert [p.turn for p in await engine.review.checkpoints(session.id)] == [1, 3]


async def test_checkpoints_outlive_the_worktree(engine, session):
    await turn(engine, session, write("a.txt", "one\n"))
    shutil.rmtree(session.path)
    with pytest.raises(CockpitError, match=r"^session @1 has no worktree any more \("):
        await engine.review.diff(session.id)
    assert [p.n for p in await engine.review.checkpoints(session.id)] == [1]
    (added,) = (await engine.review.checkpoint_diff(session.id, 1)).files
    assert added.path == "a.txt"
