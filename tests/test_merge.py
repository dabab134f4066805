"""Merging a session into its target in real repositories: each strategy (exact history and
tree), conflict preview, refusals that change nothing, a failure half way, rebase onto target."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_git
from landing_helpers import checkout_state, commit, content, fail_ref_updates, review_config, rev, session_with, write

from cockpit.core import events as ev
from cockpit.core.merge import MergeConflict, title_line
from cockpit.core.model import Usage
from cockpit.core.states import State
from cockpit.errors import CockpitError, GitError

BASE = {"README.md": "hello\n", "src/app.py": "print('hi')\n"}


async def merged_events(engine, session) -> list[dict]:
    return [e.data for e in await engine.transcript(session.id) if e.kind == ev.MERGED]


async def test_squash_lands_committed_uncommitted_and_untracked_work(open_engine, repo):
    engine = await open_engine(config=review_config())
    old = rev(repo, "main")
    session = await session_with(
        engine, repo, "feat", committed={"src/app.py": "print('bye')\n"},
        uncommitted={"README.md": "hello\nworld\n", "new/notes.txt": "n\n"},
        task="Say goodbye instead of hi\n\nAnd document it.",
    )
    result = await engine.execute({"cmd": "merge", "session": session.id})
    new = rev(repo, "main")
    assert result["commit"] == new and result["strategy"] == "squash" and result["previous"] == old
    assert run_git(repo, "rev-list", "--parents", "-n1", "main").split() == [new, old]
    assert content(repo, "main") == {"README.md": "hello\nworld\n", "src/app.py": "print('bye')\n", "new/notes.txt": "n\n"}
    message = run_git(repo, "log", "-1", "--format=%B", "main")
    assert message.startswith("Say goodbye instead of hi\n\nAnd document it.\n")
    # The user's checkout had main checked out and clean: it was fast-forwarded.
    _, status, head = checkout_state(repo)
    assert status == "" and head == new and (repo / "new" / "notes.txt").read_text() == "n\n"
    assert session.state == State.MERGED
    assert await merged_events(engine, session) == [
        {"target": "main", "strategy": "squash", "commit": new, "previous": old}]
    # after_merge = remove-worktree (the default): the worktree is gone, the branch stays and
    # holds exactly what landed; the session record stays.
    assert not session.path.exists()
    assert content(repo, session.branch) == content(repo, "main")
    assert engine.get(session.id).state == State.MERGED


async def test_merge_commit_with_an_edited_message_moves_a_branch_nobody_has_checked_out(open_engine, repo):
    engine = await open_engine(config=review_config(strategy="merge", after_merge="keep"))
    session = await session_with(engine, repo, "m", committed={"a.txt": "a\n"}, uncommitted={"b.txt": "b\n"})
    agent_commit = rev(session.path, "HEAD")
    run_git(repo, "checkout", "-q", "-b", "elsewhere")  # the person works on another branch
    moved = commit(repo, {"README.md": "hello again\n"}, "main moves on")
    run_git(repo, "branch", "-f", "main", moved)
    run_git(repo, "reset", "-q", "--hard", "HEAD~1")
    before = checkout_state(repo)

    result = await engine.landing.merge(session.id, message="Add a and b\n\nEdited by hand.\n")

    merge, first, second = run_git(repo, "rev-list", "--parents", "-n1", "main").split()
    assert merge == result["commit"] and first == moved
    assert run_git(repo, "rev-list", "--parents", "-n1", second).split() == [second, agent_commit]
    assert content(repo, second) == {**BASE, "a.txt": "a\n", "b.txt": "b\n"}
    assert content(repo, "main") == {**BASE, "README.md": "hello again\n", "a.txt": "a\n", "b.txt": "b\n"}
    assert run_git(repo, "log", "-1", "--format=%B", "main") == "Add a and b\n\nEdited by hand.\n\n"
    assert checkout_state(repo) == before  # not the target's checkout: untouched
    # after_merge = keep: the worktree stays, its branch records the landed work, nothing is left uncommitted.
    assert session.path.is_dir() and rev(repo, session.branch) == second
    assert run_git(session.path, "status", "--porcelain") == ""


async def test_rebase_replays_each_commit_and_keeps_authors(open_engine, repo):
    engine = await open_engine(config=review_config(strategy="rebase", after_merge="remove"))
    session = await session_with(engine, repo, "r", committed={"a.txt": "a\n"})
    commit(session.path, {"b.txt": "b\n"}, "second", by_agent=True)
    write(session.path, {"c.txt": "c\n"})
    moved = commit(repo, {"README.md": "hello from main\n"}, "main moved on")

    await engine.landing.merge(session.id, message="Add c\n")

    log = run_git(repo, "log", "--format=%s|%an", f"{moved}..main").splitlines()
    assert log == ["Add c|Cockpit Tests", "second|Agent", "r: committed work|Agent"]
    assert rev(repo, "main~3") == moved and run_git(repo, "rev-list", "--merges", "main") == ""
    assert content(repo, "main") == {**BASE, "README.md": "hello from main\n", "a.txt": "a\n", "b.txt": "b\n", "c.txt": "c\n"}
    assert checkout_state(repo)[1:] == ("", rev(repo, "main"))
    # after_merge = remove: worktree and branch are gone, the record stays (merged).
    assert not session.path.exists() and run_git(repo, "branch", "--list", session.branch) == ""
    assert engine.get(session.id).state == State.MERGED


async def conflicting_session(engine, repo):
    session = await session_with(engine, repo, "c", committed={"README.md": "session\n"},
                                 uncommitted={"src/app.py": "print('session')\n", "extra.txt": "x\n"})
    target = commit(repo, {"README.md": "main\n", "src/app.py": "print('main')\n"}, "main edits")
    return session, target


async def test_preview_lists_the_conflicting_files(open_engine, repo):
    engine = await open_engine(config=review_config())
    session, target = await conflicting_session(engine, repo)
    clean = await session_with(engine, repo, "ok", uncommitted={"other.txt": "o\n"})

    preview = await engine.execute({"cmd": "merge_preview", "session": session.id})

    assert preview["clean"] is False and preview["conflicts"] == ["README.md", "src/app.py"]
    assert preview["files"] == ["README.md", "extra.txt", "src/app.py"]
    assert preview["target"] == "main" and preview["target_commit"] == target
    fine = await engine.landing.preview(clean.id)
    assert fine["clean"] is True and fine["conflicts"] == [] and fine["refusal"] == ""


@pytest.mark.parametrize("strategy", ["squash", "merge", "rebase"])
async def test_a_conflicting_merge_changes_nothing_anywhere(open_engine, repo, strategy):
    engine = await open_engine(config=review_config(strategy=strategy))
    session, _ = await conflicting_session(engine, repo)
    before, worktree_before = checkout_state(repo), checkout_state(session.path)
    refs = run_git(repo, "for-each-ref")

    with pytest.raises(MergeConflict) as caught:
        await engine.landing.merge(session.id)

    assert caught.value.files == (["README.md", "src/app.py"] if strategy != "rebase" else ["README.md"])
    text = str(caught.value)
    assert "\n" not in text and "README.md" in text and "rebase_onto_target" in text
    assert checkout_state(repo) == before  # every file byte-identical, same status, same HEAD
    assert checkout_state(session.path) == worktree_before
    assert run_git(repo, "for-each-ref") == refs
    assert session.state == State.IDLE and await merged_events(engine, session) == []


async def test_a_dirty_target_checkout_is_refused_naming_the_files(open_engine, repo):
    engine = await open_engine(config=review_config())
    session = await session_with(engine, repo, "d", uncommitted={"d.txt": "d\n"})
    write(repo, {"README.md": "my local edit\n", "scratch.txt": "mine\n"})
    before, main = checkout_state(repo), rev(repo, "main")

    preview = await engine.landing.preview(session.id)
    assert "README.md, scratch.txt" in preview["refusal"]
    with pytest.raises(GitError, match="uncommitted changes \\(README.md, scratch.txt\\)"):
        await engine.landing.merge(session.id)

    assert checkout_state(repo) == before and rev(repo, "main") == main
    assert session.state == State.IDLE and session.path.is_dir()


async def test_a_target_checked_out_in_another_worktree_is_refused(open_engine, repo, tmp_path: Path):
    engine = await open_engine(config=review_config())
    session = await session_with(engine, repo, "w", uncommitted={"w.txt": "w\n"})
    run_git(repo, "checkout", "-q", "-b", "elsewhere")
    other = tmp_path / "other-checkout"
    run_git(repo, "worktree", "add", "-q", str(other), "main")
    main = rev(repo, "main")

    with pytest.raises(GitError, match="checked out in .*other-checkout"):
        await engine.landing.merge(session.id)
    assert rev(repo, "main") == main and session.state == State.IDLE


async def test_gate_on_verify_needs_a_green_verify_of_the_current_change(open_engine, repo):
    engine = await open_engine(config=review_config(verify="test -f ok.txt", gate_on_verify=True, after_merge="keep"))
    session = await session_with(engine, repo, "g", uncommitted={"feature.txt": "f\n"})
    main = rev(repo, "main")

    with pytest.raises(CockpitError, match="gate_on_verify"):
        await engine.landing.merge(session.id)
    assert (await engine.landing.verify(session.id))["state"] == "failed"
    with pytest.raises(CockpitError, match="gate_on_verify"):
        await engine.landing.merge(session.id)
    write(session.path, {"ok.txt": ""})
    assert (await engine.landing.verify(session.id))["state"] == "passed"
    write(session.path, {"feature.txt": "changed after the verify\n"})  # green, but for another tree
    assert (await engine.landing.preview(session.id))["verified"] is False
    with pytest.raises(CockpitError, match="gate_on_verify"):
        await engine.landing.merge(session.id)
    assert rev(repo, "main") == main

    assert (await engine.landing.verify(session.id))["state"] == "passed"
    await engine.landing.merge(session.id)
    assert content(repo, "main") == {**BASE, "feature.txt": "changed after the verify\n", "ok.txt": ""}


@pytest.mark.parametrize("checked_out", [True, False], ids=["fast-forward", "update-ref"])
async def test_a_failure_half_way_leaves_repo_checkout_and_session_as_they_were(open_engine, repo, checked_out):
    engine = await open_engine(config=review_config(after_merge="remove"))
    session = await session_with(engine, repo, "h", committed={"a.txt": "a\n"}, uncommitted={"b.txt": "b\n"})
    if not checked_out:
        run_git(repo, "checkout", "-q", "-b", "elsewhere")
    fail_ref_updates(repo, "refs/heads/main")  # git aborts the move of the target
    before, worktree_before = checkout_state(repo), checkout_state(session.path)
    refs, worktrees = run_git(repo, "for-each-ref"), run_git(repo, "worktree", "list", "--porcelain")

    with pytest.raises(GitError):
        await engine.landing.merge(session.id)

    assert checkout_state(repo) == before
    assert checkout_state(session.path) == worktree_before
    assert run_git(repo, "for-each-ref") == refs
    assert run_git(repo, "worktree", "list", "--porcelain") == worktrees
    assert session.state == State.IDLE and await merged_events(engine, session) == []


async def test_rebase_onto_target_hands_the_conflicts_to_the_agent(open_engine, repo):
    engine = await open_engine(config=review_config(after_merge="keep"))
    session = await session_with(engine, repo, "rb", committed={"README.md": "session\n"}, uncommitted={"notes.txt": "n\n"})
    target = commit(repo, {"README.md": "main\n"}, "main edits")

    result = await engine.execute({"cmd": "rebase_onto_target", "session": session.id})

    assert result == {"session": session.id, "target": "main", "onto": target, "conflicts": ["README.md"], "done": False}
    assert "<<<<<<<" in (session.path / "README.md").read_text()
    assert session.base_commit == target
    told = [e.data["text"] for e in await engine.transcript(session.id) if e.kind == ev.USER_MESSAGE][-1]
    assert "- README.md" in told and "git rebase --continue" in told
    with pytest.raises(GitError, match="rebase is in progress"):
        await engine.landing.merge(session.id)

    # The agent resolves the conflict and finishes the rebase; now the session lands cleanly.
    (session.path / "README.md").write_text("both\n")
    run_git(session.path, "add", "README.md")
    run_git(session.path, "-c", "core.editor=true", "rebase", "--continue")
    await engine.landing.merge(session.id)
    assert content(repo, "main") == {**BASE, "README.md": "both\n", "notes.txt": "n\n"}
    assert "rebased onto" not in run_git(repo, "log", "-1", "--format=%B", "main")  # not an instruction of the person


async def test_rebase_onto_target_without_conflicts_finishes(open_engine, repo):
    engine = await open_engine(config=review_config())
    session = await session_with(engine, repo, "up", committed={"a.txt": "a\n"})
    target = commit(repo, {"README.md": "main\n"}, "main edits")

    result = await engine.landing.rebase_onto_target(session.id)

    assert result["done"] is True and result["conflicts"] == []
    assert rev(session.path, "HEAD~1") == target and run_git(session.path, "status", "--porcelain") == ""


async def test_drafted_message_has_a_short_title_and_the_later_instructions(open_engine, repo):
    engine = await open_engine()
    task = "Make the parser accept trailing commas in every list and every table of the config format"
    session = await session_with(engine, repo, "msg", uncommitted={"a.txt": "a\n"}, task=task)
    await engine.send(session.id, "also handle the empty case")

    message = await engine.execute({"cmd": "merge_message", "session": session.id})

    title, blank, *body = message.splitlines()
    assert title == title_line(task) and len(title) <= 72 and title.endswith("…") and blank == ""
    assert "- also handle the empty case" in body and "Files: a.txt" in body
    assert body[-1].startswith(f"Made by cockpit session @{session.number}")


async def test_without_a_task_the_first_instruction_makes_the_title(open_engine, repo):
    engine = await open_engine()
    session = (await engine.create_sessions(repo, name="untasked"))[0]
    write(session.path, {"a.txt": "a\n"})
    await engine.send(session.id, "Fix the off-by-one in the pager")
    await engine.send(session.id, "and add a test")

    title, _, *body = (await engine.execute({"cmd": "merge_message", "session": session.id})).splitlines()

    assert title == "Fix the off-by-one in the pager"
    assert "- and add a test" in body and "- Fix the off-by-one in the pager" not in body


async def test_merge_refuses_busy_or_merged_sessions_and_bad_input(open_engine, repo):
    engine = await open_engine(config=review_config(after_merge="keep"))
    session = await session_with(engine, repo, "b", uncommitted={"b.txt": "b\n"})
    with pytest.raises(CockpitError, match="unknown merge strategy 'octopus'"):
        await engine.execute({"cmd": "merge", "session": session.id, "strategy": "octopus"})
    with pytest.raises(CockpitError, match="merge target 'nope' is not a local branch"):
        await engine.execute({"cmd": "merge", "session": session.id, "target": "nope"})
    engine.set_state(session, State.RUNNING)
    with pytest.raises(CockpitError, match="is running; wait for its turn"):
        await engine.landing.merge(session.id)
    engine.set_state(session, State.IDLE)
    await engine.landing.merge(session.id)
    with pytest.raises(CockpitError, match="is merged"):
        await engine.landing.merge(session.id)
    empty = await session_with(engine, repo, "empty")
    with pytest.raises(GitError, match="nothing to merge"):
        await engine.landing.merge(empty.id)


async def test_compare_shows_fanned_out_sessions_side_by_side(open_engine, repo):
    engine = await open_engine(config=review_config(verify="test -f ok.txt"))
    one, two = await engine.create_sessions(repo, task="fix it", count=2)
    single = (await engine.create_sessions(repo, task="other"))[0]
    assert one.group and one.group == two.group and single.group == ""
    write(one.path, {"ok.txt": "", "a.txt": "1\n2\n"})
    write(two.path, {"README.md": "bye\n"})
    await engine.landing.verify(one.id)
    engine.add_usage(one, "m", Usage(prompt_tokens=100, completion_tokens=20, cost_usd=0.5))

    rows = await engine.execute({"cmd": "compare", "group": one.group})

    common = {"state": "idle"}
    assert rows == [
        {"session": one.id, "number": one.number, "name": one.name, "files": 2, "added": 2, "removed": 0,
         "verify": "passed", "verify_current": True, "tokens": 120, "cost": 0.5, **common},
        {"session": two.id, "number": two.number, "name": two.name, "files": 1, "added": 1, "removed": 1,
         "verify": "", "verify_current": False, "tokens": 0, "cost": 0.0, **common},
    ]
    write(one.path, {"a.txt": "changed\n"})
    assert [r["verify_current"] for r in await engine.landing.compare(sessions=[one.id])] == [False]
    with pytest.raises(CockpitError, match="needs sessions"):
        await engine.execute({"cmd": "compare"})
    with pytest.raises(CockpitError, match="no sessions in group 'zzz'"):
        await engine.landing.compare(group="zzz")
